//! Roaming networks and rules (PyHSS's `/roaming/network` and
//! `/roaming/rule`): a rule allows or denies one network; subscribers name
//! their rules in `roaming_rule_list`. Catalog tables.

use serde::{Deserialize, Serialize};

use super::tables;
use crate::server::crud::{Paths, Resource};
use crate::table::{exists, Placement, Reference, Row, TableDef, TableError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct RoamingNetwork {
    pub roaming_network_id: u64,
    pub name: Option<String>,
    pub preference: Option<i64>,
    pub mcc: String,
    pub mnc: String,
    pub last_modified: String,
}

static ROAMING_NETWORK: TableDef = TableDef {
    name: "roaming_network",
    noun: "roaming network",
    id_field: "roaming_network_id",
    store: tables::ROAMING_NETWORK,
    counter: tables::META_ROAMING_NETWORK_NEXT,
    fields: crate::table::json::fields,
};

impl Row for RoamingNetwork {
    const DEF: &'static TableDef = &ROAMING_NETWORK;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["mcc", "mnc"];
    type Env = ();

    fn id(&self) -> u64 {
        self.roaming_network_id
    }
    fn set_id(&mut self, id: u64) {
        self.roaming_network_id = id;
    }
    fn blank() -> Self {
        RoamingNetwork::default()
    }
    fn check(&self) -> Result<(), TableError> {
        let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
            n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(&self.mcc, 3..=3) {
            return Err(TableError::field("mcc", "must be 3 decimal digits"));
        }
        if !digits(&self.mnc, 2..=3) {
            return Err(TableError::field("mnc", "must be 2 or 3 decimal digits"));
        }
        if self.name.as_ref().is_some_and(|n| n.len() > 512) {
            return Err(TableError::field("name", "longer than 512 characters"));
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for RoamingNetwork {
    const PATHS: Paths = Paths {
        base: "/roaming/network",
        list: "/roaming/network/list",
        item: "/roaming/network/{roaming_network_id}",
    };
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RoamingRule {
    pub roaming_rule_id: u64,
    pub roaming_network_id: u64,
    pub allow: bool,
    pub enabled: bool,
    pub last_modified: String,
}

static ROAMING_RULE: TableDef = TableDef {
    name: "roaming_rule",
    noun: "roaming rule",
    id_field: "roaming_rule_id",
    store: tables::ROAMING_RULE,
    counter: tables::META_ROAMING_RULE_NEXT,
    fields: crate::table::json::fields,
};

impl Row for RoamingRule {
    const DEF: &'static TableDef = &ROAMING_RULE;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["roaming_network_id"];
    const REFERENCES: &'static [Reference<Self>] = &[Reference {
        field: "roaming_network_id",
        target: <RoamingNetwork as Row>::DEF,
        ids: |r| Ok(vec![r.roaming_network_id]),
        exists: exists::<RoamingNetwork>,
        list: false,
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.roaming_rule_id
    }
    fn set_id(&mut self, id: u64) {
        self.roaming_rule_id = id;
    }
    fn blank() -> Self {
        RoamingRule {
            roaming_rule_id: 0,
            roaming_network_id: 0,
            allow: true,
            enabled: true,
            last_modified: String::new(),
        }
    }
    crate::json_row!();
}

impl Resource for RoamingRule {
    const PATHS: Paths = Paths {
        base: "/roaming/rule",
        list: "/roaming/rule/list",
        item: "/roaming/rule/{roaming_rule_id}",
    };
}

/// Whether `sub` may be served in the visited network `mcc`/`mnc`, by
/// PyHSS's rules: never with `roaming_enabled` off; else the first of the
/// subscriber's own rules (`roaming_rule_list`) naming that network
/// decides, then the first of every rule naming it, then
/// `allow_undefined` (hss.roaming_allow_undefined_networks). Disabled
/// rules are skipped.
pub fn allowed(
    view: &crate::runtime::CatalogView,
    (roaming_enabled, rule_list): (bool, Option<&str>),
    (mcc, mnc): (&str, &str),
    allow_undefined: bool,
) -> bool {
    if !roaming_enabled {
        return false;
    }
    let Some(rules) = crate::table::typed_rows::<RoamingRule>(view) else {
        return allow_undefined;
    };
    let names_network = |r: &RoamingRule| {
        r.enabled
            && crate::table::catalog_shared::<RoamingNetwork>(view, r.roaming_network_id)
                .is_some_and(|n| n.mcc == mcc && n.mnc == mnc)
    };
    let own: Vec<u64> = rule_list
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    own.iter()
        .filter_map(|id| rules.rows.get(id))
        .chain(rules.rows.values())
        .find(|r| names_network(r))
        .map_or(allow_undefined, |r| r.allow)
}
