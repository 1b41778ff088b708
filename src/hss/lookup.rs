//! Look-ups that join tables: the AuC of an IMSI (the one that carries
//! the IMSI, or, as in the seed's walkthrough, the one its subscriber
//! references), and a subscriber by IMSI or MSISDN with its attributes.

use super::auc::{load, reply_auc, Auc};
use super::subscriber::{self, Subscriber};
use super::subscriber_attributes::SubscriberAttribute;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::runtime::{Core, LocalBoxFuture};
use crate::server::crud::{Lookup, Plain};
use crate::server::{Ctx, Reply};
use crate::table;

/// The AuC whose IMSI is `imsi` (checked on read), else the subscriber's.
pub async fn find_by_imsi(core: &Core, imsi: &Imsi) -> Result<Option<Auc>, ApiError> {
    if let Some(auc) = table::find::<Auc>(core, "imsi", imsi.as_str()).await? {
        return Ok(Some(auc));
    }
    match subscriber::find_by_imsi(core, imsi.as_str()).await? {
        Some(sub) => load(core, sub.auc_id).await,
        None => Ok(None),
    }
}

/// `GET /auc/imsi/{imsi}`.
pub fn get_by_imsi<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let imsi = Imsi::parse(params.get("imsi").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let auc = find_by_imsi(&ctx.core, &imsi)
            .await?
            .ok_or(ApiError::NotFound)?;
        reply_auc(ctx, reply, &auc)
    })
}

/// A subscriber's attributes, read on its own core (they live there).
fn attributes_here<'c>(
    core: &'c Core,
    sub: &'c Subscriber,
) -> LocalBoxFuture<'c, Result<Vec<SubscriberAttribute>, table::TableError>> {
    Box::pin(async move {
        let key = sub.subscriber_id.to_string();
        table::find_all_here(core, "subscriber_id", &key).await
    })
}

/// A subscriber read by a unique key (`L`), with its attributes.
pub fn subscriber_by<'a, L: Lookup<Face = Plain<Subscriber>>>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let key = L::key(params.get(L::PARAM).unwrap_or_default())?;
        // The subscriber and its attributes in one visit to its core.
        let (sub, attributes) = table::find_with(&ctx.core, L::FIELD, &key, attributes_here)
            .await?
            .ok_or(ApiError::NotFound)?;
        #[derive(serde::Serialize)]
        struct WithAttributes<'s> {
            #[serde(flatten)]
            sub: &'s Subscriber,
            attributes: Vec<SubscriberAttribute>,
        }
        reply.json(
            200,
            &WithAttributes {
                sub: &sub,
                attributes,
            },
        )
    })
}
