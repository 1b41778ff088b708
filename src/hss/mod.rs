//! The HSS service: PyHSS's provisioning API and authentication vectors.
//! Spec: PyHSS's API (seed), shapes as PyHSS 2.0.0 answers them, without
//! its defects (see docs/api/hss.md).

pub mod apn;
pub mod auc;
pub mod generate;
pub mod import;
pub mod index;
pub mod routing;
pub mod subscriber;
pub mod vectors;

use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{form_pairs, Method, Request};
use crate::domain::router::RouteError;
use crate::server::{Ctx, Handler, Routes};

/// The shard tables of the HSS.
pub mod tables {
    use crate::storage::TableId;
    /// Per-shard counters.
    pub const META: TableId = 1;
    pub const META_AUC_NEXT: &[u8] = b"auc_next";
    /// auc_id (u64 BE) → AuC record.
    pub const AUC: TableId = 2;
    /// IMSI → auc_id.
    pub const IMSI_INDEX: TableId = 3;
    /// ICCID → auc_id.
    pub const ICCID_INDEX: TableId = 4;
    /// subscriber_id (u64 BE) → subscriber (JSON).
    pub const SUBSCRIBER: TableId = 5;
    /// IMSI → subscriber_id.
    pub const SUB_IMSI_INDEX: TableId = 6;
    /// MSISDN → subscriber_id.
    pub const MSISDN_INDEX: TableId = 7;
    pub const META_SUB_NEXT: &[u8] = b"subscriber_next";
    /// subscriber_id ‖ apn_id → routing entry (JSON).
    pub const ROUTING: TableId = 8;
    /// subscriber_routing_id → subscriber_id ‖ apn_id.
    pub const ROUTING_BY_ID: TableId = 9;
    pub const META_ROUTING_NEXT: &[u8] = b"routing_next";

    /// Catalog tables.
    pub const CATALOG_META: TableId = 1;
    pub const META_APN_NEXT: &[u8] = b"apn_next";
    /// apn_id (u64 BE) → APN (JSON).
    pub const APN: TableId = 2;
}

/// Most items one `/list` page returns.
pub const MAX_PAGE_SIZE: usize = 10_000;

pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    use Handler::Async;
    let p = Api::Pyhss;
    r.add(Method::Put, "/auc", p, Async(auc::put))?;
    r.add(Method::Get, "/auc/list", p, Async(auc::list))?;
    r.add(Method::Get, "/auc/imsi/{imsi}", p, Async(auc::get_by_imsi))?;
    r.add(
        Method::Get,
        "/auc/iccid/{iccid}",
        p,
        Async(auc::get_by_iccid),
    )?;
    r.add(Method::Get, "/auc/{auc_id}", p, Async(auc::get))?;
    r.add(Method::Patch, "/auc/{auc_id}", p, Async(auc::patch))?;
    r.add(Method::Delete, "/auc/{auc_id}", p, Async(auc::delete))?;
    r.add(
        Method::Get,
        "/auc/aka/vector_count/{count}/imsi/{imsi}",
        p,
        Async(vectors::vector_count),
    )?;
    r.add(
        Method::Get,
        "/auc/eap_aka/plmn/{plmn}/imsi/{imsi}",
        p,
        Async(vectors::eap_aka),
    )?;
    r.add(
        Method::Get,
        "/auc/5g_aka/plmn/{plmn}/imsi/{imsi}",
        p,
        Async(vectors::five_g),
    )?;
    r.add(
        Method::Get,
        "/auc/aka/resync/imsi/{imsi}/auts/{auts}/rand/{rand}",
        p,
        Async(vectors::resync),
    )?;
    r.add(Method::Put, "/subscriber", p, Async(subscriber::put))?;
    r.add(Method::Get, "/subscriber/list", p, Async(subscriber::list))?;
    r.add(Method::Put, "/subscriber/routing", p, Async(routing::put))?;
    r.add(
        Method::Get,
        "/subscriber/routing/{subscriber_id}/{apn_id}",
        p,
        Async(routing::get),
    )?;
    r.add(
        Method::Delete,
        "/subscriber/routing/{subscriber_id}/{apn_id}",
        p,
        Async(routing::delete),
    )?;
    r.add(
        Method::Patch,
        "/subscriber/routing/{subscriber_routing_id}",
        p,
        Async(routing::patch),
    )?;
    r.add(
        Method::Get,
        "/subscriber/imsi/{imsi}",
        p,
        Async(subscriber::get_by_imsi),
    )?;
    r.add(
        Method::Get,
        "/subscriber/msisdn/{msisdn}",
        p,
        Async(subscriber::get_by_msisdn),
    )?;
    r.add(
        Method::Get,
        "/subscriber/{subscriber_id}",
        p,
        Async(subscriber::get),
    )?;
    r.add(
        Method::Patch,
        "/subscriber/{subscriber_id}",
        p,
        Async(subscriber::patch),
    )?;
    r.add(
        Method::Delete,
        "/subscriber/{subscriber_id}",
        p,
        Async(subscriber::delete),
    )?;
    r.add(Method::Put, "/apn", p, Async(apn::put))?;
    r.add(Method::Get, "/apn/list", p, Async(apn::list))?;
    r.add(Method::Get, "/apn/{apn_id}", p, Async(apn::get))?;
    r.add(Method::Patch, "/apn/{apn_id}", p, Async(apn::patch))?;
    r.add(Method::Delete, "/apn/{apn_id}", p, Async(apn::delete))?;
    Ok(())
}

/// PyHSS's answer to a delete.
#[derive(Serialize)]
pub struct Deleted {
    #[serde(rename = "Result")]
    result: &'static str,
}

impl Deleted {
    pub const OK: Deleted = Deleted { result: "OK" };
}

/// With `hss.lock_provisioning`, a write needs the right
/// `Provisioning-Key` (compared in constant time).
pub fn check_provisioning(ctx: &Ctx, req: &Request<'_>) -> Result<(), ApiError> {
    let hss = &ctx.config.hss;
    if !hss.lock_provisioning {
        return Ok(());
    }
    let given = req.header("provisioning-key").unwrap_or_default();
    if bool::from(given.ct_eq(hss.provisioning_key.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// For PATCH bodies: `Some(None)` for an explicit `null` (clear the
/// field), `None` for an absent one (keep it).
pub fn double<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// The non-negative integer path parameter `name` (an object id).
pub fn id_param(params: &crate::domain::router::Params<'_>, name: &str) -> Result<u64, ApiError> {
    params
        .get(name)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("{name}: must be a non-negative integer")))
}

/// A 400 naming the first required field that is absent.
pub fn require(fields: &[(&str, bool)]) -> Result<(), ApiError> {
    match fields.iter().find(|(_, present)| !present) {
        Some((name, _)) => Err(ApiError::bad_request(format!("{name}: required"))),
        None => Ok(()),
    }
}

/// `page` and `page_size` of a list request.
pub fn page(ctx: &Ctx, req: &Request<'_>) -> Result<(usize, usize), ApiError> {
    let mut page = 0usize;
    let mut size = ctx.config.hss.default_page_size as usize;
    for (k, v) in form_pairs(req.query.unwrap_or("").as_bytes()) {
        let n = || {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("{k}: must be a non-negative integer")))
        };
        match &*k {
            "page" => page = n()?,
            "page_size" => size = n()?,
            _ => {}
        }
    }
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "page_size: must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    if page.saturating_mul(size) > 10_000_000 {
        return Err(ApiError::bad_request("page: too far"));
    }
    Ok((page, size))
}

/// Up to `want` entries of `table` from every shard, in key order (ids are
/// big-endian, so key order is id order).
pub async fn scan_all(
    ctx: &Ctx,
    table: crate::storage::TableId,
    want: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ApiError> {
    let mut all = Vec::new();
    for k in 0..ctx.core.shards() {
        let part = ctx
            .core
            .on(crate::domain::shard::ShardId(k), move |c| async move {
                c.store.scan(table, None, want)
            })
            .await
            .map_err(crate::server::mesh_error)?;
        all.extend(part);
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all)
}
