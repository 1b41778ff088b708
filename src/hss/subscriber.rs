//! Subscribers: PyHSS's `/subscriber` API. A subscriber lives on its IMSI's
//! shard (its id names that shard), found by IMSI and by MSISDN through
//! unique indexes. References are checked on every write: the AuC must
//! exist, and so must the default APN and every APN listed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::index::{self, owner_of};
use super::{apn, auc, check_provisioning, tables, Deleted};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::{Imsi, Msisdn};
use crate::domain::router::Params;
use crate::domain::shard::shard_of;
use crate::runtime::{clock, Core, LocalBoxFuture};
use crate::server::{json_body, mesh_error, store_error, Ctx, Reply};
use crate::storage::Op;

/// A subscriber, with PyHSS 2.0.0's keys (and the seed's `apn_list_swx`).
/// Stored as JSON: fields added later read as their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Subscriber {
    pub subscriber_id: u64,
    pub imsi: String,
    pub enabled: bool,
    pub auc_id: u64,
    pub default_apn: u64,
    pub apn_list: String,
    pub apn_list_swx: Option<String>,
    pub msisdn: Option<String>,
    pub ue_ambr_dl: u64,
    pub ue_ambr_ul: u64,
    pub nam: i64,
    pub roaming_enabled: bool,
    pub roaming_rule_list: Option<String>,
    pub subscribed_rau_tau_timer: i64,
    pub serving_mme: Option<String>,
    pub serving_mme_timestamp: Option<String>,
    pub serving_mme_realm: Option<String>,
    pub serving_mme_peer: Option<String>,
    pub serving_sgsn: Option<String>,
    pub serving_sgsn_timestamp: Option<String>,
    pub serving_vlr: Option<String>,
    pub serving_vlr_timestamp: Option<String>,
    pub serving_msc: Option<String>,
    pub serving_msc_timestamp: Option<String>,
    pub last_seen_eci: Option<String>,
    pub last_seen_enodeb_id: Option<String>,
    pub last_seen_cell_id: Option<String>,
    pub last_seen_tac: Option<String>,
    pub last_seen_mcc: Option<String>,
    pub last_seen_mnc: Option<String>,
    pub last_location_update_timestamp: Option<String>,
    pub last_modified: String,
}

impl Default for Subscriber {
    fn default() -> Self {
        Subscriber {
            subscriber_id: 0,
            imsi: String::new(),
            enabled: true,
            auc_id: 0,
            default_apn: 0,
            apn_list: String::new(),
            apn_list_swx: None,
            msisdn: None,
            ue_ambr_dl: 0,
            ue_ambr_ul: 0,
            nam: 0,
            roaming_enabled: true,
            roaming_rule_list: None,
            subscribed_rau_tau_timer: 600,
            serving_mme: None,
            serving_mme_timestamp: None,
            serving_mme_realm: None,
            serving_mme_peer: None,
            serving_sgsn: None,
            serving_sgsn_timestamp: None,
            serving_vlr: None,
            serving_vlr_timestamp: None,
            serving_msc: None,
            serving_msc_timestamp: None,
            last_seen_eci: None,
            last_seen_enodeb_id: None,
            last_seen_cell_id: None,
            last_seen_tac: None,
            last_seen_mcc: None,
            last_seen_mnc: None,
            last_location_update_timestamp: None,
            last_modified: String::new(),
        }
    }
}

/// Keys a client may not set (the server assigns them).
const SERVER_KEYS: [&str; 2] = ["subscriber_id", "last_modified"];

/// Applies a JSON body to `sub`: every key must be a subscriber field;
/// `subscriber_id` and `last_modified` are ignored.
fn apply(sub: &Subscriber, body: Map<String, Value>, now: u64) -> Result<Subscriber, ApiError> {
    let mut current = match serde_json::to_value(sub) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::Internal("subscriber does not serialize".into())),
    };
    for (k, v) in body {
        if SERVER_KEYS.contains(&k.as_str()) {
            continue;
        }
        if !current.contains_key(&k) {
            return Err(ApiError::bad_request(format!(
                "{k}: not a subscriber field"
            )));
        }
        current.insert(k, v);
    }
    let mut next: Subscriber = serde_json::from_value(Value::Object(current))
        .map_err(|e| ApiError::bad_request(format!("invalid subscriber: {e}")))?;
    let bad = |e: crate::domain::ids::InvalidId| ApiError::bad_request(e.to_string());
    Imsi::parse(&next.imsi).map_err(bad)?;
    if let Some(m) = &next.msisdn {
        Msisdn::parse(m).map_err(bad)?;
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
    next.last_modified = humantime::format_rfc3339_seconds(t).to_string();
    Ok(next)
}

/// The APN ids of a comma-separated list (PyHSS's `apn_list`).
fn apn_ids(field: &str, list: &str) -> Result<Vec<u64>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| ApiError::bad_request(format!("{field}: {s:?} is not an APN id")))
        })
        .collect()
}

/// Checks the references of `sub`: AuC, default APN, listed APNs.
async fn check_references(ctx: &Ctx, sub: &Subscriber) -> Result<(), ApiError> {
    let catalog = ctx.core.catalog();
    let mut apns = vec![("default_apn", sub.default_apn)];
    for (field, list) in [
        ("apn_list", Some(&sub.apn_list)),
        ("apn_list_swx", sub.apn_list_swx.as_ref()),
    ] {
        if let Some(list) = list {
            apns.extend(apn_ids(field, list)?.into_iter().map(|id| (field, id)));
        }
    }
    for (field, id) in apns {
        if apn::find(&catalog, id).is_none() {
            return Err(ApiError::bad_request(format!(
                "{field}: APN {id} does not exist"
            )));
        }
    }
    if auc::load(&ctx.core, sub.auc_id).await?.is_none() {
        return Err(ApiError::bad_request(format!(
            "auc_id: AuC {} does not exist",
            sub.auc_id
        )));
    }
    Ok(())
}

fn encode(sub: &Subscriber) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(sub).map_err(|e| ApiError::Internal(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<Subscriber, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        tracing::error!(error = %e, "damaged subscriber record");
        ApiError::Internal("damaged record".into())
    })
}

/// Subscriber `id` (durable), wherever it lives.
pub async fn load(core: &Core, id: u64) -> Result<Option<Subscriber>, ApiError> {
    core.on(owner_of(id, core.shards()), move |c| async move {
        let bytes = c
            .store
            .read_durable(tables::SUBSCRIBER, &id.to_be_bytes(), |v| {
                v.map(<[u8]>::to_vec)
            })
            .await
            .map_err(store_error)?;
        bytes.map(|b| decode(&b)).transpose()
    })
    .await
    .map_err(mesh_error)?
}

fn holds_imsi(core: &Core, id: u64, key: &[u8]) -> bool {
    core.store.read(tables::SUBSCRIBER, &id.to_be_bytes(), |v| {
        v.and_then(|b| serde_json::from_slice::<Subscriber>(b).ok())
            .is_some_and(|s| s.imsi.as_bytes() == key)
    })
}

fn holds_msisdn(core: &Core, id: u64, key: &[u8]) -> bool {
    core.store.read(tables::SUBSCRIBER, &id.to_be_bytes(), |v| {
        v.and_then(|b| serde_json::from_slice::<Subscriber>(b).ok())
            .is_some_and(|s| s.msisdn.as_deref().map(str::as_bytes) == Some(key))
    })
}

/// The subscriber with IMSI `imsi`, through its index (checked on read).
pub async fn find_by_imsi(core: &Core, imsi: &str) -> Result<Option<Subscriber>, ApiError> {
    let carries = |s: &Subscriber| s.imsi == imsi;
    index::find(
        core,
        tables::SUB_IMSI_INDEX,
        imsi,
        ("imsi", "subscriber"),
        load,
        carries,
    )
    .await
}

/// Claims the IMSI and MSISDN of `sub` that differ from `before`.
async fn claim_keys(
    core: &Core,
    sub: &Subscriber,
    before: Option<&Subscriber>,
) -> Result<Vec<(u8, Vec<u8>)>, ApiError> {
    let wanted = vec![
        index::Wanted {
            table: tables::SUB_IMSI_INDEX,
            new: Some(sub.imsi.clone()),
            old: before.map(|b| b.imsi.clone()),
            holds: holds_imsi,
            what: "imsi",
        },
        index::Wanted {
            table: tables::MSISDN_INDEX,
            new: sub.msisdn.clone(),
            old: before.and_then(|b| b.msisdn.clone()),
            holds: holds_msisdn,
            what: "msisdn",
        },
    ];
    index::claim_changed(core, sub.subscriber_id, "subscriber", wanted).await
}

/// Writes `sub` on its shard (after its keys were claimed), then releases
/// the claims; on failure the claims are removed.
async fn write(
    core: &Core,
    sub: &Subscriber,
    extra: Vec<Op>,
    claimed: Vec<(u8, Vec<u8>)>,
) -> Result<(), ApiError> {
    let id = sub.subscriber_id;
    let mut ops = extra;
    ops.push(Op::Put {
        table: tables::SUBSCRIBER,
        key: id.to_be_bytes().to_vec(),
        value: encode(sub)?,
    });
    let written = core
        .on(owner_of(id, core.shards()), move |c| async move {
            c.store.commit(&ops).await
        })
        .await
        .map_err(mesh_error)?;
    match written {
        Ok(()) => {
            for (t, k) in claimed {
                index::release(core, t, k).await;
            }
            Ok(())
        }
        Err(e) => {
            for (t, k) in claimed {
                let _ = index::remove(core, t, k, id).await;
            }
            Err(store_error(e))
        }
    }
}

/// The next subscriber id on this core's shard, and the counter write.
fn next_id(core: &Core) -> (u64, Op) {
    thread_local! {
        static NEXT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    let stored = || {
        core.store.read(tables::META, tables::META_SUB_NEXT, |v| {
            v.and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(1, u64::from_be_bytes)
        })
    };
    let counter = NEXT.with(|n| n.get()).unwrap_or_else(stored);
    NEXT.with(|n| n.set(Some(counter + 1)));
    let persisted = stored().max(counter + 1);
    (
        counter * u64::from(core.shards()) + u64::from(core.shard.0),
        Op::Put {
            table: tables::META,
            key: tables::META_SUB_NEXT.to_vec(),
            value: persisted.to_be_bytes().to_vec(),
        },
    )
}

fn reply_sub(
    reply: &mut Reply<'_>,
    sub: &Subscriber,
    with_attributes: bool,
) -> Result<(), ApiError> {
    if !with_attributes {
        return reply.json(200, sub);
    }
    #[derive(Serialize)]
    struct WithAttributes<'s> {
        #[serde(flatten)]
        sub: &'s Subscriber,
        attributes: [(); 0],
    }
    reply.json(
        200,
        &WithAttributes {
            sub,
            attributes: [],
        },
    )
}

fn parse_id(params: &Params<'_>) -> Result<u64, ApiError> {
    super::id_param(params, "subscriber_id")
}

/// `PUT /subscriber/`.
pub fn put<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let body: Map<String, Value> = json_body(req.body)?;
        super::require(
            &["imsi", "auc_id", "default_apn", "apn_list"].map(|k| (k, body.contains_key(k))),
        )?;
        let mut sub = apply(&Subscriber::default(), body, clock::unix_seconds())?;
        check_references(ctx, &sub).await?;
        let core = &ctx.core;
        let owner = shard_of(sub.imsi.as_bytes(), core.shards());
        let (id, counter) = core
            .on(owner, |c| async move { next_id(&c) })
            .await
            .map_err(mesh_error)?;
        sub.subscriber_id = id;
        let claimed = claim_keys(core, &sub, None).await?;
        write(core, &sub, vec![counter], claimed).await?;
        reply_sub(reply, &sub, false)
    })
}

/// `GET /subscriber/{subscriber_id}`.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let sub = load(&ctx.core, parse_id(&params)?)
            .await?
            .ok_or(ApiError::NotFound)?;
        reply_sub(reply, &sub, false)
    })
}

/// `PATCH /subscriber/{subscriber_id}`.
pub fn patch<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        let body: Map<String, Value> = json_body(req.body)?;
        let core = &ctx.core;
        let before = load(core, id).await?.ok_or(ApiError::NotFound)?;
        let after = apply(&before, body, clock::unix_seconds())?;
        check_references(ctx, &after).await?;
        let claimed = claim_keys(core, &after, Some(&before)).await?;
        write(core, &after, Vec::new(), claimed).await?;
        for (t, old, new) in [
            (
                tables::SUB_IMSI_INDEX,
                Some(before.imsi.clone()),
                Some(after.imsi.clone()),
            ),
            (
                tables::MSISDN_INDEX,
                before.msisdn.clone(),
                after.msisdn.clone(),
            ),
        ] {
            if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
                let _ = index::remove(core, t, old.into_bytes(), id).await;
            }
        }
        reply_sub(reply, &after, false)
    })
}

/// `DELETE /subscriber/{subscriber_id}`.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        let core = &ctx.core;
        let sub = load(core, id).await?.ok_or(ApiError::NotFound)?;
        core.on(owner_of(id, core.shards()), move |c| async move {
            c.store
                .commit(&[Op::Delete {
                    table: tables::SUBSCRIBER,
                    key: id.to_be_bytes().to_vec(),
                }])
                .await
        })
        .await
        .map_err(mesh_error)?
        .map_err(store_error)?;
        for (t, key) in [
            (tables::SUB_IMSI_INDEX, Some(sub.imsi)),
            (tables::MSISDN_INDEX, sub.msisdn),
        ] {
            if let Some(k) = key {
                let _ = index::remove(core, t, k.into_bytes(), id).await;
            }
        }
        reply.json(200, &Deleted::OK)
    })
}

/// `GET /subscriber/imsi/{imsi}`.
pub fn get_by_imsi<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let imsi = Imsi::parse(params.get("imsi").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let sub = find_by_imsi(&ctx.core, imsi.as_str())
            .await?
            .ok_or(ApiError::NotFound)?;
        reply_sub(reply, &sub, true)
    })
}

/// `GET /subscriber/msisdn/{msisdn}`.
pub fn get_by_msisdn<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let msisdn = Msisdn::parse(params.get("msisdn").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let key = msisdn.as_str();
        let carries = |s: &Subscriber| s.msisdn.as_deref() == Some(key);
        let sub = index::find(
            &ctx.core,
            tables::MSISDN_INDEX,
            key,
            ("msisdn", "subscriber"),
            load,
            carries,
        )
        .await?
        .ok_or(ApiError::NotFound)?;
        reply_sub(reply, &sub, true)
    })
}

/// `GET /subscriber/list?page=N&page_size=M`: by subscriber id.
pub fn list<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = super::page(ctx, &req)?;
        let all = super::scan_all(ctx, tables::SUBSCRIBER, (page + 1) * size).await?;
        let subs: Vec<Subscriber> = all
            .iter()
            .skip(page * size)
            .take(size)
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        reply.json(200, &subs)
    })
}
