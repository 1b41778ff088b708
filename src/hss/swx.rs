//! SWx (TS 29.273 §8), the HSS's side of untrusted non-3GPP access (the
//! ePDG's 3GPP AAA server, VoWiFi): MAR with EAP-AKA vectors (CK, IK) or
//! EAP-AKA' vectors (CK', IK' bound to the access network name, TS 33.402
//! §6.2 and RFC 9048), from the same durable SQN machinery as S6a; SAR
//! with the non-3GPP profile from the subscriber's `apn_list_swx`, the
//! AAA server kept durably as serving state; and the RTR this HSS sends.
//!
//! A subscriber whose `apn_list_swx` is empty has no non-3GPP
//! subscription: its MAR and its profile SAR are refused 5450.

use std::rc::Rc;

use super::answering::{
    auth_item, clear, diameter_write, items, resync, serve, set_serving, Refusal, Target,
};
use super::subscriber::Subscriber;
use super::vectors::issue;
use crate::diameter::{self, Diameter, Incoming, SendError};
use crate::domain::diameter::dict::avp;
use crate::domain::diameter::{app, command, experimental as exp, result, Message};
use crate::domain::ids::Imsi;
use crate::domain::kdf;
use crate::runtime::LocalBoxFuture;
use crate::server::Ctx;
use crate::table;

/// Registers the SWx requests this HSS answers.
pub fn register(apps: &mut diameter::Applications) {
    apps.add(app::SWX, command::MULTIMEDIA_AUTH, mar);
    apps.add(app::SWX, command::SERVER_ASSIGNMENT, sar);
}

const EAP_AKA: &str = "EAP-AKA";
const EAP_AKA_PRIME: &str = "EAP-AKA'";

/// Server-Assignment-Type on SWx.
mod assignment {
    pub const REGISTRATION: u32 = 1;
    pub const AAA_USER_DATA_REQUEST: u32 = 12;
    pub const PGW_UPDATE: u32 = 13;
    /// Timeout, user and administrative de-registration.
    pub const DEREGISTRATION: [u32; 3] = [4, 5, 8];
}

/// The AAA-server fields of a subscriber.
const AAA: [&str; 4] = [
    "serving_aaa",
    "serving_aaa_realm",
    "serving_aaa_peer",
    "serving_aaa_timestamp",
];

/// The IMSI of an SWx User-Name: an IMSI, or a permanent NAI (TS 23.003
/// §19.3.2: `0<IMSI>@realm` for EAP-AKA, `6<IMSI>@realm` for EAP-AKA').
fn imsi_of(msg: &Message<'_>) -> Result<Imsi, Refusal> {
    let name = msg
        .text(&avp::USER_NAME)
        .ok_or_else(|| Refusal::missing("User-Name"))?;
    let user = name.split('@').next().unwrap_or(name);
    let digits = match user.as_bytes().first() {
        Some(b'0' | b'6') if user.len() > 15 => user.get(1..).unwrap_or_default(),
        _ => user,
    };
    Imsi::parse(digits).map_err(|e| Refusal::invalid(e.to_string()))
}

/// The subscriber, with a non-3GPP subscription.
async fn subscriber(ctx: &Ctx, imsi: &Imsi) -> Result<Subscriber, Refusal> {
    let sub = super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
        .await?
        .ok_or_else(|| Refusal::unknown("unknown IMSI"))?;
    let none =
        |why: &str| Refusal::Experimental(exp::USER_NO_NON_3GPP_SUBSCRIPTION, why.to_owned());
    if !sub.enabled {
        return Err(none("the subscriber is disabled"));
    }
    if sub
        .apn_list_swx
        .as_deref()
        .is_none_or(|l| l.trim().is_empty())
    {
        return Err(none("the subscriber has no apn_list_swx"));
    }
    Ok(sub)
}

/// MAR: SIP-Number-Auth-Items EAP-AKA or EAP-AKA' items (1 when absent,
/// at most hss.max_vectors_per_request), each with its own SQN, durable
/// before the answer leaves. EAP-AKA' needs the ANID (the access network
/// name CK' and IK' are bound to). A SIP-Authorization (RAND ‖ AUTS)
/// resynchronises the SQN first.
pub fn mar(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            let item = msg
                .get(&avp::SIP_AUTH_DATA_ITEM)
                .ok_or_else(|| Refusal::missing("SIP-Auth-Data-Item"))?;
            let scheme = match item
                .get(&avp::SIP_AUTHENTICATION_SCHEME)
                .and_then(|s| s.utf8())
            {
                Some(EAP_AKA) => EAP_AKA,
                Some(EAP_AKA_PRIME) => EAP_AKA_PRIME,
                None => return Err(Refusal::missing("SIP-Authentication-Scheme")),
                Some(other) => {
                    return Err(Refusal::Experimental(
                        exp::AUTH_SCHEME_NOT_SUPPORTED,
                        format!("{other}: only {EAP_AKA} and {EAP_AKA_PRIME} are served"),
                    ))
                }
            };
            let anid = match scheme {
                EAP_AKA_PRIME => Some(
                    msg.text(&avp::ANID)
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| Refusal::missing("ANID (for EAP-AKA')"))?,
                ),
                _ => None,
            };
            subscriber(ctx, &imsi).await?;
            if let Some(r) = item.get(&avp::SIP_AUTHORIZATION) {
                resync(ctx, &imsi, r.data, "SIP-Authorization").await?;
            }
            let n = items(
                msg.u32(&avp::SIP_NUMBER_AUTH_ITEMS),
                ctx.config.hss.max_vectors_per_request,
            );
            let vectors = issue(ctx, &imsi, u64::from(n)).await?;
            b.text(
                &avp::USER_NAME,
                msg.text(&avp::USER_NAME).unwrap_or_default(),
            )
            .u32(&avp::SIP_NUMBER_AUTH_ITEMS, vectors.len() as u32);
            for (i, v) in vectors.iter().enumerate() {
                let item = (i as u32 + 1, scheme);
                match anid {
                    Some(name) => {
                        let (ck, ik) = kdf::ck_ik_prime(
                            &v.out.ck,
                            &v.out.ik,
                            name.as_bytes(),
                            &v.sqn_xor_ak(),
                        );
                        auth_item(&mut b, item, v, (&ck, &ik));
                    }
                    None => auth_item(&mut b, item, v, (&v.out.ck, &v.out.ik)),
                }
            }
            Ok(b.into())
        })
    })
}

/// SAR: REGISTRATION stores the AAA server (Origin-Host, its realm, the
/// peer it came through) durably and answers the non-3GPP profile, as
/// AAA_USER_DATA_REQUEST does; PGW_UPDATE is acknowledged; the
/// de-registrations clear the AAA server when it is the one asking.
pub fn sar(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, req, msg, mut b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            let kind = msg
                .u32(&avp::SERVER_ASSIGNMENT_TYPE)
                .ok_or_else(|| Refusal::missing("Server-Assignment-Type"))?;
            let origin = msg.text(&avp::ORIGIN_HOST).unwrap_or_default();
            let w = diameter_write(ctx);
            b.text(
                &avp::USER_NAME,
                msg.text(&avp::USER_NAME).unwrap_or_default(),
            );
            match kind {
                assignment::REGISTRATION | assignment::AAA_USER_DATA_REQUEST => {
                    let sub = subscriber(ctx, &imsi).await?;
                    if kind == assignment::REGISTRATION
                        && sub.serving_aaa.as_deref() != Some(origin)
                    {
                        let realm = msg.text(&avp::ORIGIN_REALM).unwrap_or_default();
                        set_serving::<Subscriber>(
                            ctx,
                            sub.subscriber_id,
                            "serving_aaa",
                            (origin, realm, &req.peer.origin_host),
                            &w,
                        )
                        .await?;
                    }
                    profile(ctx, &sub, &mut b).await?;
                }
                assignment::PGW_UPDATE => {
                    super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
                        .await?
                        .ok_or_else(|| Refusal::unknown("unknown IMSI"))?;
                }
                k if assignment::DEREGISTRATION.contains(&k) => {
                    let sub = super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
                        .await?
                        .ok_or_else(|| Refusal::unknown("unknown IMSI"))?;
                    if sub
                        .serving_aaa
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(origin))
                    {
                        clear::<Subscriber>(ctx, sub.subscriber_id, &AAA, &w).await?;
                    }
                }
                other => {
                    return Err(Refusal::Experimental(
                        exp::IN_ASSIGNMENT_TYPE,
                        format!("Server-Assignment-Type {other} is not an SWx one"),
                    ))
                }
            }
            Ok(b.into())
        })
    })
}

/// Non-3GPP-User-Data (TS 29.273 §8.2.3.1): non-3GPP access and APNs
/// allowed, the UE-AMBR, and one APN-Configuration per APN of
/// `apn_list_swx` (the first is the default context).
pub(super) async fn profile(
    ctx: &Ctx,
    sub: &Subscriber,
    b: &mut crate::domain::diameter::Builder,
) -> Result<(), Refusal> {
    let list = sub.apn_list_swx.clone().unwrap_or_default();
    b.begin(&avp::NON_TGPP_USER_DATA)
        .u32(&avp::NON_TGPP_IP_ACCESS, 0) // NON_3GPP_SUBSCRIPTION_ALLOWED
        .u32(&avp::NON_TGPP_IP_ACCESS_APN, 0); // Non_3GPP_APNS_ENABLE
    super::s6a::ue_ambr(sub, b);
    b.u32(&avp::CONTEXT_IDENTIFIER, 1);
    let n = super::s6a::apn_configurations(ctx, sub, None, &list, b).await?;
    b.end();
    if n == 0 {
        return Err(Refusal::Result(
            result::UNABLE_TO_COMPLY,
            "no APN of apn_list_swx exists".into(),
        ));
    }
    Ok(())
}

/// De-registers a subscriber from non-3GPP access: an RTR
/// (PERMANENT_TERMINATION) to its AAA server, then the AAA server cleared
/// whatever the answer. None when no AAA server serves it.
pub async fn deregister(
    ctx: &Ctx,
    d: &Diameter,
    sub: &Subscriber,
    w: &table::Write,
) -> Result<Option<(String, String, Result<u32, SendError>)>, table::TableError> {
    let Some(aaa) = sub.serving_aaa.as_deref() else {
        return Ok(None);
    };
    let to = Target::stored(
        aaa,
        sub.serving_aaa_realm.as_deref(),
        sub.serving_aaa_peer.as_deref(),
    );
    let (peer, host) = (to.peer.to_owned(), to.host.to_owned());
    let sent = super::cx::send_rtr(
        ctx,
        d,
        (app::SWX, to),
        &sub.imsi,
        Vec::new(),
        (
            super::cx::PERMANENT_TERMINATION,
            "de-registered by the operator",
        ),
    )
    .await;
    clear::<Subscriber>(ctx, sub.subscriber_id, &AAA, w).await?;
    Ok(Some((peer, host, sent)))
}
