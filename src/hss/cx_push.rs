//! Profile pushes. Cx (TS 29.228 §6.1.7): when what an IMS subscriber's
//! User-Data is rendered from changes (its identities, its iFC template's
//! id, or the template's content) while an S-CSCF serves it, that S-CSCF
//! gets a PPR with the new User-Data. SWx (TS 29.273 §8.1.2.3): when what a
//! subscriber's non-3GPP profile comes from changes (`apn_list_swx`, its
//! UE-AMBR) while a 3GPP AAA server serves it, that server gets a PPR with
//! the new Non-3GPP-User-Data.
//!
//! A write hook notes the change, in the same commit as the row; the
//! core's push task sends the PPR shortly after (never in the request's
//! way), reading the row as it is then, so several changes in a moment are
//! one push. A PPR that gets no answer is logged, not retried: the S-CSCF
//! reads the profile again at its next registration.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::answering::{send, Target};
use super::ims_subscriber::ImsSubscriber;
use super::subscriber::{Subscriber, SERVED};
use crate::diameter::Diameter;
use crate::domain::diameter::dict::avp;
use crate::domain::diameter::{app, command};
use crate::server::Ctx;
use crate::storage::Op;
use crate::table::{self, Change, Site, WriteHook};

/// What changed: an IMS subscriber, an iFC template (every served IMS
/// subscriber with it), or a subscriber's non-3GPP profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Ims(u64),
    Template(u64),
    Aaa(u64),
}

#[derive(Default)]
struct Pushes {
    ctx: Option<Ctx>,
    pending: BTreeSet<Subject>,
    wake: Option<async_channel::Sender<()>>,
}

thread_local! {
    static PUSHES: RefCell<Pushes> = RefCell::new(Pushes::default());
}

/// Gives this core's push task what it sends with (at start, per core).
pub fn on_core(ctx: &Ctx) {
    PUSHES.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.ctx = Some(ctx.clone());
        }
    });
}

/// The IMS subscriber fields its User-Data is rendered from.
const PROFILE: [&str; 5] = [
    "msisdn",
    "msisdn_list",
    "imsi",
    "ifc_template_id",
    "ifc_path",
];

/// The subscriber fields its non-3GPP profile comes from.
const NON_3GPP: [&str; 3] = ["apn_list_swx", "ue_ambr_dl", "ue_ambr_ul"];

/// Notes the changes a PPR must follow.
#[derive(Debug)]
pub struct PprHook;

impl WriteHook for PprHook {
    fn on_change(&self, _: Site<'_>, c: &Change<'_>) -> Vec<Op> {
        if c.from_peer || c.after.is_none() {
            return Vec::new();
        }
        let fields = |b: Option<&[u8]>| b.and_then(c.table.fields).unwrap_or_default();
        let null = Value::Null;
        // Served by `node` before and after, with one of `keys` changed.
        let follows = |node: &str, keys: &[&str]| {
            let (before, after) = (fields(c.before), fields(c.after));
            let served = [&before, &after]
                .iter()
                .all(|row| !row.get(node).unwrap_or(&null).is_null());
            served
                && keys
                    .iter()
                    .any(|k| before.get(*k).unwrap_or(&null) != after.get(*k).unwrap_or(&null))
        };
        // Cheap first: most writes are of rows nobody serves this way (a
        // ULR's subscriber), and their JSON is not decoded.
        let has = |needle: &[u8]| {
            c.after
                .is_some_and(|b| b.windows(needle.len()).any(|w| w == needle))
        };
        let subject = match c.table.name {
            "ims_subscriber" if !has(b"\"scscf\":null") => {
                follows("scscf", &PROFILE).then_some(Subject::Ims(c.id))
            }
            "subscriber" if has(b"\"serving_aaa\"") => {
                follows("serving_aaa", &NON_3GPP).then_some(Subject::Aaa(c.id))
            }
            "ifc_template" if c.before.is_some() => {
                let (before, after) = (fields(c.before), fields(c.after));
                let k = "template_content";
                (before.get(k) != after.get(k)).then_some(Subject::Template(c.id))
            }
            _ => None,
        };
        if let Some(s) = subject {
            queue(s);
        }
        Vec::new()
    }
}

fn queue(s: Subject) {
    PUSHES.with(|cell| {
        let Ok(mut p) = cell.try_borrow_mut() else {
            return;
        };
        let Some(ctx) = p.ctx.clone() else {
            return;
        };
        p.pending.insert(s);
        match &p.wake {
            Some(w) => {
                let _ = w.try_send(());
            }
            None => {
                let (tx, rx) = async_channel::bounded(1);
                p.wake = Some(tx);
                crate::runtime::spawn_task(push_loop(ctx, rx));
            }
        }
    });
}

/// How long a change waits before its push: the write is committed by
/// then, and changes made together are pushed once.
const SETTLE: Duration = Duration::from_millis(50);

async fn push_loop(ctx: Ctx, wake: async_channel::Receiver<()>) {
    loop {
        crate::runtime::stream::sleep(SETTLE).await;
        let pending = PUSHES.with(|cell| {
            cell.try_borrow_mut()
                .map(|mut p| std::mem::take(&mut p.pending))
                .unwrap_or_default()
        });
        if let Some(d) = ctx.extensions.get_arc::<Diameter>() {
            for s in pending {
                if let Err(e) = push(&ctx, &d, s).await {
                    tracing::warn!(subject = ?s, error = %e, "profile push not made");
                }
            }
        }
        if wake.recv().await.is_err() {
            return;
        }
    }
}

async fn push(ctx: &Ctx, d: &Diameter, s: Subject) -> Result<(), table::TableError> {
    let rows: Vec<ImsSubscriber> = match s {
        Subject::Ims(id) => table::get(&ctx.core, id).await?.into_iter().collect(),
        Subject::Template(id) => table::find_all_shards(&ctx.core, "scscf", SERVED)
            .await?
            .into_iter()
            .filter(|i: &ImsSubscriber| i.ifc_template_id == Some(id))
            .collect(),
        Subject::Aaa(id) => {
            if let Some(sub) = table::get::<Subscriber>(&ctx.core, id).await? {
                push_non_3gpp(ctx, d, &sub).await;
            }
            return Ok(());
        }
    };
    for ims in rows.iter().filter(|i| i.scscf.is_some()) {
        let imsi = ims.imsi.clone().unwrap_or_default();
        let Ok(xml) = super::cx::user_data(ctx, ims, &imsi) else {
            // Logged by user_data: nothing to push.
            continue;
        };
        let Some((peer, host, realm)) = super::cx::scscf_target(d, ims) else {
            continue;
        };
        let user = super::cx::private_identity(ctx, &imsi);
        let to = Target {
            peer: &peer,
            host: &host,
            realm: &realm,
        };
        let sent = send(ctx, d, (app::CX, command::PUSH_PROFILE), to, move |b| {
            b.text(&avp::USER_NAME, &user)
                .bytes(&avp::USER_DATA, xml.as_bytes());
        })
        .await;
        report("Cx", ims.ims_subscriber_id, &peer, sent);
    }
    Ok(())
}

/// An SWx PPR with the subscriber's Non-3GPP-User-Data to its AAA server.
async fn push_non_3gpp(ctx: &Ctx, d: &Diameter, sub: &Subscriber) {
    let Some(aaa) = sub.serving_aaa.as_deref() else {
        return;
    };
    let mut data =
        crate::domain::diameter::Builder::request(command::PUSH_PROFILE, app::SWX, 0, 0, 0);
    if let Err(e) = super::swx::profile(ctx, sub, &mut data).await {
        tracing::warn!(subscriber_id = sub.subscriber_id, error = ?e, "no non-3GPP profile to push");
        return;
    }
    let to = Target::stored(
        aaa,
        sub.serving_aaa_realm.as_deref(),
        sub.serving_aaa_peer.as_deref(),
    );
    let (peer, imsi, avps) = (to.peer.to_owned(), sub.imsi.clone(), data.avps().to_vec());
    let sent = send(ctx, d, (app::SWX, command::PUSH_PROFILE), to, move |b| {
        b.text(&avp::USER_NAME, &imsi).raw(&avps);
    })
    .await;
    report("SWx", sub.subscriber_id, &peer, sent);
}

/// Logs what became of a PPR of `app` for row `id` sent through `peer`.
fn report(app: &str, id: u64, peer: &str, sent: Result<u32, crate::diameter::SendError>) {
    match sent {
        Ok(code) => tracing::info!(app, id, peer, code, "profile pushed"),
        Err(e) => tracing::warn!(app, id, peer, error = %e, "profile push not answered"),
    }
}
