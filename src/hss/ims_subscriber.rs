//! IMS subscribers: PyHSS's `/ims_subscriber`, found by MSISDN and by IMSI
//! through unique indexes; the seed's `ifc_template_id` names the iFC
//! template it registers with (checked). Lives on its IMSI's shard (its
//! MSISDN's when it has no IMSI).

use serde::{Deserialize, Serialize};

use super::{ifc_template::IfcTemplate, tables};
use crate::domain::ids::{Imsi, Msisdn};
use crate::server::crud::{Paths, Resource};
use crate::table::{exists, Home, Multi, Placement, Reference, Row, TableDef, TableError, Unique};

/// An IMS subscriber, with PyHSS 2.0.0's keys and the seed's
/// `ifc_template_id` (answered only when set).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct ImsSubscriber {
    pub ims_subscriber_id: u64,
    pub msisdn: Option<String>,
    pub msisdn_list: Option<String>,
    pub imsi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifc_template_id: Option<u64>,
    /// Deprecated by the seed (a file path); kept for 2.0.0's clients.
    pub ifc_path: Option<String>,
    pub pcscf: Option<String>,
    pub pcscf_realm: Option<String>,
    pub pcscf_active_session: Option<String>,
    pub pcscf_timestamp: Option<String>,
    pub pcscf_peer: Option<String>,
    pub xcap_profile: Option<String>,
    pub sh_profile: Option<String>,
    pub scscf: Option<String>,
    pub scscf_timestamp: Option<String>,
    pub scscf_realm: Option<String>,
    pub scscf_peer: Option<String>,
    pub sh_template_path: Option<String>,
    pub last_modified: String,
}

static IMS_SUBSCRIBER: TableDef = TableDef {
    name: "ims_subscriber",
    noun: "IMS subscriber",
    id_field: "ims_subscriber_id",
    store: tables::IMS_SUBSCRIBER,
    counter: tables::META_IMS_SUBSCRIBER_NEXT,
    fields: crate::table::json::fields,
};

fn home(s: &ImsSubscriber) -> Home {
    match (&s.imsi, &s.msisdn) {
        (Some(imsi), _) => Home::Key(imsi.clone()),
        (None, Some(msisdn)) => Home::Key(msisdn.clone()),
        (None, None) => Home::Here,
    }
}

/// Largest profile (an XML document).
const MAX_PROFILE_BYTES: usize = 64 * 1024;

impl Row for ImsSubscriber {
    const DEF: &'static TableDef = &IMS_SUBSCRIBER;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    /// Its public identity (PyHSS requires nothing; every IMS subscriber
    /// it serves has one).
    const REQUIRED: &'static [&'static str] = &["msisdn"];
    const UNIQUE: &'static [Unique<Self>] = &[
        Unique {
            field: "msisdn",
            store: tables::IMS_MSISDN_INDEX,
            key: |s| s.msisdn.clone(),
        },
        Unique {
            field: "imsi",
            store: tables::IMS_IMSI_INDEX,
            key: |s| s.imsi.clone(),
        },
    ];
    /// The IMS subscribers an S-CSCF serves (`/oam/serving_subs_ims`).
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "scscf",
        store: tables::IMS_SERVED_INDEX,
        key: |s| {
            s.scscf
                .as_ref()
                .map(|_| super::subscriber::SERVED.to_owned())
        },
    }];
    const REFERENCES: &'static [Reference<Self>] = &[Reference {
        field: "ifc_template_id",
        target: <IfcTemplate as Row>::DEF,
        ids: |s| Ok(s.ifc_template_id.into_iter().collect()),
        exists: exists::<IfcTemplate>,
        list: false,
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.ims_subscriber_id
    }
    fn set_id(&mut self, id: u64) {
        self.ims_subscriber_id = id;
    }
    fn blank() -> Self {
        ImsSubscriber::default()
    }
    fn check(&self) -> Result<(), TableError> {
        let bad = |e: crate::domain::ids::InvalidId| TableError::field(e.field, e.problem);
        if let Some(m) = &self.msisdn {
            Msisdn::parse(m).map_err(bad)?;
        }
        if let Some(i) = &self.imsi {
            Imsi::parse(i).map_err(bad)?;
        }
        if let Some(list) = &self.msisdn_list {
            for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                Msisdn::parse(m).map_err(|e| {
                    TableError::field("msisdn_list", format!("{m:?}: {}", e.problem))
                })?;
            }
        }
        // Longest value of each text field (PyHSS's columns).
        let text = [
            ("msisdn_list", &self.msisdn_list, 1200),
            ("ifc_path", &self.ifc_path, 512),
            ("pcscf", &self.pcscf, 512),
            ("pcscf_realm", &self.pcscf_realm, 512),
            ("pcscf_active_session", &self.pcscf_active_session, 512),
            ("pcscf_peer", &self.pcscf_peer, 512),
            ("scscf", &self.scscf, 512),
            ("scscf_realm", &self.scscf_realm, 512),
            ("scscf_peer", &self.scscf_peer, 512),
            ("sh_template_path", &self.sh_template_path, 512),
        ];
        for (field, value, max) in text {
            if value.as_ref().is_some_and(|v| v.len() > max) {
                return Err(TableError::field(
                    field,
                    format!("longer than {max} characters"),
                ));
            }
        }
        for (field, value) in [
            ("xcap_profile", &self.xcap_profile),
            ("sh_profile", &self.sh_profile),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_PROFILE_BYTES) {
                return Err(TableError::field(
                    field,
                    format!("larger than {MAX_PROFILE_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for ImsSubscriber {
    const PATHS: Paths = Paths {
        base: "/ims_subscriber",
        list: "/ims_subscriber/list",
        item: "/ims_subscriber/{ims_subscriber_id}",
    };
}
