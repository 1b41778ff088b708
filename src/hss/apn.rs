//! APNs: PyHSS's `/apn`. APNs are few and read by every subscriber lookup,
//! so they live in the catalog: written through core 0, read lock-free on
//! every core.

use serde::{Deserialize, Serialize};

use super::tables;
use crate::server::crud::{Paths, Resource};
use crate::table::{Placement, Row, TableDef, TableError};

/// An APN as stored (JSON in the catalog: fields added later default when
/// older values are read) and as answered (PyHSS's keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Apn {
    pub apn_id: u64,
    pub apn: String,
    #[serde(default)]
    pub ip_version: i64,
    #[serde(default)]
    pub pgw_address: Option<String>,
    #[serde(default)]
    pub sgw_address: Option<String>,
    #[serde(default = "default_charging")]
    pub charging_characteristics: String,
    pub apn_ambr_dl: u64,
    pub apn_ambr_ul: u64,
    #[serde(default = "default_qci")]
    pub qci: i64,
    #[serde(default = "default_arp")]
    pub arp_priority: i64,
    #[serde(default)]
    pub arp_preemption_capability: bool,
    #[serde(default = "yes")]
    pub arp_preemption_vulnerability: bool,
    #[serde(default)]
    pub charging_rule_list: Option<String>,
    #[serde(default)]
    pub nbiot: bool,
    #[serde(default)]
    pub nidd_scef_id: Option<String>,
    #[serde(default)]
    pub nidd_scef_realm: Option<String>,
    #[serde(default)]
    pub nidd_mechanism: Option<i64>,
    #[serde(default)]
    pub nidd_rds: Option<i64>,
    #[serde(default)]
    pub nidd_preferred_data_mode: Option<i64>,
    #[serde(default)]
    pub last_modified: String,
}

fn default_charging() -> String {
    "0800".into()
}
fn default_qci() -> i64 {
    9
}
fn default_arp() -> i64 {
    4
}
fn yes() -> bool {
    true
}

static APN: TableDef = TableDef {
    name: "apn",
    noun: "APN",
    id_field: "apn_id",
    store: tables::APN,
    counter: tables::META_APN_NEXT,
    fields: crate::table::json::fields,
};

fn text(field: &'static str, v: &Option<String>, max: usize) -> Result<(), TableError> {
    match v {
        Some(s) if s.len() > max => Err(TableError::field(
            field,
            format!("longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

impl Row for Apn {
    const DEF: &'static TableDef = &APN;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["apn", "apn_ambr_dl", "apn_ambr_ul"];
    type Env = ();

    fn id(&self) -> u64 {
        self.apn_id
    }
    fn set_id(&mut self, id: u64) {
        self.apn_id = id;
    }
    fn blank() -> Self {
        Apn {
            apn_id: 0,
            apn: String::new(),
            ip_version: 0,
            pgw_address: None,
            sgw_address: None,
            charging_characteristics: default_charging(),
            apn_ambr_dl: 0,
            apn_ambr_ul: 0,
            qci: default_qci(),
            arp_priority: default_arp(),
            arp_preemption_capability: false,
            arp_preemption_vulnerability: true,
            charging_rule_list: None,
            nbiot: false,
            nidd_scef_id: None,
            nidd_scef_realm: None,
            nidd_mechanism: None,
            nidd_rds: None,
            nidd_preferred_data_mode: None,
            last_modified: String::new(),
        }
    }
    fn check(&self) -> Result<(), TableError> {
        let bad = |f, m: &str| Err(TableError::field(f, m));
        if self.apn.is_empty() || self.apn.len() > 50 {
            return bad("apn", "must be 1 to 50 characters");
        }
        if !(0..=3).contains(&self.ip_version) {
            return bad("ip_version", "must be 0 to 3");
        }
        let cc = &self.charging_characteristics;
        if cc.len() != 4 || !cc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("charging_characteristics", "must be 4 hex digits");
        }
        if !(1..=254).contains(&self.qci) {
            return bad("qci", "must be 1 to 254");
        }
        if !(1..=15).contains(&self.arp_priority) {
            return bad("arp_priority", "must be 1 to 15");
        }
        text("pgw_address", &self.pgw_address, 50)?;
        text("sgw_address", &self.sgw_address, 50)?;
        text("charging_rule_list", &self.charging_rule_list, 18)?;
        text("nidd_scef_id", &self.nidd_scef_id, 512)?;
        text("nidd_scef_realm", &self.nidd_scef_realm, 512)
    }
    crate::json_row!();
}

impl Resource for Apn {
    const PATHS: Paths = Paths {
        base: "/apn",
        list: "/apn/list",
        item: "/apn/{apn_id}",
    };
}
