//! PyHSS's operation log (`/operation_logs`): every write of every table,
//! recorded by a write hook in the row's own commit (so an acknowledged
//! write always has its entry, and a lost one none), on the row's shard or
//! in the catalog. Each entry keeps the row's stored bytes before and
//! after, for rollback; answers show PyHSS's keys, with `changes` in its
//! `field: [type] old ----> [type] new` form, secrets never included.
//!
//! Each shard (and the catalog) keeps its newest `hss.operation_log_keep`
//! entries: writing one drops the one that many before it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::domain::shard::ShardId;
use crate::runtime::LocalBoxFuture;
use crate::server::crud;
use crate::server::{Ctx, Reply};
use crate::storage::Op;
use crate::table::{ids, json, Change, Restore, Site, WriteHook};

/// One entry, with PyHSS's keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub id: u64,
    pub item_id: u64,
    pub operation_id: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub operation: String,
    pub changes: String,
    pub last_modified: String,
    pub timestamp: String,
    pub table_name: String,
}

/// An entry as stored: with the row's images (hex), never answered.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    entry: Entry,
    /// When written (wall-clock microseconds), to order entries of
    /// different shards.
    at: u64,
    before: Option<String>,
    after: Option<String>,
}

/// The write hook.
#[derive(Debug)]
pub struct OpLog {
    /// Entries kept per shard and for the catalog (0: none written).
    keep: u64,
}

impl OpLog {
    pub fn new(keep: u64) -> OpLog {
        OpLog { keep }
    }
}

/// A value as PyHSS's log prints it: Python's type name and `str()`.
fn python(v: Option<&Value>) -> (&'static str, String) {
    match v {
        None | Some(Value::Null) => ("NoneType", "None".into()),
        Some(Value::Bool(b)) => ("bool", if *b { "True" } else { "False" }.into()),
        Some(Value::Number(n)) if n.is_f64() => ("float", n.to_string()),
        Some(Value::Number(n)) => ("int", n.to_string()),
        Some(Value::String(s)) => ("str", s.clone()),
        Some(other) => ("str", other.to_string()),
    }
}

/// What changed, field by field (every field for an insert or a delete).
fn changes(c: &Change<'_>) -> String {
    let fields = |b: Option<&[u8]>| b.and_then(c.table.fields).unwrap_or_default();
    let (before, after) = (fields(c.before), fields(c.after));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let whole = c.before.is_none() || c.after.is_none();
    keys.into_iter()
        .filter(|k| whole || before.get(*k) != after.get(*k))
        .map(|k| {
            let ((ta, va), (tb, vb)) = (python(before.get(k)), python(after.get(k)));
            format!("{k}: [{ta}] {va} ----> [{tb}] {vb}")
        })
        .collect::<Vec<_>>()
        .join("\r\n\r\n")
}

impl WriteHook for OpLog {
    fn on_change(&self, site: Site<'_>, c: &Change<'_>) -> Vec<Op> {
        // A rollback is not logged (as PyHSS): running it again finds the
        // same operation, already undone.
        if self.keep == 0 || c.undo {
            return Vec::new();
        }
        let (id, counter_op, store, dropped) = match site {
            Site::Shard(core) => {
                let (id, used) = match ids::next(core, tables::META_OPLOG_NEXT) {
                    Ok(next) => next,
                    Err(e) => {
                        // The change itself still commits: the log is an audit
                        // trail, and its counter is unreadable (a damaged block).
                        tracing::error!(error = %e, "operation log entry skipped");
                        return Vec::new();
                    }
                };
                let shards = u64::from(core.shards());
                let dropped = used
                    .checked_sub(self.keep)
                    .map(|old| old * shards + u64::from(core.shard.0));
                let op = ids::persist(core, tables::META_OPLOG_NEXT, used);
                (id, op, tables::OPLOG, dropped)
            }
            Site::Catalog(view) => {
                let (id, op) = ids::next_in_catalog(view, tables::META_OPLOG_NEXT);
                (id, op, tables::CATALOG_OPLOG, id.checked_sub(self.keep))
            }
        };
        let operation = match (c.before, c.after) {
            (None, _) => "INSERT",
            (_, None) => "DELETE",
            _ => "UPDATE",
        };
        let stamp = json::timestamp(c.now);
        let stored = Stored {
            entry: Entry {
                id,
                item_id: c.id,
                operation_id: c.operation_id.unwrap_or_default().to_owned(),
                operation: operation.into(),
                changes: changes(c),
                last_modified: stamp.clone(),
                timestamp: stamp,
                table_name: c.table.name.into(),
            },
            at: crate::clock::unix_micros(),
            before: c.before.map(hex::encode),
            after: c.after.map(hex::encode),
        };
        let Ok(value) = serde_json::to_vec(&stored) else {
            return vec![counter_op];
        };
        let mut ops = vec![
            counter_op,
            Op::Put {
                table: store,
                key: id.to_be_bytes().to_vec(),
                value,
            },
        ];
        if let Some(old) = dropped {
            ops.push(Op::Delete {
                table: store,
                key: old.to_be_bytes().to_vec(),
            });
        }
        ops
    }
}

/// Every kept entry, oldest first (by time, then id).
async fn all(ctx: &Ctx) -> Result<Vec<Stored>, ApiError> {
    let mut raw: Vec<Vec<u8>> = ctx
        .core
        .catalog()
        .table(tables::CATALOG_OPLOG)
        .map(|(_, v)| v.to_vec())
        .collect();
    for k in 0..ctx.core.shards() {
        let part = ctx
            .core
            .on(ShardId(k), |c| async move {
                c.store.scan(tables::OPLOG, None, usize::MAX)
            })
            .await
            .map_err(crud::mesh_error)?
            .map_err(crate::server::store_error)?;
        raw.extend(part.into_iter().map(|(_, v)| v));
    }
    let mut entries: Vec<Stored> = raw
        .iter()
        .filter_map(|v| serde_json::from_slice(v).ok())
        .collect();
    entries.sort_by_key(|e| (e.at, e.entry.id));
    Ok(entries)
}

/// One entry per operation (its first), the most recent operations first,
/// as PyHSS lists them.
fn by_operation(entries: Vec<Stored>, page: usize, size: usize) -> Vec<Entry> {
    let mut ops: Vec<(u64, Entry)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in entries {
        match index.get(&e.entry.operation_id) {
            Some(&i) => {
                if let Some(slot) = ops.get_mut(i) {
                    slot.0 = e.at;
                }
            }
            None => {
                index.insert(e.entry.operation_id.clone(), ops.len());
                ops.push((e.at, e.entry));
            }
        }
    }
    // Most recent last write first; ties: later operations first.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((ops[i].0, i)));
    order
        .into_iter()
        .skip(page.saturating_mul(size))
        .take(size)
        .filter_map(|i| ops.get(i).map(|(_, e)| e.clone()))
        .collect()
}

/// `GET /operation_logs/list?page=&page_size=`.
pub fn list<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = crud::page(ctx, &req)?;
        let entries = all(ctx).await?;
        reply.json(200, &by_operation(entries, page, size))
    })
}

/// `GET /operation_logs/list/table/{table_name}?page=&page_size=`.
pub fn list_table<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = crud::page(ctx, &req)?;
        let table = params.get("table_name").unwrap_or_default();
        let mut entries = all(ctx).await?;
        entries.retain(|e| e.entry.table_name == table);
        reply.json(200, &by_operation(entries, page, size))
    })
}

/// `GET /operation_logs/last`: the most recent entry.
pub fn last<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let entries = all(ctx).await?;
        let last = entries.last().ok_or(ApiError::NotFound)?;
        reply.json(200, &last.entry)
    })
}

/// The rows an operation wrote, each with its image before the
/// operation's first write of it, in reverse order of those writes.
fn undo_plan(entries: &[Stored], operation_id: &str) -> Result<Vec<(Restore, String)>, ApiError> {
    let mut seen = std::collections::HashSet::new();
    let mut plan = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.entry.operation_id == operation_id)
    {
        if !seen.insert((e.entry.table_name.clone(), e.entry.item_id)) {
            continue;
        }
        let image = match &e.before {
            Some(h) => Some(hex::decode(h).map_err(|_| {
                ApiError::Internal(format!("operation log entry {}: damaged image", e.entry.id))
            })?),
            None => None,
        };
        let done = match e.entry.operation.as_str() {
            "INSERT" => "Deleted item",
            "DELETE" => "Re-inserted item",
            _ => "Reverted changes",
        };
        let line = format!(
            "Rolled back '{}' operation on {} table (ID: {}): {done}",
            e.entry.operation,
            e.entry.table_name.to_uppercase(),
            e.entry.item_id
        );
        plan.push((
            Restore {
                table: e.entry.table_name.clone(),
                id: e.entry.item_id,
                image,
            },
            line,
        ));
    }
    plan.reverse();
    Ok(plan)
}

/// Undoes every write of `operation_id` (the caller has checked the
/// Provisioning-Key); answers PyHSS's message, one line per row.
async fn roll_back(ctx: &Ctx, entries: &[Stored], operation_id: &str) -> Result<String, ApiError> {
    let plan = undo_plan(entries, operation_id)?;
    if plan.is_empty() {
        return Err(ApiError::NotFound);
    }
    let (rows, lines): (Vec<Restore>, Vec<String>) = plan.into_iter().unzip();
    let w = crate::table::Write {
        now: crate::clock::unix_seconds(),
        operation_id: Some(operation_id.to_owned()),
        lenient_lists: ctx.config.hss.accept_missing_apn_list_ids,
        undo: true,
        from_peer: false,
        pyhss_quirks: ctx.config.hss.pyhss_quirks,
    };
    let changed = ctx.tables.restore(&ctx.core, rows, &w).await?;
    Ok(format!(
        "Rolled back operation with operation_id: {operation_id}\n{}\n{changed} row(s) changed",
        lines.join("\n")
    ))
}

/// `GET /oam/rollback_operation/last`: undoes the operation of the most
/// recent log entry (a rollback is not logged, so running it again finds
/// the same operation and changes nothing).
pub fn rollback_last<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let entries = all(ctx).await?;
        let Some(last) = entries.last() else {
            return reply.json(200, &"No operations to roll back.");
        };
        let op = last.entry.operation_id.clone();
        let message = roll_back(ctx, &entries, &op).await?;
        reply.json(200, &message)
    })
}

/// `GET /oam/rollback_operation/{operation_id}`.
pub fn rollback_operation<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let op = params.get("operation_id").unwrap_or_default().to_owned();
        let entries = all(ctx).await?;
        let message = roll_back(ctx, &entries, &op).await?;
        reply.json(200, &message)
    })
}
