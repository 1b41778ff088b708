//! Emergency subscribers (PyHSS's `/pcrf/emergency_subscriber`): the
//! sessions of emergency attaches, which may have no provisioned
//! subscriber behind them. On the IMSI's shard (the creating core's
//! without one).

use serde::{Deserialize, Serialize};

use super::tables;
use crate::domain::ids::Imsi;
use crate::server::crud::{Paths, Resource};
use crate::table::{Home, Placement, Row, TableDef, TableError};

/// An emergency subscriber, with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct EmergencySubscriber {
    pub emergency_subscriber_id: u64,
    pub imsi: Option<String>,
    pub serving_pgw: Option<String>,
    pub serving_pgw_timestamp: Option<String>,
    pub serving_pcscf: Option<String>,
    pub serving_pcscf_timestamp: Option<String>,
    pub gx_origin_realm: Option<String>,
    pub gx_origin_host: Option<String>,
    pub rat_type: Option<String>,
    pub ip: Option<String>,
    pub access_network_gateway_address: Option<String>,
    pub access_network_charging_address: Option<String>,
    pub last_modified: String,
}

static EMERGENCY_SUBSCRIBER: TableDef = TableDef {
    name: "emergency_subscriber",
    noun: "emergency subscriber",
    id_field: "emergency_subscriber_id",
    store: tables::EMERGENCY_SUBSCRIBER,
    counter: tables::META_EMERGENCY_SUBSCRIBER_NEXT,
    fields: crate::table::json::fields,
};

fn home(e: &EmergencySubscriber) -> Home {
    e.imsi.clone().map_or(Home::Here, Home::Key)
}

impl Row for EmergencySubscriber {
    const DEF: &'static TableDef = &EMERGENCY_SUBSCRIBER;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    /// The UE's address: what the PCRF finds an emergency session by
    /// (PyHSS requires nothing).
    const REQUIRED: &'static [&'static str] = &["ip"];
    type Env = ();

    fn id(&self) -> u64 {
        self.emergency_subscriber_id
    }
    fn set_id(&mut self, id: u64) {
        self.emergency_subscriber_id = id;
    }
    fn blank() -> Self {
        EmergencySubscriber::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if let Some(i) = &self.imsi {
            Imsi::parse(i).map_err(|e| TableError::field(e.field, e.problem))?;
        }
        if let Some(ip) = &self.ip {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| TableError::field("ip", "not an IP address"))?;
        }
        let text = [
            ("serving_pgw", &self.serving_pgw),
            ("serving_pgw_timestamp", &self.serving_pgw_timestamp),
            ("serving_pcscf", &self.serving_pcscf),
            ("serving_pcscf_timestamp", &self.serving_pcscf_timestamp),
            ("gx_origin_realm", &self.gx_origin_realm),
            ("gx_origin_host", &self.gx_origin_host),
            ("rat_type", &self.rat_type),
            (
                "access_network_gateway_address",
                &self.access_network_gateway_address,
            ),
            (
                "access_network_charging_address",
                &self.access_network_charging_address,
            ),
        ];
        for (field, value) in text {
            if value.as_ref().is_some_and(|v| v.len() > 512) {
                return Err(TableError::field(field, "longer than 512 characters"));
            }
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for EmergencySubscriber {
    const PATHS: Paths = Paths {
        base: "/pcrf/emergency_subscriber",
        list: "/pcrf/emergency_subscriber/list",
        item: "/pcrf/emergency_subscriber/{emergency_subscriber_id}",
    };
}
