//! Charging rules: PyHSS's `/charging_rule`, and `GET /pcrf/{id}`, a rule
//! with the TFTs of its `tft_group_id` (found through the TFTs' group
//! index). Few and read-mostly: catalog.

use serde::{Deserialize, Serialize};

use super::{tables, tft::Tft};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud::{id_param, Paths, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{self, Placement, Row, TableDef, TableError};

/// A charging rule (a PCC rule for Gx), with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct ChargingRule {
    pub charging_rule_id: u64,
    pub rule_name: Option<String>,
    pub qci: Option<i64>,
    pub arp_priority: Option<i64>,
    pub arp_preemption_capability: Option<bool>,
    pub arp_preemption_vulnerability: Option<bool>,
    pub mbr_dl: u64,
    pub mbr_ul: u64,
    pub gbr_dl: u64,
    pub gbr_ul: u64,
    /// The TFTs of this group form the rule's TFT list.
    pub tft_group_id: Option<u64>,
    pub precedence: Option<i64>,
    pub rating_group: Option<i64>,
    pub last_modified: String,
}

/// Longest `rule_name` (PyHSS's column).
pub const MAX_RULE_NAME: usize = 20;

static CHARGING_RULE: TableDef = TableDef {
    name: "charging_rule",
    noun: "charging rule",
    id_field: "charging_rule_id",
    store: tables::CHARGING_RULE,
    counter: tables::META_CHARGING_RULE_NEXT,
    fields: crate::table::json::fields,
};

impl Row for ChargingRule {
    const DEF: &'static TableDef = &CHARGING_RULE;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["mbr_dl", "mbr_ul", "gbr_dl", "gbr_ul"];
    type Env = ();

    fn id(&self) -> u64 {
        self.charging_rule_id
    }
    fn set_id(&mut self, id: u64) {
        self.charging_rule_id = id;
    }
    fn blank() -> Self {
        ChargingRule::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if self
            .rule_name
            .as_ref()
            .is_some_and(|n| n.len() > MAX_RULE_NAME)
        {
            return Err(TableError::field(
                "rule_name",
                format!("longer than {MAX_RULE_NAME} characters"),
            ));
        }
        if self.qci.is_some_and(|q| !(1..=254).contains(&q)) {
            return Err(TableError::field("qci", "must be 1 to 254"));
        }
        if self.arp_priority.is_some_and(|p| !(1..=15).contains(&p)) {
            return Err(TableError::field("arp_priority", "must be 1 to 15"));
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for ChargingRule {
    const PATHS: Paths = Paths {
        base: "/charging_rule",
        list: "/charging_rule/list",
        item: "/charging_rule/{charging_rule_id}",
    };
}

/// `GET /pcrf/{charging_rule_id}`: the rule with `"tft"`, the TFTs of its
/// group in id order.
pub fn with_tfts<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = id_param(&params, "charging_rule_id")?;
        let view = ctx.core.catalog();
        let rule: ChargingRule = table::catalog_row(&view, id)?.ok_or(ApiError::NotFound)?;
        let tft: Vec<Tft> = match rule.tft_group_id {
            Some(group) => table::find_all(&view, "tft_group_id", &group.to_string())?,
            None => Vec::new(),
        };
        #[derive(Serialize)]
        struct WithTfts<'r> {
            #[serde(flatten)]
            rule: &'r ChargingRule,
            tft: Vec<Tft>,
        }
        reply.json(200, &WithTfts { rule: &rule, tft })
    })
}
