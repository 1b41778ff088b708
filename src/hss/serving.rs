//! Serving state, as PyHSS's OAM reads it: the subscribers an MME or a
//! 3GPP AAA server serves and the IMS subscribers an S-CSCF serves (each
//! found through an index of served rows on every shard, not a scan),
//! keyed by IMSI as PyHSS answers; the Diameter peers; and the REST
//! requests that send a CLR to an MME or an RTR to an S-CSCF or AAA
//! server and report what its answer said. The pushes that need an
//! interface not served (Gx) answer 503 saying so: this server never
//! reports a change it did not make.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::answering::Target;
use super::ims_subscriber::ImsSubscriber;
use super::subscriber::{Subscriber, SERVED};
use crate::diameter::{Diameter, SendError};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::Imsi;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::table::{self, Row};

/// `GET /oam/serving_subs`: `{imsi: subscriber}` for every subscriber with
/// a serving MME or 3GPP AAA server.
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

/// `GET /oam/diameter_peers`: every Diameter peer, by `ip-port`, open or
/// recently closed (none when the Diameter listener is off).
pub fn peers<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        match ctx.extension::<Diameter>() {
            Some(d) => reply.json(200, &d.peers()),
            None => reply.json(200, &BTreeMap::<String, ()>::new()),
        }
    })
}

/// What became of a request (CLR, RTR) sent from REST.
#[derive(Debug, Serialize)]
struct Outcome {
    peer: String,
    destination_host: String,
    /// "answered", "timeout" or "not sent".
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Outcome {
    fn of(peer: &str, host: &str, sent: Result<u32, SendError>) -> Outcome {
        let (outcome, result_code, error) = match sent {
            Ok(code) => ("answered", Some(code), None),
            Err(SendError::Timeout) => ("timeout", None, Some(SendError::Timeout.to_string())),
            Err(e) => ("not sent", None, Some(e.to_string())),
        };
        Outcome {
            peer: peer.to_owned(),
            destination_host: host.to_owned(),
            outcome,
            result_code,
            error,
        }
    }
}

async fn clr_outcome(
    ctx: &Ctx,
    d: &Diameter,
    to: Target<'_>,
    imsi: &str,
    (cancellation, flags): (u32, Option<u32>),
) -> Outcome {
    let (peer, host) = (to.peer.to_owned(), to.host.to_owned());
    let sent = super::s6a::send_clr(ctx, d, to, imsi, cancellation, flags).await;
    Outcome::of(&peer, &host, sent)
}

fn diameter(ctx: &Ctx) -> Result<std::sync::Arc<Diameter>, ApiError> {
    ctx.extensions.get_arc::<Diameter>().ok_or_else(|| {
        ApiError::Unavailable(
            "the Diameter listener is off (services.diameter): nothing was sent or changed".into(),
        )
    })
}

/// `GET /oam/deregister/{imsi}`: a CLR (SUBSCRIPTION_WITHDRAWAL) to the
/// serving MME, an RTR (PERMANENT_TERMINATION) to the S-CSCF of the IMSI's
/// IMS subscriber (Cx) and to its 3GPP AAA server (SWx), each answered or
/// timed out (the answer's `clr`, `rtr` and `rtr_swx` say which) before
/// that serving node is cleared. Answers the subscriber and IMS
/// subscriber as they are after it, as PyHSS does.
pub fn deregister<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let d = diameter(ctx)?;
        let imsi = imsi_param(&params)?;
        let sub: Subscriber = table::find(&ctx.core, "imsi", imsi.as_str())
            .await?
            .ok_or(ApiError::NotFound)?;
        let w = crud::write_of(ctx, &req)?;
        let mut clr = None;
        if let Some(mme) = sub.serving_mme.as_deref() {
            let to = Target::stored(
                mme,
                sub.serving_mme_realm.as_deref(),
                sub.serving_mme_peer.as_deref(),
            );
            let flags = (super::s6a::SUBSCRIPTION_WITHDRAWAL, None);
            clr = Some(clr_outcome(ctx, &d, to, imsi.as_str(), flags).await);
            super::s6a::clear_serving_mme(ctx, sub.id(), &w).await?;
        }
        let ims: Option<ImsSubscriber> = table::find(&ctx.core, "imsi", imsi.as_str()).await?;
        let mut rtr = None;
        if let Some(ims) = &ims {
            rtr = super::cx::deregister(ctx, &d, ims, &w)
                .await?
                .map(|(peer, host, sent)| Outcome::of(&peer, &host, sent));
        }
        let rtr_swx = super::swx::deregister(ctx, &d, &sub, &w)
            .await?
            .map(|(peer, host, sent)| Outcome::of(&peer, &host, sent));
        let subscriber: Option<Subscriber> = table::find(&ctx.core, "imsi", imsi.as_str()).await?;
        let ims: Option<ImsSubscriber> = table::find(&ctx.core, "imsi", imsi.as_str()).await?;
        reply.json(
            200,
            &serde_json::json!({
                "subscriber": subscriber,
                "ims_subscriber": ims,
                "clr": clr,
                "rtr": rtr,
                "rtr_swx": rtr_swx,
            }),
        )
    })
}

/// PyHSS's `PUT /push/clr/{imsi}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushClr {
    #[serde(rename = "diameterPeer")]
    diameter_peer: String,
    #[serde(rename = "DestinationRealm")]
    destination_realm: String,
    #[serde(rename = "DestinationHost", default)]
    destination_host: Option<String>,
    #[serde(rename = "cancellationType", default = "withdrawal")]
    cancellation_type: u32,
    #[serde(rename = "immediateReattach", default)]
    immediate_reattach: bool,
}

fn withdrawal() -> u32 {
    super::s6a::SUBSCRIPTION_WITHDRAWAL
}

/// `PUT /push/clr/{imsi}`: a CLR through the connection to
/// `diameterPeer` (to `DestinationHost`, or that peer), with CLR-Flags
/// Reattach-Required when `immediateReattach`. Answered 200 with the CLA's
/// result code once it has come back, 504 when it did not in time, 503
/// when the peer is not connected. A CLA from the serving MME clears it.
pub fn push_clr<'a>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let d = diameter(ctx)?;
        let imsi = imsi_param(&params)?;
        let body: PushClr = crate::server::json_body(req.body)?;
        if body.cancellation_type > 4 {
            return Err(ApiError::bad_request(
                "cancellationType: must be 0 to 4 (TS 29.272 §7.3.24)",
            ));
        }
        let sub: Subscriber = table::find(&ctx.core, "imsi", imsi.as_str())
            .await?
            .ok_or(ApiError::NotFound)?;
        let host = body
            .destination_host
            .clone()
            .unwrap_or_else(|| body.diameter_peer.clone());
        // CLR-Flags bit 1: Reattach-Required.
        let flags = body.immediate_reattach.then_some(2);
        let to = Target {
            peer: &body.diameter_peer,
            host: &host,
            realm: &body.destination_realm,
        };
        let out = clr_outcome(ctx, &d, to, imsi.as_str(), (body.cancellation_type, flags)).await;
        match out.outcome {
            "answered" => {}
            "timeout" => {
                return Err(ApiError::GatewayTimeout(format!(
                    "no CLA from {} within {} ms (the serving MME is kept)",
                    body.diameter_peer, d.config.request_timeout_ms
                )))
            }
            _ => {
                return Err(ApiError::Unavailable(format!(
                    "CLR not sent: {} (nothing was changed)",
                    out.error.unwrap_or_default()
                )))
            }
        }
        if sub
            .serving_mme
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(&host))
        {
            let w = crud::write_of(ctx, &req)?;
            super::s6a::clear_serving_mme(ctx, sub.id(), &w).await?;
        }
        let _ = &mut req;
        reply.json(
            200,
            &serde_json::json!({
                "result": format!("CLA received from {}", body.diameter_peer),
                "result_code": out.result_code,
            }),
        )
    })
}

fn imsi_param(params: &Params<'_>) -> Result<Imsi, ApiError> {
    Imsi::parse(params.get("imsi").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))
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
