//! The REST face of a declared table, in PyHSS's conventions: `PUT base/`
//! creates and answers the row with its id, `GET/PATCH/DELETE base/{id}`,
//! `GET base/list?page=N&page_size=M`, the Provisioning-Key rule on
//! writes, and an optional `operation_id` query parameter on every write
//! (the operation log's). A table with no logic of its own is one
//! [`register`] line.

use serde::Serialize;
use subtle::ConstantTimeEq;

pub use super::mesh_error;
use super::{json_body, Ctx, Handler, Reply, Routes};
use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{form_pairs, ClientAuth, Method, Request};
use crate::domain::router::{Params, RouteDoc, RouteError};
use crate::runtime::{clock, LocalBoxFuture};
use crate::table::{self, Body, Row, Write};

/// Most items one `/list` page returns.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// A table served over REST as itself: its rows are its answers.
pub trait Resource: Row<Env = ()> + Serialize + utoipa::ToSchema {
    const PATHS: Paths;
    const API: Api = Api::Pyhss;
}

/// How a table is served: its routes, what applying a body needs from the
/// request's context, and how a row is answered. [`Plain`] serves a
/// [`Resource`]; a table with secrets to redact or keys to seal (AuC)
/// has a face of its own.
pub trait Face: 'static {
    type Row: Row;
    const PATHS: Paths;
    const API: Api;
    /// What a row is answered as.
    type View<'a>: Serialize;
    /// The schema of its bodies and answers, for the API document.
    type Doc: utoipa::ToSchema;
    fn env(ctx: &Ctx) -> <Self::Row as Row>::Env;
    fn view<'a>(ctx: &'a Ctx, row: &'a Self::Row) -> Self::View<'a>;
}

/// A unique key a table is also read by (`GET …/ims_subscriber_imsi/{imsi}`).
pub trait Lookup: 'static {
    type Face: Face;
    /// The unique index's field.
    const FIELD: &'static str;
    /// The path parameter that holds the key.
    const PARAM: &'static str;
    /// The key as the path gives it, validated.
    fn key(raw: &str) -> Result<String, ApiError>;
}

/// Resource `R` read by its unique `imsi` (`{imsi}` in the path).
#[derive(Debug)]
pub struct ByImsi<R>(std::marker::PhantomData<R>);

impl<R: Resource> Lookup for ByImsi<R> {
    type Face = Plain<R>;
    const FIELD: &'static str = "imsi";
    const PARAM: &'static str = "imsi";
    fn key(raw: &str) -> Result<String, ApiError> {
        crate::domain::ids::Imsi::parse(raw)
            .map(|i| i.as_str().to_owned())
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// Resource `R` read by its unique `msisdn` (`{msisdn}` in the path).
#[derive(Debug)]
pub struct ByMsisdn<R>(std::marker::PhantomData<R>);

impl<R: Resource> Lookup for ByMsisdn<R> {
    type Face = Plain<R>;
    const FIELD: &'static str = "msisdn";
    const PARAM: &'static str = "msisdn";
    fn key(raw: &str) -> Result<String, ApiError> {
        crate::domain::ids::Msisdn::parse(raw)
            .map(|m| m.as_str().to_owned())
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// `GET …/{key}` of lookup `L`: the row whose unique key it is.
pub fn get_by<'a, L: Lookup>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let key = L::key(params.get(L::PARAM).unwrap_or_default())?;
        let row: <L::Face as Face>::Row = table::find(&ctx.core, L::FIELD, &key)
            .await?
            .ok_or(ApiError::NotFound)?;
        let view = L::Face::view(ctx, &row);
        reply.json(200, &view)
    })
}

/// The face of a [`Resource`].
#[derive(Debug)]
pub struct Plain<R>(std::marker::PhantomData<R>);

impl<R: Resource> Face for Plain<R> {
    type Row = R;
    const PATHS: Paths = R::PATHS;
    const API: Api = R::API;
    type View<'a> = &'a R;
    type Doc = R;
    fn env(_: &Ctx) {}
    fn view<'a>(_: &'a Ctx, row: &'a R) -> &'a R {
        row
    }
}

/// A resource with secret fields (passwords): stored, never answered.
pub trait Secret: Resource {
    const SECRET: &'static [&'static str];
}

/// The face of a [`Secret`] resource: its rows without the secrets.
#[derive(Debug)]
pub struct Redacted<R>(std::marker::PhantomData<R>);

impl<R: Secret> Face for Redacted<R> {
    type Row = R;
    const PATHS: Paths = R::PATHS;
    const API: Api = R::API;
    type View<'a> = serde_json::Value;
    type Doc = R;
    fn env(_: &Ctx) {}
    fn view<'a>(_: &'a Ctx, row: &'a R) -> serde_json::Value {
        let mut v = serde_json::to_value(row).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            for k in R::SECRET {
                m.remove(*k);
            }
        }
        v
    }
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
    register_face::<Plain<R>>(r)
}

/// Registers the five routes of face `F`.
pub fn register_face<F: Face>(r: &mut Routes) -> Result<(), RouteError> {
    let (p, api) = (F::PATHS, F::API);
    r.add(Method::Put, p.base, api, Handler::Async(put::<F>))?;
    r.add(Method::Get, p.list, api, Handler::Async(list::<F>))?;
    r.add(Method::Get, p.item, api, Handler::Async(get::<F>))?;
    r.add(Method::Patch, p.item, api, Handler::Async(patch::<F>))?;
    r.add(Method::Delete, p.item, api, Handler::Async(delete::<F>))?;
    let name = document::<F::Doc>(r);
    let one = RouteDoc {
        answer: Some(name.clone()),
        ..RouteDoc::default()
    };
    let write = RouteDoc {
        body: Some(name.clone()),
        ..one.clone()
    };
    r.document(Method::Put, p.base, write.clone());
    r.document(Method::Patch, p.item, write);
    r.document(Method::Get, p.item, one.clone());
    r.document(Method::Get, p.list, RouteDoc { many: true, ..one });
    Ok(())
}

/// Adds `T`'s schema to the API document; returns its name.
pub fn document<T: utoipa::ToSchema>(r: &mut Routes) -> String {
    let name = T::name().into_owned();
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    r.schema(name.clone(), schema);
    // The schemas it refers to (its enums, its nested types).
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    for (n, s) in nested {
        r.schema(n, serde_json::to_value(s).unwrap_or_default());
    }
    name
}

/// Documents routes registered by hand as answering `T`s: PUT and PATCH
/// take a `T` body; a pattern ending in `/list` answers an array of them.
pub fn document_routes<T: utoipa::ToSchema>(r: &mut Routes, routes: &[(Method, &'static str)]) {
    let name = document::<T>(r);
    for &(method, pattern) in routes {
        let doc = RouteDoc {
            body: matches!(method, Method::Put | Method::Patch).then(|| name.clone()),
            answer: Some(name.clone()),
            many: pattern.ends_with("/list"),
        };
        r.document(method, pattern, doc);
    }
}

/// Registers `GET pattern` answering `L`'s rows by their unique key.
pub fn register_lookup<L: Lookup>(r: &mut Routes, pattern: &'static str) -> Result<(), RouteError> {
    let face = <L::Face as Face>::API;
    r.add(Method::Get, pattern, face, Handler::Async(get_by::<L>))?;
    let name = document::<<L::Face as Face>::Doc>(r);
    r.document(
        Method::Get,
        pattern,
        RouteDoc {
            answer: Some(name),
            ..RouteDoc::default()
        },
    );
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

/// May this request provision? A client certificate verified by a TLS
/// listener's CA is enough; on a listener that restricts provisioning to
/// such clients, nothing else is. Otherwise, with `hss.lock_provisioning`,
/// a write needs the right `Provisioning-Key` (compared in constant time).
pub fn provisioning(ctx: &Ctx, req: &Request<'_>) -> Result<(), ApiError> {
    match req.client_auth {
        ClientAuth::Verified => return Ok(()),
        ClientAuth::Missing => {
            return Err(ApiError::Forbidden(
                "Forbidden - provisioning needs a client certificate".into(),
            ))
        }
        ClientAuth::None => {}
    }
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
        // PyHSS gives a write without one an operation of its own.
        operation_id: operation_id.or_else(|| Some(super::uuid_v4())),
        lenient_lists: ctx.config.hss.accept_missing_apn_list_ids || ctx.config.hss.pyhss_quirks,
        undo: false,
        from_peer: false,
        pyhss_quirks: ctx.config.hss.pyhss_quirks,
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

/// `PUT base/`: creates a row.
pub fn put<'a, F: Face>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let w = write_of(ctx, &req)?;
        let body = body(&mut req)?;
        let row: F::Row = ctx
            .tables
            .create(&ctx.core, &body, &F::env(ctx), &w)
            .await?;
        let view = F::view(ctx, &row);
        reply.json(200, &view)
    })
}

/// `GET base/{id}`.
pub fn get<'a, F: Face>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = id_param(&params, F::Row::DEF.id_field)?;
        let row: F::Row = table::get(&ctx.core, id).await?.ok_or(ApiError::NotFound)?;
        let view = F::view(ctx, &row);
        reply.json(200, &view)
    })
}

/// `PATCH base/{id}`: changes the keys the body gives.
pub fn patch<'a, F: Face>(
    ctx: &'a Ctx,
    mut req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let id = id_param(&params, F::Row::DEF.id_field)?;
        let w = write_of(ctx, &req)?;
        let body = body(&mut req)?;
        let row: F::Row = ctx
            .tables
            .patch(&ctx.core, id, &body, &F::env(ctx), &w)
            .await?;
        let view = F::view(ctx, &row);
        reply.json(200, &view)
    })
}

/// `DELETE base/{id}`.
pub fn delete<'a, F: Face>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        provisioning(ctx, &req)?;
        let id = id_param(&params, F::Row::DEF.id_field)?;
        let w = write_of(ctx, &req)?;
        ctx.tables.delete::<F::Row>(&ctx.core, id, &w).await?;
        reply.json(200, &Deleted::OK)
    })
}

/// `GET base/list?page=N&page_size=M`, in id order.
pub fn list<'a, F: Face>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (page, size) = page(ctx, &req)?;
        let rows: Vec<F::Row> = table::list(&ctx.core, page, size).await?;
        let views: Vec<F::View<'_>> = rows.iter().map(|r| F::view(ctx, r)).collect();
        reply.json(200, &views)
    })
}
