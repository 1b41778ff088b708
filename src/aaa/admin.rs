//! The AAA's provisioning beyond the declared tables: customers answered
//! with their live balance, audited balance changes, and the CDRs and SDRs
//! (lists with filters, CSV export).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rows::Customer;
use super::tables;
use super::wallet::{self, Cdr, Funds, Sdr};
use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{form_pairs, Method, Request};
use crate::domain::money;
use crate::domain::router::{Params, RouteDoc, RouteError};
use crate::domain::shard::ShardId;
use crate::runtime::{clock, LocalBoxFuture};
use crate::server::crud::{self, Plain};
use crate::server::{mesh_error, Ctx, Handler, Reply, Routes};
use crate::table::{self, catalog_shared, store_error};

/// A customer as answered: its row, with the live balance, what is held
/// and the calls in progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    #[serde(flatten)]
    pub row: Customer,
    #[schema(value_type = String)]
    pub reserved: String,
    pub calls_in_progress: u32,
}

fn view(mut row: Customer, f: Funds) -> CustomerView {
    row.balance = f.balance;
    CustomerView {
        row,
        reserved: money::format6(f.held),
        calls_in_progress: f.calls,
    }
}

/// The funds of `customers`, read on their shards (one visit per shard).
async fn funds_of(ctx: &Ctx, customers: Vec<Customer>) -> Result<Vec<CustomerView>, ApiError> {
    let mut by_shard: BTreeMap<u16, Vec<Customer>> = BTreeMap::new();
    let n = customers.len();
    let order: Vec<u64> = customers.iter().map(|c| c.i_customer).collect();
    for c in customers {
        by_shard
            .entry(wallet::home(c.i_customer, ctx.core.shards()).0)
            .or_default()
            .push(c);
    }
    let mut views: BTreeMap<u64, CustomerView> = BTreeMap::new();
    for (shard, group) in by_shard {
        let got = ctx
            .core
            .on(ShardId(shard), move |c| async move {
                group
                    .into_iter()
                    .map(|row| {
                        let f = wallet::funds(&c, &row)?;
                        Ok((row, f))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .await
            .map_err(mesh_error)??;
        for (row, f) in got {
            views.insert(row.i_customer, view(row, f));
        }
    }
    let mut out = Vec::with_capacity(n);
    for id in order {
        if let Some(v) = views.remove(&id) {
            out.push(v);
        }
    }
    Ok(out)
}

fn customer_get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = crud::id_param(&params, "i_customer")?;
        let row = catalog_shared::<Customer>(&ctx.core.catalog(), id).ok_or(ApiError::NotFound)?;
        let v = funds_of(ctx, vec![Customer::clone(&row)]).await?;
        reply.json(200, &v.first())
    })
}

fn customer_list<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = crud::page(ctx, &req)?;
        let rows: Vec<Customer> = table::list(&ctx.core, page, size).await?;
        let v = funds_of(ctx, rows).await?;
        reply.json(200, &v)
    })
}

/// A balance change request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceBody {
    /// Added to the balance (negative: taken), a decimal string.
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "25.000000")]
    pub amount: i64,
    pub reason: String,
}

fn put_balance<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let w = crud::write_of(ctx, &req)?;
        let id = crud::id_param(&params, "i_customer")?;
        let body: BalanceBody = serde_json::from_slice(req.body)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?;
        if body.reason.is_empty() || body.reason.len() > 256 {
            return Err(ApiError::bad_request("reason: must be 1 to 256 characters"));
        }
        let row = catalog_shared::<Customer>(&ctx.core.catalog(), id).ok_or(ApiError::NotFound)?;
        let home = wallet::home(id, ctx.core.shards());
        let now = clock::unix_seconds();
        let op = w.operation_id;
        let change = ctx
            .core
            .on(home, move |c| async move {
                wallet::adjust(&c, &row, body.amount, body.reason, op, now).await
            })
            .await
            .map_err(mesh_error)??;
        reply.json(200, &change)
    })
}

/// What a CDR or SDR list selects.
#[derive(Debug, Clone, Default)]
struct Filter {
    i_customer: Option<u64>,
    i_account: Option<u64>,
    from: Option<i64>,
    to: Option<i64>,
}

impl Filter {
    fn parse(req: &Request<'_>) -> Result<Filter, ApiError> {
        let mut f = Filter::default();
        for (k, v) in form_pairs(req.query.unwrap_or("").as_bytes()) {
            let n = || {
                v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request(format!("{k}: must be a non-negative integer"))
                })
            };
            match &*k {
                "i_customer" => f.i_customer = Some(n()?.unsigned_abs()),
                "i_account" => f.i_account = Some(n()?.unsigned_abs()),
                "from" => f.from = Some(n()?),
                "to" => f.to = Some(n()?),
                _ => {}
            }
        }
        Ok(f)
    }

    fn keeps(&self, customer: u64, account: u64, recorded: i64) -> bool {
        self.i_customer.is_none_or(|c| c == customer)
            && self.i_account.is_none_or(|a| a == account)
            && self.from.is_none_or(|f| recorded >= f)
            && self.to.is_none_or(|t| recorded < t)
    }
}

/// A record kind listed from every shard.
trait Record: Serialize + for<'de> Deserialize<'de> + Send + 'static {
    const TABLE: crate::storage::TableId;
    fn id(&self) -> u64;
    fn keys(&self) -> (u64, u64, i64);
}

impl Record for Cdr {
    const TABLE: crate::storage::TableId = tables::CDR;
    fn id(&self) -> u64 {
        self.i_cdr
    }
    fn keys(&self) -> (u64, u64, i64) {
        (self.i_customer, self.i_account, self.recorded)
    }
}

impl Record for Sdr {
    const TABLE: crate::storage::TableId = tables::SDR;
    fn id(&self) -> u64 {
        self.i_sdr
    }
    fn keys(&self) -> (u64, u64, i64) {
        (self.i_customer, self.i_account, self.recorded)
    }
}

/// The first `limit` records (by id) that `filter` keeps, over every shard.
async fn records<T: Record>(ctx: &Ctx, filter: Filter, limit: usize) -> Result<Vec<T>, ApiError> {
    let mut all = Vec::new();
    for k in 0..ctx.core.shards() {
        let f = filter.clone();
        let part = ctx
            .core
            .on(ShardId(k), move |c| async move {
                let mut out: Vec<T> = Vec::new();
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let batch = c
                        .store
                        .scan(T::TABLE, after.as_deref(), 1024)
                        .map_err(store_error)?;
                    let done = batch.len() < 1024;
                    after = batch.last().map(|(k, _)| k.clone());
                    for (_, v) in batch {
                        let Ok(r) = serde_json::from_slice::<T>(&v) else {
                            continue;
                        };
                        let (cu, ac, at) = r.keys();
                        if f.keeps(cu, ac, at) {
                            out.push(r);
                        }
                    }
                    if done || out.len() >= limit {
                        break;
                    }
                }
                Ok::<_, ApiError>(out)
            })
            .await
            .map_err(mesh_error)??;
        all.extend(part);
    }
    all.sort_by_key(Record::id);
    all.truncate(limit);
    Ok(all)
}

fn list_of<'a, T: Record>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = crud::page(ctx, &req)?;
        let filter = Filter::parse(&req)?;
        let mut all: Vec<T> = records(ctx, filter, (page + 1) * size).await?;
        let rest: Vec<T> = all.drain(..).skip(page * size).collect();
        reply.json(200, &rest)
    })
}

/// Most CDRs one export writes.
const MAX_EXPORT: usize = 1_000_000;

fn cdr_export<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let filter = Filter::parse(&req)?;
        let all: Vec<Cdr> = records(ctx, filter, MAX_EXPORT).await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &all {
            w.serialize(r)
                .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
        reply.with_body(200, "text/csv", |out| out.extend_from_slice(&bytes));
        Ok(())
    })
}

/// Customers: created, changed and deleted as a declared table; read with
/// their live funds.
pub fn register_customer(r: &mut Routes) -> Result<(), RouteError> {
    use Handler::Async;
    type C = Plain<Customer>;
    let a = Api::Pyhss;
    let p = <Customer as crud::Resource>::PATHS;
    r.add(Method::Put, p.base, a, Async(crud::put::<C>))?;
    r.add(Method::Get, p.list, a, Async(customer_list))?;
    r.add(Method::Get, p.item, a, Async(customer_get))?;
    r.add(Method::Patch, p.item, a, Async(crud::patch::<C>))?;
    r.add(Method::Delete, p.item, a, Async(crud::delete::<C>))?;
    crud::document_routes::<Customer>(r, &[(Method::Put, p.base), (Method::Patch, p.item)]);
    crud::document_routes::<CustomerView>(r, &[(Method::Get, p.item), (Method::Get, p.list)]);
    Ok(())
}

/// The balance, CDR and SDR routes.
pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    use Handler::Async;
    let a = Api::Pyhss;
    let balance = "/aaa/customer/{i_customer}/balance";
    r.add(Method::Put, balance, a, Async(put_balance))?;
    let name = crud::document::<BalanceBody>(r);
    let answer = crud::document::<wallet::BalanceChange>(r);
    r.document(
        Method::Put,
        balance,
        RouteDoc {
            body: Some(name),
            answer: Some(answer),
            many: false,
        },
    );
    r.add(Method::Get, "/aaa/cdr/list", a, Async(list_of::<Cdr>))?;
    r.add(Method::Get, "/aaa/sdr/list", a, Async(list_of::<Sdr>))?;
    r.add(Method::Get, "/aaa/cdr/export", a, Async(cdr_export))?;
    crud::document_routes::<Cdr>(r, &[(Method::Get, "/aaa/cdr/list")]);
    crud::document_routes::<Sdr>(r, &[(Method::Get, "/aaa/sdr/list")]);
    r.document(Method::Get, "/aaa/cdr/export", RouteDoc::default());
    Ok(())
}
