//! Subscribers: PyHSS's `/subscriber` API, a declared table. A subscriber
//! lives on its IMSI's shard (its id names that shard), found by IMSI and
//! by MSISDN through unique indexes. References are checked on every
//! write: the AuC must exist, and so must the default APN and every APN
//! listed.

use serde::{Deserialize, Serialize};

use super::{apn::Apn, auc::Auc, roaming::RoamingRule, tables};
use crate::domain::api_error::ApiError;
use crate::domain::ids::{Imsi, Msisdn};
use crate::runtime::Core;
use crate::server::crud::{Paths, Resource};
use crate::table::{
    self, exists, Home, Multi, Placement, Reference, Row, TableDef, TableError, Unique,
};

/// The key of the served-rows indexes.
pub const SERVED: &str = "served";

/// A subscriber, with PyHSS 2.0.0's keys (and the seed's `apn_list_swx`).
/// Stored as JSON: fields added later read as their defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Subscriber {
    pub subscriber_id: u64,
    pub imsi: String,
    pub enabled: bool,
    pub auc_id: u64,
    pub default_apn: u64,
    pub apn_list: String,
    /// The seed's (PyHSS 2.0.0 has none): answered only when set, so
    /// 2.0.0's clients see the key set they know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apn_list_swx: Option<String>,
    pub msisdn: Option<String>,
    pub ue_ambr_dl: u64,
    pub ue_ambr_ul: u64,
    pub nam: i64,
    pub roaming_enabled: bool,
    pub roaming_rule_list: Option<String>,
    pub subscribed_rau_tau_timer: i64,
    pub serving_mme: Option<String>,
    pub serving_mme_timestamp: Option<String>,
    pub serving_mme_realm: Option<String>,
    pub serving_mme_peer: Option<String>,
    /// The 3GPP AAA server that registered the subscriber over SWx (and
    /// its realm, the peer it came through, when): answered only when
    /// set, so 2.0.0's clients see the key set they know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_aaa: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_aaa_realm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_aaa_peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_aaa_timestamp: Option<String>,
    pub serving_sgsn: Option<String>,
    pub serving_sgsn_timestamp: Option<String>,
    pub serving_vlr: Option<String>,
    pub serving_vlr_timestamp: Option<String>,
    pub serving_msc: Option<String>,
    pub serving_msc_timestamp: Option<String>,
    pub last_seen_eci: Option<String>,
    pub last_seen_enodeb_id: Option<String>,
    pub last_seen_cell_id: Option<String>,
    pub last_seen_tac: Option<String>,
    pub last_seen_mcc: Option<String>,
    pub last_seen_mnc: Option<String>,
    pub last_location_update_timestamp: Option<String>,
    pub last_modified: String,
}

impl Default for Subscriber {
    fn default() -> Self {
        Subscriber {
            subscriber_id: 0,
            imsi: String::new(),
            enabled: true,
            auc_id: 0,
            default_apn: 0,
            apn_list: String::new(),
            apn_list_swx: None,
            msisdn: None,
            ue_ambr_dl: 0,
            ue_ambr_ul: 0,
            nam: 0,
            roaming_enabled: true,
            roaming_rule_list: None,
            subscribed_rau_tau_timer: 600,
            serving_mme: None,
            serving_mme_timestamp: None,
            serving_mme_realm: None,
            serving_mme_peer: None,
            serving_aaa: None,
            serving_aaa_realm: None,
            serving_aaa_peer: None,
            serving_aaa_timestamp: None,
            serving_sgsn: None,
            serving_sgsn_timestamp: None,
            serving_vlr: None,
            serving_vlr_timestamp: None,
            serving_msc: None,
            serving_msc_timestamp: None,
            last_seen_eci: None,
            last_seen_enodeb_id: None,
            last_seen_cell_id: None,
            last_seen_tac: None,
            last_seen_mcc: None,
            last_seen_mnc: None,
            last_location_update_timestamp: None,
            last_modified: String::new(),
        }
    }
}

static SUBSCRIBER: TableDef = TableDef {
    name: "subscriber",
    noun: "subscriber",
    id_field: "subscriber_id",
    store: tables::SUBSCRIBER,
    counter: tables::META_SUB_NEXT,
    fields: crate::table::json::fields,
};

/// The ids of a comma-separated list (PyHSS's `apn_list`,
/// `roaming_rule_list`).
fn apn_ids(field: &'static str, list: Option<&str>) -> Result<Vec<u64>, TableError> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| TableError::field(field, format!("{s:?} is not an id")))
        })
        .collect()
}

fn home(s: &Subscriber) -> Home {
    Home::Key(s.imsi.clone())
}

impl Row for Subscriber {
    const DEF: &'static TableDef = &SUBSCRIBER;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["imsi", "auc_id", "default_apn", "apn_list"];
    const UNIQUE: &'static [Unique<Self>] = &[
        Unique {
            field: "imsi",
            store: tables::SUB_IMSI_INDEX,
            key: |s| Some(s.imsi.clone()),
        },
        Unique {
            field: "msisdn",
            store: tables::MSISDN_INDEX,
            key: |s| s.msisdn.clone(),
        },
    ];
    /// The subscribers an MME or a 3GPP AAA server serves
    /// (`/oam/serving_subs`).
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "serving_mme",
        store: tables::SUB_SERVED_INDEX,
        key: |s| (s.serving_mme.is_some() || s.serving_aaa.is_some()).then(|| SERVED.to_owned()),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[
        Reference {
            field: "auc_id",
            target: <Auc as Row>::DEF,
            ids: |s| Ok(vec![s.auc_id]),
            exists: exists::<Auc>,
            list: false,
        },
        Reference {
            field: "default_apn",
            target: <Apn as Row>::DEF,
            ids: |s| Ok(vec![s.default_apn]),
            exists: exists::<Apn>,
            list: false,
        },
        Reference {
            field: "apn_list",
            target: <Apn as Row>::DEF,
            ids: |s| apn_ids("apn_list", Some(&s.apn_list)),
            exists: exists::<Apn>,
            list: true,
        },
        Reference {
            field: "roaming_rule_list",
            target: <RoamingRule as Row>::DEF,
            ids: |s| apn_ids("roaming_rule_list", s.roaming_rule_list.as_deref()),
            exists: exists::<RoamingRule>,
            list: false,
        },
        Reference {
            field: "apn_list_swx",
            target: <Apn as Row>::DEF,
            ids: |s| apn_ids("apn_list_swx", s.apn_list_swx.as_deref()),
            exists: exists::<Apn>,
            list: true,
        },
    ];
    type Env = ();

    fn id(&self) -> u64 {
        self.subscriber_id
    }
    fn set_id(&mut self, id: u64) {
        self.subscriber_id = id;
    }
    fn blank() -> Self {
        Subscriber::default()
    }
    fn check(&self) -> Result<(), TableError> {
        let bad = |e: crate::domain::ids::InvalidId| TableError::field(e.field, e.problem);
        Imsi::parse(&self.imsi).map_err(bad)?;
        if let Some(m) = &self.msisdn {
            Msisdn::parse(m).map_err(bad)?;
        }
        apn_ids("apn_list", Some(&self.apn_list))?;
        apn_ids("apn_list_swx", self.apn_list_swx.as_deref())?;
        apn_ids("roaming_rule_list", self.roaming_rule_list.as_deref())?;
        Ok(())
    }
    crate::json_row!();
}

impl Resource for Subscriber {
    const PATHS: Paths = Paths {
        base: "/subscriber",
        list: "/subscriber/list",
        item: "/subscriber/{subscriber_id}",
    };
}

/// Subscriber `id` (durable), wherever it lives.
pub async fn load(core: &Core, id: u64) -> Result<Option<Subscriber>, ApiError> {
    Ok(table::get(core, id).await?)
}

/// The subscriber with IMSI `imsi`, through its index (checked on read).
pub async fn find_by_imsi(core: &Core, imsi: &str) -> Result<Option<Subscriber>, ApiError> {
    Ok(table::find(core, "imsi", imsi).await?)
}

#[cfg(test)]
mod tests {
    use super::Subscriber;
    use crate::table::{json, Body, Row};

    #[test]
    fn a_patch_may_set_a_field_its_answer_leaves_out_when_empty() {
        let body: Body = serde_json::from_str(r#"{"apn_list_swx":"1"}"#).unwrap();
        let s = json::merge(&Subscriber::default(), &body, <Subscriber as Row>::DEF).unwrap();
        assert_eq!(s.apn_list_swx.as_deref(), Some("1"));
        let shown = serde_json::to_value(Subscriber::default()).unwrap();
        assert!(shown.get("apn_list_swx").is_none());
        let body: Body = serde_json::from_str(r#"{"colour":"red"}"#).unwrap();
        assert!(json::merge(&Subscriber::default(), &body, <Subscriber as Row>::DEF).is_err());
    }
}
