//! Traffic Flow Templates: PyHSS's `/tft`. Charging rules name a TFT group
//! (`tft_group_id`) to gather their TFTs. Few and read-mostly: catalog.

use serde::{Deserialize, Serialize};

use super::tables;
use crate::server::crud::{Paths, Resource};
use crate::table::{Multi, Placement, Row, TableDef, TableError};

/// A TFT, with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct Tft {
    pub tft_id: u64,
    pub tft_group_id: u64,
    /// An IPFilterRule (RFC 6733 §4.3): `action dir proto from src to dst`.
    pub tft_string: String,
    /// 0 unspecified, 1 downlink, 2 uplink, 3 bidirectional.
    pub direction: u8,
    pub last_modified: String,
}

/// Longest `tft_string` (PyHSS's column).
pub const MAX_TFT_STRING: usize = 100;

static TFT: TableDef = TableDef {
    name: "tft",
    noun: "TFT",
    id_field: "tft_id",
    store: tables::TFT,
    counter: tables::META_TFT_NEXT,
    fields: crate::table::json::fields,
};

impl Row for Tft {
    const DEF: &'static TableDef = &TFT;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["tft_group_id", "tft_string", "direction"];
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "tft_group_id",
        store: tables::TFT_GROUP_INDEX,
        key: |t| Some(t.tft_group_id.to_string()),
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.tft_id
    }
    fn set_id(&mut self, id: u64) {
        self.tft_id = id;
    }
    fn blank() -> Self {
        Tft::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if self.direction > 3 {
            return Err(TableError::field("direction", "must be 0 to 3"));
        }
        if self.tft_string.is_empty() || self.tft_string.len() > MAX_TFT_STRING {
            return Err(TableError::field(
                "tft_string",
                format!("must be 1 to {MAX_TFT_STRING} characters"),
            ));
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for Tft {
    const PATHS: Paths = Paths {
        base: "/tft",
        list: "/tft/list",
        item: "/tft/{tft_id}",
    };
}
