//! GeoRed, inbound (PyHSS's `PATCH /geored/`): a peer HSS pushes a change
//! of serving state or SQN, in PyHSS's body, and it is applied here as a
//! PATCH of the table that holds it, through the table layer (so it is
//! durable before the answer, logged, and never lowers an SQN):
//! - `serving_mme` (with `_realm`, `_peer`): the subscriber of `imsi`;
//! - `last_seen_mcc` and the other `last_seen_*` fields: its location;
//! - `scscf` / `pcscf` (with their realm, peer, timestamp, session): the
//!   IMS subscriber of `imsi`;
//! - `auc_id` with `sqn`: the AuC (by `imsi` when the body names one, as
//!   ids differ between servers), moved forward only;
//! - `imei` with `imsi` and `match_response_code`: the EIR history;
//! - `serving_apn` (an APN name) with `pcrf_session_id`, `serving_pgw`
//!   (`null`: the session closed), `subscriber_routing` and the PGW's
//!   realm, peer and timestamp: the subscriber's PCRF session.
//!
//! Emergency subscribers are not taken from GeoRed: a body with them is
//! refused with a 400 that says so, before anything is applied: never a
//! false success.

use serde_json::{Map, Value};

use super::{auc::Auc, geored_out, ims_subscriber::ImsSubscriber, subscriber::Subscriber};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::table::{self, json, Body, Row};

/// Keys of parts not kept yet, and why.
const NOT_KEPT: [(&str, &str); 1] = [(
    "emergency_subscriber_ip",
    "emergency subscribers are not taken from GeoRed yet",
)];

/// `body[key]`, `null` when absent (PyHSS fills absent optional keys so).
fn field(body: &Body, key: &str) -> Value {
    body.get(key).cloned().unwrap_or(Value::Null)
}

/// A PATCH body of `keys` taken from `body` (absent ones `null`).
fn pick(body: &Body, keys: &[&str]) -> Body {
    keys.iter()
        .map(|k| ((*k).to_owned(), field(body, k)))
        .collect()
}

fn imsi_of(body: &Body) -> Result<Imsi, ApiError> {
    let raw = body
        .get("imsi")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("imsi: required"))?;
    Imsi::parse(raw).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `PATCH /geored/`: applies a peer's pushed state; answers the rows it
/// changed.
pub fn patch<'a>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let mut w = crud::write_of(ctx, &req)?;
        // Applied here, not pushed on to the other peers.
        w.from_peer = true;
        let body = crud::body(&mut req)?;
        if let Some((key, why)) = NOT_KEPT.iter().find(|(k, _)| body.contains_key(*k)) {
            return Err(ApiError::bad_request(format!("{key}: {why}")));
        }
        let (core, tables) = (&ctx.core, &ctx.tables);
        let mut changed: Vec<Value> = Vec::new();
        let now = json::timestamp(w.now);
        let subscriber = |imsi: Imsi| async move {
            table::find::<Subscriber>(core, "imsi", imsi.as_str())
                .await?
                .ok_or(ApiError::NotFound)
        };
        if body.contains_key("serving_mme") {
            let sub = subscriber(imsi_of(&body)?).await?;
            let mut patch = pick(
                &body,
                &["serving_mme", "serving_mme_realm", "serving_mme_peer"],
            );
            let stamp = if field(&body, "serving_mme").is_null() {
                Value::Null
            } else {
                Value::String(now.clone())
            };
            patch.insert("serving_mme_timestamp".into(), stamp);
            let s: Subscriber = tables.patch(core, sub.id(), &patch, &(), &w).await?;
            changed.push(to_value(&s)?);
        }
        if body.contains_key("last_seen_mcc") {
            let sub = subscriber(imsi_of(&body)?).await?;
            let patch = pick(
                &body,
                &[
                    "last_seen_eci",
                    "last_seen_enodeb_id",
                    "last_seen_cell_id",
                    "last_seen_tac",
                    "last_seen_mcc",
                    "last_seen_mnc",
                    "last_location_update_timestamp",
                ],
            );
            let s: Subscriber = tables.patch(core, sub.id(), &patch, &(), &w).await?;
            changed.push(to_value(&s)?);
        }
        for (key, fields) in [
            (
                "scscf",
                &["scscf", "scscf_realm", "scscf_peer", "scscf_timestamp"][..],
            ),
            (
                "pcscf",
                &[
                    "pcscf",
                    "pcscf_realm",
                    "pcscf_peer",
                    "pcscf_timestamp",
                    "pcscf_active_session",
                ][..],
            ),
        ] {
            if body.contains_key(key) {
                let imsi = imsi_of(&body)?;
                let ims: ImsSubscriber = table::find(core, "imsi", imsi.as_str())
                    .await?
                    .ok_or(ApiError::NotFound)?;
                let mut patch = pick(&body, fields);
                // PyHSS 2.0.0 stores str(None) for a missing scscf_peer of
                // a registration (a de-registration clears it).
                let set = !patch["scscf"].is_null();
                if key == "scscf" && w.pyhss_quirks && set && patch["scscf_peer"].is_null() {
                    patch.insert("scscf_peer".into(), Value::from("None"));
                }
                let s: ImsSubscriber = tables.patch(core, ims.id(), &patch, &(), &w).await?;
                changed.push(to_value(&s)?);
            }
        }
        if body.contains_key("auc_id") {
            let sqn = body
                .get("sqn")
                .and_then(Value::as_u64)
                .ok_or_else(|| ApiError::bad_request("sqn: required with auc_id"))?;
            let id = match body.get("imsi") {
                Some(_) => {
                    let imsi = imsi_of(&body)?;
                    table::find::<Auc>(core, "imsi", imsi.as_str())
                        .await?
                        .ok_or(ApiError::NotFound)?
                        .id()
                }
                None => body
                    .get("auc_id")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ApiError::bad_request("auc_id: must be an integer"))?,
            };
            let patch: Body = Map::from_iter([("sqn".to_owned(), Value::from(sqn))]);
            let kek = ctx.config.hss.kek.clone();
            let auc: Auc = tables.patch(core, id, &patch, &kek, &w).await?;
            let view = <super::auc::AucApi as crud::Face>::view(ctx, &auc);
            changed
                .push(serde_json::to_value(&view).map_err(|e| ApiError::Internal(e.to_string()))?);
        }
        if let Some(apn) = body.get("serving_apn") {
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
            let update = super::serving_apn::SessionUpdate {
                imsi: imsi_of(&body)?.as_str().to_owned(),
                apn: apn
                    .as_str()
                    .ok_or_else(|| ApiError::bad_request("serving_apn: must be an APN name"))?
                    .to_owned(),
                pcrf_session_id: text("pcrf_session_id"),
                serving_pgw: text("serving_pgw"),
                subscriber_routing: text("subscriber_routing"),
                serving_pgw_realm: text("serving_pgw_realm"),
                serving_pgw_peer: text("serving_pgw_peer"),
                serving_pgw_timestamp: text("serving_pgw_timestamp"),
            };
            if let Some(s) = super::serving_apn::apply(ctx, update, &w).await? {
                changed.push(to_value(&s)?);
            }
        }
        if body.contains_key("imei") {
            let imsi = imsi_of(&body)?;
            let imei = body
                .get("imei")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("imei: must be a string of digits"))?;
            // PyHSS sends the code as a number or as its text.
            let code = match body.get("match_response_code") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| ApiError::bad_request("match_response_code: required with imei"))?;
            let entry = super::eir_history::record(ctx, imsi.as_str(), imei, code, &w).await?;
            changed.push(to_value(&entry)?);
        }
        reply.json(200, &changed)
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The keys of PyHSS's GeoRed body.
const SCHEMA: [&str; 43] = [
    "imsi",
    "serving_mme",
    "serving_mme_realm",
    "serving_mme_peer",
    "serving_mme_timestamp",
    "serving_apn",
    "pcrf_session_id",
    "pcscf",
    "pcscf_realm",
    "pcscf_peer",
    "pcscf_timestamp",
    "pcscf_active_session",
    "subscriber_routing",
    "serving_pgw",
    "serving_pgw_realm",
    "serving_pgw_peer",
    "serving_pgw_timestamp",
    "scscf",
    "scscf_realm",
    "scscf_peer",
    "scscf_timestamp",
    "imei",
    "match_response_code",
    "auc_id",
    "sqn",
    "last_seen_eci",
    "last_seen_enodeb_id",
    "last_seen_cell_id",
    "last_seen_tac",
    "last_seen_mcc",
    "last_seen_mnc",
    "last_location_update_timestamp",
    "emergency_subscriber_id",
    "emergency_subscriber_imsi",
    "emergency_subscriber_serving_pgw",
    "emergency_subscriber_serving_pgw_timestamp",
    "emergency_subscriber_serving_pcscf",
    "emergency_subscriber_serving_pcscf_timestamp",
    "emergency_subscriber_gx_origin_realm",
    "emergency_subscriber_gx_origin_host",
    "emergency_subscriber_rat_type",
    "emergency_subscriber_ip",
    "emergency_subscriber_delete",
];

/// `GET /geored/`: the keys of the GeoRed body, each `"string"` (PyHSS's
/// answer).
pub fn schema<'a>(
    _: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let keys: Map<String, Value> = SCHEMA
            .iter()
            .map(|k| ((*k).to_owned(), Value::from("string")))
            .collect();
        reply.json(200, &keys)
    })
}

/// `GET /geored/peers`: `{"peers": [...], "status": {peer: counters}}`,
/// the counters summed over the cores.
pub fn peers<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let list = geored_out::peers(&ctx.core.catalog());
        let mut status = std::collections::BTreeMap::new();
        for k in 0..ctx.core.shards() {
            let part = ctx
                .core
                .on(crate::domain::shard::ShardId(k), |_| async {
                    geored_out::status_here()
                })
                .await
                .map_err(crud::mesh_error)?;
            geored_out::merge(&mut status, part);
        }
        reply.json(200, &serde_json::json!({"peers": list, "status": status}))
    })
}

/// `PATCH /geored/peers` with `{"peers": ["http://host:port", ...]}`:
/// replaces the peers (kept in the catalog, so across restarts).
pub fn set_peers<'a>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let body = crud::body(&mut req)?;
        let list: Vec<String> = match body.get("peers") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| ApiError::bad_request("peers: must be a list of URLs"))?,
            _ => return Err(ApiError::bad_request("peers: required, a list of URLs")),
        };
        if list.len() > 64 {
            return Err(ApiError::bad_request("peers: at most 64"));
        }
        for p in &list {
            if crate::domain::shaken::parse_url(p).is_none() {
                return Err(ApiError::bad_request(format!(
                    "peers: {p} is not an http:// or https:// URL with a host"
                )));
            }
        }
        let value = serde_json::to_vec(&list).map_err(|e| ApiError::Internal(e.to_string()))?;
        ctx.core
            .catalog_update(move |_| {
                let op = crate::storage::Op::Put {
                    table: super::tables::CATALOG_META,
                    key: geored_out::PEERS_KEY.to_vec(),
                    value,
                };
                Ok::<_, ApiError>((vec![op], ()))
            })
            .await
            .map_err(crate::table::commit_error)??;
        reply.json(200, &serde_json::json!({"peers": list}))
    })
}

/// `GET /geored/webhooks`: this server calls no webhooks (PyHSS's answer
/// when they are off).
pub fn webhooks<'a>(
    _: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        reply.json(
            200,
            &serde_json::json!({"result": "Failed", "Reason": "Webhooks not enabled"}),
        )
    })
}
