//! AuC records (a SIM's keys and SQN) and PyHSS's `/auc` provisioning
//! endpoints.
//!
//! An AuC lives on a shard named by its id (`auc_id % shards`); one
//! created with an IMSI lives on the IMSI's shard, so vector requests for
//! it need no hop. IMSI and ICCID find it through unique indexes.

use std::borrow::Cow;

use super::index::{self, owner_of};
use super::{check_provisioning, tables, Deleted};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::ids::{hex_exact, Iccid, Imsi};
use crate::domain::keywrap::{Kek, KeyMaterial};
use crate::domain::router::Params;
use crate::domain::shard::shard_of;
use crate::domain::sqn::SqnState;
use crate::runtime::{clock, Core, LocalBoxFuture};
use crate::server::{json_body, mesh_error, store_error, Ctx, Reply};
use crate::storage::record::{FieldWriter, Fields, Record, RecordError};
use crate::storage::Op;
use serde::{Deserialize, Serialize};

/// Largest SQN (48 bits).
pub const MAX_SQN: u64 = (1 << 48) - 1;

/// Optional text fields PyHSS keeps on an AuC, with their record tags.
const TEXT_FIELDS: [(&str, u8); 17] = [
    ("batch_name", 20),
    ("sim_vendor", 21),
    ("lpa", 22),
    ("pin1", 23),
    ("pin2", 24),
    ("puk1", 25),
    ("puk2", 26),
    ("kid", 27),
    ("psk", 28),
    ("des", 29),
    ("adm1", 30),
    ("misc1", 31),
    ("misc2", 32),
    ("misc3", 33),
    ("misc4", 34),
    ("algo", 35),
    ("iccid", 7),
];

/// Index of `iccid` in [`TEXT_FIELDS`] (kept there for the shared
/// encoding; validated separately).
const ICCID: usize = 16;

/// Fields never shown unless `hss.enable_insecure_auc` (PyHSS redacts the
/// same set).
const SECRET_TEXT: [&str; 4] = ["kid", "psk", "des", "adm1"];

/// One SIM's authentication data.
#[derive(Clone)]
pub struct Auc {
    pub id: u64,
    /// Ki and OPc, wrapped under the KEK when one is configured.
    pub ki: KeyMaterial,
    pub opc: KeyMaterial,
    pub amf: [u8; 2],
    /// The last SQN issued and the SQN lease (see [`crate::domain::sqn`]).
    pub sqn: SqnState,
    pub imsi: Option<String>,
    pub esim: bool,
    /// The optional text fields, by position in [`TEXT_FIELDS`].
    pub text: [Option<String>; 17],
    /// Unix seconds of the last change.
    pub last_modified: u64,
}

impl std::fmt::Debug for Auc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auc")
            .field("id", &self.id)
            .field("imsi", &self.imsi)
            .field("sqn", &self.sqn)
            .finish_non_exhaustive()
    }
}

impl Auc {
    pub fn iccid(&self) -> Option<&str> {
        self.text[ICCID].as_deref()
    }
}

impl Record for Auc {
    const TABLE: u8 = tables::AUC;
    const SCHEMA: u16 = 1;

    fn encode_fields(&self, w: &mut FieldWriter) {
        w.u64(1, self.id);
        for (tag, key) in [(2, &self.ki), (3, &self.opc)] {
            match key {
                KeyMaterial::Clear(k) => w.bytes(tag, &**k),
                KeyMaterial::Wrapped { bytes, kek } => {
                    w.bytes(tag, bytes);
                    w.bytes(10, kek);
                }
            }
        }
        w.bytes(4, &self.amf);
        w.u64(5, self.sqn.last);
        // Only once a lease was taken: a provisioned record stays small.
        if self.sqn.leased > self.sqn.last {
            w.u64(11, self.sqn.leased);
        }
        if self.sqn.epoch != 0 {
            w.u64(12, self.sqn.epoch);
        }
        w.str(6, self.imsi.as_deref());
        w.bool(8, self.esim);
        w.u64(9, self.last_modified);
        for ((_, tag), value) in TEXT_FIELDS.iter().zip(&self.text) {
            w.str(*tag, value.as_deref());
        }
    }

    fn decode_fields(_schema: u16, f: &Fields<'_>) -> Result<Self, RecordError> {
        // 16 bytes: in clear; 24 bytes: wrapped under the KEK named by tag 10.
        let key = |tag, name| -> Result<KeyMaterial, RecordError> {
            let b = f.bytes(tag).ok_or(RecordError::Field(name))?;
            if let Ok(clear) = <[u8; 16]>::try_from(b) {
                return Ok(KeyMaterial::Clear(zeroize::Zeroizing::new(clear)));
            }
            let bytes = <[u8; 24]>::try_from(b).map_err(|_| RecordError::Field(name))?;
            let kek = f
                .bytes(10)
                .and_then(|k| <[u8; 4]>::try_from(k).ok())
                .ok_or(RecordError::Field("kek fingerprint"))?;
            Ok(KeyMaterial::Wrapped { bytes, kek })
        };
        let amf = f
            .bytes(4)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .ok_or(RecordError::Field("amf"))?;
        let mut text: [Option<String>; 17] = Default::default();
        for ((name, tag), slot) in TEXT_FIELDS.iter().zip(text.iter_mut()) {
            *slot = f.str(*tag, name)?;
        }
        let last = f.u64(5, "sqn")?;
        Ok(Auc {
            id: f.u64(1, "auc_id")?,
            ki: key(2, "ki")?,
            opc: key(3, "opc")?,
            amf,
            sqn: SqnState {
                last,
                // Absent in records written before leases: no lease.
                leased: f.u64(11, "sqn lease")?.max(last),
                epoch: f.u64(12, "sqn lease epoch")?,
            },
            imsi: f.str(6, "imsi")?,
            esim: f.bool(8),
            last_modified: f.u64(9, "last_modified")?,
            text,
        })
    }
}

/// A PUT or PATCH body. Keys PyHSS returns (`auc_id`, `last_modified`) are
/// accepted and ignored, so a GET answer can be sent back; any other
/// unknown key is a 400.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AucBody<'a> {
    #[serde(borrow, default)]
    ki: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    opc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    amf: Option<Cow<'a, str>>,
    #[serde(default)]
    sqn: Option<u64>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    imsi: Option<Option<Cow<'a, str>>>,
    #[serde(default)]
    esim: Option<bool>,
    #[serde(default)]
    auc_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    last_modified: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    batch_name: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    sim_vendor: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    lpa: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    pin1: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    pin2: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    puk1: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    puk2: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    kid: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    psk: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    des: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    adm1: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    misc1: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    misc2: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    misc3: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    misc4: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    algo: Option<Option<Cow<'a, str>>>,
    #[serde(borrow, default, deserialize_with = "super::double")]
    iccid: Option<Option<Cow<'a, str>>>,
}

impl AucBody<'_> {
    fn text(&self) -> [&Option<Option<Cow<'_, str>>>; 17] {
        [
            &self.batch_name,
            &self.sim_vendor,
            &self.lpa,
            &self.pin1,
            &self.pin2,
            &self.puk1,
            &self.puk2,
            &self.kid,
            &self.psk,
            &self.des,
            &self.adm1,
            &self.misc1,
            &self.misc2,
            &self.misc3,
            &self.misc4,
            &self.algo,
            &self.iccid,
        ]
    }

    /// Applies the body to `auc` (a new one for PUT), validating each field;
    /// keys are sealed under `kek`.
    fn apply(&self, auc: &mut Auc, now: u64, kek: Option<&Kek>) -> Result<(), ApiError> {
        let bad = |e: crate::domain::ids::InvalidId| ApiError::bad_request(e.to_string());
        if let Some(ki) = &self.ki {
            let k = zeroize::Zeroizing::new(hex_exact::<16>("ki", ki).map_err(bad)?);
            auc.ki = KeyMaterial::seal(&k, kek);
        }
        if let Some(opc) = &self.opc {
            let k = zeroize::Zeroizing::new(hex_exact::<16>("opc", opc).map_err(bad)?);
            auc.opc = KeyMaterial::seal(&k, kek);
        }
        if let Some(amf) = &self.amf {
            auc.amf = hex_exact::<2>("amf", amf).map_err(bad)?;
        }
        if let Some(sqn) = self.sqn {
            if sqn > MAX_SQN {
                return Err(ApiError::bad_request("sqn: must be below 2^48"));
            }
            auc.sqn = SqnState::at(sqn);
        }
        if let Some(imsi) = &self.imsi {
            auc.imsi = match imsi {
                Some(i) => Some(Imsi::parse(i).map_err(bad)?.as_str().to_owned()),
                None => None,
            };
        }
        if let Some(esim) = self.esim {
            auc.esim = esim;
        }
        for (i, value) in self.text().into_iter().enumerate() {
            if let Some(v) = value {
                auc.text[i] = match v {
                    Some(s) if i == ICCID => {
                        Some(Iccid::parse(s).map_err(bad)?.as_str().to_owned())
                    }
                    Some(s) if s.len() > 256 => {
                        return Err(ApiError::bad_request(format!(
                            "{}: longer than 256 characters",
                            TEXT_FIELDS[i].0
                        )))
                    }
                    Some(s) => Some(s.to_string()),
                    None => None,
                };
            }
        }
        let _ = (&self.auc_id, &self.last_modified);
        auc.last_modified = now;
        Ok(())
    }
}

/// The JSON answer: PyHSS's keys, secrets only when insecure mode is on,
/// serialized straight into the response (no value tree).
pub struct AucView<'a> {
    pub auc: &'a Auc,
    /// Show Ki and OPc (insecure mode), opened with this KEK.
    pub insecure: bool,
    pub kek: Option<&'a Kek>,
}

impl Serialize for AucView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = self.auc;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("auc_id", &a.id)?;
        if self.insecure {
            let show = |k: &KeyMaterial| k.open(self.kek).ok().map(|k| hex::encode_upper(*k));
            m.serialize_entry("ki", &show(&a.ki))?;
            m.serialize_entry("opc", &show(&a.opc))?;
        }
        m.serialize_entry("amf", &hex::encode_upper(a.amf))?;
        // What the next vector builds on (past a lease an earlier
        // process took).
        m.serialize_entry("sqn", &a.sqn.floor(super::vectors::epoch()))?;
        m.serialize_entry("imsi", &a.imsi)?;
        m.serialize_entry("esim", &a.esim)?;
        for ((name, _), value) in TEXT_FIELDS.iter().zip(&a.text) {
            if !self.insecure && SECRET_TEXT.contains(name) {
                continue;
            }
            match (*name, value) {
                // PyHSS's default: 3 = Milenage.
                ("algo", None) => m.serialize_entry(name, "3")?,
                (_, v) => m.serialize_entry(name, v)?,
            }
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(a.last_modified);
        m.serialize_entry(
            "last_modified",
            &humantime::format_rfc3339_seconds(t).to_string(),
        )?;
        m.end()
    }
}

/// Reads AuC `id` on its own core (durable values only).
pub async fn load_here(core: &Core, id: u64) -> Result<Option<Auc>, ApiError> {
    let bytes = core
        .store
        .read_durable(tables::AUC, &id.to_be_bytes(), |v| v.map(<[u8]>::to_vec))
        .await
        .map_err(store_error)?;
    bytes
        .map(|b| {
            Auc::from_bytes(&b).map_err(|e| {
                tracing::error!(auc_id = id, error = %e, "damaged AuC record");
                ApiError::Internal("damaged record".into())
            })
        })
        .transpose()
}

/// Reads AuC `id` wherever it lives.
pub async fn load(core: &Core, id: u64) -> Result<Option<Auc>, ApiError> {
    core.on(owner_of(id, core.shards()), move |c| async move {
        load_here(&c, id).await
    })
    .await
    .map_err(mesh_error)?
}

/// Whether AuC `id` still carries `key` as its IMSI (the IMSI index's check).
fn holds_imsi(core: &Core, id: u64, key: &[u8]) -> bool {
    core.store.read(tables::AUC, &id.to_be_bytes(), |v| {
        v.and_then(|b| Auc::from_bytes(b).ok())
            .is_some_and(|a| a.imsi.as_deref().map(str::as_bytes) == Some(key))
    })
}

fn holds_iccid(core: &Core, id: u64, key: &[u8]) -> bool {
    core.store.read(tables::AUC, &id.to_be_bytes(), |v| {
        v.and_then(|b| Auc::from_bytes(b).ok())
            .is_some_and(|a| a.iccid().map(str::as_bytes) == Some(key))
    })
}

/// The counter stored on this core's shard: the next unused id counter.
fn stored_counter(core: &Core) -> u64 {
    core.store.read(tables::META, tables::META_AUC_NEXT, |v| {
        v.and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(1, u64::from_be_bytes)
    })
}

/// The next AuC id on this core's shard (`counter * shards + shard`) and
/// its counter.
fn next_id(core: &Core) -> (u64, u64) {
    thread_local! {
        static NEXT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    let counter = NEXT
        .with(|n| n.get())
        .unwrap_or_else(|| stored_counter(core));
    NEXT.with(|n| n.set(Some(counter + 1)));
    let id = counter * u64::from(core.shards()) + u64::from(core.shard.0);
    (id, counter)
}

/// The write that persists `counter` as used. Built when the record is
/// committed, never lowering the stored counter: concurrent creates may
/// commit in another order than they took their ids.
fn counter_op(core: &Core, counter: u64) -> Op {
    let next = stored_counter(core).max(counter + 1);
    Op::Put {
        table: tables::META,
        key: tables::META_AUC_NEXT.to_vec(),
        value: next.to_be_bytes().to_vec(),
    }
}

/// Claims the IMSI and ICCID of `auc` (those that differ from `before`).
async fn claim_keys(
    core: &Core,
    auc: &Auc,
    before: Option<&Auc>,
) -> Result<Vec<(u8, Vec<u8>)>, ApiError> {
    let wanted = vec![
        index::Wanted {
            table: tables::IMSI_INDEX,
            new: auc.imsi.clone(),
            old: before.and_then(|b| b.imsi.clone()),
            holds: holds_imsi,
            what: "imsi",
        },
        index::Wanted {
            table: tables::ICCID_INDEX,
            new: auc.iccid().map(str::to_owned),
            old: before.and_then(|b| b.iccid().map(str::to_owned)),
            holds: holds_iccid,
            what: "iccid",
        },
    ];
    index::claim_changed(core, auc.id, "auc_id", wanted).await
}

async fn release_all(core: &Core, claimed: Vec<(u8, Vec<u8>)>) {
    for (t, k) in claimed {
        index::release(core, t, k).await;
    }
}

fn reply_auc(ctx: &Ctx, reply: &mut Reply<'_>, auc: &Auc) -> Result<(), ApiError> {
    reply.json(
        200,
        &AucView {
            auc,
            insecure: ctx.config.hss.enable_insecure_auc,
            kek: ctx.config.hss.kek.as_deref(),
        },
    )
}

fn parse_id(params: &Params<'_>) -> Result<u64, ApiError> {
    super::id_param(params, "auc_id")
}

/// `PUT /auc/`: creates an AuC.
pub fn put<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let body: AucBody<'_> = json_body(req.body)?;
        super::require(&[
            ("ki", body.ki.is_some()),
            ("opc", body.opc.is_some()),
            ("amf", body.amf.is_some()),
        ])?;
        let mut auc = Auc {
            id: 0,
            ki: KeyMaterial::seal(&[0; 16], None),
            opc: KeyMaterial::seal(&[0; 16], None),
            amf: [0; 2],
            sqn: SqnState::at(0),
            imsi: None,
            esim: false,
            text: Default::default(),
            last_modified: 0,
        };
        body.apply(
            &mut auc,
            clock::unix_seconds(),
            ctx.config.hss.kek.as_deref(),
        )?;
        let core = &ctx.core;
        let owner = match &auc.imsi {
            Some(imsi) => shard_of(imsi.as_bytes(), core.shards()),
            None => core.shard,
        };
        let (id, counter) = core
            .on(owner, |c| async move { next_id(&c) })
            .await
            .map_err(mesh_error)?;
        auc.id = id;
        let claimed = claim_keys(core, &auc, None).await?;
        let record = auc.to_bytes();
        let written = core
            .on(owner, move |c| async move {
                c.store
                    .commit(&[
                        counter_op(&c, counter),
                        Op::Put {
                            table: tables::AUC,
                            key: id.to_be_bytes().to_vec(),
                            value: record,
                        },
                    ])
                    .await
            })
            .await
            .map_err(mesh_error)?;
        if let Err(e) = written {
            for (t, k) in claimed {
                let _ = index::remove(core, t, k, id).await;
            }
            return Err(store_error(e));
        }
        release_all(core, claimed).await;
        reply_auc(ctx, reply, &auc)
    })
}

/// `GET /auc/{auc_id}`.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = parse_id(&params)?;
        let auc = load(&ctx.core, id).await?.ok_or(ApiError::NotFound)?;
        reply_auc(ctx, reply, &auc)
    })
}

/// `PATCH /auc/{auc_id}`: changes the fields given.
pub fn patch<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        let body: AucBody<'_> = json_body(req.body)?;
        let core = &ctx.core;
        let before = load(core, id).await?.ok_or(ApiError::NotFound)?;
        let mut after = before.clone();
        body.apply(
            &mut after,
            clock::unix_seconds(),
            ctx.config.hss.kek.as_deref(),
        )?;
        let claimed = claim_keys(core, &after, Some(&before)).await?;
        // Read-modify-write on the owner with no await in between, so a
        // concurrent change (an SQN issued meanwhile) is not lost.
        let patch_imsi = body
            .imsi
            .as_ref()
            .map(|i| i.as_ref().map(|s| s.to_string()));
        let fields = after.clone();
        let written = core
            .on(owner_of(id, core.shards()), move |c| async move {
                let current = c
                    .store
                    .read(tables::AUC, &id.to_be_bytes(), |v| v.map(Auc::from_bytes));
                let mut next = match current {
                    Some(Ok(a)) => a,
                    Some(Err(_)) => return Err(ApiError::Internal("damaged record".into())),
                    None => return Err(ApiError::NotFound),
                };
                // The current SQN and lease, moved forward (never back) to
                // an SQN the body sets.
                let mut sqn = next.sqn;
                if fields.sqn != before.sqn {
                    sqn.last = sqn.last.max(fields.sqn.last);
                    sqn.leased = sqn.leased.max(sqn.last);
                }
                next = Auc { sqn, ..fields };
                if let Some(imsi) = patch_imsi {
                    next.imsi = imsi;
                }
                let bytes = next.to_bytes();
                c.store
                    .commit(&[Op::Put {
                        table: tables::AUC,
                        key: id.to_be_bytes().to_vec(),
                        value: bytes,
                    }])
                    .await
                    .map_err(store_error)?;
                Ok(next)
            })
            .await
            .map_err(mesh_error)?;
        let after = match written {
            Ok(a) => a,
            Err(e) => {
                for (t, k) in claimed {
                    let _ = index::remove(core, t, k, id).await;
                }
                return Err(e);
            }
        };
        release_all(core, claimed).await;
        // Index entries of keys the AuC no longer carries.
        let old_keys = [
            (tables::IMSI_INDEX, before.imsi.clone(), after.imsi.clone()),
            (
                tables::ICCID_INDEX,
                before.iccid().map(str::to_owned),
                after.iccid().map(str::to_owned),
            ),
        ];
        for (t, old, new) in old_keys {
            if let Some(old) = old.filter(|o| Some(o) != new.as_ref()) {
                let _ = index::remove(core, t, old.into_bytes(), id).await;
            }
        }
        reply_auc(ctx, reply, &after)
    })
}

/// `DELETE /auc/{auc_id}`.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        check_provisioning(ctx, &req)?;
        let id = parse_id(&params)?;
        let core = &ctx.core;
        let removed = core
            .on(owner_of(id, core.shards()), move |c| async move {
                let current = load_here(&c, id).await?;
                let Some(auc) = current else {
                    return Ok(None);
                };
                c.store
                    .commit(&[Op::Delete {
                        table: tables::AUC,
                        key: id.to_be_bytes().to_vec(),
                    }])
                    .await
                    .map_err(store_error)?;
                Ok::<_, ApiError>(Some(auc))
            })
            .await
            .map_err(mesh_error)??;
        let auc = removed.ok_or(ApiError::NotFound)?;
        for (t, key) in [
            (tables::IMSI_INDEX, auc.imsi.clone()),
            (tables::ICCID_INDEX, auc.iccid().map(str::to_owned)),
        ] {
            if let Some(k) = key {
                let _ = index::remove(core, t, k.into_bytes(), id).await;
            }
        }
        reply.json(200, &Deleted::OK)
    })
}

/// The AuC whose IMSI is `imsi`, through the index (checked on read).
pub async fn find_by_imsi(core: &Core, imsi: &Imsi) -> Result<Option<Auc>, ApiError> {
    let key = imsi.as_str();
    let carries = |a: &Auc| a.imsi.as_deref() == Some(key);
    if let Some(auc) = index::find(
        core,
        tables::IMSI_INDEX,
        key,
        ("imsi", "auc_id"),
        load,
        carries,
    )
    .await?
    {
        return Ok(Some(auc));
    }
    // The seed's walkthrough: an AuC without an IMSI, referenced by the
    // subscriber that has it.
    match super::subscriber::find_by_imsi(core, imsi.as_str()).await? {
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

/// `GET /auc/iccid/{iccid}`.
pub fn get_by_iccid<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let iccid = Iccid::parse(params.get("iccid").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let key = iccid.as_str();
        let carries = |a: &Auc| a.iccid() == Some(key);
        let auc = index::find(
            &ctx.core,
            tables::ICCID_INDEX,
            key,
            ("iccid", "auc_id"),
            load,
            carries,
        )
        .await?
        .ok_or(ApiError::NotFound)?;
        reply_auc(ctx, reply, &auc)
    })
}

/// `GET /auc/list?page=N&page_size=M`: AuCs in id order.
pub fn list<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = super::page(ctx, &req)?;
        let all = super::scan_all(ctx, tables::AUC, (page + 1) * size).await?;
        let insecure = ctx.config.hss.enable_insecure_auc;
        let kek = ctx.config.hss.kek.as_deref();
        let aucs: Vec<Auc> = all
            .iter()
            .skip(page * size)
            .take(size)
            .filter_map(|(_, v)| Auc::from_bytes(v).ok())
            .collect();
        let items: Vec<AucView<'_>> = aucs
            .iter()
            .map(|auc| AucView { auc, insecure, kek })
            .collect();
        reply.json(200, &items)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Auc {
        let mut text: [Option<String>; 17] = Default::default();
        text[0] = Some("batch-7".into());
        text[ICCID] = Some("8988211000000000001".into());
        Auc {
            id: 42,
            ki: KeyMaterial::seal(&[0x46; 16], None),
            opc: KeyMaterial::seal(&[0xe8; 16], None),
            amf: [0x80, 0],
            sqn: SqnState::at(12345),
            imsi: Some("001010000000001".into()),
            esim: true,
            text,
            last_modified: 1_700_000_000,
        }
    }

    #[test]
    fn record_round_trips_within_128_bytes() {
        let a = sample();
        let bytes = a.to_bytes();
        let b = Auc::from_bytes(&bytes).unwrap();
        assert_eq!(b.id, 42);
        assert_eq!(*b.ki.open(None).unwrap(), [0x46; 16]);
        assert_eq!(b.imsi.as_deref(), Some("001010000000001"));
        assert_eq!(b.iccid(), Some("8988211000000000001"));
        assert_eq!(b.text[0].as_deref(), Some("batch-7"));
        assert!(b.esim);
        // A typical provisioned SIM: keys, AMF, SQN, IMSI and ICCID.
        let mut typical = sample();
        typical.text[0] = None;
        assert!(
            typical.to_bytes().len() <= 128,
            "{} bytes",
            typical.to_bytes().len()
        );
    }

    fn view(a: &Auc, insecure: bool) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_slice(
            &simd_json::serde::to_vec(&AucView {
                auc: a,
                insecure,
                kek: None,
            })
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn answers_redact_secrets_unless_insecure() {
        let a = sample();
        let m = view(&a, false);
        for k in ["ki", "opc", "kid", "psk", "des", "adm1"] {
            assert!(!m.contains_key(k), "{k} shown");
        }
        assert_eq!(m["last_modified"], "2023-11-14T22:13:20Z");
        assert_eq!(m["algo"], "3");
        let m = view(&a, true);
        assert_eq!(m["ki"], "46464646464646464646464646464646");
    }
}
