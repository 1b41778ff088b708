//! PCRF sessions (PyHSS's `serving_apn`): one row per subscriber and APN
//! with an open PDN connection, keeping the PCRF's session id, the UE's
//! address (`subscriber_routing`) and the serving PGW. Each lives with
//! its subscriber (on the subscriber's shard); the UE address is a unique
//! index, so a look-up by address is one visit.
//!
//! Written by [`apply`] (Gx, or a GeoRed peer's push of the same state):
//! a session is opened or updated per APN, and closed when the PGW is
//! gone. A UE address has one session: a new session on an address
//! closes whichever held it (PyHSS's rule for UEs that left without a
//! word). Read by `/pcrf/pcrf_subscriber*`, `/pcrf/pcrf_serving_apn_ip`,
//! `/pcrf/subscriber_routing` and `/oam/serving_subs_pcrf`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::apn::Apn;
use super::subscriber::Subscriber;
use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::table::{
    self, json as tjson, Home, Multi, Placement, Reference, Row, TableDef, TableError, Unique,
    Write,
};

/// A PCRF session, with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct ServingApn {
    pub serving_apn_id: u64,
    pub subscriber_id: u64,
    /// The APN's id.
    pub apn: u64,
    pub pcrf_session_id: Option<String>,
    /// The UE's IP address.
    pub subscriber_routing: Option<String>,
    pub ip_version: i64,
    pub serving_pgw: Option<String>,
    pub serving_pgw_timestamp: Option<String>,
    pub serving_pgw_realm: Option<String>,
    pub serving_pgw_peer: Option<String>,
    pub last_modified: String,
}

static SERVING_APN: TableDef = TableDef {
    name: "serving_apn",
    noun: "serving APN",
    id_field: "serving_apn_id",
    store: tables::SERVING_APN,
    counter: tables::META_SERVING_APN_NEXT,
    fields: tjson::fields,
};

fn home(s: &ServingApn) -> Home {
    Home::WithRow(s.subscriber_id)
}

impl Row for ServingApn {
    const DEF: &'static TableDef = &SERVING_APN;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["subscriber_id", "apn", "serving_pgw"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "subscriber_routing",
        store: tables::SERVING_APN_IP_INDEX,
        key: |s| s.subscriber_routing.clone(),
    }];
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "subscriber_id",
        store: tables::SERVING_APN_BY_SUBSCRIBER,
        key: |s| Some(s.subscriber_id.to_string()),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[
        Reference {
            field: "subscriber_id",
            target: <Subscriber as Row>::DEF,
            ids: |s| Ok(vec![s.subscriber_id]),
            exists: table::exists::<Subscriber>,
            list: false,
        },
        Reference {
            field: "apn",
            target: <Apn as Row>::DEF,
            ids: |s| Ok(vec![s.apn]),
            exists: table::exists::<Apn>,
            list: false,
        },
    ];
    type Env = ();

    fn id(&self) -> u64 {
        self.serving_apn_id
    }
    fn set_id(&mut self, id: u64) {
        self.serving_apn_id = id;
    }
    fn blank() -> Self {
        ServingApn::default()
    }
    fn check(&self) -> Result<(), TableError> {
        // The UE's address as the PGW gives it (PyHSS keeps any text: its
        // own tests send a name), at most 100 characters, no spaces.
        if let Some(r) = &self.subscriber_routing {
            if r.is_empty() || r.len() > 100 || r.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(TableError::field(
                    "subscriber_routing",
                    "must be 1 to 100 characters without spaces (the UE's address)",
                ));
            }
        }
        let text = [
            ("pcrf_session_id", &self.pcrf_session_id),
            ("serving_pgw", &self.serving_pgw),
            ("serving_pgw_timestamp", &self.serving_pgw_timestamp),
            ("serving_pgw_realm", &self.serving_pgw_realm),
            ("serving_pgw_peer", &self.serving_pgw_peer),
        ];
        for (field, value) in text {
            if value.as_ref().is_some_and(|v| v.len() > 512) {
                return Err(TableError::field(field, "longer than 512 characters"));
            }
        }
        Ok(())
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        if self.subscriber_id != before.subscriber_id {
            return Some("subscriber_id");
        }
        (self.apn != before.apn).then_some("apn")
    }
    crate::json_row!();
}

/// The subscriber's APN ids, its default first (PyHSS's order).
fn apn_ids(sub: &Subscriber) -> Vec<u64> {
    let mut ids = vec![sub.default_apn];
    for id in sub
        .apn_list
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn apn_row(ctx: &Ctx, id: u64) -> Result<Option<Apn>, ApiError> {
    Ok(table::catalog_row::<Apn>(&ctx.core.catalog(), id)?)
}

/// `{apn name: {}}` for each of the subscriber's APNs: the slots its
/// sessions fill (PyHSS's `apns`).
fn apn_slots(ctx: &Ctx, sub: &Subscriber) -> Result<serde_json::Map<String, Value>, ApiError> {
    let mut apns = serde_json::Map::new();
    for id in apn_ids(sub) {
        if let Some(apn) = apn_row(ctx, id)? {
            apns.insert(apn.apn, json!({}));
        }
    }
    Ok(apns)
}

/// The subscriber's sessions, by APN id.
async fn sessions_of(ctx: &Ctx, sub: &Subscriber) -> Result<BTreeMap<u64, ServingApn>, ApiError> {
    let rows: Vec<ServingApn> = table::find_all_on(
        &ctx.core,
        table::owner_of(sub.subscriber_id, ctx.core.shards()),
        "subscriber_id",
        &sub.subscriber_id.to_string(),
    )
    .await?;
    Ok(rows.into_iter().map(|s| (s.apn, s)).collect())
}

async fn subscriber(ctx: &Ctx, imsi: &str) -> Result<Subscriber, ApiError> {
    let imsi = Imsi::parse(imsi).map_err(|e| ApiError::bad_request(e.to_string()))?;
    table::find::<Subscriber>(&ctx.core, "imsi", imsi.as_str())
        .await?
        .ok_or(ApiError::NotFound)
}

/// A session change, as Gx or a GeoRed peer reports it.
#[derive(Debug, Default)]
pub struct SessionUpdate {
    pub imsi: String,
    /// The APN's name.
    pub apn: String,
    pub pcrf_session_id: Option<String>,
    /// `None`: the session is closed.
    pub serving_pgw: Option<String>,
    pub subscriber_routing: Option<String>,
    pub serving_pgw_realm: Option<String>,
    pub serving_pgw_peer: Option<String>,
    pub serving_pgw_timestamp: Option<String>,
}

/// Applies a session change; returns the session as it now is (`None`:
/// closed, or nothing to close).
pub async fn apply(ctx: &Ctx, u: SessionUpdate, w: &Write) -> Result<Option<ServingApn>, ApiError> {
    let sub = subscriber(ctx, &u.imsi).await?;
    let mut apn_id = None;
    for id in apn_ids(&sub) {
        if apn_row(ctx, id)?.is_some_and(|a| a.apn.eq_ignore_ascii_case(&u.apn)) {
            apn_id = Some(id);
            break;
        }
    }
    let apn_id = apn_id.ok_or_else(|| {
        ApiError::bad_request(format!(
            "serving_apn: subscriber {} has no APN named {}",
            sub.subscriber_id, u.apn
        ))
    })?;
    let current = sessions_of(ctx, &sub).await?.remove(&apn_id);
    let Some(pgw) = u.serving_pgw.filter(|p| !p.is_empty()) else {
        // Closed: only the session it names (a late close of an older
        // session leaves a newer one alone).
        if let Some(c) = current {
            let same = u.pcrf_session_id.is_none() || c.pcrf_session_id == u.pcrf_session_id;
            if same {
                ctx.tables
                    .delete::<ServingApn>(&ctx.core, c.id(), w)
                    .await?;
            }
        }
        return Ok(None);
    };
    // A UE address has one session: another one holding it is over.
    if let Some(ip) = &u.subscriber_routing {
        if let Some(other) = table::find::<ServingApn>(&ctx.core, "subscriber_routing", ip).await? {
            if current.as_ref().map(Row::id) != Some(other.id()) {
                match ctx
                    .tables
                    .delete::<ServingApn>(&ctx.core, other.id(), w)
                    .await
                {
                    Ok(_) | Err(TableError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let stamp = u
        .serving_pgw_timestamp
        .unwrap_or_else(|| tjson::timestamp(w.now));
    let ip_version = match u.subscriber_routing.as_deref().map(str::parse) {
        Some(Ok(std::net::IpAddr::V6(_))) => 1,
        _ => 0,
    };
    let body: table::Body = match json!({
        "subscriber_id": sub.subscriber_id,
        "apn": apn_id,
        "pcrf_session_id": u.pcrf_session_id,
        "subscriber_routing": u.subscriber_routing,
        "ip_version": ip_version,
        "serving_pgw": pgw,
        "serving_pgw_timestamp": stamp,
        "serving_pgw_realm": u.serving_pgw_realm,
        "serving_pgw_peer": u.serving_pgw_peer,
    }) {
        Value::Object(m) => m,
        _ => return Err(ApiError::Internal("session body".into())),
    };
    let row = match current {
        Some(c) => ctx.tables.patch(&ctx.core, c.id(), &body, &(), w).await?,
        None => ctx.tables.create(&ctx.core, &body, &(), w).await?,
    };
    Ok(Some(row))
}

/// `GET /pcrf/pcrf_subscriber_imsi/{imsi}`: the subscriber and, per APN
/// name, its session (`{}` without one).
pub fn of_imsi<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let sub = subscriber(ctx, params.get("imsi").unwrap_or_default()).await?;
        let mut apns = apn_slots(ctx, &sub)?;
        for (id, session) in sessions_of(ctx, &sub).await? {
            if let Some(apn) = apn_row(ctx, id)? {
                apns.insert(apn.apn, json!(session));
            }
        }
        reply.json(200, &json!({"subscriber_data": sub, "apns": apns}))
    })
}

/// `GET /pcrf/pcrf_subscriber_imsi/{imsi}/{apn_id}`: the session on one
/// APN (404 without one).
pub fn of_imsi_apn<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let sub = subscriber(ctx, params.get("imsi").unwrap_or_default()).await?;
        let apn = crud::id_param(&params, "apn_id")?;
        let session = sessions_of(ctx, &sub)
            .await?
            .remove(&apn)
            .ok_or(ApiError::NotFound)?;
        reply.json(200, &session)
    })
}

async fn by_ip(ctx: &Ctx, ip: &str) -> Result<Option<ServingApn>, ApiError> {
    if ip.is_empty() || ip.len() > 100 {
        return Err(ApiError::bad_request(
            "subscriber_routing: must be 1 to 100 characters",
        ));
    }
    Ok(table::find::<ServingApn>(&ctx.core, "subscriber_routing", ip).await?)
}

/// `GET /pcrf/pcrf_serving_apn_ip/{ip_address}`: the session of a UE
/// address (`{}` without one, as PyHSS).
pub fn of_ip<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        match by_ip(ctx, params.get("ip_address").unwrap_or_default()).await? {
            Some(s) => reply.json(200, &s),
            None => reply.json(200, &json!({})),
        }
    })
}

/// `GET /pcrf/subscriber_routing/{subscriber_routing}`: the session of a
/// UE address (404 without one).
pub fn of_routing<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let ip = params.get("subscriber_routing").unwrap_or_default();
        let s = by_ip(ctx, ip).await?.ok_or(ApiError::NotFound)?;
        reply.json(200, &s)
    })
}

/// Every session, with its subscriber and APN rows.
async fn every_session(ctx: &Ctx) -> Result<Vec<(ServingApn, Subscriber, Apn)>, ApiError> {
    let mut out = Vec::new();
    for s in table::list::<ServingApn>(&ctx.core, 0, usize::MAX).await? {
        let Some(sub) = table::get::<Subscriber>(&ctx.core, s.subscriber_id).await? else {
            continue;
        };
        let Some(apn) = apn_row(ctx, s.apn)? else {
            continue;
        };
        out.push((s, sub, apn));
    }
    Ok(out)
}

/// `GET /pcrf/pcrf_subscriber/list`: `{imsi: subscriber with "apns":
/// {name: session or {}}}` for every subscriber with a session.
pub fn list_served<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let mut served: BTreeMap<String, Value> = BTreeMap::new();
        for (s, sub, apn) in every_session(ctx).await? {
            let entry = match served.entry(sub.imsi.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut v = json!(sub);
                    v["apns"] = Value::Object(apn_slots(ctx, &sub)?);
                    e.insert(v)
                }
            };
            entry["apns"][apn.apn.as_str()] = json!(s);
        }
        reply.json(200, &served)
    })
}

/// `GET /oam/serving_subs_pcrf`: `{imsi: session with "apn_info" and
/// "subscriber_info"}` (one per subscriber, as PyHSS).
pub fn serving_subs_pcrf<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let mut served: BTreeMap<String, Value> = BTreeMap::new();
        for (s, sub, apn) in every_session(ctx).await? {
            let mut v = json!(s);
            v["apn_info"] = json!(apn);
            v["subscriber_info"] = json!(sub);
            served.insert(sub.imsi.clone(), v);
        }
        reply.json(200, &served)
    })
}
