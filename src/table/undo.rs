//! Putting rows back as they were: the operation log's rollback gives
//! each row's earlier stored image (`None`: the row did not exist) and
//! [`Tables::restore`] writes them through the same index and hook
//! upkeep as any write.
//!
//! - Checked first, written after: a row put back must find what it
//!   references, and a row removed must leave no referrer behind (rows
//!   the same rollback puts back are checked as their images); nothing is
//!   written when a check fails.
//! - Atomic per site: every row of the catalog in one catalog commit,
//!   every row of one shard in one commit of that shard.
//! - Idempotent: a row already as its image is left alone (and counted as
//!   unchanged), so a rollback run twice changes nothing the second time.
//! - [`Row::restored`] adjusts an image to the row as it is now (the AuC
//!   keeps its SQN: a rollback never makes an SQN reissuable).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use super::{
    catalog_keys, catalog_row, claim_keys, drop_keys, get, multi_ops, owner_of, put_row, read_here,
    settle, Placement, Row, Site, TableError, Tables, Write,
};
use crate::runtime::{Core, LocalBoxFuture};
use crate::storage::{Op, TableId};

/// One row to put back: `image` its stored bytes (`None`: no row).
#[derive(Debug, Clone)]
pub struct Restore {
    pub table: String,
    pub id: u64,
    pub image: Option<Vec<u8>>,
}

/// Whether each row of a rollback will exist once it is done.
type Plan = HashMap<(&'static str, u64), bool>;

/// A row's stored bytes before and after its restore.
type Staged = (Option<Vec<u8>>, Option<Vec<u8>>);

type Claims = Vec<(TableId, Vec<u8>)>;

/// One table's restore steps, typed once at declaration.
#[derive(Clone, Copy)]
pub(super) struct Undo {
    /// Checks that what the image references exists (or is put back).
    present: Present,
    /// Claims the image's unique keys (sharded tables).
    claim: Claim,
    /// On the row's site: the ops putting it back, or `None` when it
    /// already is as its image.
    stage: Stage,
    /// After the commit: drops the unique keys the row no longer has.
    release: fn(Rc<Core>, u64, Staged) -> LocalBoxFuture<'static, ()>,
}

type Present =
    fn(Rc<Core>, u64, Vec<u8>, Arc<Plan>, bool) -> LocalBoxFuture<'static, Result<(), TableError>>;

type Claim =
    fn(Rc<Core>, u64, Option<Vec<u8>>) -> LocalBoxFuture<'static, Result<Claims, TableError>>;

type Stage = fn(
    Site<'_>,
    &Tables,
    u64,
    Option<&[u8]>,
    &Write,
    &mut Vec<Op>,
) -> Result<Option<Staged>, TableError>;

impl Undo {
    pub(super) fn of<R: Row>() -> Undo {
        Undo {
            present: present::<R>,
            claim: claim::<R>,
            stage: stage::<R>,
            release: release::<R>,
        }
    }
}

fn decode_as<R: Row>(id: u64, bytes: &[u8]) -> Result<R, TableError> {
    let row = R::decode(bytes)?;
    if row.id() != id {
        return Err(TableError::Damaged(R::DEF.noun));
    }
    Ok(row)
}

fn present<R: Row>(
    core: Rc<Core>,
    id: u64,
    image: Vec<u8>,
    plan: Arc<Plan>,
    lenient_lists: bool,
) -> LocalBoxFuture<'static, Result<(), TableError>> {
    Box::pin(async move {
        let row: R = decode_as(id, &image)?;
        for r in R::REFERENCES.iter().filter(|r| !(r.list && lenient_lists)) {
            for target in (r.ids)(&row)? {
                let there = match plan.get(&(r.target.name, target)) {
                    Some(&will) => will,
                    None => (r.exists)(&core, target).await?,
                };
                if !there {
                    return Err(TableError::Missing {
                        field: r.field,
                        noun: r.target.noun,
                        id: target,
                    });
                }
            }
        }
        Ok(())
    })
}

fn claim<R: Row>(
    core: Rc<Core>,
    id: u64,
    image: Option<Vec<u8>>,
) -> LocalBoxFuture<'static, Result<Claims, TableError>> {
    Box::pin(async move {
        let Some(image) = image else {
            return Ok(Vec::new());
        };
        if let Placement::Catalog = R::PLACEMENT {
            return Ok(Vec::new());
        }
        let row: R = decode_as(id, &image)?;
        let current = get::<R>(&core, id).await?;
        claim_keys(&core, &row, current.as_ref()).await
    })
}

fn stage<R: Row>(
    site: Site<'_>,
    tables: &Tables,
    id: u64,
    image: Option<&[u8]>,
    w: &Write,
    ops: &mut Vec<Op>,
) -> Result<Option<Staged>, TableError> {
    let current = match site {
        Site::Shard(c) => read_here::<R>(c, id)?,
        Site::Catalog(view) => catalog_row::<R>(view, id)?,
    };
    let mut target = image.map(|b| decode_as::<R>(id, b)).transpose()?;
    if let (Some(t), Some(c)) = (target.as_mut(), current.as_ref()) {
        t.restored(c);
    }
    let before = current.as_ref().map(R::encode).transpose()?;
    let after = target.as_ref().map(R::encode).transpose()?;
    if before == after {
        return Ok(None);
    }
    match site {
        Site::Shard(_) => multi_ops::<R>(id, target.as_ref(), current.as_ref(), ops)?,
        Site::Catalog(view) => catalog_keys::<R>(view, id, target.as_ref(), current.as_ref(), ops)?,
    }
    tables.hooked(
        site,
        R::DEF,
        id,
        (before.as_deref(), after.as_deref()),
        w,
        ops,
    );
    ops.push(match &after {
        Some(a) => put_row::<R>(id, a.clone()),
        None => Op::Delete {
            table: R::DEF.store,
            key: id.to_be_bytes().to_vec(),
        },
    });
    Ok(Some((before, after)))
}

fn release<R: Row>(core: Rc<Core>, id: u64, staged: Staged) -> LocalBoxFuture<'static, ()> {
    Box::pin(async move {
        if let Placement::Catalog = R::PLACEMENT {
            return;
        }
        let (Some(before), after) = staged else {
            return;
        };
        let (Ok(before), after) = (R::decode(&before), after.map(|a| R::decode(&a))) else {
            return;
        };
        drop_keys(&core, &before, after.and_then(Result::ok).as_ref(), id).await;
    })
}

impl Tables {
    /// Puts `rows` back as their images (the first image given for a row
    /// wins); returns how many rows changed.
    pub async fn restore(
        self: &Arc<Self>,
        core: &Rc<Core>,
        rows: Vec<Restore>,
        w: &Write,
    ) -> Result<usize, TableError> {
        let mut items = Vec::new();
        let mut plan = Plan::new();
        for r in rows {
            let d = self
                .declared
                .iter()
                .find(|d| d.def.name == r.table)
                .ok_or_else(|| TableError::Internal(format!("no table {}", r.table)))?;
            if plan.contains_key(&(d.def.name, r.id)) {
                continue;
            }
            plan.insert((d.def.name, r.id), r.image.is_some());
            items.push((d, r.id, r.image));
        }
        let plan = Arc::new(plan);
        for &(d, id, ref image) in &items {
            match image {
                Some(image) => {
                    (d.undo.present)(
                        core.clone(),
                        id,
                        image.clone(),
                        plan.clone(),
                        w.lenient_lists,
                    )
                    .await?
                }
                None => {
                    // A referrer the rollback puts back is checked as
                    // its image, by `present`.
                    let gone = |r: &super::Referrer| plan.contains_key(&(r.table.name, r.id));
                    self.refuse_referenced_but(core, d.def, id, gone).await?;
                }
            }
        }
        let mut changed = 0;
        let catalog: Vec<_> = items
            .iter()
            .filter(|(d, ..)| d.catalog)
            .map(|(d, id, image)| (d.undo.stage, *id, image.clone()))
            .collect();
        if !catalog.is_empty() {
            let (tables, w) = (self.clone(), w.clone());
            changed += core
                .catalog_update(move |view| {
                    let mut ops = Vec::new();
                    let mut n = 0;
                    for (stage, id, image) in &catalog {
                        let site = Site::Catalog(view);
                        if stage(site, &tables, *id, image.as_deref(), &w, &mut ops)?.is_some() {
                            n += 1;
                        }
                    }
                    Ok::<_, TableError>((ops, n))
                })
                .await??;
        }
        let mut shards: BTreeMap<u16, Vec<_>> = BTreeMap::new();
        for (d, id, image) in items.into_iter().filter(|(d, ..)| !d.catalog) {
            let shard = owner_of(id, core.shards());
            shards.entry(shard.0).or_default().push((d.undo, id, image));
        }
        for (shard, group) in shards {
            changed += self.restore_on(core, shard, group, w).await?;
        }
        Ok(changed)
    }

    /// Restores the rows of one shard in one commit.
    async fn restore_on(
        self: &Arc<Self>,
        core: &Rc<Core>,
        shard: u16,
        group: Vec<(Undo, u64, Option<Vec<u8>>)>,
        w: &Write,
    ) -> Result<usize, TableError> {
        let mut claimed = Vec::new();
        for (undo, id, image) in &group {
            match (undo.claim)(core.clone(), *id, image.clone()).await {
                Ok(c) => claimed.push((*id, c)),
                Err(e) => {
                    for (id, c) in claimed {
                        settle(core, c, id, false).await;
                    }
                    return Err(e);
                }
            }
        }
        let (tables, w) = (self.clone(), w.clone());
        let staged = core
            .on(crate::domain::shard::ShardId(shard), move |c| async move {
                let mut ops = Vec::new();
                let mut staged = Vec::new();
                for (undo, id, image) in group {
                    let site = Site::Shard(&c);
                    if let Some(s) =
                        (undo.stage)(site, &tables, id, image.as_deref(), &w, &mut ops)?
                    {
                        staged.push((undo.release, id, s));
                    }
                }
                if !ops.is_empty() {
                    c.store.commit(&ops).await?;
                }
                Ok::<_, TableError>(staged)
            })
            .await
            .map_err(TableError::from)
            .and_then(|r| r);
        let written = staged.is_ok();
        for (id, c) in claimed {
            settle(core, c, id, written).await;
        }
        let staged = staged?;
        let n = staged.len();
        for (release, id, s) in staged {
            release(core.clone(), id, s).await;
        }
        Ok(n)
    }
}
