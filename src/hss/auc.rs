//! AuC records (a SIM's keys and SQN) and PyHSS's `/auc` provisioning
//! endpoints.
//!
//! A declared table: an AuC lives on a shard named by its id
//! (`auc_id % shards`); one created with an IMSI lives on the IMSI's shard,
//! so a vector request for it reaches one core once. IMSI and ICCID find
//! it through unique indexes. What is its own: the binary record, keys
//! sealed under the KEK, the SQN that a PATCH only moves forward, and the
//! redacted answer.

use std::borrow::Cow;

use std::sync::Arc;

use super::tables;
use crate::domain::api_error::{Api, ApiError};
use crate::domain::ids::{hex_exact, Iccid, Imsi};
use crate::domain::keywrap::{Kek, KeyMaterial};
use crate::domain::sqn::SqnState;
use crate::runtime::Core;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::storage::record::{FieldWriter, Fields, Record, RecordError};
use crate::table::{self, Body, Home, Placement, Row, TableDef, TableError, Unique};
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
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Auc)]
pub struct AucBody<'a> {
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
    #[schema(value_type = Option<u64>)]
    auc_id: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
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
    fn apply(&self, auc: &mut Auc, kek: Option<&Kek>) -> Result<(), TableError> {
        let bad = |e: crate::domain::ids::InvalidId| TableError::field(e.field, e.problem);
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
        // The SQN only moves forward: a body never lowers what was issued.
        if let Some(sqn) = self.sqn {
            if sqn > MAX_SQN {
                return Err(TableError::field("sqn", "must be below 2^48"));
            }
            auc.sqn.last = auc.sqn.last.max(sqn);
            auc.sqn.leased = auc.sqn.leased.max(auc.sqn.last);
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
                        return Err(TableError::field(
                            TEXT_FIELDS[i].0,
                            "longer than 256 characters",
                        ))
                    }
                    Some(s) => Some(s.to_string()),
                    None => None,
                };
            }
        }
        let _ = (&self.auc_id, &self.last_modified);
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
        m.serialize_entry("sqn", &a.sqn.floor(epoch()))?;
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

/// This process's SQN lease epoch: random, so no earlier process (on any
/// shard layout) shares it; never 0 ("no lease").
pub fn epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| rand::random::<u64>().max(1))
}

static AUC: TableDef = TableDef {
    name: "auc",
    noun: "AuC",
    id_field: "auc_id",
    store: tables::AUC,
    counter: tables::META_AUC_NEXT,
    fields: public_fields,
};

/// An AuC's fields as a redacted answer shows them (never a key).
fn public_fields(bytes: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let auc = Auc::from_bytes(bytes).ok()?;
    let view = AucView {
        auc: &auc,
        insecure: false,
        kek: None,
    };
    match serde_json::to_value(&view).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

fn home(a: &Auc) -> Home {
    a.imsi.clone().map_or(Home::Here, Home::Key)
}

impl Row for Auc {
    const DEF: &'static TableDef = &AUC;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["ki", "opc", "amf"];
    const UNIQUE: &'static [Unique<Self>] = &[
        Unique {
            field: "imsi",
            store: tables::IMSI_INDEX,
            key: |a| a.imsi.clone(),
        },
        Unique {
            field: "iccid",
            store: tables::ICCID_INDEX,
            key: |a| a.iccid().map(str::to_owned),
        },
    ];
    /// Keys are sealed under this KEK.
    type Env = Option<Arc<Kek>>;

    fn id(&self) -> u64 {
        self.id
    }
    fn set_id(&mut self, id: u64) {
        self.id = id;
    }
    /// The SQN state is the row's as it is now: SQNs only go forward.
    fn restored(&mut self, current: &Self) {
        self.sqn = current.sqn;
    }
    fn blank() -> Self {
        Auc {
            id: 0,
            ki: KeyMaterial::seal(&[0; 16], None),
            opc: KeyMaterial::seal(&[0; 16], None),
            amf: [0; 2],
            sqn: SqnState::at(0),
            imsi: None,
            esim: false,
            text: Default::default(),
            last_modified: 0,
        }
    }
    fn apply(&mut self, body: &Body, kek: &Self::Env) -> Result<(), TableError> {
        let parsed: AucBody<'_> = serde_path_to_error::deserialize(serde_json::Value::Object(
            body.clone(),
        ))
        .map_err(|e| {
            let field = e.path().to_string();
            TableError::field(field, e.into_inner().to_string())
        })?;
        parsed.apply(self, kek.as_deref())
    }
    fn stamp(&mut self, now: u64) {
        self.last_modified = now;
    }
    fn encode(&self) -> Result<Vec<u8>, TableError> {
        Ok(self.to_bytes())
    }
    fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        Auc::from_bytes(bytes).map_err(|e| {
            tracing::error!(error = %e, "damaged AuC record");
            TableError::Damaged("auc")
        })
    }
}

/// Reads AuC `id` wherever it lives.
pub async fn load(core: &Core, id: u64) -> Result<Option<Auc>, ApiError> {
    Ok(table::get(core, id).await?)
}

/// Answers `auc` as the AuC endpoints do (redacted unless insecure).
pub fn reply_auc(ctx: &Ctx, reply: &mut Reply<'_>, auc: &Auc) -> Result<(), ApiError> {
    reply.json(200, &<AucApi as crud::Face>::view(ctx, auc))
}

/// The REST face of AuCs: keys sealed under the configured KEK, answers
/// redacted unless `hss.enable_insecure_auc`.
#[derive(Debug)]
pub struct AucApi;

impl crud::Face for AucApi {
    type Row = Auc;
    const PATHS: crud::Paths = crud::Paths {
        base: "/auc",
        list: "/auc/list",
        item: "/auc/{auc_id}",
    };
    const API: Api = Api::Pyhss;
    type View<'a> = AucView<'a>;
    type Doc = AucBody<'static>;
    fn env(ctx: &Ctx) -> Option<Arc<Kek>> {
        ctx.config.hss.kek.clone()
    }
    fn view<'a>(ctx: &'a Ctx, auc: &'a Auc) -> AucView<'a> {
        AucView {
            auc,
            insecure: ctx.config.hss.enable_insecure_auc,
            kek: ctx.config.hss.kek.as_deref(),
        }
    }
}

/// `GET /auc/iccid/{iccid}`.
#[derive(Debug)]
pub struct ByIccid;

impl crud::Lookup for ByIccid {
    type Face = AucApi;
    const FIELD: &'static str = "iccid";
    const PARAM: &'static str = "iccid";
    fn key(raw: &str) -> Result<String, ApiError> {
        Iccid::parse(raw)
            .map(|i| i.as_str().to_owned())
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
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
