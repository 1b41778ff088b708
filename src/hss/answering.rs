//! How the HSS's Diameter applications (S6a, Cx, SWx, S13) answer and
//! ask: one frame for every answer (Session-Id, Vendor-Specific-
//! Application-Id, Auth-Session-State, Origin-Host/Realm, then the result
//! and the handler's AVPs), the refusals a handler may end with, and the
//! requests this HSS sends (CLR, RTR, PPR) built on one frame.

use std::rc::Rc;
use std::sync::Arc;

use crate::diameter::{answer, experimental, finish, Diameter, Incoming, SendError};
use crate::domain::api_error::ApiError;
use crate::domain::diameter::dict::{avp, TGPP};
use crate::domain::diameter::{experimental as exp, flag, result, Builder, Message};
use crate::domain::ids::Imsi;
use crate::runtime::{clock, LocalBoxFuture};
use crate::server::Ctx;
use crate::table::{self, Write};

/// Auth-Session-State NO_STATE_MAINTAINED.
pub const NO_STATE_MAINTAINED: u32 = 1;

/// How a request ends when it cannot be served as asked.
#[derive(Debug)]
pub enum Refusal {
    /// A base Result-Code (5005, 5012, ...).
    Result(u32, String),
    /// A 3GPP Experimental-Result-Code.
    Experimental(u32, String),
}

impl Refusal {
    pub fn missing(what: &str) -> Refusal {
        Refusal::Result(result::MISSING_AVP, format!("{what} is required"))
    }
    pub fn invalid(why: impl Into<String>) -> Refusal {
        Refusal::Result(result::INVALID_AVP_VALUE, why.into())
    }
    pub fn unknown(why: impl Into<String>) -> Refusal {
        Refusal::Experimental(exp::USER_UNKNOWN, why.into())
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => Refusal::unknown("unknown IMSI"),
            other => {
                tracing::error!(error = %other, "Diameter request failed");
                Refusal::Result(result::UNABLE_TO_COMPLY, other.to_string())
            }
        }
    }
}

impl From<table::TableError> for Refusal {
    fn from(e: table::TableError) -> Self {
        Refusal::from(ApiError::from(e))
    }
}

/// What a handler answers with when it succeeds: the base Result-Code
/// 2001, or a 3GPP Experimental-Result-Code of success (Cx's 2001 FIRST
/// REGISTRATION, 2002 SUBSEQUENT REGISTRATION ...), and its AVPs.
pub struct Served {
    pub experimental: Option<u32>,
    pub body: Builder,
}

impl From<Builder> for Served {
    fn from(body: Builder) -> Self {
        Served {
            experimental: None,
            body,
        }
    }
}

/// The future a handler returns.
pub type Handled<'m> = LocalBoxFuture<'m, Result<Served, Refusal>>;

/// Serves a request with `f`, turning a refusal into its answer. The
/// answer names the request's application in Vendor-Specific-Application-Id
/// (3GPP), as TS 29.228/29.272/29.273 answers carry it.
pub fn serve<F>(ctx: Rc<Ctx>, req: Incoming, f: F) -> LocalBoxFuture<'static, Vec<u8>>
where
    F: for<'m> FnOnce(
            &'m Ctx,
            &'m Arc<Diameter>,
            &'m Incoming,
            Message<'m>,
            Builder,
        ) -> Handled<'m>
        + 'static,
{
    Box::pin(async move {
        let Some(d) = ctx.extensions.get_arc::<Diameter>() else {
            return Vec::new();
        };
        let Ok(msg) = Message::parse(&req.frame) else {
            return Vec::new();
        };
        let mut b = answer(&d.identity, &msg);
        b.begin(&avp::VENDOR_SPECIFIC_APPLICATION_ID)
            .u32(&avp::VENDOR_ID, TGPP)
            .u32(&avp::AUTH_APPLICATION_ID, msg.header.app_id)
            .end()
            .u32(&avp::AUTH_SESSION_STATE, NO_STATE_MAINTAINED);
        let start = Builder::answer(&msg.header);
        let built = f(&ctx, &d, &req, msg, start).await;
        // The handler's AVPs follow the common ones.
        match built {
            Ok(Served {
                experimental: None,
                body,
            }) => {
                b.u32(&avp::RESULT_CODE, result::SUCCESS);
                b.raw(body.avps());
            }
            Ok(Served {
                experimental: Some(code),
                body,
            }) => {
                experimental(&mut b, code);
                b.raw(body.avps());
            }
            Err(Refusal::Result(code, why)) => {
                b.u32(&avp::RESULT_CODE, code)
                    .text(&avp::ERROR_MESSAGE, &why);
            }
            Err(Refusal::Experimental(code, why)) => {
                experimental(&mut b, code);
                b.text(&avp::ERROR_MESSAGE, &why);
            }
        }
        finish(b, &msg)
    })
}

/// The IMSI of a request's User-Name.
pub fn imsi_of(msg: &Message<'_>) -> Result<Imsi, Refusal> {
    let name = msg
        .text(&avp::USER_NAME)
        .ok_or_else(|| Refusal::missing("User-Name"))?;
    Imsi::parse(name).map_err(|e| Refusal::invalid(e.to_string()))
}

/// A write made by this HSS's Diameter side (its own operation id).
pub fn diameter_write(ctx: &Ctx) -> Write {
    Write {
        now: clock::unix_seconds(),
        operation_id: Some(crate::server::uuid_v4()),
        lenient_lists: ctx.config.hss.accept_missing_apn_list_ids || ctx.config.hss.pyhss_quirks,
        undo: false,
        from_peer: false,
        pyhss_quirks: ctx.config.hss.pyhss_quirks,
    }
}

/// Where a request this HSS sends goes: the connection to `peer`, and the
/// Destination-Host and Destination-Realm it names.
pub struct Target<'a> {
    pub peer: &'a str,
    pub host: &'a str,
    pub realm: &'a str,
}

impl<'a> Target<'a> {
    /// The target kept as serving state: `peer` as stored (PyHSS keeps
    /// "peer;suffix"), or the host itself.
    pub fn stored(host: &'a str, realm: Option<&'a str>, peer: Option<&'a str>) -> Target<'a> {
        let peer = peer.unwrap_or(host);
        Target {
            peer: peer.split(';').next().unwrap_or(peer),
            host,
            realm: realm.unwrap_or_default(),
        }
    }
}

/// Sends request `command` of `app` to `to`: Session-Id, Vendor-Specific-
/// Application-Id, Auth-Session-State, the origin and destination, then
/// what `body` adds; returns the answer's Result-Code (or its
/// Experimental-Result-Code).
pub async fn send(
    ctx: &Ctx,
    d: &Diameter,
    (app, command): (u32, u32),
    to: Target<'_>,
    body: impl FnOnce(&mut Builder) + Send + 'static,
) -> Result<u32, SendError> {
    let id = d.identity.clone();
    let (host, realm) = (to.host.to_owned(), to.realm.to_owned());
    let answer = d
        .request(ctx, to.peer, move |hop, e2e| {
            let mut b = Builder::request(command, app, flag::PROXIABLE, hop, e2e);
            b.text(
                &avp::SESSION_ID,
                &format!("{};{};{hop};{e2e}", id.host, id.state_id),
            );
            if app != crate::domain::diameter::app::S6A {
                b.begin(&avp::VENDOR_SPECIFIC_APPLICATION_ID)
                    .u32(&avp::VENDOR_ID, TGPP)
                    .u32(&avp::AUTH_APPLICATION_ID, app)
                    .end();
            }
            b.u32(&avp::AUTH_SESSION_STATE, NO_STATE_MAINTAINED)
                .text(&avp::ORIGIN_HOST, &id.host)
                .text(&avp::ORIGIN_REALM, &id.realm)
                .text(&avp::DESTINATION_HOST, &host)
                .text(&avp::DESTINATION_REALM, &realm);
            body(&mut b);
            b.finish()
        })
        .await?;
    Ok(result_of(&answer).unwrap_or(result::UNABLE_TO_COMPLY))
}

/// An answer's Result-Code, or its Experimental-Result-Code.
pub fn result_of(frame: &[u8]) -> Option<u32> {
    let m = Message::parse(frame).ok()?;
    m.u32(&avp::RESULT_CODE).or_else(|| {
        m.get(&avp::EXPERIMENTAL_RESULT)?
            .get(&avp::EXPERIMENTAL_RESULT_CODE)?
            .u32()
    })
}

/// Resynchronises `imsi`'s SQN from `data`, RAND (16 bytes) ‖ AUTS (14
/// bytes), as S6a's Re-Synchronization-Info and Cx's and SWx's
/// SIP-Authorization carry them. An AUTS that does not verify leaves the
/// SQN as it is (TS 33.102 §6.3.5): new vectors are sent all the same.
pub async fn resync(ctx: &Ctx, imsi: &Imsi, data: &[u8], avp_name: &str) -> Result<(), Refusal> {
    let bad = || {
        Refusal::invalid(format!(
            "{avp_name} must be RAND (16 bytes) and AUTS (14 bytes)"
        ))
    };
    let (rand, auts) = data.split_at_checked(16).ok_or_else(bad)?;
    let (Ok(rand), Ok(auts)) = (<[u8; 16]>::try_from(rand), <[u8; 14]>::try_from(auts)) else {
        return Err(bad());
    };
    match super::vectors::resync_sqn(ctx, imsi, rand, auts).await {
        Ok(_) => Ok(()),
        Err(ApiError::BadRequest { reason: why, .. }) => {
            tracing::warn!(imsi = imsi.as_str(), why, "AUTS did not verify: SQN kept");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets `fields` of row `id` to null (durably, as write `w`): serving
/// state cleared.
pub async fn clear<R: table::Row<Env = ()>>(
    ctx: &Ctx,
    id: u64,
    fields: &[&str],
    w: &Write,
) -> Result<R, table::TableError> {
    let mut patch = table::Body::new();
    for k in fields {
        patch.insert((*k).into(), serde_json::Value::Null);
    }
    ctx.tables.patch(&ctx.core, id, &patch, &(), w).await
}

/// Sets row `id`'s serving node: `prefix` (the name `name`), and its
/// `_realm`, `_peer` and `_timestamp` (durably, as write `w`).
pub async fn set_serving<R: table::Row<Env = ()>>(
    ctx: &Ctx,
    id: u64,
    prefix: &str,
    (name, realm, peer): (&str, &str, &str),
    w: &Write,
) -> Result<R, table::TableError> {
    let mut patch = table::Body::new();
    patch.insert(prefix.into(), name.into());
    patch.insert(format!("{prefix}_realm"), realm.into());
    patch.insert(format!("{prefix}_peer"), peer.into());
    patch.insert(
        format!("{prefix}_timestamp"),
        table::json::timestamp(w.now).into(),
    );
    ctx.tables.patch(&ctx.core, id, &patch, &(), w).await
}

/// How many items a request asks for: `n` (1 when absent or 0), at most
/// `max`.
pub fn items(n: Option<u32>, max: u32) -> u32 {
    n.unwrap_or(1).clamp(1, max.max(1))
}

/// One SIP-Auth-Data-Item (Cx and SWx): RAND ‖ AUTN to send, the XRES to
/// expect, and the keys (CK/IK, or CK'/IK' for EAP-AKA').
pub fn auth_item(
    b: &mut Builder,
    (item, scheme): (u32, &str),
    v: &super::vectors::Vector,
    (ck, ik): (&[u8; 16], &[u8; 16]),
) {
    let mut challenge = [0u8; 32];
    challenge[..16].copy_from_slice(&v.rand);
    challenge[16..].copy_from_slice(&v.autn());
    b.begin(&avp::SIP_AUTH_DATA_ITEM)
        .u32(&avp::SIP_ITEM_NUMBER, item)
        .text(&avp::SIP_AUTHENTICATION_SCHEME, scheme)
        .bytes(&avp::SIP_AUTHENTICATE, &challenge)
        .bytes(&avp::SIP_AUTHORIZATION, &v.out.res)
        .bytes(&avp::CONFIDENTIALITY_KEY, ck)
        .bytes(&avp::INTEGRITY_KEY, ik)
        .end();
}

/// The home network of `imsi`: the longest of `home_plmns` it starts with
/// (else the first), as MCC and MNC digits.
pub fn home_network<'a>(home_plmns: &'a [String], imsi: &str) -> (&'a str, &'a str) {
    let plmn = home_plmns
        .iter()
        .filter(|p| imsi.starts_with(p.as_str()))
        .max_by_key(|p| p.len())
        .or(home_plmns.first())
        .map_or("", String::as_str);
    (
        plmn.get(..3).unwrap_or_default(),
        plmn.get(3..).unwrap_or_default(),
    )
}

/// The IMS domain of a home network (TS 23.003 §13.2):
/// `ims.mnc<MNC, 3 digits>.mcc<MCC>.3gppnetwork.org`.
pub fn ims_domain(mcc: &str, mnc: &str) -> String {
    format!("ims.mnc{mnc:0>3}.mcc{mcc}.3gppnetwork.org")
}
