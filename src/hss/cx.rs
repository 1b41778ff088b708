//! Cx (TS 29.228/29.229), the HSS's side of IMS registration: UAR (which
//! S-CSCF serves a public identity), MAR (Digest-AKAv1-MD5 vectors from
//! the same durable SQN machinery as S6a and REST, as many as
//! SIP-Number-Auth-Items asks, resync from SIP-Authorization), SAR (the
//! S-CSCF kept durably per IMS subscriber; User-Data rendered from its iFC
//! template), LIR; and the RTR this HSS sends to de-register.
//!
//! An IMS subscriber is found by its public identity (the user part of a
//! sip: or tel: URI: its MSISDN, else its IMSI), else by the IMSI of the
//! private identity (User-Name, `IMSI@realm`); a private identity naming
//! another IMSI is refused 5002.

use std::rc::Rc;

use serde_json::Value;

use super::answering::{
    auth_item, diameter_write, home_network, ims_domain, items, resync, send, serve, Refusal,
    Served, Target,
};
use super::ifc_template::{self, IfcTemplate};
use super::ims_subscriber::ImsSubscriber;
use super::vectors::issue;
use crate::diameter::{self, Diameter, Incoming, SendError};
use crate::domain::diameter::dict::avp;
use crate::domain::diameter::{app, command, experimental as exp, result, Builder, Message};
use crate::domain::ids::Imsi;
use crate::runtime::LocalBoxFuture;
use crate::server::Ctx;
use crate::table;

/// Registers the Cx requests this HSS answers.
pub fn register(apps: &mut diameter::Applications) {
    apps.add(app::CX, command::USER_AUTHORIZATION, uar);
    apps.add(app::CX, command::MULTIMEDIA_AUTH, mar);
    apps.add(app::CX, command::SERVER_ASSIGNMENT, sar);
    apps.add(app::CX, command::LOCATION_INFO, lir);
}

/// User-Authorization-Type.
const REGISTRATION: u32 = 0;
const DE_REGISTRATION: u32 = 1;
const REGISTRATION_AND_CAPABILITIES: u32 = 2;

/// Server-Assignment-Type.
mod assignment {
    pub const NO_ASSIGNMENT: u32 = 0;
    pub const REGISTRATION: u32 = 1;
    pub const RE_REGISTRATION: u32 = 2;
    pub const UNREGISTERED_USER: u32 = 3;
    /// The de-registrations that keep the S-CSCF's name.
    pub const KEEP_NAME: [u32; 2] = [6, 7];
    /// The de-registrations that clear it (timeout, user, administrative,
    /// authentication failure or timeout, too much data).
    pub const CLEAR_NAME: [u32; 6] = [4, 5, 8, 9, 10, 11];
}

/// Deregistration-Reason's Reason-Code PERMANENT_TERMINATION.
pub const PERMANENT_TERMINATION: u32 = 0;

/// The schemes a Cx MAR is answered for (the S-CSCF computes AKAv2's
/// password from the same vector).
const AKA_V1: &str = "Digest-AKAv1-MD5";
const AKA_V2: &str = "Digest-AKAv2-MD5";

/// The user part of a SIP or tel URI, without a leading '+':
/// `sip:+1234@ims.example;user=phone` → `1234`.
pub fn user_part(identity: &str) -> &str {
    let rest = ["sip:", "sips:", "tel:"]
        .iter()
        .find_map(|p| identity.strip_prefix(p))
        .unwrap_or(identity);
    let rest = rest.split(['@', ';', '?']).next().unwrap_or(rest);
    rest.strip_prefix('+').unwrap_or(rest)
}

/// The IMSI part of a private identity (`IMSI@realm`).
fn private_imsi(user_name: &str) -> &str {
    user_name.split('@').next().unwrap_or(user_name)
}

/// The IMS subscriber a request names.
async fn ims_subscriber(ctx: &Ctx, msg: &Message<'_>) -> Result<ImsSubscriber, Refusal> {
    let public = msg.text(&avp::PUBLIC_IDENTITY);
    let private = msg.text(&avp::USER_NAME);
    if public.is_none() && private.is_none() {
        return Err(Refusal::missing("Public-Identity"));
    }
    let mut found: Option<ImsSubscriber> = None;
    if let Some(user) = public.map(user_part).filter(|u| !u.is_empty()) {
        found = table::find(&ctx.core, "msisdn", user).await?;
        if found.is_none() {
            found = table::find(&ctx.core, "imsi", user).await?;
        }
    }
    if found.is_none() {
        if let Some(imsi) = private.map(private_imsi).filter(|u| !u.is_empty()) {
            found = table::find(&ctx.core, "imsi", imsi).await?;
        }
    }
    let ims = found.ok_or_else(|| Refusal::unknown("no IMS subscriber has this identity"))?;
    if let (Some(user), Some(imsi)) = (private, ims.imsi.as_deref()) {
        if private_imsi(user) != imsi {
            return Err(Refusal::Experimental(
                exp::IDENTITIES_DONT_MATCH,
                "the private identity is not the public identity's".into(),
            ));
        }
    }
    Ok(ims)
}

/// The S-CSCF named for an identity no S-CSCF serves: one of
/// `hss.scscf_pool`, chosen by the identity (FNV-1a), else
/// `sip:scscf.<ims_domain>`.
fn pick_scscf(ctx: &Ctx, identity: &str) -> String {
    let pool = &ctx.config.hss.scscf_pool;
    let h = identity.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    usize::try_from(h % pool.len().max(1) as u64)
        .ok()
        .and_then(|i| pool.get(i))
        .cloned()
        .unwrap_or_else(|| format!("sip:scscf.{}", ctx.config.hss.ims_domain))
}

/// Server-Capabilities naming every S-CSCF of the pool (the I-CSCF
/// chooses).
fn capabilities(ctx: &Ctx, identity: &str, b: &mut Builder) {
    b.begin(&avp::SERVER_CAPABILITIES);
    if ctx.config.hss.scscf_pool.is_empty() {
        b.text(&avp::SERVER_NAME, &pick_scscf(ctx, identity));
    }
    for s in &ctx.config.hss.scscf_pool {
        b.text(&avp::SERVER_NAME, s);
    }
    b.end();
}

fn served(code: u32, body: Builder) -> Served {
    Served {
        experimental: Some(code),
        body,
    }
}

/// UAR: REGISTRATION answers the serving S-CSCF (2002 SUBSEQUENT
/// REGISTRATION) or one to choose (2001 FIRST REGISTRATION);
/// REGISTRATION_AND_CAPABILITIES answers Server-Capabilities;
/// DE_REGISTRATION answers the serving S-CSCF, or 5003 when none. A UAR
/// changes nothing stored.
pub fn uar(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let public = msg
                .text(&avp::PUBLIC_IDENTITY)
                .ok_or_else(|| Refusal::missing("Public-Identity"))?;
            msg.text(&avp::USER_NAME)
                .ok_or_else(|| Refusal::missing("User-Name"))?;
            let kind = msg
                .u32(&avp::USER_AUTHORIZATION_TYPE)
                .unwrap_or(REGISTRATION);
            let ims = ims_subscriber(ctx, &msg).await?;
            let serving = ims.scscf.as_deref();
            match (kind, serving) {
                (DE_REGISTRATION, Some(s)) => {
                    b.text(&avp::SERVER_NAME, s);
                    Ok(b.into())
                }
                (DE_REGISTRATION, None) => Err(Refusal::Experimental(
                    exp::IDENTITY_NOT_REGISTERED,
                    "no S-CSCF serves this identity".into(),
                )),
                (REGISTRATION, Some(s)) => {
                    b.text(&avp::SERVER_NAME, s);
                    Ok(served(exp::SUBSEQUENT_REGISTRATION, b))
                }
                (REGISTRATION, None) => {
                    b.text(&avp::SERVER_NAME, &pick_scscf(ctx, public));
                    Ok(served(exp::FIRST_REGISTRATION, b))
                }
                (REGISTRATION_AND_CAPABILITIES, s) => {
                    capabilities(ctx, public, &mut b);
                    let code = if s.is_some() {
                        exp::SUBSEQUENT_REGISTRATION
                    } else {
                        exp::FIRST_REGISTRATION
                    };
                    Ok(served(code, b))
                }
                (other, _) => Err(Refusal::invalid(format!(
                    "User-Authorization-Type {other}: must be 0, 1 or 2"
                ))),
            }
        })
    })
}

/// The IMSI whose AuC authenticates an IMS subscriber: its own, else the
/// private identity's.
fn auc_imsi(ims: &ImsSubscriber, private: &str) -> Result<Imsi, Refusal> {
    let imsi = ims.imsi.as_deref().unwrap_or_else(|| private_imsi(private));
    Imsi::parse(imsi).map_err(|e| Refusal::invalid(e.to_string()))
}

/// MAR: SIP-Number-Auth-Items Digest-AKAv1-MD5 (or AKAv2) items (1 when
/// absent, at most hss.max_vectors_per_request), each with its own SQN,
/// durable before the answer leaves; a SIP-Authorization (RAND ‖ AUTS)
/// resynchronises the SQN first. Any other scheme is refused 5006.
pub fn mar(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let public = msg
                .text(&avp::PUBLIC_IDENTITY)
                .ok_or_else(|| Refusal::missing("Public-Identity"))?;
            let private = msg
                .text(&avp::USER_NAME)
                .ok_or_else(|| Refusal::missing("User-Name"))?;
            let item = msg.get(&avp::SIP_AUTH_DATA_ITEM);
            let scheme = match item
                .and_then(|i| i.get(&avp::SIP_AUTHENTICATION_SCHEME))
                .and_then(|s| s.utf8())
            {
                None | Some("") | Some("Unknown") | Some(AKA_V1) => AKA_V1,
                Some(AKA_V2) => AKA_V2,
                Some(other) => {
                    return Err(Refusal::Experimental(
                        exp::AUTH_SCHEME_NOT_SUPPORTED,
                        format!("{other}: only {AKA_V1} and {AKA_V2} are served"),
                    ))
                }
            };
            let ims = ims_subscriber(ctx, &msg).await?;
            let imsi = auc_imsi(&ims, private)?;
            if let Some(r) = item.and_then(|i| i.get(&avp::SIP_AUTHORIZATION)) {
                resync(ctx, &imsi, r.data, "SIP-Authorization").await?;
            }
            let n = items(
                msg.u32(&avp::SIP_NUMBER_AUTH_ITEMS),
                ctx.config.hss.max_vectors_per_request,
            );
            let vectors = issue(ctx, &imsi, u64::from(n)).await?;
            b.text(&avp::USER_NAME, private)
                .text(&avp::PUBLIC_IDENTITY, public)
                .u32(&avp::SIP_NUMBER_AUTH_ITEMS, vectors.len() as u32);
            for (i, v) in vectors.iter().enumerate() {
                auth_item(&mut b, (i as u32 + 1, scheme), v, (&v.out.ck, &v.out.ik));
            }
            Ok(b.into())
        })
    })
}

/// The private identity of an IMS subscriber (TS 23.003 §13.3):
/// `IMSI@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org` of its home network.
pub fn private_identity(ctx: &Ctx, imsi: &str) -> String {
    let (mcc, mnc) = home_network(&ctx.config.hss.home_plmns, imsi);
    format!("{imsi}@{}", ims_domain(mcc, mnc))
}

/// The public identities of an IMS subscriber: `sip:MSISDN@<ims_domain>`
/// and `tel:MSISDN`.
pub fn public_identities(ctx: &Ctx, ims: &ImsSubscriber) -> Vec<String> {
    ims.msisdn
        .iter()
        .flat_map(|m| {
            [
                format!("sip:{m}@{}", ctx.config.hss.ims_domain),
                format!("tel:{m}"),
            ]
        })
        .collect()
}

/// The User-Data (IMSSubscription XML) of an IMS subscriber: its iFC
/// template (or the default one) rendered with `iFC_vars`: the IMS
/// subscriber's fields (its IMSI from the private identity when it has
/// none), and the MCC and MNC (3 digits) of its home network.
pub fn user_data(ctx: &Ctx, ims: &ImsSubscriber, imsi: &str) -> Result<String, Refusal> {
    let view = ctx.core.catalog();
    let template = match ims.ifc_template_id {
        Some(id) => {
            table::catalog_row::<IfcTemplate>(&view, id)?
                .ok_or_else(|| {
                    Refusal::Result(
                        result::UNABLE_TO_COMPLY,
                        format!("iFC template {id} does not exist"),
                    )
                })?
                .template_content
        }
        None => ifc_template::DEFAULT_TEMPLATE.to_owned(),
    };
    let mut vars = serde_json::to_value(ims).unwrap_or(Value::Null);
    let (mcc, mnc) = home_network(&ctx.config.hss.home_plmns, imsi);
    if let Value::Object(m) = &mut vars {
        m.entry("imsi")
            .and_modify(|v| {
                if v.is_null() {
                    *v = imsi.into();
                }
            })
            .or_insert_with(|| imsi.into());
        m.insert("mcc".into(), mcc.into());
        m.insert("mnc".into(), format!("{mnc:0>3}").into());
    }
    ifc_template::render(&template, &vars).map_err(|e| {
        tracing::error!(
            ims_subscriber_id = ims.ims_subscriber_id,
            template = ?ims.ifc_template_id,
            error = %e,
            "no User-Data for the IMS subscriber"
        );
        Refusal::Result(result::UNABLE_TO_COMPLY, e.to_string())
    })
}

/// The S-CSCF fields of an IMS subscriber.
const SCSCF: [&str; 4] = ["scscf", "scscf_realm", "scscf_peer", "scscf_timestamp"];

/// SAR: REGISTRATION, RE_REGISTRATION and UNREGISTERED_USER store the
/// S-CSCF (Server-Name, its realm and the peer the SAR came through)
/// durably and answer the User-Data (not on a re-registration whose
/// S-CSCF has it already); NO_ASSIGNMENT answers it to the serving S-CSCF
/// only; the de-registrations clear the S-CSCF when it is the one asking
/// (the *_STORE_SERVER_NAME ones keep it).
pub fn sar(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, req, msg, mut b| {
        Box::pin(async move {
            let server = msg
                .text(&avp::SERVER_NAME)
                .ok_or_else(|| Refusal::missing("Server-Name"))?;
            let kind = msg
                .u32(&avp::SERVER_ASSIGNMENT_TYPE)
                .ok_or_else(|| Refusal::missing("Server-Assignment-Type"))?;
            let ims = ims_subscriber(ctx, &msg).await?;
            let private = msg.text(&avp::USER_NAME);
            let imsi = match (&ims.imsi, private) {
                (Some(i), _) => i.clone(),
                (None, Some(p)) => private_imsi(p).to_owned(),
                (None, None) => String::new(),
            };
            let is_serving = ims
                .scscf
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(server));
            let already = msg.u32(&avp::USER_DATA_ALREADY_AVAILABLE) == Some(1);
            let send_data = match kind {
                assignment::REGISTRATION | assignment::UNREGISTERED_USER => true,
                assignment::RE_REGISTRATION => !already,
                assignment::NO_ASSIGNMENT if is_serving => true,
                assignment::NO_ASSIGNMENT => {
                    return Err(Refusal::Result(
                        result::UNABLE_TO_COMPLY,
                        "NO_ASSIGNMENT from an S-CSCF that does not serve this identity".into(),
                    ))
                }
                k if assignment::KEEP_NAME.contains(&k) => false,
                k if assignment::CLEAR_NAME.contains(&k) => false,
                other => {
                    return Err(Refusal::Experimental(
                        exp::IN_ASSIGNMENT_TYPE,
                        format!("Server-Assignment-Type {other} is not a Cx one"),
                    ))
                }
            };
            // Rendered before anything is stored: a template that cannot
            // give User-Data refuses the registration.
            let data = if send_data {
                Some(user_data(ctx, &ims, &imsi)?)
            } else {
                None
            };
            let w = diameter_write(ctx);
            let registers = matches!(
                kind,
                assignment::REGISTRATION
                    | assignment::RE_REGISTRATION
                    | assignment::UNREGISTERED_USER
            );
            if registers && !is_serving_same(&ims, server, &msg) {
                let realm = msg.text(&avp::ORIGIN_REALM).unwrap_or_default();
                // The connection, and the S-CSCF's Diameter host behind it
                // when they differ (a relay): where an RTR goes.
                let origin = msg.text(&avp::ORIGIN_HOST).unwrap_or_default();
                let conn = &req.peer.origin_host;
                let peer = if origin.is_empty() || origin.eq_ignore_ascii_case(conn) {
                    conn.clone()
                } else {
                    format!("{conn};{origin}")
                };
                super::answering::set_serving::<ImsSubscriber>(
                    ctx,
                    ims.ims_subscriber_id,
                    "scscf",
                    (server, realm, &peer),
                    &w,
                )
                .await?;
            } else if assignment::CLEAR_NAME.contains(&kind) && is_serving {
                super::answering::clear::<ImsSubscriber>(ctx, ims.ims_subscriber_id, &SCSCF, &w)
                    .await?;
            }
            let user = private
                .map(str::to_owned)
                .unwrap_or_else(|| private_identity(ctx, &imsi));
            b.text(&avp::USER_NAME, &user);
            if let Some(xml) = data {
                b.bytes(&avp::USER_DATA, xml.as_bytes());
            }
            Ok(b.into())
        })
    })
}

/// Whether the IMS subscriber's stored S-CSCF is `server` from the realm
/// the SAR comes from (a re-registration then writes nothing).
fn is_serving_same(ims: &ImsSubscriber, server: &str, msg: &Message<'_>) -> bool {
    ims.scscf.as_deref() == Some(server)
        && ims.scscf_realm.as_deref() == msg.text(&avp::ORIGIN_REALM)
}

/// LIR: the serving S-CSCF (2001); for an identity no S-CSCF serves, one
/// to route to for its unregistered services (2003 UNREGISTERED_SERVICE).
pub fn lir(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let public = msg
                .text(&avp::PUBLIC_IDENTITY)
                .ok_or_else(|| Refusal::missing("Public-Identity"))?;
            let ims = ims_subscriber(ctx, &msg).await?;
            match ims.scscf.as_deref() {
                Some(s) => {
                    b.text(&avp::SERVER_NAME, s);
                    Ok(b.into())
                }
                None => {
                    b.text(&avp::SERVER_NAME, &pick_scscf(ctx, public));
                    Ok(served(exp::UNREGISTERED_SERVICE, b))
                }
            }
        })
    })
}

/// Sends an RTR of `app` (Cx or SWx) to `to` for `user_name` (and, on
/// Cx, its public identities), with Deregistration-Reason `reason`;
/// returns the RTA's result code.
pub async fn send_rtr(
    ctx: &Ctx,
    d: &Diameter,
    (app, to): (u32, Target<'_>),
    user_name: &str,
    public: Vec<String>,
    (reason, info): (u32, &str),
) -> Result<u32, SendError> {
    let (user, info) = (user_name.to_owned(), info.to_owned());
    send(
        ctx,
        d,
        (app, command::REGISTRATION_TERMINATION),
        to,
        move |b| {
            b.text(&avp::USER_NAME, &user);
            for p in &public {
                b.text(&avp::PUBLIC_IDENTITY, p);
            }
            b.begin(&avp::DEREGISTRATION_REASON)
                .u32(&avp::REASON_CODE, reason)
                .text(&avp::REASON_INFO, &info)
                .end();
        },
    )
    .await
}

/// Where a request to an IMS subscriber's S-CSCF goes: (the connection,
/// the S-CSCF's Diameter host, its realm). `scscf_peer` holds
/// "connection;S-CSCF host" when they differ (PyHSS writes its own host
/// second, which is not taken). None when no S-CSCF serves it.
pub fn scscf_target(d: &Diameter, ims: &ImsSubscriber) -> Option<(String, String, String)> {
    let scscf = ims.scscf.as_deref()?;
    let stored = ims.scscf_peer.as_deref().unwrap_or(scscf);
    let mut parts = stored.split(';');
    let peer = parts.next().unwrap_or(stored);
    let host = parts
        .next()
        .filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case(&d.identity.host))
        .unwrap_or(peer);
    let realm = ims.scscf_realm.as_deref().unwrap_or_default();
    Some((peer.to_owned(), host.to_owned(), realm.to_owned()))
}

/// De-registers an IMS subscriber: an RTR (PERMANENT_TERMINATION) to its
/// S-CSCF, then the S-CSCF cleared whatever the answer. None when no
/// S-CSCF serves it.
pub async fn deregister(
    ctx: &Ctx,
    d: &Diameter,
    ims: &ImsSubscriber,
    w: &table::Write,
) -> Result<Option<(String, String, Result<u32, SendError>)>, table::TableError> {
    let Some((peer, host, realm)) = scscf_target(d, ims) else {
        return Ok(None);
    };
    let to = Target {
        peer: &peer,
        host: &host,
        realm: &realm,
    };
    let imsi = ims.imsi.clone().unwrap_or_default();
    let sent = send_rtr(
        ctx,
        d,
        (app::CX, to),
        &private_identity(ctx, &imsi),
        public_identities(ctx, ims),
        (PERMANENT_TERMINATION, "de-registered by the operator"),
    )
    .await;
    super::answering::clear::<ImsSubscriber>(ctx, ims.ims_subscriber_id, &SCSCF, w).await?;
    Ok(Some((peer, host, sent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_part_of_an_identity() {
        assert_eq!(user_part("sip:+1234@ims.example;user=phone"), "1234");
        assert_eq!(user_part("tel:+1234"), "1234");
        assert_eq!(user_part("tel:1234;phone-context=x"), "1234");
        assert_eq!(
            user_part("sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org"),
            "001010000000001"
        );
        assert_eq!(user_part("1234"), "1234");
        assert_eq!(
            private_imsi("001010000000001@ims.example"),
            "001010000000001"
        );
    }
}
