//! Operations endpoints: `GET /oam/ping` (liveness, PyHSS's answer),
//! `GET /metrics` (Prometheus text, merged from every core at scrape) and
//! `GET /oam/shard/{key}` (which core owns a key: served by that core, so
//! it proves the mesh round trip), and the API document
//! (`GET /swagger.json`, the Swagger UI at `GET /docs/`).

use std::fmt::Write as _;

use serde::Serialize;

use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{Method, Request};
use crate::domain::router::{Params, RouteError};
use crate::domain::shard::{shard_of, ShardId, HASH_VERSION};
use crate::runtime::{self, CoreMetrics, LocalBoxFuture};
use crate::server::{mesh_error, openapi, Ctx, Handler, Reply, Routes};

pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    r.add(Method::Get, "/oam/ping", Api::Pyhss, Handler::Sync(ping))?;
    r.add(
        Method::Post,
        "/oam/backup",
        Api::Pyhss,
        Handler::Async(backup),
    )?;
    r.add(
        Method::Get,
        "/oam/shard/{key}",
        Api::Pyhss,
        Handler::Async(shard),
    )?;
    r.add(
        Method::Get,
        "/metrics",
        Api::Server,
        Handler::Async(metrics),
    )?;
    let doc = crate::server::openapi::DOCUMENT_PATH;
    r.add(
        Method::Get,
        doc,
        Api::Server,
        Handler::Sync(openapi::swagger_json),
    )?;
    r.add(
        Method::Get,
        "/docs",
        Api::Server,
        Handler::Sync(openapi::docs),
    )?;
    r.add(
        Method::Get,
        "/docs/{file}",
        Api::Server,
        Handler::Sync(openapi::docs),
    )?;
    Ok(())
}

#[derive(Serialize)]
struct Ping {
    result: &'static str,
}

fn ping(
    _: &Ctx,
    _: &mut Request<'_>,
    _: &Params<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), ApiError> {
    reply.json(200, &Ping { result: "OK" })
}

#[derive(serde::Deserialize)]
struct BackupRequest {
    to: String,
}

#[derive(Serialize)]
struct BackupDone {
    result: &'static str,
    to: String,
    files: u64,
    bytes: u64,
    seconds: f64,
}

/// `POST /oam/backup` `{"to": "/absolute/new/dir"}`: a consistent copy of
/// the data directory while the server serves (runtime::backup). Every
/// write acknowledged before the request is in it.
fn backup<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crate::server::crud::provisioning(ctx, &req)?;
        let body: BackupRequest = crate::server::json_body(req.body)?;
        let to = std::path::PathBuf::from(&body.to);
        let started = runtime::clock::now();
        let report = runtime::backup::backup(&ctx.core, &ctx.config.storage.data_dir, &to)
            .await
            .map_err(|e| match e {
                runtime::backup::BackupError::Refused(m) => ApiError::bad_request(m),
                other => ApiError::Internal(format!("backup failed: {other}")),
            })?;
        let seconds = runtime::clock::now()
            .saturating_duration_since(started)
            .as_secs_f64();
        tracing::info!(to = %to.display(), files = report.files, bytes = report.bytes, seconds, "backup done");
        reply.json(
            200,
            &BackupDone {
                result: "OK",
                to: body.to,
                files: report.files,
                bytes: report.bytes,
                seconds,
            },
        )
    })
}

#[derive(Serialize)]
struct Placement<'a> {
    key: &'a str,
    hash_version: u32,
    shards: u16,
    owner: u16,
    accepted_on: u16,
    served_on: u16,
}

fn shard<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let key = params.get("key").unwrap_or_default();
        let owner = shard_of(key.as_bytes(), ctx.core.shards());
        let served_on = ctx
            .core
            .submit_to(owner, || async { runtime::current_shard() })
            .await
            .map_err(mesh_error)?
            .ok_or_else(|| ApiError::Internal("owner ran off its core".into()))?;
        reply.json(
            200,
            &Placement {
                key,
                hash_version: HASH_VERSION,
                shards: ctx.core.shards(),
                owner: owner.0,
                accepted_on: ctx.core.shard.0,
                served_on: served_on.0,
            },
        )
    })
}

fn metrics<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let mut total = CoreMetrics::new(ctx.routes.len());
        let mut per_core = Vec::new();
        for k in 0..ctx.core.shards() {
            let m = ctx
                .core
                .submit_to(ShardId(k), || async {
                    runtime::with_current_core(|c| c.metrics_snapshot()).unwrap_or_default()
                })
                .await
                .map_err(mesh_error)?;
            total.merge(&m);
            per_core.push((k, m.connections_open));
        }
        let text = render(ctx, &total, &per_core);
        reply.with_body(200, "text/plain; version=0.0.4", |out| {
            out.extend_from_slice(text.as_bytes())
        });
        Ok(())
    })
}

/// Upper bounds (seconds) of the executor-lag buckets.
const LAG_BUCKETS_S: [f64; 8] = [0.0015, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1];

const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];

/// The quantiles, maximum and count of a nanosecond histogram, in seconds,
/// as a summary `name` with `labels` (`key="value",...`, or empty).
fn summary(s: &mut String, name: &str, labels: &str, h: &hdrhistogram::Histogram<u64>) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (q, quantile) in QUANTILES {
        let v = h.value_at_quantile(q) as f64 / 1e9;
        let _ = writeln!(s, "{name}{{{labels}{sep}quantile=\"{quantile}\"}} {v:.9}");
    }
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(s, "{name}_max{braced} {:.9}", h.max() as f64 / 1e9);
    let _ = writeln!(s, "{name}_count{braced} {}", h.len());
}

fn render(ctx: &Ctx, m: &CoreMetrics, per_core: &[(u16, u64)]) -> String {
    let mut s = String::with_capacity(4096);
    let _ = writeln!(
        s,
        "# HELP authplane_requests_total Requests served, by route and status."
    );
    let _ = writeln!(s, "# TYPE authplane_requests_total counter");
    let label = |i: usize| {
        if i < ctx.routes.len() {
            ctx.routes.describe(i)
        } else {
            "unmatched".to_owned()
        }
    };
    for (i, r) in m.routes.iter().enumerate() {
        for (status, n) in &r.statuses {
            let _ = writeln!(
                s,
                "authplane_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                label(i)
            );
        }
    }
    let _ = writeln!(s, "# HELP authplane_request_duration_seconds Request latency, from per-core HdrHistograms merged at scrape.");
    let _ = writeln!(s, "# TYPE authplane_request_duration_seconds summary");
    for (i, r) in m.routes.iter().enumerate() {
        let Some(h) = &r.latency else { continue };
        let route = format!("route=\"{}\"", label(i));
        summary(&mut s, "authplane_request_duration_seconds", &route, h);
    }
    let _ = writeln!(
        s,
        "# HELP authplane_connections_open Open client connections, by core."
    );
    let _ = writeln!(s, "# TYPE authplane_connections_open gauge");
    for (core, n) in per_core {
        let _ = writeln!(s, "authplane_connections_open{{core=\"{core}\"}} {n}");
    }
    let _ = writeln!(s, "# TYPE authplane_connections_accepted_total counter");
    let _ = writeln!(
        s,
        "authplane_connections_accepted_total {}",
        m.connections_accepted
    );
    let _ = writeln!(s, "# TYPE authplane_connections_refused_total counter");
    let _ = writeln!(
        s,
        "authplane_connections_refused_total {}",
        m.connections_refused
    );
    let _ = writeln!(
        s,
        "# HELP authplane_mesh_hops_total Requests sent to the core owning their shard."
    );
    let _ = writeln!(s, "# TYPE authplane_mesh_hops_total counter");
    let _ = writeln!(s, "authplane_mesh_hops_total {}", m.mesh_hops);
    if let Some(h) = &m.executor_lag {
        let name = "authplane_executor_lag_seconds";
        let _ = writeln!(s, "# HELP {name} How late each core's executor ran a timer due every millisecond (the timer's own 1 ms slots included): time spent in one task, or the core not running at all.");
        let _ = writeln!(s, "# TYPE {name} histogram");
        for le in LAG_BUCKETS_S {
            // Counted to the histogram's 3 significant digits.
            let n = h.count_between(0, (le * 1e9) as u64);
            let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
        let _ = writeln!(s, "{name}_sum {:.9}", h.mean() * h.len() as f64 / 1e9);
        let _ = writeln!(s, "{name}_count {}", h.len());
        let _ = writeln!(s, "# HELP {name}_max The longest executor lag since start.");
        let _ = writeln!(s, "# TYPE {name}_max gauge");
        let _ = writeln!(s, "{name}_max {:.9}", h.max() as f64 / 1e9);
    }
    for (name, help, value) in [
        (
            "authplane_sqn_leases_taken_total",
            "Vector requests that took a new SQN lease and waited for its sync.",
            m.sqn_leases_taken,
        ),
        (
            "authplane_sqn_under_lease_total",
            "Vector requests served under a standing SQN lease, without a sync.",
            m.sqn_under_lease,
        ),
    ] {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} counter");
        let _ = writeln!(s, "{name} {value}");
    }
    snapshot_metrics(&mut s, &m.snapshots);
    if let Some(tls) = ctx.extension::<runtime::TlsListeners>() {
        tls_metrics(&mut s, tls);
    }
    s
}

/// Each shard's snapshot and its background check.
fn snapshot_metrics(s: &mut String, shards: &[runtime::metrics::SnapshotFigures]) {
    use runtime::metrics::SnapshotFigures as F;
    type Series<'a> = (&'a str, &'a str, &'a str, fn(&F) -> u64);
    let series: [Series<'_>; 6] = [
        ("authplane_snapshot_generation", "gauge", "Generation of the shard's mapped snapshot.", |f| f.generation),
        ("authplane_snapshot_bytes", "gauge", "Bytes of data blocks in the shard's mapped snapshot.", |f| f.bytes),
        ("authplane_snapshot_checked_bytes", "gauge", "Bytes of the mapped snapshot the background check has read against their checksums.", |f| f.checked_bytes),
        ("authplane_snapshot_check_passes_total", "counter", "Complete background checks of the shard's snapshots.", |f| f.passes),
        ("authplane_snapshot_damaged_parts", "gauge", "Blocks and index pages the last complete check found damaged (restore the shard from a backup when above 0).", |f| f.damaged),
        ("authplane_snapshot_damaged_reads_total", "counter", "Reads refused because the block holding the row fails its checksum.", |f| f.read_errors),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for f in shards {
            let _ = writeln!(s, "{name}{{shard=\"{}\"}} {}", f.shard, value(f));
        }
    }
}

/// Each TLS listener's handshakes and reloads.
fn tls_metrics(s: &mut String, tls: &runtime::TlsListeners) {
    use runtime::tls::TlsStats;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    enum Value {
        Count(fn(&TlsStats) -> &AtomicU64),
        Flag(fn(&TlsStats) -> &AtomicBool),
    }
    let series: [(&str, &str, &str, Value); 7] = [
        (
            "authplane_tls_handshakes_total",
            "counter",
            "TLS handshakes completed.",
            Value::Count(|t| &t.handshakes),
        ),
        (
            "authplane_tls_resumed_total",
            "counter",
            "TLS handshakes that resumed a session.",
            Value::Count(|t| &t.resumed),
        ),
        (
            "authplane_tls_handshake_failures_total",
            "counter",
            "TLS handshakes refused, failed or timed out.",
            Value::Count(|t| &t.handshake_failures),
        ),
        (
            "authplane_tls_reloads_total",
            "counter",
            "SIGHUP reloads of the certificate and key.",
            Value::Count(|t| &t.reloads),
        ),
        (
            "authplane_tls_reload_failures_total",
            "counter",
            "Reloads refused: the files did not load; the certificate before stayed in use.",
            Value::Count(|t| &t.reload_failures),
        ),
        (
            "authplane_tls_last_reload_failed",
            "gauge",
            "1 when the last reload was refused.",
            Value::Flag(|t| &t.last_reload_failed),
        ),
        (
            "authplane_tls_certificate_not_after_seconds",
            "gauge",
            "The notAfter of the leaf certificate in use (Unix seconds).",
            Value::Count(|t| &t.not_after),
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} {kind}");
        for server in tls.servers() {
            let v = match &value {
                Value::Count(f) => f(&server.stats).load(Ordering::Relaxed),
                Value::Flag(f) => u64::from(f(&server.stats).load(Ordering::Relaxed)),
            };
            let _ = writeln!(s, "{name}{{listener=\"{}\"}} {v}", server.name);
        }
    }
}
