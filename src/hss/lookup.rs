//! The AuC of an IMSI: the one that carries the IMSI (its own unique
//! index), or, as in the seed's walkthrough, the one referenced by the
//! subscriber with that IMSI.

use super::auc::{load, reply_auc, Auc};
use super::subscriber;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::runtime::{Core, LocalBoxFuture};
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
