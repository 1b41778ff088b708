//! The REST face of a declared table, in PyHSS's conventions: `PUT base/`
//! creates and answers the row with its id, `GET/PATCH/DELETE base/{id}`,
//! `GET base/list?page=N&page_size=M`, the Provisioning-Key rule on
//! writes, and an optional `operation_id` query parameter on every write
//! (the operation log's). A table with no logic of its own is one
//! [`register`] line.

use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{json_body, Ctx, Handler, Reply, Routes};
use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{form_pairs, Method, Request};
use crate::domain::router::{Params, RouteError};
use crate::runtime::{clock, LocalBoxFuture};
use crate::table::{self, Body, Row, Write};

/// Most items one `/list` page returns.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// A table served over REST.
pub trait Resource: Row<Env = ()> + Serialize {
    const PATHS: Paths;
    const API: Api = Api::Pyhss;
}

/// The route patterns of a resource.
#[derive(Debug)]
pub struct Paths {
    /// `PUT` here creates (`/tft`).
    pub base: &'static str,
    /// `/tft/list`.
    pub list: &'static str,
    /// `/tft/{tft_id}`: the parameter is the table's id field.
    pub item: &'static str,
}

/// Registers the five routes of `R`.
pub fn register<R: Resource>(r: &mut Routes) -> Result<(), RouteError> {
    let (p, api) = (R::PATHS, R::API);
    r.add(Method::Put, p.base, api, Handler::Async(put::<R>))?;
    r.add(Method::Get, p.list, api, Handler::Async(list::<R>))?;
    r.add(Method::Get, p.item, api, Handler::Async(get::<R>))?;
    r.add(Method::Patch, p.item, api, Handler::Async(patch::<R>))?;
    r.add(Method::Delete, p.item, api, Handler::Async(delete::<R>))?;
    Ok(())
}

/// PyHSS's answer to a delete.
#[derive(Serialize)]
pub struct Deleted {
    #[serde(rename = "Result")]
    result: &'static str,
}

impl Deleted {
    pub const OK: Deleted = Deleted { result: "OK" };
}

/// With `hss.lock_provisioning`, a write needs the right
/// `Provisioning-Key` (compared in constant time).
pub fn provisioning(ctx: &Ctx, req: &Request<'_>) -> Result<(), ApiError> {
    let hss = &ctx.config.hss;
    if !hss.lock_provisioning {
        return Ok(());
    }
    let given = req.header("provisioning-key").unwrap_or_default();
    if bool::from(given.ct_eq(hss.provisioning_key.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// The write a request makes: now, its `operation_id` if it names one, and
/// the deployment's reference policy.
pub fn write_of(ctx: &Ctx, req: &Request<'_>) -> Result<Write, ApiError> {
    let mut operation_id = None;
    for (k, v) in form_pairs(req.query.unwrap_or("").as_bytes()) {
        if k == "operation_id" {
            if v.is_empty() || v.len() > 128 {
                return Err(ApiError::bad_request(
                    "operation_id: must be 1 to 128 characters",
                ));
            }
            operation_id = Some(v.into_owned());
        }
    }
    Ok(Write {
        now: clock::unix_seconds(),
        operation_id,
        lenient_lists: ctx.config.hss.accept_missing_apn_list_ids,
    })
}

/// A write's JSON object body.
pub fn body(req: &mut Request<'_>) -> Result<Body, ApiError> {
    json_body(req.body)
}

/// The non-negative integer path parameter `name` (an object id).
pub fn id_param(params: &Params<'_>, name: &str) -> Result<u64, ApiError> {
    params
        .get(name)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("{name}: must be a non-negative integer")))
}

/// `page` and `page_size` of a list request.
pub fn page(ctx: &Ctx, req: &Request<'_>) -> Result<(usize, usize), ApiError> {
    let mut page = 0usize;
    let mut size = ctx.config.hss.default_page_size as usize;
    for (k, v) in form_pairs(req.query.unwrap_or("").as_bytes()) {
        let n = || {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("{k}: must be a non-negative integer")))
        };
        match &*k {
            "page" => page = n()?,
            "page_size" => size = n()?,
            _ => {}
        }
    }
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "page_size: must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    if page.saturating_mul(size) > 10_000_000 {
        return Err(ApiError::bad_request("page: too far"));
    }
    Ok((page, size))
}

fn put<'a, R: Resource>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let w = write_of(ctx, &req)?;
        let body = body(&mut req)?;
        let row: R = ctx.tables.create(&ctx.core, &body, &(), &w).await?;
        reply.json(200, &row)
    })
}

fn get<'a, R: Resource>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = id_param(&params, R::DEF.id_field)?;
        let row: R = table::get(&ctx.core, id).await?.ok_or(ApiError::NotFound)?;
        reply.json(200, &row)
    })
}

fn patch<'a, R: Resource>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let id = id_param(&params, R::DEF.id_field)?;
        let w = write_of(ctx, &req)?;
        let body = body(&mut req)?;
        let row: R = ctx.tables.patch(&ctx.core, id, &body, &(), &w).await?;
        reply.json(200, &row)
    })
}

fn delete<'a, R: Resource>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let id = id_param(&params, R::DEF.id_field)?;
        let w = write_of(ctx, &req)?;
        ctx.tables.delete::<R>(&ctx.core, id, &w).await?;
        reply.json(200, &Deleted::OK)
    })
}

fn list<'a, R: Resource>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = page(ctx, &req)?;
        let rows: Vec<R> = table::list(&ctx.core, page, size).await?;
        reply.json(200, &rows)
    })
}
