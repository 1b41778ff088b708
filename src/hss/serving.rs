//! Serving state, as PyHSS's OAM reads it: the subscribers an MME serves
//! and the IMS subscribers an S-CSCF serves (each found through an index
//! of served rows on every shard, not a scan), keyed by IMSI as PyHSS
//! answers. The endpoints that must reach a Diameter peer (a CLR to the
//! MME, an RTR to the S-CSCF) answer 503 saying so: this server has no
//! Diameter peer yet, and never reports a de-registration it did not make.

use std::collections::BTreeMap;

use super::ims_subscriber::ImsSubscriber;
use super::subscriber::{Subscriber, SERVED};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::table;

/// `GET /oam/serving_subs`: `{imsi: subscriber}` for every subscriber with
/// a serving MME.
pub fn subs<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let rows: Vec<Subscriber> =
            table::find_all_shards(&ctx.core, "serving_mme", SERVED).await?;
        let by_imsi: BTreeMap<&str, &Subscriber> =
            rows.iter().map(|s| (s.imsi.as_str(), s)).collect();
        reply.json(200, &by_imsi)
    })
}

/// `GET /oam/serving_subs_ims`: `{imsi: IMS subscriber}` for every IMS
/// subscriber with a serving S-CSCF (keyed by MSISDN without an IMSI).
pub fn subs_ims<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let rows: Vec<ImsSubscriber> = table::find_all_shards(&ctx.core, "scscf", SERVED).await?;
        let by_imsi: BTreeMap<&str, &ImsSubscriber> = rows
            .iter()
            .filter_map(|s| Some((s.imsi.as_deref().or(s.msisdn.as_deref())?, s)))
            .collect();
        reply.json(200, &by_imsi)
    })
}

/// `GET /oam/diameter_peers`: peers come from the Diameter listener,
/// which this server does not have yet: there are none.
pub fn none_yet<'a>(
    _: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move { reply.json(200, &BTreeMap::<String, ()>::new()) })
}

/// `GET /oam/deregister/{imsi}`, `PUT /push/clr/{imsi}`, and the PCRF's
/// pushes (`PUT /pcrf/` a Gx RAR, `/pcrf/clr_subscriber`, the P-CSCF
/// restorations): each must reach a Diameter peer, so 503 while none is
/// connected.
pub fn needs_diameter<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    _: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        Err(ApiError::Unavailable(
            "no Diameter peer is connected: the request cannot be sent (nothing was changed)"
                .into(),
        ))
    })
}
