//! The `authplane-load` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use authplane_load::engine::{self, Mode, Plan};
use authplane_load::report;
use authplane_load::scenario::{Kind, Pick, Population, Scenario};

/// A server to load: its address, whether it speaks TLS (`https://`), and
/// its host name (the TLS server name).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    addr: SocketAddr,
    https: bool,
    host: String,
}

/// `host:port`, optionally as `http://host:port[/]` or `https://…`.
fn parse_target(s: &str) -> Result<Target, String> {
    let (https, bare) = match (s.strip_prefix("http://"), s.strip_prefix("https://")) {
        (Some(b), _) => (false, b),
        (_, Some(b)) => (true, b),
        _ => (false, s),
    };
    let bare = bare.strip_suffix('/').unwrap_or(bare);
    if bare.contains('/') {
        return Err(format!("{s}: give host:port, without a path"));
    }
    let addr = std::net::ToSocketAddrs::to_socket_addrs(bare)
        .map_err(|e| format!("{s}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s}: no address"))?;
    let host = match bare.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => bare.to_owned(),
    };
    Ok(Target { addr, https, host })
}

#[derive(Parser, Debug)]
#[command(
    name = "authplane-load",
    version,
    about = "Load generator for authplane: open or closed loop, every answer validated"
)]
struct Cli {
    /// Server address, e.g. 127.0.0.1:8080, http://127.0.0.1:8080 or
    /// https://localhost:8443 (as wrk and curl take it; a name is resolved
    /// once). https:// is --tls.
    #[arg(long, value_parser = parse_target)]
    target: Target,
    /// Speak TLS (HTTPS) to the target(s).
    #[arg(long)]
    tls: bool,
    /// CA certificates (PEM) the server's chain must lead to; default: the
    /// Mozilla roots.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the
    /// target's host.
    #[arg(long)]
    tls_server_name: Option<String>,
    /// No TLS session resumption: every connection a full handshake (with
    /// --close-each: full handshakes per second).
    #[arg(long)]
    tls_no_resume: bool,
    /// What to send.
    #[arg(long, value_enum, default_value = "ping")]
    scenario: Kind,
    /// Open loop: requests per second in all, latency measured from the
    /// intended send time. Without it: closed loop at maximum throughput.
    #[arg(long)]
    rate: Option<f64>,
    /// Keep-alive connections in all.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Client threads (one executor each); default: one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Measured time, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before it, e.g. 2s.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Subscribers of the population (hss-provision creates them; aka uses them).
    #[arg(long, default_value_t = 10_000)]
    subscribers: u64,
    /// First IMSI of the population.
    #[arg(long, default_value_t = 1_010_900_000_000)]
    first_imsi: u64,
    /// Seed the population's keys derive from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Write the latency percentile distribution (HdrHistogram .hgrm) here.
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Write a latency-by-percentile plot (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Pick subscribers with a Zipf distribution of this exponent (e.g.
    /// 1.1) instead of uniformly.
    #[arg(long)]
    zipf: Option<f64>,
    /// Ask for `Connection: close` and open a connection per request (for
    /// servers that close every connection, such as PyHSS).
    #[arg(long)]
    close_each: bool,
    /// A second target: run the same load against both in alternation
    /// (A B A B ...) and print the ratio B/A of each pair.
    #[arg(long, value_parser = parse_target)]
    compare: Option<Target>,
    /// Rounds of A B with --compare.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Requests per write (HTTP pipelining), closed loop only.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// A weighted mix of scenarios from a TOML file
    /// (`[[scenario]]` tables with `kind` and `weight`).
    #[arg(long)]
    mix: Option<PathBuf>,
    /// The certificate whose key must have signed (stir-sign).
    #[arg(long)]
    stir_cert: Option<PathBuf>,
    /// K of the cards (sim-auth); default: the seed's slot 0 card.
    #[arg(long, default_value = "841EAD87BC9D974ECA1C167409357601")]
    sim_ki: String,
    /// OPc of the cards (sim-auth).
    #[arg(long, default_value = "3211CACDD64F51C3FD3013ECD9A582A0")]
    sim_opc: String,
    /// stir-sign: verify the signature of every N-th token only (the claims
    /// of every token are still checked); 1 verifies all.
    #[arg(long, default_value_t = 1)]
    stir_verify_every: u64,
    /// The verification request body stir-verify sends (a JSON file).
    #[arg(long)]
    stir_verify_request: Option<PathBuf>,
    /// Slots to spread sim-auth requests over (0..N), all with these keys.
    #[arg(long, default_value_t = 1)]
    sim_slots: u64,
    /// eir-provision / s13-ecr: how many EIR rules (see eir-provision).
    #[arg(long, default_value_t = 10_000)]
    eir_rules: u64,
    /// s13-ecr: each ECR with a random subscriber's IMSI (nearly every
    /// check a new IMSI/IMEI pair, written to the EIR history).
    #[arg(long)]
    ecr_new_pairs: bool,
    /// aaa-authorize / aaa-accounting: the call-id stem (`ld-RUN-N`); give
    /// the accounting run the authorize run's (printed by it).
    #[arg(long)]
    aaa_run: Option<u64>,
    /// aaa-sms-authorize / aaa-sms-accounting: the SMPP session token
    /// (`aaa_bind`'s `session_id`).
    #[arg(long, default_value = "")]
    aaa_session: String,
}

/// The TLS client of a run (None: plain HTTP).
fn tls_client(cli: &Cli) -> anyhow::Result<Option<engine::TlsClient>> {
    if !(cli.tls || cli.target.https || cli.compare.as_ref().is_some_and(|c| c.https)) {
        return Ok(None);
    }
    let ca = match &cli.tls_ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let name = cli.tls_server_name.as_deref().unwrap_or(&cli.target.host);
    engine::TlsClient::new(ca.as_deref(), name, !cli.tls_no_resume).map(Some)
}

fn key16(name: &str, v: &str) -> anyhow::Result<[u8; 16]> {
    let mut k = [0u8; 16];
    hex::decode_to_slice(v, &mut k)
        .map_err(|_| anyhow::anyhow!("--{name}: expected 32 hex digits"))?;
    Ok(k)
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let provisioning = (cli.scenario.provisions()
        || matches!(
            cli.scenario,
            Kind::AaaAuthorize
                | Kind::AaaAccounting
                | Kind::AaaSmsAuthorize
                | Kind::AaaSmsAccounting
        ))
        && cli.mix.is_none();
    let aaa_run = cli.aaa_run.unwrap_or_else(rand::random);
    if matches!(
        cli.scenario,
        Kind::AaaAuthorize | Kind::AaaAccounting | Kind::AaaSmsAuthorize | Kind::AaaSmsAccounting
    ) {
        eprintln!(
            "AAA calls ld-{aaa_run}-0 .. ld-{aaa_run}-{}",
            cli.subscribers.saturating_sub(1)
        );
    }
    anyhow::ensure!(
        cli.pipeline <= 1 || (cli.rate.is_none() && !provisioning),
        "--pipeline works in closed loop and not with hss-provision"
    );
    let mix = match &cli.mix {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: authplane_load::scenario::MixFile =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            Some(
                file.cumulative()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let tls = tls_client(&cli)?;
    let plan = Plan {
        target: cli.target.addr,
        tls: tls.clone(),
        mode: match cli.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        },
        connections: cli.connections.max(1),
        threads,
        warmup: if provisioning {
            Duration::ZERO
        } else {
            cli.warmup
        },
        duration: cli.duration,
        requests: provisioning.then_some(if cli.scenario == Kind::EirProvision {
            cli.eir_rules
        } else {
            cli.subscribers
        }),
        scenario: Scenario {
            kind: cli.scenario,
            population: Population {
                seed: cli.seed,
                first_imsi: cli.first_imsi,
                size: cli.subscribers,
            },
            host: cli.target.addr.to_string(),
            pick: cli.zipf.map_or(Pick::Uniform, Pick::Zipf),
            close_each: cli.close_each,
            mix,
            sim: authplane_load::scenario::SimCards {
                k: key16("sim-ki", &cli.sim_ki)?,
                opc: key16("sim-opc", &cli.sim_opc)?,
                slots: cli.sim_slots.max(1),
                issued: std::sync::Arc::default(),
            },
            stir_verify_every: cli.stir_verify_every,
            aaa_run,
            aaa_session: std::sync::Arc::new(cli.aaa_session.clone()),
            eir_rules: cli.eir_rules,
            ecr_new_pairs: cli.ecr_new_pairs,
            verify_body: std::sync::Arc::new(match &cli.stir_verify_request {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?,
                None => String::new(),
            }),
            stir_key: match &cli.stir_cert {
                Some(p) => Some(
                    authplane_load::scenario::key_of_certificate(&std::fs::read_to_string(p)?)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
                ),
                None => None,
            },
        },
        pipeline: cli.pipeline.max(1),
        progress: None,
    };
    let mode = match cli.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".into(),
    };
    let name = match &cli.mix {
        Some(p) => format!("mix {}", p.display()),
        None => serde_json::to_value(cli.scenario)?
            .as_str()
            .unwrap_or("scenario")
            .to_owned(),
    };

    if let Some(b) = cli.compare.clone() {
        return compare(&cli, plan, b, &name, &mode);
    }

    let progress = provisioning.then(|| {
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let bar = indicatif::ProgressBar::new(cli.subscribers);
        let c = counter.clone();
        let n = cli.subscribers;
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || loop {
                let done = c.load(std::sync::atomic::Ordering::Relaxed);
                bar.set_position(done);
                if done >= n {
                    bar.finish_and_clear();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            });
        (counter, thread)
    });
    let mut plan = plan;
    plan.progress = progress.as_ref().map(|(c, _)| c.clone());
    let stats = engine::run(&plan);
    if let Some((c, t)) = progress {
        c.store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
        if let Ok(t) = t {
            let _ = t.join();
        }
    }
    let stats = stats?;
    let summary = report::summarize(&stats, &name, &mode);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", report::table(&summary));
    }
    if let Some(path) = &cli.hgrm {
        std::fs::write(path, report::hgrm(&stats))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.svg {
        report::svg(&[(&name, &stats)], path)?;
    }
    Ok(if summary.errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

/// Runs `plan` against its target (A) and `b` in alternation and prints
/// every run and the ratio B/A of each pair.
fn compare(
    cli: &Cli,
    plan: Plan,
    b: Target,
    name: &str,
    mode: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let mut plan_b = plan.clone();
    plan_b.target = b.addr;
    plan_b.scenario.host = b.addr.to_string();
    if let Some(tls) = &mut plan_b.tls {
        if cli.tls_server_name.is_none() {
            *tls = tls.named(&b.host)?;
        }
    }
    let mut errors = 0;
    let mut last = None;
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>8}",
        "run", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for r in 1..=cli.rounds.max(1) {
        let a = engine::run(&plan)?;
        let bs = engine::run(&plan_b)?;
        for (label, s) in [("A", &a), ("B", &bs)] {
            errors += s.error_count();
            println!(
                "{:<10} {:>12.0} {:>10.3} {:>10.3} {:>8}",
                format!("{label} r{r}"),
                s.throughput(),
                s.latency_us.value_at_percentile(50.0) as f64 / 1000.0,
                s.latency_us.value_at_percentile(99.0) as f64 / 1000.0,
                s.error_count()
            );
        }
        let p99 = |s: &engine::Stats| s.latency_us.value_at_percentile(99.0).max(1) as f64;
        println!(
            "  pair {r}: B/A throughput {:.2}, B/A p99 {:.2}",
            bs.throughput() / a.throughput().max(1e-9),
            p99(&bs) / p99(&a)
        );
        last = Some((a, bs));
    }
    if let (Some(path), Some((a, bs))) = (&cli.svg, &last) {
        report::svg(
            &[(&format!("A {name}"), a), (&format!("B {name}"), bs)],
            path,
        )?;
    }
    let _ = mode;
    Ok(if errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets_are_taken_as_wrk_and_curl_users_type_them() {
        let want: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        for t in [
            "127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
        ] {
            let got = super::parse_target(t).unwrap();
            assert_eq!(
                (got.addr, got.https, got.host.as_str()),
                (want, false, "127.0.0.1"),
                "{t}"
            );
        }
        let tls = super::parse_target("https://localhost:8080/").unwrap();
        assert!(tls.https);
        assert_eq!((tls.host.as_str(), tls.addr.port()), ("localhost", 8080));
        for bad in ["http://127.0.0.1:8080/oam/ping", "nope"] {
            assert!(super::parse_target(bad).is_err(), "{bad}");
        }
    }
}
