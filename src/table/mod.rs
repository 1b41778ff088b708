//! Declared tables: every provisioned object is a row type declared here
//! once (its id, placement, required fields and rules, unique indexes and
//! references), and one generic implementation does the rest: create, get,
//! patch, delete, list and find-by-index routed to the owning core, the
//! one id allocator ([`ids`]), index upkeep ([`index`]), reference checks,
//! PATCH semantics ([`json`]), `last_modified`, keyset pages over the
//! shards, and the write hooks, whose ops join the row's own commit.
//!
//! Placement: a [`Placement::Catalog`] row lives in the catalog (written
//! through core 0, read lock-free on every core); a [`Placement::Sharded`]
//! row lives on one shard, chosen at creation (its IMSI's shard, its
//! subscriber's shard, ...), and its id names that shard.

pub mod bulk;
pub mod error;
pub mod ids;
pub mod index;
pub mod json;
mod undo;

use std::rc::Rc;
use std::sync::Arc;

use crate::domain::shard::{shard_of, ShardId};
use crate::runtime::data::{Derived, Deriver};
use crate::runtime::{CatalogView, Core, LocalBoxFuture};
use crate::storage::{Op, TableId};

pub use error::{commit_error, mesh_error, store_error, TableError};
pub use index::owner_of;
pub use undo::Restore;

/// A create or PATCH body: the JSON object as the client sent it.
pub type Body = serde_json::Map<String, serde_json::Value>;

/// What names a table.
#[derive(Debug)]
pub struct TableDef {
    /// The table's name (the operation log's `table_name`; error texts).
    pub name: &'static str,
    /// What one row is called in messages ("AuC", "APN", "subscriber").
    pub noun: &'static str,
    /// The row's id field (`auc_id`, `tft_id`, ...).
    pub id_field: &'static str,
    /// The storage table of rows, keyed by id (u64 big-endian): in the
    /// shard stores, or in the catalog.
    pub store: TableId,
    /// The key of the table's id counter in [`ids::META`].
    pub counter: &'static [u8],
    /// A stored row's public fields (no secret), for the write hooks'
    /// records of what changed; `None` for bytes that do not decode.
    pub fields: fn(&[u8]) -> Option<serde_json::Map<String, serde_json::Value>>,
}

/// Where a new sharded row lives.
#[derive(Debug)]
pub enum Home {
    /// On the shard of this key (an IMSI, an account).
    Key(String),
    /// On the shard of the row with this id (a subscriber's own entries).
    WithRow(u64),
    /// On the shard of the core that creates it.
    Here,
}

/// Where a table's rows live.
pub enum Placement<R> {
    Catalog,
    Sharded(fn(&R) -> Home),
}

/// A unique secondary index: at most one row carries each key.
pub struct Unique<R> {
    /// The field it indexes (for finds and errors).
    pub field: &'static str,
    /// Its storage table (in the shard of the key, or in the catalog).
    pub store: TableId,
    pub key: fn(&R) -> Option<String>,
}

/// A non-unique secondary index: the rows carrying a key, found without a
/// scan. Its entries live with the rows (in the catalog, or on each row's
/// own shard), written in the row's commit; on sharded tables it finds
/// the rows of one shard ([`find_all_on`]: the shard a key's rows are
/// homed on, such as a subscriber's attributes).
pub struct Multi<R> {
    pub field: &'static str,
    /// Its storage table in the catalog.
    pub store: TableId,
    pub key: fn(&R) -> Option<String>,
}

/// Whether row `id` of a table exists.
pub type Exists = for<'c> fn(&'c Core, u64) -> LocalBoxFuture<'c, Result<bool, TableError>>;

/// A field that names rows of another table.
pub struct Reference<R> {
    pub field: &'static str,
    pub target: &'static TableDef,
    /// The ids the field names (a list field may name several; a
    /// malformed one is a field error).
    pub ids: fn(&R) -> Result<Vec<u64>, TableError>,
    /// [`exists::<Target>`](exists).
    pub exists: Exists,
    /// A list of ids (PyHSS's `apn_list`) that a write may leave naming
    /// missing rows when [`Write::lenient_lists`] is set.
    pub list: bool,
}

/// A row type. Implementations declare; the generic code does the work.
pub trait Row: Clone + Send + Sync + Sized + 'static {
    const DEF: &'static TableDef;
    const PLACEMENT: Placement<Self>;
    /// Keys a create body must carry (not `null`).
    const REQUIRED: &'static [&'static str] = &[];
    const UNIQUE: &'static [Unique<Self>] = &[];
    /// Non-unique indexes.
    const MULTI: &'static [Multi<Self>] = &[];
    const REFERENCES: &'static [Reference<Self>] = &[];
    /// A catalog row created with its id field keeps that id (a carrier
    /// moving its data keeps its ids), when it is at or above the table's
    /// next id: no id is ever handed out twice.
    const GIVEN_IDS: bool = false;
    /// What applying a body needs besides the body (AuC: the KEK).
    type Env: Clone + Send + 'static;

    fn id(&self) -> u64;
    fn set_id(&mut self, id: u64);
    /// A new row before its create body is applied.
    fn blank() -> Self;
    /// Applies a create or PATCH body.
    fn apply(&mut self, body: &Body, env: &Self::Env) -> Result<(), TableError>;
    /// The field rules, on the row as it would be stored.
    fn check(&self) -> Result<(), TableError> {
        Ok(())
    }
    /// The rules under [`Write::pyhss_quirks`]: what PyHSS 2.0.0 stores
    /// that [`check`](Self::check) refuses (EIR: any answer code).
    fn check_quirks(&self) -> Result<(), TableError> {
        self.check()
    }
    /// A field a PATCH changed that may not change, if any.
    fn fixed(&self, _before: &Self) -> Option<&'static str> {
        None
    }
    /// Sets `last_modified`.
    fn stamp(&mut self, now: u64);
    /// Adjusts an earlier image of the row that a rollback puts back over
    /// `current` (AuC: the SQN never goes back).
    fn restored(&mut self, _current: &Self) {}
    fn encode(&self) -> Result<Vec<u8>, TableError>;
    fn decode(bytes: &[u8]) -> Result<Self, TableError>;
}

/// The write being made: when, and the operation it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Write {
    pub now: u64,
    pub operation_id: Option<String>,
    /// Accept list references ([`Reference::list`]) to missing rows.
    pub lenient_lists: bool,
    /// A rollback putting rows back as they were.
    pub undo: bool,
    /// A change a GeoRed peer pushed (not pushed on).
    pub from_peer: bool,
    /// PyHSS 2.0.0's quirks (`hss.pyhss_quirks`): the rows are checked by
    /// [`Row::check_quirks`].
    pub pyhss_quirks: bool,
}

impl Write {
    fn check<R: Row>(&self, row: &R) -> Result<(), TableError> {
        if self.pyhss_quirks {
            row.check_quirks()
        } else {
            row.check()
        }
    }
}

/// Where a change is committed.
#[derive(Clone, Copy)]
pub enum Site<'a> {
    Shard(&'a Core),
    Catalog(&'a CatalogView),
}

/// One change of one row, as the write hooks see it.
#[derive(Debug)]
pub struct Change<'a> {
    pub table: &'static TableDef,
    pub id: u64,
    /// The row's stored bytes before the change (`None`: created).
    pub before: Option<&'a [u8]>,
    /// After it (`None`: deleted).
    pub after: Option<&'a [u8]>,
    pub operation_id: Option<&'a str>,
    pub now: u64,
    /// Made by a rollback.
    pub undo: bool,
    /// Pushed by a GeoRed peer.
    pub from_peer: bool,
}

/// Receives every change of every table; the ops it returns are written in
/// the same commit as the row (on the row's shard, or in the catalog).
pub trait WriteHook: Send + Sync + 'static {
    fn on_change(&self, site: Site<'_>, change: &Change<'_>) -> Vec<Op>;
}

/// Finds up to a few rows of one table that reference row `id` of `target`.
type Referrers = fn(
    Rc<Core>,
    &'static TableDef,
    u64,
) -> LocalBoxFuture<'static, Result<Vec<Referrer>, TableError>>;

/// A row that references another.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub table: &'static TableDef,
    pub id: u64,
    /// The referencing field.
    pub field: &'static str,
}

impl std::fmt::Display for Referrer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.table.noun, self.id, self.field)
    }
}

/// Builds a catalog table's next typed rows (keyed by its storage table).
type TypedRows = fn(&CatalogView, &[Op]) -> Option<(u32, Derived)>;

struct Declared {
    def: &'static TableDef,
    catalog: bool,
    /// Storage tables of its rows and unique indexes.
    stores: Vec<TableId>,
    targets: Vec<&'static str>,
    referrers: Referrers,
    /// A catalog table's typed rows, kept with each catalog version.
    typed: Option<TypedRows>,
    /// Puts its rows back as they were.
    undo: undo::Undo,
}

/// Every declared table and the write hooks: built once by the entry
/// level, shared by every core.
#[derive(Default)]
pub struct Tables {
    declared: Vec<Declared>,
    hooks: Vec<Arc<dyn WriteHook>>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("tables", &self.names().collect::<Vec<_>>())
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

/// Why a set of declarations is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error("table {0} declared twice")]
    Name(&'static str),
    #[error("tables {0} and {1} share storage table {2}")]
    Store(&'static str, &'static str, TableId),
    #[error("tables {0} and {1} share an id counter")]
    Counter(&'static str, &'static str),
    #[error("table {0} uses storage table {1}, the id counters' own")]
    Meta(&'static str, TableId),
}

impl Tables {
    /// Declares table `R`: names, storage tables (rows and indexes) and
    /// counters must be unique, within the catalog and within the shards.
    pub fn declare<R: Row>(&mut self) -> Result<&mut Self, DeclareError> {
        let def = R::DEF;
        let catalog = matches!(R::PLACEMENT, Placement::Catalog);
        let stores: Vec<TableId> = std::iter::once(def.store)
            .chain(R::UNIQUE.iter().map(|u| u.store))
            .chain(R::MULTI.iter().map(|m| m.store))
            .collect();
        if let Some(s) = stores.iter().find(|&&s| s == ids::META) {
            return Err(DeclareError::Meta(def.name, *s));
        }
        for (i, s) in stores.iter().enumerate() {
            if stores[..i].contains(s) {
                return Err(DeclareError::Store(def.name, def.name, *s));
            }
        }
        for d in &self.declared {
            if d.def.name == def.name {
                return Err(DeclareError::Name(def.name));
            }
            if d.catalog != catalog {
                continue;
            }
            if d.def.counter == def.counter {
                return Err(DeclareError::Counter(d.def.name, def.name));
            }
            if let Some(s) = stores.iter().find(|s| d.stores.contains(s)) {
                return Err(DeclareError::Store(d.def.name, def.name, *s));
            }
        }
        self.declared.push(Declared {
            def,
            catalog,
            stores,
            targets: R::REFERENCES.iter().map(|r| r.target.name).collect(),
            referrers: referrers::<R>,
            typed: catalog
                .then_some(typed::<R> as fn(&CatalogView, &[Op]) -> Option<(u32, Derived)>),
            undo: undo::Undo::of::<R>(),
        });
        Ok(self)
    }

    /// What keeps every catalog table's typed rows in each catalog
    /// version (set on the view the cores start with).
    pub fn deriver(&self) -> Deriver {
        let typed: Vec<_> = self.declared.iter().filter_map(|d| d.typed).collect();
        std::sync::Arc::new(move |view: &CatalogView, ops: &[Op]| {
            typed.iter().filter_map(|f| f(view, ops)).collect()
        })
    }

    /// Adds a write hook.
    pub fn hook(&mut self, h: Arc<dyn WriteHook>) -> &mut Self {
        self.hooks.push(h);
        self
    }

    /// The names of the declared tables.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.declared.iter().map(|d| d.def.name)
    }

    /// Adds to `ops` the hooks' ops for the change of row `id` of `table`
    /// from `images.0` to `images.1` (stored bytes; `None`: no row).
    fn hooked(
        &self,
        site: Site<'_>,
        table: &'static TableDef,
        id: u64,
        images: (Option<&[u8]>, Option<&[u8]>),
        w: &Write,
        ops: &mut Vec<Op>,
    ) {
        let change = Change {
            table,
            id,
            before: images.0,
            after: images.1,
            operation_id: w.operation_id.as_deref(),
            now: w.now,
            undo: w.undo,
            from_peer: w.from_peer,
        };
        for h in &self.hooks {
            ops.extend(h.on_change(site, &change));
        }
    }

    /// Creates a row from `body`; returns it as stored.
    pub async fn create<R: Row>(
        self: &Arc<Self>,
        core: &Core,
        body: &Body,
        env: &R::Env,
        w: &Write,
    ) -> Result<R, TableError> {
        json::require(body, R::REQUIRED)?;
        let mut row = R::blank();
        row.apply(body, env)?;
        w.check(&row)?;
        row.stamp(w.now);
        check_references(core, &row, None, w.lenient_lists).await?;
        let given = if R::GIVEN_IDS {
            match body.get(R::DEF.id_field) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|i| *i > 0).ok_or_else(|| {
                    TableError::field(R::DEF.id_field, "must be a positive integer")
                })?),
            }
        } else {
            None
        };
        match R::PLACEMENT {
            Placement::Catalog => self.create_in_catalog(core, row, given, w).await,
            Placement::Sharded(home) => {
                let home = home(&row);
                self.create_sharded(core, row, home, w).await
            }
        }
    }

    async fn create_sharded<R: Row>(
        self: &Arc<Self>,
        core: &Core,
        mut row: R,
        home: Home,
        w: &Write,
    ) -> Result<R, TableError> {
        let n = core.shards();
        let owner = match home {
            Home::Key(k) => shard_of(k.as_bytes(), n),
            Home::WithRow(id) => owner_of(id, n),
            Home::Here => core.shard,
        };
        let counter = R::DEF.counter;
        let (id, used) = core
            .on(owner, move |c| async move { ids::next(&c, counter) })
            .await??;
        row.set_id(id);
        let claimed = claim_keys(core, &row, None).await?;
        let (tables, w, stored) = (self.clone(), w.clone(), row.clone());
        let written = core
            .on(owner, move |c| async move {
                let after = stored.encode()?;
                let mut ops = vec![ids::persist(&c, counter, used)];
                multi_ops::<R>(id, Some(&stored), None, &mut ops)?;
                tables.hooked(
                    Site::Shard(&c),
                    R::DEF,
                    id,
                    (None, Some(&after)),
                    &w,
                    &mut ops,
                );
                ops.push(put_row::<R>(id, after));
                c.store.commit(&ops).await?;
                Ok(())
            })
            .await
            .map_err(TableError::from)
            .and_then(|r| r);
        settle(core, claimed, id, written.is_ok()).await;
        written.map(|()| row)
    }

    async fn create_in_catalog<R: Row>(
        self: &Arc<Self>,
        core: &Core,
        mut row: R,
        given: Option<u64>,
        w: &Write,
    ) -> Result<R, TableError> {
        let (tables, w) = (self.clone(), w.clone());
        core.catalog_update(move |view| {
            let (id, counter_op) = match given {
                Some(id) => ids::claim_in_catalog(view, R::DEF.counter, id).ok_or_else(|| {
                    TableError::field(
                        R::DEF.id_field,
                        "already used: a given id must be at or above the next id",
                    )
                })?,
                None => ids::next_in_catalog(view, R::DEF.counter),
            };
            row.set_id(id);
            let mut ops = vec![counter_op];
            catalog_keys(view, id, Some(&row), None, &mut ops)?;
            let after = row.encode()?;
            tables.hooked(
                Site::Catalog(view),
                R::DEF,
                id,
                (None, Some(&after)),
                &w,
                &mut ops,
            );
            ops.push(put_row::<R>(id, after));
            Ok::<_, TableError>((ops, row))
        })
        .await?
    }

    /// Applies `body` to row `id`; returns the row as stored. The body is
    /// applied on the owning core to the newest row, so a concurrent
    /// change of other fields (an SQN issued meanwhile) is kept.
    pub async fn patch<R: Row>(
        self: &Arc<Self>,
        core: &Core,
        id: u64,
        body: &Body,
        env: &R::Env,
        w: &Write,
    ) -> Result<R, TableError> {
        // A row whose unique keys another PATCH changes at the same time:
        // its claims are redone against the newer row, a few times.
        for _ in 0..4 {
            let before = get::<R>(core, id).await?.ok_or(TableError::NotFound)?;
            let after = patched(&before, body, env, w)?;
            check_references(core, &after, Some(&before), w.lenient_lists).await?;
            let (tables, body, env, w) = (self.clone(), body.clone(), env.clone(), w.clone());
            if let Placement::Catalog = R::PLACEMENT {
                return core
                    .catalog_update(move |view| {
                        let current = catalog_row::<R>(view, id)?.ok_or(TableError::NotFound)?;
                        let next = patched(&current, &body, &env, &w)?;
                        let mut ops = Vec::new();
                        catalog_keys(view, id, Some(&next), Some(&current), &mut ops)?;
                        let (b, a) = (current.encode()?, next.encode()?);
                        tables.hooked(
                            Site::Catalog(view),
                            R::DEF,
                            id,
                            (Some(&b), Some(&a)),
                            &w,
                            &mut ops,
                        );
                        ops.push(put_row::<R>(id, a));
                        Ok::<_, TableError>((ops, next))
                    })
                    .await?;
            }
            let claimed = claim_keys(core, &after, Some(&before)).await?;
            let keys = unique_keys(&after);
            let written = core
                .on(owner_of(id, core.shards()), move |c| async move {
                    let current = read_here::<R>(&c, id)?.ok_or(TableError::NotFound)?;
                    let next = patched(&current, &body, &env, &w)?;
                    if unique_keys(&next) != keys {
                        return Ok(None);
                    }
                    let (b, a) = (current.encode()?, next.encode()?);
                    let mut ops = Vec::new();
                    multi_ops::<R>(id, Some(&next), Some(&current), &mut ops)?;
                    tables.hooked(
                        Site::Shard(&c),
                        R::DEF,
                        id,
                        (Some(&b), Some(&a)),
                        &w,
                        &mut ops,
                    );
                    ops.push(put_row::<R>(id, a));
                    c.store.commit(&ops).await?;
                    Ok(Some((current, next)))
                })
                .await
                .map_err(TableError::from)
                .and_then(|r| r);
            match written {
                Ok(Some((current, next))) => {
                    settle(core, claimed, id, true).await;
                    drop_keys(core, &current, Some(&next), id).await;
                    return Ok(next);
                }
                Ok(None) => settle(core, claimed, id, false).await,
                Err(e) => {
                    settle(core, claimed, id, false).await;
                    return Err(e);
                }
            }
        }
        Err(TableError::Conflict(R::DEF.noun))
    }

    /// Deletes row `id`, unless other rows still reference it.
    pub async fn delete<R: Row>(
        self: &Arc<Self>,
        core: &Rc<Core>,
        id: u64,
        w: &Write,
    ) -> Result<R, TableError> {
        get::<R>(core, id).await?.ok_or(TableError::NotFound)?;
        self.refuse_referenced(core, R::DEF, id).await?;
        let (tables, w) = (self.clone(), w.clone());
        if let Placement::Catalog = R::PLACEMENT {
            return core
                .catalog_update(move |view| {
                    let current = catalog_row::<R>(view, id)?.ok_or(TableError::NotFound)?;
                    let mut ops = Vec::new();
                    catalog_keys::<R>(view, id, None, Some(&current), &mut ops)?;
                    let b = current.encode()?;
                    tables.hooked(
                        Site::Catalog(view),
                        R::DEF,
                        id,
                        (Some(&b), None),
                        &w,
                        &mut ops,
                    );
                    ops.push(Op::Delete {
                        table: R::DEF.store,
                        key: id.to_be_bytes().to_vec(),
                    });
                    Ok::<_, TableError>((ops, current))
                })
                .await?;
        }
        let removed = core
            .on(owner_of(id, core.shards()), move |c| async move {
                let current = read_here::<R>(&c, id)?.ok_or(TableError::NotFound)?;
                let b = current.encode()?;
                let mut ops = Vec::new();
                multi_ops::<R>(id, None, Some(&current), &mut ops)?;
                tables.hooked(Site::Shard(&c), R::DEF, id, (Some(&b), None), &w, &mut ops);
                ops.push(Op::Delete {
                    table: R::DEF.store,
                    key: id.to_be_bytes().to_vec(),
                });
                c.store.commit(&ops).await?;
                Ok::<_, TableError>(current)
            })
            .await??;
        drop_keys(core, &removed, None, id).await;
        Ok(removed)
    }

    /// A 400 naming the rows that still reference row `id` of `target`.
    async fn refuse_referenced(
        &self,
        core: &Rc<Core>,
        target: &'static TableDef,
        id: u64,
    ) -> Result<(), TableError> {
        self.refuse_referenced_but(core, target, id, |_| false)
            .await
    }

    /// [`refuse_referenced`](Self::refuse_referenced), not counting the
    /// referrers `gone` says are going too.
    async fn refuse_referenced_but(
        &self,
        core: &Rc<Core>,
        target: &'static TableDef,
        id: u64,
        gone: impl Fn(&Referrer) -> bool,
    ) -> Result<(), TableError> {
        let mut by = Vec::new();
        for d in &self.declared {
            if d.targets.contains(&target.name) {
                let found = (d.referrers)(core.clone(), target, id).await?;
                by.extend(found.iter().filter(|r| !gone(r)).map(Referrer::to_string));
            }
        }
        if by.is_empty() {
            Ok(())
        } else {
            Err(TableError::Referenced {
                noun: target.noun,
                id,
                by,
            })
        }
    }
}

/// The row's put.
fn put_row<R: Row>(id: u64, value: Vec<u8>) -> Op {
    Op::Put {
        table: R::DEF.store,
        key: id.to_be_bytes().to_vec(),
        value,
    }
}

/// `before` with `body` applied, checked and stamped.
fn patched<R: Row>(before: &R, body: &Body, env: &R::Env, w: &Write) -> Result<R, TableError> {
    // A required field stays set.
    if let Some(k) = R::REQUIRED
        .iter()
        .find(|k| body.get(**k).is_some_and(serde_json::Value::is_null))
    {
        return Err(TableError::Required(k));
    }
    let mut after = before.clone();
    after.apply(body, env)?;
    if let Some(f) = after.fixed(before) {
        return Err(TableError::Fixed(f));
    }
    w.check(&after)?;
    after.stamp(w.now);
    Ok(after)
}

fn unique_keys<R: Row>(row: &R) -> Vec<Option<String>> {
    R::UNIQUE.iter().map(|u| (u.key)(row)).collect()
}

/// Checks that every row `row` references exists (those `before` already
/// referenced are not checked again; list references not at all when
/// `lenient_lists`).
async fn check_references<R: Row>(
    core: &Core,
    row: &R,
    before: Option<&R>,
    lenient_lists: bool,
) -> Result<(), TableError> {
    for r in R::REFERENCES.iter().filter(|r| !(r.list && lenient_lists)) {
        let old = match before {
            Some(b) => (r.ids)(b).unwrap_or_default(),
            None => Vec::new(),
        };
        for id in (r.ids)(row)? {
            if !old.contains(&id) && !(r.exists)(core, id).await? {
                return Err(TableError::Missing {
                    field: r.field,
                    noun: r.target.noun,
                    id,
                });
            }
        }
    }
    Ok(())
}

/// Whether row `id` of `T` exists (a [`Reference`]'s check).
pub fn exists<T: Row>(core: &Core, id: u64) -> LocalBoxFuture<'_, Result<bool, TableError>> {
    Box::pin(async move { Ok(get::<T>(core, id).await?.is_some()) })
}

/// Row `id` (durable), wherever it lives.
pub async fn get<R: Row>(core: &Core, id: u64) -> Result<Option<R>, TableError> {
    match R::PLACEMENT {
        Placement::Catalog => catalog_row(&core.catalog(), id),
        Placement::Sharded(_) => {
            core.on(owner_of(id, core.shards()), move |c| async move {
                load_here::<R>(&c, id).await
            })
            .await?
        }
    }
}

/// Row `id` on this core's shard, once durable.
pub async fn load_here<R: Row>(core: &Core, id: u64) -> Result<Option<R>, TableError> {
    core.store
        .read_durable(R::DEF.store, &id.to_be_bytes(), |v| v.map(R::decode))
        .await?
        .transpose()
}

/// Row `id` on this core's shard as it is now (changes not yet durable
/// included: for read-modify-write).
pub fn read_here<R: Row>(core: &Core, id: u64) -> Result<Option<R>, TableError> {
    core.store
        .read(R::DEF.store, &id.to_be_bytes(), |v| v.map(R::decode))?
        .transpose()
}

/// The decoded rows of catalog table `R`, kept with every catalog version
/// (updated from each change, not rebuilt): reads decode nothing.
#[derive(Debug)]
pub struct Typed<R: Clone> {
    pub rows: imbl::OrdMap<u64, Arc<R>>,
}

/// `R`'s typed rows in `view`, if the view keeps them.
pub fn typed_rows<R: Row>(view: &CatalogView) -> Option<&Typed<R>> {
    view.derived(u32::from(R::DEF.store))
        .and_then(|d| d.downcast_ref::<Typed<R>>())
}

/// The next version of `R`'s typed rows, when `ops` change its table.
fn typed<R: Row>(view: &CatalogView, ops: &[Op]) -> Option<(u32, Derived)> {
    let mut touched = ops.iter().filter(|o| o.table() == R::DEF.store).peekable();
    touched.peek()?;
    let mut rows = typed_rows::<R>(view)
        .map(|t| t.rows.clone())
        .unwrap_or_default();
    for op in touched {
        let Ok(key) = <[u8; 8]>::try_from(op.key()) else {
            continue;
        };
        let id = u64::from_be_bytes(key);
        match op {
            Op::Put { value, .. } => match R::decode(value) {
                Ok(r) => {
                    rows.insert(id, Arc::new(r));
                }
                // Read from the bytes (and reported) instead.
                Err(_) => {
                    rows.remove(&id);
                }
            },
            Op::Delete { .. } => {
                rows.remove(&id);
            }
        }
    }
    Some((u32::from(R::DEF.store), Arc::new(Typed { rows })))
}

/// Row `id` of a catalog table in `view`.
pub fn catalog_row<R: Row>(view: &CatalogView, id: u64) -> Result<Option<R>, TableError> {
    if let Some(row) = typed_rows::<R>(view).and_then(|t| t.rows.get(&id)) {
        return Ok(Some(R::clone(row)));
    }
    view.get(R::DEF.store, &id.to_be_bytes())
        .map(R::decode)
        .transpose()
}

/// Row `id` of catalog table `R` in `view`, shared (no copy): from the
/// typed rows every catalog version keeps.
pub fn catalog_shared<R: Row>(view: &CatalogView, id: u64) -> Option<Arc<R>> {
    typed_rows::<R>(view).and_then(|t| t.rows.get(&id)).cloned()
}

/// The row of catalog table `R` whose unique `field` is `key` in `view`
/// (read lock-free on any core).
pub fn catalog_find<R: Row>(view: &CatalogView, field: &str, key: &str) -> Option<Arc<R>> {
    let u = R::UNIQUE.iter().find(|u| u.field == field)?;
    let row = catalog_shared::<R>(view, catalog_holder(view, u.store, key)?)?;
    ((u.key)(&row).as_deref() == Some(key)).then_some(row)
}

fn catalog_holder(view: &CatalogView, store: TableId, key: &str) -> Option<u64> {
    index::decode_id(view.get(store, key.as_bytes()))
}

/// The ops that store `row` as a new row of catalog table `R` in `view`
/// (the row and its index entries, no hook): for bulk loads and benches.
pub fn insert_ops<R: Row>(view: &CatalogView, row: &R) -> Result<Vec<Op>, TableError> {
    let mut ops = vec![put_row::<R>(row.id(), row.encode()?)];
    catalog_keys::<R>(view, row.id(), Some(row), None, &mut ops)?;
    Ok(ops)
}

/// The catalog index ops for a row changing from `before` to `after`
/// (`None`: created, or deleted): unique keys (a taken one is an error)
/// and non-unique ones.
fn catalog_keys<R: Row>(
    view: &CatalogView,
    id: u64,
    after: Option<&R>,
    before: Option<&R>,
    ops: &mut Vec<Op>,
) -> Result<(), TableError> {
    for u in R::UNIQUE {
        let (new, old) = (
            after.and_then(|r| (u.key)(r)),
            before.and_then(|b| (u.key)(b)),
        );
        if new == old {
            continue;
        }
        if let Some(k) = new {
            check_key_len(u.field, &k)?;
            if let Some(other) = catalog_holder(view, u.store, &k).filter(|&o| o != id) {
                let held = catalog_row::<R>(view, other)?
                    .is_some_and(|r| (u.key)(&r).as_deref() == Some(k.as_str()));
                if held {
                    return Err(TableError::Taken {
                        field: u.field,
                        holder: R::DEF.noun,
                        id: other,
                    });
                }
            }
            ops.push(Op::Put {
                table: u.store,
                key: k.into_bytes(),
                value: id.to_be_bytes().to_vec(),
            });
        }
        if let Some(o) = old {
            if catalog_holder(view, u.store, &o) == Some(id) {
                ops.push(Op::Delete {
                    table: u.store,
                    key: o.into_bytes(),
                });
            }
        }
    }
    multi_ops(id, after, before, ops)
}

/// The non-unique index ops for a row changing from `before` to `after`:
/// its entries live where the row does (the catalog, or the row's own
/// shard) and change in its commit.
fn multi_ops<R: Row>(
    id: u64,
    after: Option<&R>,
    before: Option<&R>,
    ops: &mut Vec<Op>,
) -> Result<(), TableError> {
    for m in R::MULTI {
        let new = after.and_then(|r| (m.key)(r));
        let old = before.and_then(|b| (m.key)(b));
        if new == old {
            continue;
        }
        if let Some(o) = old {
            ops.push(Op::Delete {
                table: m.store,
                key: multi_entry(&o, id),
            });
        }
        if let Some(k) = new {
            check_key_len(m.field, &k)?;
            ops.push(Op::Put {
                table: m.store,
                key: multi_entry(&k, id),
                value: Vec::new(),
            });
        }
    }
    Ok(())
}

/// Longest indexed value, in bytes.
pub const MAX_INDEX_KEY_BYTES: usize = 1024;

fn check_key_len(field: &'static str, key: &str) -> Result<(), TableError> {
    if key.len() > MAX_INDEX_KEY_BYTES {
        return Err(TableError::field(
            field,
            format!("longer than {MAX_INDEX_KEY_BYTES} bytes (it is indexed)"),
        ));
    }
    Ok(())
}

/// The entries of a non-unique index with `key`: `len (u16 BE) ‖ key`,
/// then each row's id (u64 BE) completes an entry.
fn multi_prefix(key: &str) -> Vec<u8> {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(2 + key.len() + 8);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    k
}

fn multi_entry(key: &str, id: u64) -> Vec<u8> {
    let mut k = multi_prefix(key);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn multi_of<R: Row>(field: &str) -> Result<&'static Multi<R>, TableError> {
    R::MULTI
        .iter()
        .find(|m| m.field == field)
        .ok_or_else(|| TableError::Internal(format!("{} has no index on {field}", R::DEF.name)))
}

/// Every row of sharded table `R` on `shard` whose non-unique `field` is
/// `key`, in id order (durable rows only).
pub async fn find_all_on<R: Row>(
    core: &Core,
    shard: ShardId,
    field: &str,
    key: &str,
) -> Result<Vec<R>, TableError> {
    multi_of::<R>(field)?;
    let (field, key) = (field.to_owned(), key.to_owned());
    core.on(shard, move |c| async move {
        find_all_here::<R>(&c, &field, &key).await
    })
    .await?
}

/// Every row of sharded table `R` on this core's shard whose non-unique
/// `field` is `key`, in id order (durable rows only).
pub async fn find_all_here<R: Row>(c: &Core, field: &str, key: &str) -> Result<Vec<R>, TableError> {
    let m = multi_of::<R>(field)?;
    let (store, carries) = (m.store, m.key);
    {
        let prefix = multi_prefix(key);
        let mut ids = Vec::new();
        let mut after = prefix.clone();
        'scan: loop {
            let within = |k: &[u8]| k.starts_with(&prefix);
            let part = c.store.scan_while(store, Some(&after), 256, within)?;
            for (entry, _) in &part {
                let Some(rest) = entry.strip_prefix(prefix.as_slice()) else {
                    break 'scan;
                };
                if let Ok(id) = <[u8; 8]>::try_from(rest) {
                    ids.push(u64::from_be_bytes(id));
                }
            }
            match part.last() {
                Some((k, _)) if part.len() == 256 => after = k.clone(),
                _ => break,
            }
        }
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = load_here::<R>(c, id).await? {
                if carries(&row).as_deref() == Some(key) {
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }
}

/// Every row of sharded table `R` whose non-unique `field` is `key`, on
/// every shard (one visit each).
pub async fn find_all_shards<R: Row>(
    core: &Core,
    field: &str,
    key: &str,
) -> Result<Vec<R>, TableError> {
    let mut rows = Vec::new();
    for k in 0..core.shards() {
        rows.extend(find_all_on::<R>(core, ShardId(k), field, key).await?);
    }
    Ok(rows)
}

/// Every row of catalog table `R` whose non-unique `field` is `key`, in
/// id order (entries checked against the rows).
pub fn find_all<R: Row>(view: &CatalogView, field: &str, key: &str) -> Result<Vec<R>, TableError> {
    let m = multi_of::<R>(field)?;
    let prefix = multi_prefix(key);
    let mut rows = Vec::new();
    for (entry, _) in view.range(m.store, &prefix) {
        let Some(rest) = entry.strip_prefix(prefix.as_slice()) else {
            break;
        };
        let Ok(id) = <[u8; 8]>::try_from(rest) else {
            continue;
        };
        if let Some(row) = catalog_row::<R>(view, u64::from_be_bytes(id))? {
            if (m.key)(&row).as_deref() == Some(key) {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Claims `row`'s unique keys that differ from `before`'s.
async fn claim_keys<R: Row>(
    core: &Core,
    row: &R,
    before: Option<&R>,
) -> Result<Vec<(TableId, Vec<u8>)>, TableError> {
    for u in R::UNIQUE {
        if let Some(k) = (u.key)(row) {
            check_key_len(u.field, &k)?;
        }
    }
    let wanted = R::UNIQUE
        .iter()
        .enumerate()
        .map(|(i, u)| index::Wanted {
            table: u.store,
            new: (u.key)(row),
            old: before.and_then(|b| (u.key)(b)),
            holds: Box::new(move |c: &Core, id, key: &[u8]| holds::<R>(c, id, key, i)),
            field: u.field,
        })
        .collect();
    index::claim_changed(core, row.id(), R::DEF.noun, wanted).await
}

/// Whether row `id` (on this core) carries `key` in unique index `i`.
fn holds<R: Row>(core: &Core, id: u64, key: &[u8], i: usize) -> bool {
    let Some(u) = R::UNIQUE.get(i) else {
        return false;
    };
    matches!(read_here::<R>(core, id), Ok(Some(r)) if (u.key)(&r).as_deref().map(str::as_bytes) == Some(key))
}

/// Ends the claims of a write: released when it was written, removed
/// when it was not.
async fn settle(core: &Core, claimed: Vec<(TableId, Vec<u8>)>, id: u64, written: bool) {
    for (t, k) in claimed {
        if written {
            index::release(core, t, k).await;
        } else {
            let _ = index::remove(core, t, k, id).await;
        }
    }
}

/// Removes the index entries of `before`'s unique keys that `after` no
/// longer carries (best effort: a stale entry reads as absent).
async fn drop_keys<R: Row>(core: &Core, before: &R, after: Option<&R>, id: u64) {
    for u in R::UNIQUE {
        let (old, new) = ((u.key)(before), after.and_then(|a| (u.key)(a)));
        if let Some(o) = old.filter(|o| Some(o) != new.as_ref()) {
            let _ = index::remove(core, u.store, o.into_bytes(), id).await;
        }
    }
}

/// The row of `R` whose unique `field` is `key`: through the index (a
/// stale entry reads as absent). When the row lives on the key's shard,
/// the entry and the row are read in one visit.
pub async fn find<R: Row>(core: &Core, field: &str, key: &str) -> Result<Option<R>, TableError> {
    Ok(find_with::<R, ()>(core, field, key, nothing_more)
        .await?
        .map(|(r, ())| r))
}

fn nothing_more<'c, R>(_: &'c Core, _: &'c R) -> LocalBoxFuture<'c, Result<(), TableError>> {
    Box::pin(async { Ok(()) })
}

/// What [`find_with`] also reads, on the row's own core.
pub type With<R, X> = for<'c> fn(&'c Core, &'c R) -> LocalBoxFuture<'c, Result<X, TableError>>;

/// [`find`], and `with` run on the row's own core in the same visit (the
/// rows that live with it: a subscriber's attributes).
pub async fn find_with<R: Row, X: Send + 'static>(
    core: &Core,
    field: &str,
    key: &str,
    with: With<R, X>,
) -> Result<Option<(R, X)>, TableError> {
    let Some((i, u)) = R::UNIQUE.iter().enumerate().find(|(_, u)| u.field == field) else {
        return Err(TableError::Internal(format!(
            "{} has no unique index on {field}",
            R::DEF.name
        )));
    };
    let carries = move |r: &R| R::UNIQUE.get(i).and_then(|u| (u.key)(r)).as_deref() == Some(key);
    if let Placement::Catalog = R::PLACEMENT {
        let view = core.catalog();
        let row = match catalog_holder(&view, u.store, key) {
            Some(id) => catalog_row::<R>(&view, id)?.filter(carries),
            None => None,
        };
        return match row {
            Some(r) => {
                let x = with(core, &r).await?;
                Ok(Some((r, x)))
            }
            None => Ok(None),
        };
    }
    let (store, k, owned) = (u.store, key.as_bytes().to_vec(), key.to_owned());
    let found = core
        .on(shard_of(&k, core.shards()), move |c| async move {
            let Some(id) = index::lookup_here(&c, store, &k).await? else {
                return Ok(Found::Nothing);
            };
            if owner_of(id, c.shards()) != c.shard {
                return Ok::<_, TableError>(Found::Elsewhere(id));
            }
            let row = load_here::<R>(&c, id).await?;
            let carried = |r: &R| {
                R::UNIQUE.get(i).and_then(|u| (u.key)(r)).as_deref() == Some(owned.as_str())
            };
            match row.filter(carried) {
                Some(r) => {
                    let x = with(&c, &r).await?;
                    Ok(Found::Row((r, x)))
                }
                None => Ok(Found::Nothing),
            }
        })
        .await??;
    match found {
        Found::Nothing => Ok(None),
        Found::Row(rx) => Ok(Some(rx)),
        Found::Elsewhere(id) => {
            let key = key.to_owned();
            core.on(owner_of(id, core.shards()), move |c| async move {
                let carried = |r: &R| {
                    R::UNIQUE.get(i).and_then(|u| (u.key)(r)).as_deref() == Some(key.as_str())
                };
                match load_here::<R>(&c, id).await?.filter(carried) {
                    Some(r) => {
                        let x = with(&c, &r).await?;
                        Ok(Some((r, x)))
                    }
                    None => Ok(None),
                }
            })
            .await?
        }
    }
}

/// What the key's shard found of a row through an index entry.
pub enum Found<R> {
    Nothing,
    Row(R),
    /// The entry names a row on another shard.
    Elsewhere(u64),
}

/// Rows `page * size ..` (at most `size`) of `R` in id order. Sharded
/// tables are merged across shards by key: each shard is read in batches
/// after its last key, so a page costs about (page + 1) * size rows read
/// in all, not that many per shard.
pub async fn list<R: Row>(core: &Core, page: usize, size: usize) -> Result<Vec<R>, TableError> {
    let skip = page.saturating_mul(size);
    if let Placement::Catalog = R::PLACEMENT {
        let view = core.catalog();
        // A row whose bytes do not decode is left out of the typed rows
        // (its decode error was logged when it was read).
        if let Some(t) = typed_rows::<R>(&view) {
            return Ok(t
                .rows
                .values()
                .skip(skip)
                .take(size)
                .map(|r| R::clone(r))
                .collect());
        }
        return view
            .table(R::DEF.store)
            .skip(skip)
            .take(size)
            .map(|(_, v)| R::decode(v))
            .collect();
    }
    let batch = size.clamp(16, 1024);
    let n = usize::from(core.shards());
    let mut heads: Vec<std::collections::VecDeque<(u64, Vec<u8>)>> = vec![Default::default(); n];
    let mut after: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut done = vec![false; n];
    let (mut skipped, mut out) = (0usize, Vec::with_capacity(size.min(1024)));
    while out.len() < size {
        for k in 0..n {
            if heads[k].is_empty() && !done[k] {
                let (table, from) = (R::DEF.store, after[k].clone());
                let shard = ShardId(u16::try_from(k).unwrap_or(u16::MAX));
                let part = core
                    .on(shard, move |c| async move {
                        c.store.scan(table, from.as_deref(), batch)
                    })
                    .await??;
                done[k] = part.len() < batch;
                after[k] = part.last().map(|(key, _)| key.clone());
                heads[k].extend(part.into_iter().filter_map(|(key, v)| {
                    let id = u64::from_be_bytes(<[u8; 8]>::try_from(key.as_slice()).ok()?);
                    Some((id, v))
                }));
            }
        }
        let next = (0..n)
            .filter_map(|k| heads[k].front().map(|(id, _)| (*id, k)))
            .min();
        let Some((_, k)) = next else { break };
        let Some((_, v)) = heads[k].pop_front() else {
            break;
        };
        if skipped < skip {
            skipped += 1;
        } else {
            out.push(R::decode(&v)?);
        }
    }
    Ok(out)
}

/// Finds up to a few rows of `R` that reference row `id` of `target`.
fn referrers<R: Row>(
    core: Rc<Core>,
    target: &'static TableDef,
    id: u64,
) -> LocalBoxFuture<'static, Result<Vec<Referrer>, TableError>> {
    const MOST: usize = 5;
    Box::pin(async move {
        let names = move |row: &R, found: &mut Vec<Referrer>| {
            for r in R::REFERENCES
                .iter()
                .filter(|r| r.target.name == target.name)
            {
                if (r.ids)(row).is_ok_and(|ids| ids.contains(&id)) && found.len() < MOST {
                    found.push(Referrer {
                        table: R::DEF,
                        id: row.id(),
                        field: r.field,
                    });
                }
            }
        };
        let mut found = Vec::new();
        if let Placement::Catalog = R::PLACEMENT {
            for (_, v) in core.catalog().table(R::DEF.store) {
                names(&R::decode(v)?, &mut found);
            }
            return Ok(found);
        }
        // Every row of every shard, in batches (one visit each).
        for k in 0..core.shards() {
            let mut from: Option<Vec<u8>> = None;
            loop {
                let table = R::DEF.store;
                let start = from.clone();
                let (part, last) = core
                    .on(ShardId(k), move |c| async move {
                        let rows = c.store.scan(table, start.as_deref(), 512)?;
                        let last = (rows.len() == 512)
                            .then(|| rows.last().map(|(k, _)| k.clone()))
                            .flatten();
                        let mut found = Vec::new();
                        for (_, v) in &rows {
                            if let Ok(row) = R::decode(v) {
                                names(&row, &mut found);
                            }
                        }
                        Ok::<_, TableError>((found, last))
                    })
                    .await??;
                found.extend(part);
                if found.len() >= MOST {
                    found.truncate(MOST);
                    return Ok(found);
                }
                match last {
                    Some(l) => from = Some(l),
                    None => break,
                }
            }
        }
        Ok(found)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, Default)]
    struct Note {
        note_id: u64,
        group: u64,
        text: String,
        last_modified: String,
    }

    static NOTE: TableDef = TableDef {
        name: "note",
        noun: "note",
        id_field: "note_id",
        store: 7,
        counter: b"note_next",
        fields: json::fields,
    };

    impl Row for Note {
        const DEF: &'static TableDef = &NOTE;
        const PLACEMENT: Placement<Self> = Placement::Catalog;
        const MULTI: &'static [Multi<Self>] = &[Multi {
            field: "group",
            store: 8,
            key: |n| Some(n.group.to_string()),
        }];
        type Env = ();
        fn id(&self) -> u64 {
            self.note_id
        }
        fn set_id(&mut self, id: u64) {
            self.note_id = id;
        }
        fn blank() -> Self {
            Note::default()
        }
        crate::json_row!();
    }

    fn put(n: &Note) -> Vec<Op> {
        insert_ops(&CatalogView::default(), n).unwrap()
    }

    fn note(id: u64, group: u64, text: &str) -> Note {
        Note {
            note_id: id,
            group,
            text: text.into(),
            last_modified: String::new(),
        }
    }

    #[test]
    fn catalog_views_keep_typed_rows_per_version() {
        let mut t = Tables::default();
        t.declare::<Note>().unwrap();
        let v0 = CatalogView::default().with_deriver(t.deriver());
        let v1 = v0.with(&put(&note(1, 5, "a")));
        let v2 = v1.with(&put(&note(2, 5, "b")));
        assert!(typed_rows::<Note>(&v0).is_none());
        assert_eq!(typed_rows::<Note>(&v1).unwrap().rows.len(), 1);
        assert_eq!(typed_rows::<Note>(&v2).unwrap().rows.len(), 2);
        assert_eq!(catalog_row::<Note>(&v2, 2).unwrap().unwrap().text, "b");
        // Older versions are untouched.
        assert!(catalog_row::<Note>(&v1, 2).unwrap().is_none());
        let ids = |v: &CatalogView| -> Vec<u64> {
            find_all::<Note>(v, "group", "5")
                .unwrap()
                .iter()
                .map(|n| n.note_id)
                .collect()
        };
        assert_eq!(ids(&v2), [1, 2]);
        let v3 = v2.with(&[Op::Delete {
            table: 7,
            key: 1u64.to_be_bytes().to_vec(),
        }]);
        assert!(catalog_row::<Note>(&v3, 1).unwrap().is_none());
        // The index entry of a deleted row reads as absent.
        assert_eq!(ids(&v3), [2]);
        // A view built at start from stored entries has them typed too.
        let mut bare = CatalogView::default();
        bare.entries = v2.entries.clone();
        let restarted = bare.with_deriver(t.deriver());
        assert_eq!(typed_rows::<Note>(&restarted).unwrap().rows.len(), 2);
    }

    #[test]
    fn declarations_that_would_share_storage_are_refused() {
        let mut t = Tables::default();
        t.declare::<Note>().unwrap();
        assert!(matches!(
            t.declare::<Note>(),
            Err(DeclareError::Name("note"))
        ));
    }
}
