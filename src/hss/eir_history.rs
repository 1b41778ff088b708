//! The EIR history (PyHSS's `/eir/eir_history`): each IMSI/IMEI pair seen
//! in an equipment check, with the answer it got. One row per pair (the
//! unique `imsi_imei`, PyHSS's "imsi,imei"), on the IMSI's shard, indexed
//! there by IMSI and by IMEI. Written by [`record`] (an equipment check,
//! or a GeoRed peer's push); read and cleared over REST.
//!
//! A look-up by attribute matches a whole IMSI or IMEI through those
//! indexes (PyHSS matches any substring of "imsi,imei" by a table scan).

use serde::{Deserialize, Serialize};

use super::eir::TacDatabase;
use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud::{self, Paths, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{self, json, Home, Multi, Placement, Row, TableDef, TableError, Unique, Write};

/// One IMSI/IMEI pair, with PyHSS's keys (and the `imsi` and `imei` it
/// answers beside `imsi_imei`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
#[serde(default)]
pub struct EirHistory {
    pub imsi_imei_history_id: u64,
    /// `imsi,imei`.
    pub imsi_imei: String,
    pub imsi: String,
    pub imei: String,
    /// The answer of the check: 0 whitelist, 1 blacklist, 2 greylist.
    pub match_response_code: i64,
    /// When the pair was first seen with this answer.
    pub imsi_imei_timestamp: String,
    pub last_modified: String,
}

static EIR_HISTORY: TableDef = TableDef {
    name: "eir_history",
    noun: "EIR history entry",
    id_field: "imsi_imei_history_id",
    store: tables::EIR_HISTORY,
    counter: tables::META_EIR_HISTORY_NEXT,
    fields: json::fields,
};

fn home(h: &EirHistory) -> Home {
    Home::Key(h.imsi.clone())
}

fn digits(field: &'static str, v: &str, max: usize) -> Result<(), TableError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TableError::field(
            field,
            format!("must be 1 to {max} digits"),
        ));
    }
    Ok(())
}

impl Row for EirHistory {
    const DEF: &'static TableDef = &EIR_HISTORY;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["imsi", "imei", "match_response_code"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "imsi_imei",
        store: tables::EIR_HISTORY_PAIR_INDEX,
        key: |h| Some(h.imsi_imei.clone()),
    }];
    const MULTI: &'static [Multi<Self>] = &[
        Multi {
            field: "imsi",
            store: tables::EIR_HISTORY_IMSI_INDEX,
            key: |h| Some(h.imsi.clone()),
        },
        Multi {
            field: "imei",
            store: tables::EIR_HISTORY_IMEI_INDEX,
            key: |h| Some(h.imei.clone()),
        },
    ];
    type Env = ();

    fn id(&self) -> u64 {
        self.imsi_imei_history_id
    }
    fn set_id(&mut self, id: u64) {
        self.imsi_imei_history_id = id;
    }
    fn blank() -> Self {
        EirHistory::default()
    }
    fn check(&self) -> Result<(), TableError> {
        digits("imsi", &self.imsi, 15)?;
        // An IMEI (14 or 15 digits) or IMEISV (16).
        digits("imei", &self.imei, 16)?;
        if !(0..=2).contains(&self.match_response_code) {
            return Err(TableError::field(
                "match_response_code",
                "must be 0 (whitelist), 1 (blacklist) or 2 (greylist)",
            ));
        }
        if self.imsi_imei != format!("{},{}", self.imsi, self.imei) {
            return Err(TableError::field("imsi_imei", "must be \"imsi,imei\""));
        }
        Ok(())
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        (self.imsi_imei != before.imsi_imei).then_some("imsi_imei")
    }
    crate::json_row!();
}

impl Resource for EirHistory {
    const PATHS: Paths = Paths {
        base: "/eir/eir_history",
        list: "/eir/eir_history/list",
        item: "/eir/eir_history/{imsi_imei_history_id}",
    };
}

/// Records that `imsi` was seen with `imei` and answered `code`: a new
/// pair is added; a known pair is updated only when its answer changed.
/// Two checks of one new pair at once: the second finds the first's entry
/// (and updates it if its answer differs). Returns the entry.
pub async fn record(
    ctx: &Ctx,
    imsi: &str,
    imei: &str,
    code: i64,
    w: &Write,
) -> Result<EirHistory, ApiError> {
    let mut tries = 0u64;
    loop {
        match record_once(ctx, imsi, imei, code, w).await {
            Err(TableError::Taken { .. } | TableError::Pending(_) | TableError::Conflict(_))
                if tries < 8 =>
            {
                tries += 1;
                crate::runtime::stream::sleep(std::time::Duration::from_millis(tries)).await;
            }
            other => return Ok(other?),
        }
    }
}

async fn record_once(
    ctx: &Ctx,
    imsi: &str,
    imei: &str,
    code: i64,
    w: &Write,
) -> Result<EirHistory, TableError> {
    let pair = format!("{imsi},{imei}");
    let stamp = json::timestamp(w.now);
    let mut body = table::Body::new();
    body.insert("match_response_code".into(), code.into());
    body.insert("imsi_imei_timestamp".into(), stamp.into());
    if let Some(known) = table::find::<EirHistory>(&ctx.core, "imsi_imei", &pair).await? {
        if known.match_response_code == code {
            return Ok(known);
        }
        return ctx.tables.patch(&ctx.core, known.id(), &body, &(), w).await;
    }
    body.insert("imsi".into(), imsi.into());
    body.insert("imei".into(), imei.into());
    body.insert("imsi_imei".into(), pair.into());
    ctx.tables.create(&ctx.core, &body, &(), w).await
}

/// Every entry whose IMSI or IMEI is `attribute`, in id order.
async fn matching(ctx: &Ctx, attribute: &str) -> Result<Vec<EirHistory>, ApiError> {
    let mut rows = table::find_all_shards::<EirHistory>(&ctx.core, "imsi", attribute).await?;
    rows.extend(table::find_all_shards::<EirHistory>(&ctx.core, "imei", attribute).await?);
    rows.sort_by_key(|r| r.imsi_imei_history_id);
    rows.dedup_by_key(|r| r.imsi_imei_history_id);
    Ok(rows)
}

/// An entry as a look-up answers it: with the device the IMEI's TAC
/// names, when a TAC database is configured (PyHSS's `imei_result`).
#[derive(Serialize)]
struct WithDevice<'a> {
    #[serde(flatten)]
    entry: &'a EirHistory,
    #[serde(skip_serializing_if = "Option::is_none")]
    imei_result: Option<serde_json::Value>,
}

/// `GET /eir/eir_history/{attribute}`: the entries of an IMSI or an IMEI.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let attribute = params.get("attribute").unwrap_or_default();
        let rows = matching(ctx, attribute).await?;
        let tac = ctx.extension::<TacDatabase>();
        let answer: Vec<WithDevice<'_>> = rows
            .iter()
            .map(|entry| WithDevice {
                entry,
                imei_result: tac.as_ref().and_then(|db| db.device(&entry.imei)),
            })
            .collect();
        reply.json(200, &answer)
    })
}

/// `DELETE /eir/eir_history/{attribute}`: deletes the entries of an IMSI
/// or an IMEI; answers them.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let w = crud::write_of(ctx, &req)?;
        let attribute = params.get("attribute").unwrap_or_default();
        let mut deleted = Vec::new();
        for row in matching(ctx, attribute).await? {
            match ctx
                .tables
                .delete::<EirHistory>(&ctx.core, row.id(), &w)
                .await
            {
                Ok(r) => deleted.push(r),
                // Deleted meanwhile by another request: nothing to do.
                Err(TableError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        reply.json(200, &deleted)
    })
}
