//! Subscriber → APN routing entries (PyHSS's `/subscriber/routing`): one
//! per (subscriber, APN), holding the UE's static IP for that APN. An entry
//! lives on its subscriber's shard; its id names that shard too.

use serde::{Deserialize, Serialize};

use super::index::owner_of;
use super::{apn, check_provisioning, subscriber, tables, Deleted};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::{clock, Core, LocalBoxFuture};
use crate::server::{json_body, mesh_error, store_error, Ctx, Reply};
use crate::storage::Op;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Routing {
    pub subscriber_routing_id: u64,
    pub subscriber_id: u64,
    pub apn_id: u64,
    pub ip_version: i64,
    pub ip_address: Option<String>,
    pub last_modified: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    subscriber_id: Option<u64>,
    #[serde(default)]
    apn_id: Option<u64>,
    #[serde(default)]
    ip_version: Option<i64>,
    #[serde(default, deserialize_with = "super::double")]
    ip_address: Option<Option<String>>,
    #[serde(default)]
    subscriber_routing_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    last_modified: Option<serde::de::IgnoredAny>,
}

fn key(subscriber_id: u64, apn_id: u64) -> Vec<u8> {
    let mut k = subscriber_id.to_be_bytes().to_vec();
    k.extend_from_slice(&apn_id.to_be_bytes());
    k
}

fn stamp() -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(clock::unix_seconds());
    humantime::format_rfc3339_seconds(t).to_string()
}

fn validate(r: &Routing) -> Result<(), ApiError> {
    if !(0..=3).contains(&r.ip_version) {
        return Err(ApiError::bad_request("ip_version: must be 0 to 3"));
    }
    if let Some(ip) = &r.ip_address {
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| ApiError::bad_request("ip_address: not an IP address"))?;
    }
    Ok(())
}

fn encode(r: &Routing) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(r).map_err(|e| ApiError::Internal(e.to_string()))
}

fn decode(b: &[u8]) -> Option<Routing> {
    serde_json::from_slice(b).ok()
}

async fn read_on(
    core: &Core,
    subscriber_id: u64,
    apn_id: u64,
) -> Result<Option<Routing>, ApiError> {
    core.on(
        owner_of(subscriber_id, core.shards()),
        move |c| async move {
            let bytes = c
                .store
                .read_durable(tables::ROUTING, &key(subscriber_id, apn_id), |v| {
                    v.map(<[u8]>::to_vec)
                })
                .await
                .map_err(store_error)?;
            Ok(bytes.and_then(|b| decode(&b)))
        },
    )
    .await
    .map_err(mesh_error)?
}

/// `PUT /subscriber/routing/`.
pub fn put<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let b: Body = json_body(req.body)?;
        // Accepted so a GET answer can be sent back; the server sets them.
        let _ = (&b.subscriber_routing_id, &b.last_modified);
        let (Some(subscriber_id), Some(apn_id)) = (b.subscriber_id, b.apn_id) else {
            return Err(ApiError::bad_request("subscriber_id and apn_id: required"));
        };
        let mut r = Routing {
            subscriber_routing_id: 0,
            subscriber_id,
            apn_id,
            ip_version: b.ip_version.unwrap_or(0),
            ip_address: b.ip_address.flatten(),
            last_modified: stamp(),
        };
        validate(&r)?;
        if apn::find(&ctx.core.catalog(), apn_id).is_none() {
            return Err(ApiError::bad_request(format!(
                "apn_id: APN {apn_id} does not exist"
            )));
        }
        if subscriber::load(&ctx.core, subscriber_id).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "subscriber_id: subscriber {subscriber_id} does not exist"
            )));
        }
        let core = &ctx.core;
        let created = core
            .on(
                owner_of(subscriber_id, core.shards()),
                move |c| async move {
                    let k = key(subscriber_id, apn_id);
                    if c.store.read(tables::ROUTING, &k, |v| v.is_some()) {
                        return Err(ApiError::bad_request(format!(
                        "a routing entry for subscriber {subscriber_id} and APN {apn_id} exists"
                    )));
                    }
                    let counter = c.store.read(tables::META, tables::META_ROUTING_NEXT, |v| {
                        v.and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map_or(1, u64::from_be_bytes)
                    });
                    // This shard of the subscriber, encoded in the id.
                    r.subscriber_routing_id =
                        counter * u64::from(c.shards()) + u64::from(c.shard.0);
                    let ops = [
                        Op::Put {
                            table: tables::META,
                            key: tables::META_ROUTING_NEXT.to_vec(),
                            value: (counter + 1).to_be_bytes().to_vec(),
                        },
                        Op::Put {
                            table: tables::ROUTING_BY_ID,
                            key: r.subscriber_routing_id.to_be_bytes().to_vec(),
                            value: k.clone(),
                        },
                        Op::Put {
                            table: tables::ROUTING,
                            key: k,
                            value: encode(&r)?,
                        },
                    ];
                    c.store.commit(&ops).await.map_err(store_error)?;
                    Ok(r)
                },
            )
            .await
            .map_err(mesh_error)??;
        reply.json(200, &created)
    })
}

fn ids(params: &Params<'_>) -> Result<(u64, u64), ApiError> {
    Ok((
        super::id_param(params, "subscriber_id")?,
        super::id_param(params, "apn_id")?,
    ))
}

/// `GET /subscriber/routing/{subscriber_id}/{apn_id}`.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (s, a) = ids(&params)?;
        let r = read_on(&ctx.core, s, a).await?.ok_or(ApiError::NotFound)?;
        reply.json(200, &r)
    })
}

/// `DELETE /subscriber/routing/{subscriber_id}/{apn_id}`.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let (s, a) = ids(&params)?;
        let core = &ctx.core;
        core.on(owner_of(s, core.shards()), move |c| async move {
            let k = key(s, a);
            let r = c
                .store
                .read(tables::ROUTING, &k, |v| v.and_then(decode))
                .ok_or(ApiError::NotFound)?;
            let ops = [
                Op::Delete {
                    table: tables::ROUTING,
                    key: k,
                },
                Op::Delete {
                    table: tables::ROUTING_BY_ID,
                    key: r.subscriber_routing_id.to_be_bytes().to_vec(),
                },
            ];
            c.store.commit(&ops).await.map_err(store_error)
        })
        .await
        .map_err(mesh_error)??;
        reply.json(200, &Deleted::OK)
    })
}

/// `PATCH /subscriber/routing/{subscriber_routing_id}`: `ip_version` and
/// `ip_address` (the subscriber and APN of an entry do not change).
pub fn patch<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = super::id_param(&params, "subscriber_routing_id")?;
        let b: Body = json_body(req.body)?;
        let (ip_version, ip_address) = (b.ip_version, b.ip_address);
        let (sub, apn) = (b.subscriber_id, b.apn_id);
        let core = &ctx.core;
        let updated = core
            .on(owner_of(id, core.shards()), move |c| async move {
                let k = c
                    .store
                    .read(tables::ROUTING_BY_ID, &id.to_be_bytes(), |v| v.map(<[u8]>::to_vec))
                    .ok_or(ApiError::NotFound)?;
                let mut r = c
                    .store
                    .read(tables::ROUTING, &k, |v| v.and_then(decode))
                    .ok_or(ApiError::NotFound)?;
                if sub.is_some_and(|s| s != r.subscriber_id) || apn.is_some_and(|a| a != r.apn_id) {
                    return Err(ApiError::bad_request(
                        "subscriber_id and apn_id of an entry cannot change: delete it and create another",
                    ));
                }
                if let Some(v) = ip_version {
                    r.ip_version = v;
                }
                if let Some(a) = ip_address {
                    r.ip_address = a;
                }
                validate(&r)?;
                r.last_modified = stamp();
                c.store
                    .commit(&[Op::Put {
                        table: tables::ROUTING,
                        key: k,
                        value: encode(&r)?,
                    }])
                    .await
                    .map_err(store_error)?;
                Ok(r)
            })
            .await
            .map_err(mesh_error)??;
        reply.json(200, &updated)
    })
}
