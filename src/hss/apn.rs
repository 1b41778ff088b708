//! APNs: PyHSS's `/apn` API. APNs are few and read by every subscriber
//! lookup, so they live in the catalog: written through core 0, read
//! lock-free on every core.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{check_provisioning, tables, Deleted};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::{clock, CatalogView, LocalBoxFuture};
use crate::server::{commit_error, json_body, Ctx, Reply};
use crate::storage::Op;

/// An APN as stored (JSON in the catalog: fields added later default when
/// older values are read) and as answered (PyHSS's keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Apn {
    pub apn_id: u64,
    pub apn: String,
    #[serde(default)]
    pub ip_version: i64,
    #[serde(default)]
    pub pgw_address: Option<String>,
    #[serde(default)]
    pub sgw_address: Option<String>,
    #[serde(default = "default_charging")]
    pub charging_characteristics: String,
    pub apn_ambr_dl: u64,
    pub apn_ambr_ul: u64,
    #[serde(default = "default_qci")]
    pub qci: i64,
    #[serde(default = "default_arp")]
    pub arp_priority: i64,
    #[serde(default)]
    pub arp_preemption_capability: bool,
    #[serde(default = "yes")]
    pub arp_preemption_vulnerability: bool,
    #[serde(default)]
    pub charging_rule_list: Option<String>,
    #[serde(default)]
    pub nbiot: bool,
    #[serde(default)]
    pub nidd_scef_id: Option<String>,
    #[serde(default)]
    pub nidd_scef_realm: Option<String>,
    #[serde(default)]
    pub nidd_mechanism: Option<i64>,
    #[serde(default)]
    pub nidd_rds: Option<i64>,
    #[serde(default)]
    pub nidd_preferred_data_mode: Option<i64>,
    #[serde(default)]
    pub last_modified: String,
}

fn default_charging() -> String {
    "0800".into()
}
fn default_qci() -> i64 {
    9
}
fn default_arp() -> i64 {
    4
}
fn yes() -> bool {
    true
}

/// A PUT or PATCH body; `apn_id` and `last_modified` are ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApnBody<'a> {
    #[serde(borrow, default)]
    apn: Option<Cow<'a, str>>,
    #[serde(default)]
    ip_version: Option<i64>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    pgw_address: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    sgw_address: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default)]
    charging_characteristics: Option<Cow<'a, str>>,
    #[serde(default)]
    apn_ambr_dl: Option<u64>,
    #[serde(default)]
    apn_ambr_ul: Option<u64>,
    #[serde(default)]
    qci: Option<i64>,
    #[serde(default)]
    arp_priority: Option<i64>,
    #[serde(default)]
    arp_preemption_capability: Option<bool>,
    #[serde(default)]
    arp_preemption_vulnerability: Option<bool>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    charging_rule_list: Option<Option<Cow<'a, str>>>,
    #[serde(default)]
    nbiot: Option<bool>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    nidd_scef_id: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    nidd_scef_realm: Option<Option<Cow<'a, str>>>,
    #[serde(default, deserialize_with = "super::double")]
    nidd_mechanism: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::double")]
    nidd_rds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "super::double")]
    nidd_preferred_data_mode: Option<Option<i64>>,
    #[serde(default)]
    apn_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    last_modified: Option<serde::de::IgnoredAny>,
}

fn text(
    field: &str,
    v: &Option<Option<Cow<'_, str>>>,
    max: usize,
    into: &mut Option<String>,
) -> Result<(), ApiError> {
    if let Some(v) = v {
        if v.as_ref().is_some_and(|s| s.len() > max) {
            return Err(ApiError::bad_request(format!(
                "{field}: longer than {max} characters"
            )));
        }
        *into = v.as_ref().map(|s| s.to_string());
    }
    Ok(())
}

impl ApnBody<'_> {
    fn apply(&self, a: &mut Apn, now: u64) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::bad_request(m));
        if let Some(name) = &self.apn {
            if name.is_empty() || name.len() > 50 {
                return bad("apn: must be 1 to 50 characters".into());
            }
            a.apn = name.to_string();
        }
        if let Some(v) = self.ip_version {
            if !(0..=3).contains(&v) {
                return bad("ip_version: must be 0 to 3".into());
            }
            a.ip_version = v;
        }
        if let Some(cc) = &self.charging_characteristics {
            if cc.len() != 4 || !cc.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("charging_characteristics: must be 4 hex digits".into());
            }
            a.charging_characteristics = cc.to_string();
        }
        if let Some(v) = self.apn_ambr_dl {
            a.apn_ambr_dl = v;
        }
        if let Some(v) = self.apn_ambr_ul {
            a.apn_ambr_ul = v;
        }
        if let Some(q) = self.qci {
            if !(1..=254).contains(&q) {
                return bad("qci: must be 1 to 254".into());
            }
            a.qci = q;
        }
        if let Some(p) = self.arp_priority {
            if !(1..=15).contains(&p) {
                return bad("arp_priority: must be 1 to 15".into());
            }
            a.arp_priority = p;
        }
        if let Some(v) = self.arp_preemption_capability {
            a.arp_preemption_capability = v;
        }
        if let Some(v) = self.arp_preemption_vulnerability {
            a.arp_preemption_vulnerability = v;
        }
        if let Some(v) = self.nbiot {
            a.nbiot = v;
        }
        text("pgw_address", &self.pgw_address, 50, &mut a.pgw_address)?;
        text("sgw_address", &self.sgw_address, 50, &mut a.sgw_address)?;
        text(
            "charging_rule_list",
            &self.charging_rule_list,
            18,
            &mut a.charging_rule_list,
        )?;
        text("nidd_scef_id", &self.nidd_scef_id, 512, &mut a.nidd_scef_id)?;
        text(
            "nidd_scef_realm",
            &self.nidd_scef_realm,
            512,
            &mut a.nidd_scef_realm,
        )?;
        for (v, into) in [
            (self.nidd_mechanism, &mut a.nidd_mechanism),
            (self.nidd_rds, &mut a.nidd_rds),
            (
                self.nidd_preferred_data_mode,
                &mut a.nidd_preferred_data_mode,
            ),
        ] {
            if let Some(v) = v {
                *into = v;
            }
        }
        let _ = (&self.apn_id, &self.last_modified);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
        a.last_modified = humantime::format_rfc3339_seconds(t).to_string();
        Ok(())
    }
}

fn key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// APN `id` in a catalog view.
pub fn find(view: &CatalogView, id: u64) -> Option<Apn> {
    view.get(tables::APN, &key(id))
        .and_then(|v| serde_json::from_slice(v).ok())
}

fn parse_id(params: &Params<'_>) -> Result<u64, ApiError> {
    super::id_param(params, "apn_id")
}

fn encode(a: &Apn) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(a).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `PUT /apn/`.
pub fn put<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let body: ApnBody<'_> = json_body(req.body)?;
        super::require(&[
            ("apn", body.apn.is_some()),
            ("apn_ambr_dl", body.apn_ambr_dl.is_some()),
            ("apn_ambr_ul", body.apn_ambr_ul.is_some()),
        ])?;
        let mut apn: Apn =
            serde_json::from_str(r#"{"apn_id":0,"apn":"","apn_ambr_dl":0,"apn_ambr_ul":0}"#)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        body.apply(&mut apn, clock::unix_seconds())?;
        let created = ctx
            .core
            .catalog_update(move |view| {
                let next = view
                    .get(tables::CATALOG_META, tables::META_APN_NEXT)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(1, u64::from_be_bytes);
                apn.apn_id = next;
                let ops = vec![
                    Op::Put {
                        table: tables::CATALOG_META,
                        key: tables::META_APN_NEXT.to_vec(),
                        value: (next + 1).to_be_bytes().to_vec(),
                    },
                    Op::Put {
                        table: tables::APN,
                        key: key(next),
                        value: encode(&apn)?,
                    },
                ];
                Ok::<_, ApiError>((ops, apn))
            })
            .await
            .map_err(commit_error)??;
        reply.json(200, &created)
    })
}

/// `GET /apn/{apn_id}`.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = parse_id(&params)?;
        let apn = find(&ctx.core.catalog(), id).ok_or(ApiError::NotFound)?;
        reply.json(200, &apn)
    })
}

/// `PATCH /apn/{apn_id}`.
pub fn patch<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        // Validated here (errors answer early), applied on core 0 to the
        // newest version, so concurrent patches of other fields are kept.
        let raw = req.body.to_vec();
        let now = clock::unix_seconds();
        {
            let body: ApnBody<'_> = json_body(req.body)?;
            let mut probe = find(&ctx.core.catalog(), id).ok_or(ApiError::NotFound)?;
            body.apply(&mut probe, now)?;
        }
        let updated = ctx
            .core
            .catalog_update(move |view| {
                let mut apn = find(view, id).ok_or(ApiError::NotFound)?;
                let body: ApnBody<'_> = serde_json::from_slice(&raw)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
                body.apply(&mut apn, now)?;
                let ops = vec![Op::Put {
                    table: tables::APN,
                    key: key(id),
                    value: encode(&apn)?,
                }];
                Ok::<_, ApiError>((ops, apn))
            })
            .await
            .map_err(commit_error)??;
        reply.json(200, &updated)
    })
}

/// `DELETE /apn/{apn_id}`.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        ctx.core
            .catalog_update(move |view| {
                if find(view, id).is_none() {
                    return Err(ApiError::NotFound);
                }
                Ok((
                    vec![Op::Delete {
                        table: tables::APN,
                        key: key(id),
                    }],
                    (),
                ))
            })
            .await
            .map_err(commit_error)??;
        reply.json(200, &Deleted::OK)
    })
}

/// `GET /apn/list?page=N&page_size=M`.
pub fn list<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = super::page(ctx, &req)?;
        let view = ctx.core.catalog();
        let apns: Vec<Apn> = view
            .table(tables::APN)
            .skip(page * size)
            .take(size)
            .filter_map(|(_, v)| serde_json::from_slice(v).ok())
            .collect();
        reply.json(200, &apns)
    })
}
