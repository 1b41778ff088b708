//! S6a (TS 29.272), the HSS's side: AIR (vectors from the same durable SQN
//! machinery as REST), ULR (the serving MME kept durably, Subscription-Data
//! from the provisioned subscriber and its APNs, a CLR to the MME it
//! replaces), PUR, NOR; and the CLR this HSS sends.

use std::rc::Rc;

use serde_json::Value;

use super::answering::{diameter_write, imsi_of, send, serve, Refusal, Target};
use super::apn::Apn;
use super::routing::Routing;
use super::subscriber::Subscriber;
use super::vectors::{issue, Vector};
use crate::diameter::{self, Diameter, Incoming, SendError};
use crate::domain::api_error::ApiError;
use crate::domain::diameter::dict::avp;
use crate::domain::diameter::{
    app, command, experimental as exp, plmn_digits, tbcd, Avp, Builder, Message,
};
use crate::domain::ids::Imsi;
use crate::domain::kdf;
use crate::runtime::{spawn_task, LocalBoxFuture};
use crate::server::Ctx;
use crate::table::{self, Body, Write};

/// ULR-Flags bits.
const SKIP_SUBSCRIBER_DATA: u32 = 1 << 2;
const INITIAL_ATTACH: u32 = 1 << 5;
/// Cancellation-Type MME_UPDATE_PROCEDURE.
pub const MME_UPDATE_PROCEDURE: u32 = 0;
/// Cancellation-Type INITIAL_ATTACH_PROCEDURE.
pub const INITIAL_ATTACH_PROCEDURE: u32 = 4;
/// Cancellation-Type SUBSCRIPTION_WITHDRAWAL.
pub const SUBSCRIPTION_WITHDRAWAL: u32 = 2;

/// Registers the S6a requests this HSS answers.
pub fn register(apps: &mut diameter::Applications) {
    apps.add(app::S6A, command::AUTHENTICATION_INFORMATION, air);
    apps.add(app::S6A, command::UPDATE_LOCATION, ulr);
    apps.add(app::S6A, command::PURGE_UE, pur);
    apps.add(app::S6A, command::NOTIFY, nor);
}

/// The visited network of `msg` when it is not a home network.
fn roaming_in(ctx: &Ctx, msg: &Message<'_>) -> Option<(String, String)> {
    let (mcc, mnc) = msg
        .get(&avp::VISITED_PLMN_ID)
        .and_then(|p| plmn_digits(p.data))?;
    let home = ctx
        .config
        .hss
        .home_plmns
        .iter()
        .any(|h| *h == format!("{mcc}{mnc}"));
    (!home).then_some((mcc, mnc))
}

/// What an AIR reads of the subscriber (the rest of its stored JSON is
/// skipped, not decoded).
#[derive(serde::Deserialize)]
struct Gate {
    imsi: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    roaming_enabled: bool,
    #[serde(default)]
    roaming_rule_list: Option<String>,
}

fn yes() -> bool {
    true
}

/// What the IMSI's shard did with an AIR.
enum Gated {
    Vectors(Vec<Vector>),
    Refused(u32, &'static str),
    /// The subscriber or the AuC lives on another shard (created before
    /// it had this IMSI): the general path serves it.
    Elsewhere,
}

/// An AIR's common case in one visit to the IMSI's shard: the subscriber
/// read through its index (only the fields the check needs) and checked,
/// then the vectors issued from the AuC there.
async fn gate_and_issue(
    ctx: &Ctx,
    imsi: &Imsi,
    n: u64,
    roaming: Option<(String, String)>,
) -> Result<Option<Vec<Vector>>, Refusal> {
    use super::tables;
    use crate::domain::shard::shard_of;
    use crate::table::{index, owner_of};
    let core = &ctx.core;
    let scheme = (ctx.config.hss.sqn_scheme(), ctx.config.hss.sqn_lease);
    let kek = ctx.config.hss.kek.clone();
    let allow = ctx.config.hss.roaming_allow_undefined_networks;
    let key = imsi.as_str().to_owned();
    let gated = core
        .on(shard_of(key.as_bytes(), core.shards()), move |c| async move {
            let Some(sid) = index::lookup_here(&c, tables::SUB_IMSI_INDEX, key.as_bytes()).await?
            else {
                return Ok(Gated::Refused(exp::USER_UNKNOWN, "unknown IMSI"));
            };
            if owner_of(sid, c.shards()) != c.shard {
                return Ok(Gated::Elsewhere);
            }
            let gate = c
                .store
                .read_durable(tables::SUBSCRIBER, &sid.to_be_bytes(), |v| {
                    v.map(serde_json::from_slice::<Gate>)
                })
                .await
                .map_err(crate::table::TableError::from)?;
            let gate = match gate {
                Some(Ok(g)) if g.imsi == key => g,
                Some(Err(e)) => {
                    tracing::error!(subscriber_id = sid, error = %e, "damaged subscriber record");
                    return Err(ApiError::Internal("damaged record".into()));
                }
                _ => return Ok(Gated::Elsewhere),
            };
            if !gate.enabled {
                return Ok(Gated::Refused(exp::UNKNOWN_EPS_SUBSCRIPTION, "the subscriber is disabled"));
            }
            if let Some((mcc, mnc)) = &roaming {
                let rules = (gate.roaming_enabled, gate.roaming_rule_list.as_deref());
                if !super::roaming::allowed(&c.catalog(), rules, (mcc, mnc), allow) {
                    return Ok(Gated::Refused(exp::ROAMING_NOT_ALLOWED, "roaming in this network is not allowed"));
                }
            }
            let Some(aid) = index::lookup_here(&c, tables::IMSI_INDEX, key.as_bytes()).await? else {
                return Ok(Gated::Elsewhere);
            };
            if owner_of(aid, c.shards()) != c.shard {
                return Ok(Gated::Elsewhere);
            }
            match super::vectors::issue_here(&c, aid, n, scheme, kek, Some(key)).await {
                Ok(v) => Ok(Gated::Vectors(v)),
                Err(ApiError::NotFound) => Ok(Gated::Elsewhere),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| Refusal::from(crate::server::mesh_error(e)))?
        .map_err(Refusal::from)?;
    match gated {
        Gated::Vectors(v) => Ok(Some(v)),
        Gated::Refused(code, why) => Err(Refusal::Experimental(code, why.into())),
        Gated::Elsewhere => Ok(None),
    }
}

/// The subscriber of `imsi`, refused as TS 29.272 says when it cannot be
/// served in the visited network of `msg`.
async fn subscriber_for(ctx: &Ctx, imsi: &Imsi, msg: &Message<'_>) -> Result<Subscriber, Refusal> {
    let sub = super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
        .await?
        .ok_or_else(|| Refusal::Experimental(exp::USER_UNKNOWN, "unknown IMSI".into()))?;
    if !sub.enabled {
        return Err(Refusal::Experimental(
            exp::UNKNOWN_EPS_SUBSCRIPTION,
            "the subscriber is disabled".into(),
        ));
    }
    if let Some((mcc, mnc)) = msg
        .get(&avp::VISITED_PLMN_ID)
        .and_then(|p| plmn_digits(p.data))
    {
        let home = ctx
            .config
            .hss
            .home_plmns
            .iter()
            .any(|h| *h == format!("{mcc}{mnc}"));
        let view = ctx.core.catalog();
        let allow = ctx.config.hss.roaming_allow_undefined_networks;
        let rules = (sub.roaming_enabled, sub.roaming_rule_list.as_deref());
        if !home && !super::roaming::allowed(&view, rules, (&mcc, &mnc), allow) {
            return Err(Refusal::Experimental(
                exp::ROAMING_NOT_ALLOWED,
                format!("roaming in {mcc}{mnc} is not allowed"),
            ));
        }
    }
    Ok(sub)
}

/// AIR: `Number-Of-Requested-Vectors` (1 when absent or 0, at most
/// hss.max_vectors_per_request) E-UTRAN vectors with KASME for the
/// Visited-PLMN-Id, and/or UTRAN vectors; a Re-Synchronization-Info
/// (RAND ‖ AUTS) resynchronises the SQN first. Every vector has its own
/// SQN, durable before the answer leaves. Immediate-Response-Preferred
/// changes nothing: every vector is computed at once.
pub fn air(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            let max = ctx.config.hss.max_vectors_per_request;
            let eutran = wanted(msg.get(&avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO), max);
            let utran = wanted(
                msg.get(&avp::REQUESTED_UTRAN_GERAN_AUTHENTICATION_INFO),
                max,
            );
            let eutran = match (eutran, utran) {
                (None, None) => Some((1, None)),
                (e, _) => e,
            };
            let sn_id: Option<[u8; 3]> = msg
                .get(&avp::VISITED_PLMN_ID)
                .and_then(|p| p.data.try_into().ok());
            // A resync first (either request may carry it).
            let resync = eutran
                .and_then(|(_, r)| r)
                .or_else(|| utran.and_then(|(_, r)| r));
            if resync.is_some() {
                subscriber_for(ctx, &imsi, &msg).await?;
            }
            if let Some(r) = resync {
                super::answering::resync(ctx, &imsi, r.data, "Re-Synchronization-Info").await?;
            }
            let n_e = eutran.map_or(0, |(n, _)| n);
            let n_u = utran.map_or(0, |(n, _)| n);
            let n = u64::from(n_e + n_u);
            // Checked and issued in one visit to the IMSI's shard; a
            // subscriber or AuC elsewhere takes the general path.
            let vectors = match gate_and_issue(ctx, &imsi, n, roaming_in(ctx, &msg)).await? {
                Some(v) => v,
                None => {
                    subscriber_for(ctx, &imsi, &msg).await?;
                    issue(ctx, &imsi, n).await?
                }
            };
            let (e_vectors, u_vectors) = vectors.split_at(vectors.len().min(n_e as usize));
            b.begin(&avp::AUTHENTICATION_INFO);
            for (i, v) in e_vectors.iter().enumerate() {
                b.begin(&avp::E_UTRAN_VECTOR)
                    .u32(&avp::ITEM_NUMBER, i as u32 + 1)
                    .bytes(&avp::RAND, &v.rand)
                    .bytes(&avp::XRES, &v.out.res)
                    .bytes(&avp::AUTN, &v.autn());
                if let Some(sn) = &sn_id {
                    b.bytes(
                        &avp::KASME,
                        &kdf::kasme(&v.out.ck, &v.out.ik, sn, &v.sqn_xor_ak()),
                    );
                }
                b.end();
            }
            for (i, v) in u_vectors.iter().enumerate() {
                utran_vector(&mut b, i as u32 + 1, v);
            }
            b.end();
            Ok(b.into())
        })
    })
}

/// How many vectors a Requested-…-Authentication-Info asks for (1 when
/// absent or 0, at most `max`), and its Re-Synchronization-Info.
fn wanted(info: Option<Avp<'_>>, max: u32) -> Option<(u32, Option<Avp<'_>>)> {
    info.map(|i| {
        let n = i
            .get(&avp::NUMBER_OF_REQUESTED_VECTORS)
            .and_then(|a| a.u32());
        (
            super::answering::items(n, max),
            i.get(&avp::RE_SYNCHRONIZATION_INFO),
        )
    })
}

fn utran_vector(b: &mut Builder, item: u32, v: &Vector) {
    b.begin(&avp::UTRAN_VECTOR)
        .u32(&avp::ITEM_NUMBER, item)
        .bytes(&avp::RAND, &v.rand)
        .bytes(&avp::XRES, &v.out.res)
        .bytes(&avp::AUTN, &v.autn())
        .bytes(&avp::CONFIDENTIALITY_KEY, &v.out.ck)
        .bytes(&avp::INTEGRITY_KEY, &v.out.ik)
        .end();
}

/// ULR: the serving MME (Origin-Host, Origin-Realm, and the peer it came
/// through) stored durably before the answer; Subscription-Data unless
/// Skip-Subscriber-Data; when another MME served the subscriber, a CLR
/// (MME_UPDATE_PROCEDURE, or INITIAL_ATTACH_PROCEDURE with the
/// Initial-Attach-Indicator) is sent to it once the ULA is on its way.
pub fn ulr(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, d, req, msg, mut b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            let sub = subscriber_for(ctx, &imsi, &msg).await?;
            let flags = msg.u32(&avp::ULR_FLAGS).unwrap_or(0);
            let mme = msg.text(&avp::ORIGIN_HOST).unwrap_or_default().to_owned();
            let realm = msg.text(&avp::ORIGIN_REALM).unwrap_or_default().to_owned();
            let w = diameter_write(ctx);
            let previous = (
                sub.serving_mme.clone(),
                sub.serving_mme_realm.clone(),
                sub.serving_mme_peer.clone(),
            );
            let mut patch = Body::new();
            patch.insert("serving_mme".into(), Value::from(mme.clone()));
            patch.insert("serving_mme_realm".into(), Value::from(realm));
            patch.insert(
                "serving_mme_peer".into(),
                Value::from(req.peer.origin_host.clone()),
            );
            patch.insert(
                "serving_mme_timestamp".into(),
                Value::from(table::json::timestamp(w.now)),
            );
            if let Some((mcc, mnc)) = msg
                .get(&avp::VISITED_PLMN_ID)
                .and_then(|p| plmn_digits(p.data))
            {
                patch.insert("last_seen_mcc".into(), Value::from(mcc));
                patch.insert("last_seen_mnc".into(), Value::from(mnc));
            }
            let tables = ctx.tables.clone();
            let sub: Subscriber = tables
                .patch(&ctx.core, sub.subscriber_id, &patch, &(), &w)
                .await?;
            if let (Some(old), old_realm, old_peer) = previous {
                if !old.eq_ignore_ascii_case(&mme) {
                    // TS 29.272 §5.2.1.1.3: INITIAL_ATTACH_PROCEDURE when
                    // the ULR says so, else MME_UPDATE_PROCEDURE.
                    let cancellation = if flags & INITIAL_ATTACH != 0 {
                        INITIAL_ATTACH_PROCEDURE
                    } else {
                        MME_UPDATE_PROCEDURE
                    };
                    let (ctx2, d2) = (Rc::new(ctx.clone()), d.clone());
                    let imsi = imsi.as_str().to_owned();
                    spawn_task(async move {
                        let to = Target::stored(&old, old_realm.as_deref(), old_peer.as_deref());
                        let sent = send_clr(&ctx2, &d2, to, &imsi, cancellation, None).await;
                        match sent {
                            Ok(code) => tracing::info!(
                                imsi,
                                old_mme = old,
                                code,
                                "CLR to the previous MME answered"
                            ),
                            Err(e) => {
                                tracing::warn!(imsi, old_mme = old, error = %e, "CLR to the previous MME not answered")
                            }
                        }
                    });
                }
            }
            // ULA-Flags bit 0, Separation Indication (as PyHSS sends).
            b.u32(&avp::ULA_FLAGS, 1);
            if flags & SKIP_SUBSCRIBER_DATA == 0 {
                subscription_data(ctx, &sub, &mut b).await?;
            }
            Ok(b.into())
        })
    })
}

/// PDN-Type from PyHSS's `ip_version` (the same numbering).
fn pdn_type(ip_version: i64) -> u32 {
    u32::try_from(ip_version)
        .ok()
        .filter(|v| *v <= 3)
        .unwrap_or(0)
}

/// Subscription-Data of TS 29.272 §7.3.2 from the subscriber and its APNs.
async fn subscription_data(ctx: &Ctx, sub: &Subscriber, b: &mut Builder) -> Result<(), Refusal> {
    b.begin(&avp::SUBSCRIPTION_DATA);
    if let Some(digits) = sub.msisdn.as_deref().and_then(tbcd) {
        b.bytes(&avp::MSISDN, &digits);
    }
    b.u32(&avp::SUBSCRIBER_STATUS, 0) // SERVICE_GRANTED
        .u32(
            &avp::NETWORK_ACCESS_MODE,
            u32::try_from(sub.nam).unwrap_or(0),
        );
    ue_ambr(sub, b);
    if let Ok(t) = u32::try_from(sub.subscribed_rau_tau_timer) {
        b.u32(&avp::SUBSCRIBED_PERIODIC_RAU_TAU_TIMER, t);
    }
    b.begin(&avp::APN_CONFIGURATION_PROFILE)
        .u32(&avp::CONTEXT_IDENTIFIER, 1)
        .u32(&avp::ALL_APN_CONFIGURATIONS_INCLUDED_INDICATOR, 0);
    apn_configurations(ctx, sub, Some(sub.default_apn), &sub.apn_list, b).await?;
    b.end().end();
    Ok(())
}

/// The subscriber's UE-AMBR.
pub(super) fn ue_ambr(sub: &Subscriber, b: &mut Builder) {
    b.begin(&avp::AMBR)
        .u32(&avp::MAX_REQUESTED_BANDWIDTH_UL, clamp32(sub.ue_ambr_ul))
        .u32(&avp::MAX_REQUESTED_BANDWIDTH_DL, clamp32(sub.ue_ambr_dl))
        .end();
}

/// One APN-Configuration per APN of `list` (a comma-separated id list),
/// `first` first, numbered by Context-Identifier from 1; returns how many.
/// Each carries the subscriber's static address for it (its routing row)
/// and the APN's PGW.
pub(super) async fn apn_configurations(
    ctx: &Ctx,
    sub: &Subscriber,
    first: Option<u64>,
    list: &str,
    b: &mut Builder,
) -> Result<usize, Refusal> {
    let view = ctx.core.catalog();
    let mut ids: Vec<u64> = first.into_iter().collect();
    ids.extend(
        list.split(',')
            .filter_map(|s| s.trim().parse::<u64>().ok())
            .filter(|id| Some(*id) != first),
    );
    let apns: Vec<Apn> = ids
        .iter()
        .filter_map(|id| table::catalog_row::<Apn>(&view, *id).ok().flatten())
        .collect();
    for (i, apn) in apns.iter().enumerate() {
        let routing: Option<Routing> = table::find(
            &ctx.core,
            "apn_id",
            &super::routing::pair(sub.subscriber_id, apn.apn_id),
        )
        .await?;
        b.begin(&avp::APN_CONFIGURATION)
            .u32(&avp::CONTEXT_IDENTIFIER, i as u32 + 1)
            .u32(&avp::PDN_TYPE, pdn_type(apn.ip_version))
            .text(&avp::SERVICE_SELECTION, &apn.apn)
            .begin(&avp::EPS_SUBSCRIBED_QOS_PROFILE)
            .u32(
                &avp::QOS_CLASS_IDENTIFIER,
                u32::try_from(apn.qci).unwrap_or(9),
            )
            .begin(&avp::ALLOCATION_RETENTION_PRIORITY)
            .u32(
                &avp::PRIORITY_LEVEL,
                u32::try_from(apn.arp_priority).unwrap_or(15),
            )
            // Pre-emption-Capability: 0 ENABLED, 1 DISABLED (and the same
            // for vulnerability).
            .u32(
                &avp::PRE_EMPTION_CAPABILITY,
                u32::from(!apn.arp_preemption_capability),
            )
            .u32(
                &avp::PRE_EMPTION_VULNERABILITY,
                u32::from(!apn.arp_preemption_vulnerability),
            )
            .end()
            .end()
            .begin(&avp::AMBR)
            .u32(&avp::MAX_REQUESTED_BANDWIDTH_UL, clamp32(apn.apn_ambr_ul))
            .u32(&avp::MAX_REQUESTED_BANDWIDTH_DL, clamp32(apn.apn_ambr_dl))
            .end();
        if let Some(ip) = routing
            .and_then(|r| r.ip_address)
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        {
            match ip {
                std::net::IpAddr::V4(v4) => b.address(&avp::SERVED_PARTY_IP_ADDRESS, &v4.octets()),
                std::net::IpAddr::V6(v6) => b.address(&avp::SERVED_PARTY_IP_ADDRESS, &v6.octets()),
            };
        }
        if let Some(pgw) = apn
            .pgw_address
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        {
            b.begin(&avp::MIP6_AGENT_INFO);
            match pgw {
                std::net::IpAddr::V4(v4) => b.address(&avp::MIP_HOME_AGENT_ADDRESS, &v4.octets()),
                std::net::IpAddr::V6(v6) => b.address(&avp::MIP_HOME_AGENT_ADDRESS, &v6.octets()),
            };
            b.end();
        }
        b.end();
    }
    Ok(apns.len())
}

fn clamp32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// PUR: the serving MME is cleared, but only when the PUR comes from the
/// MME that serves the subscriber (a late PUR from an MME the subscriber
/// has left changes nothing). PUA-Flags: freeze M-TMSI when cleared.
pub fn pur(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, mut b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            let sub = super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
                .await?
                .ok_or_else(|| Refusal::Experimental(exp::USER_UNKNOWN, "unknown IMSI".into()))?;
            let from = msg.text(&avp::ORIGIN_HOST).unwrap_or_default();
            let serving = sub
                .serving_mme
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(from));
            if serving {
                clear_serving_mme(ctx, sub.subscriber_id, &diameter_write(ctx)).await?;
            }
            b.u32(&avp::PUA_FLAGS, u32::from(serving));
            Ok(b.into())
        })
    })
}

/// Clears subscriber `id`'s serving MME (durably, as write `w`).
pub async fn clear_serving_mme(
    ctx: &Ctx,
    id: u64,
    w: &Write,
) -> Result<Subscriber, table::TableError> {
    let fields = [
        "serving_mme",
        "serving_mme_realm",
        "serving_mme_peer",
        "serving_mme_timestamp",
    ];
    super::answering::clear(ctx, id, &fields, w).await
}

/// NOR: accepted (the subscriber must exist).
pub fn nor(ctx: Rc<Ctx>, req: Incoming) -> LocalBoxFuture<'static, Vec<u8>> {
    serve(ctx, req, |ctx, _, _, msg, b| {
        Box::pin(async move {
            let imsi = imsi_of(&msg)?;
            super::subscriber::find_by_imsi(&ctx.core, imsi.as_str())
                .await?
                .ok_or_else(|| Refusal::Experimental(exp::USER_UNKNOWN, "unknown IMSI".into()))?;
            Ok(b.into())
        })
    })
}

/// Sends a CLR for `imsi` to `to`; returns the CLA's result code (or
/// its Experimental-Result-Code).
pub async fn send_clr(
    ctx: &Ctx,
    d: &Diameter,
    to: Target<'_>,
    imsi: &str,
    cancellation_type: u32,
    clr_flags: Option<u32>,
) -> Result<u32, SendError> {
    let imsi = imsi.to_owned();
    send(ctx, d, (app::S6A, command::CANCEL_LOCATION), to, move |b| {
        b.text(&avp::USER_NAME, &imsi)
            .u32(&avp::CANCELLATION_TYPE, cancellation_type);
        if let Some(f) = clr_flags {
            b.u32(&avp::CLR_FLAGS, f);
        }
    })
    .await
}
