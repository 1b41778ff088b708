//! The HTTP application every core runs: route the request, call its
//! handler, answer errors in the shape of the route's API, count it in the
//! core's metrics. Services register their routes here.

use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::domain::api_error::{Api, ApiError, ApiSet};
use crate::domain::http1::{self, Method, Request};
use crate::domain::router::{Match, Params, Router};
use crate::runtime::{clock, App, Core, LocalBoxFuture};
use crate::table::Tables;

pub mod crud;
pub mod openapi;

/// A handler that answers without waiting.
pub type SyncHandler =
    fn(&Ctx, &mut Request<'_>, &Params<'_>, &mut Reply<'_>) -> Result<(), ApiError>;

/// A handler that awaits (another shard, the disk).
pub type AsyncHandler = for<'a, 'o> fn(
    &'a Ctx,
    Request<'a>,
    Params<'a>,
    &'a mut Reply<'o>,
) -> LocalBoxFuture<'a, Result<(), ApiError>>;

/// A route's handler.
#[derive(Clone, Copy)]
pub enum Handler {
    Sync(SyncHandler),
    Async(AsyncHandler),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handler::Sync(_) => "Handler::Sync",
            Handler::Async(_) => "Handler::Async",
        })
    }
}

/// The routing table of the whole server.
pub type Routes = Router<Handler>;

/// What a handler sees of its core.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub core: Rc<Core>,
    pub routes: Arc<Routes>,
    pub config: Arc<Config>,
    /// Every declared table and the write hooks.
    pub tables: Arc<Tables>,
    /// What services started for the whole process (the PC/SC readers,
    /// ...), by type.
    pub extensions: Arc<Extensions>,
}

impl Ctx {
    /// The process-wide state of type `T` a service started, if any.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get::<T>()
    }
}

/// Process-wide state by type: what the entry level started for the
/// services, handed to every core without the server naming it.
#[derive(Default)]
pub struct Extensions {
    by_type: Vec<(std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>)>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({})", self.by_type.len())
    }
}

impl Extensions {
    /// Adds (or replaces) the value of type `T`.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: Arc<T>) {
        let id = std::any::TypeId::of::<T>();
        self.by_type.retain(|(t, _)| *t != id);
        self.by_type.push((id, value));
    }

    /// The value of type `T`, shared.
    pub fn get_arc<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let id = std::any::TypeId::of::<T>();
        self.by_type
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.clone().downcast::<T>().ok())
    }

    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        let id = std::any::TypeId::of::<T>();
        self.by_type
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref::<T>())
    }
}

thread_local! {
    /// This core's CSPRNG for UUIDs (ChaCha12 seeded once from the OS): no
    /// syscall per request.
    static RNG: std::cell::RefCell<rand::rngs::StdRng> =
        std::cell::RefCell::new(rand::SeedableRng::from_os_rng());
}

/// An `X-RequestID` value: the one received (echoed, 1 to 128 bytes of
/// UTF-8), or a fresh version 4 UUID.
pub fn request_id_from(header: Option<&[u8]>) -> String {
    header
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(uuid_v4, str::to_owned)
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    RNG.with(|r| rand::RngCore::fill_bytes(&mut *r.borrow_mut(), &mut b));
    let mut buf = uuid::Uuid::encode_buffer();
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// The request headers a browser may send to PyHSS's API (PyHSS's list).
pub const CORS_ALLOW_HEADERS: &str =
    "Content-Type, Authorization, Content-Length, X-Requested-With, Provisioning-Key";

/// The common headers in use (none for an API without).
fn common_of<'h>(headers: &'h [(&'h str, &'h str); 2]) -> &'h [(&'h str, &'h str)] {
    if headers[0].0.is_empty() {
        &[]
    } else {
        headers
    }
}

/// The response being written into the connection's buffer.
#[derive(Debug)]
pub struct Reply<'o> {
    out: &'o mut Vec<u8>,
    /// Headers every answer of the route's API carries (PyHSS's CORS and
    /// `HSS`).
    common: &'o [(&'o str, &'o str)],
    keep_alive: bool,
    send_body: bool,
    status: u16,
}

impl Reply<'_> {
    /// A JSON body, serialized straight into the connection's buffer.
    pub fn json<T: Serialize + ?Sized>(&mut self, status: u16, value: &T) -> Result<(), ApiError> {
        self.json_with(status, value, &[])
    }

    /// An error body in `api`'s shape with `status` (where an API gives a
    /// cause its own status) and extra headers.
    pub fn error_with(&mut self, status: u16, err: &ApiError, api: Api, extra: &[(&str, &str)]) {
        let start = http1::begin_response_with(
            self.out,
            status,
            "application/json",
            self.keep_alive,
            self.common,
            extra,
        );
        err.write_body(api, self.out);
        http1::finish(self.out, start, self.send_body);
        self.status = status;
    }

    /// A JSON body with extra headers.
    pub fn json_with<T: Serialize + ?Sized>(
        &mut self,
        status: u16,
        value: &T,
        extra: &[(&str, &str)],
    ) -> Result<(), ApiError> {
        let mark = self.out.len();
        let start = http1::begin_response_with(
            self.out,
            status,
            "application/json",
            self.keep_alive,
            self.common,
            extra,
        );
        if let Err(e) = simd_json::serde::to_writer(&mut *self.out, value) {
            self.out.truncate(mark);
            return Err(ApiError::Internal(format!(
                "cannot serialize response: {e}"
            )));
        }
        http1::finish(self.out, start, self.send_body);
        self.status = status;
        Ok(())
    }

    /// A body written by `write` with the given content type.
    pub fn with_body(&mut self, status: u16, content_type: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = http1::begin_response_with(
            self.out,
            status,
            content_type,
            self.keep_alive,
            self.common,
            &[],
        );
        write(self.out);
        http1::finish(self.out, start, self.send_body);
        self.status = status;
    }
}

/// Parses a JSON request body in place (simd-json) into a type that may
/// borrow strings from the body.
pub fn json_body<'a, T: serde::Deserialize<'a>>(body: &'a mut [u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("missing JSON body"));
    }
    simd_json::serde::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub use crate::table::{commit_error, mesh_error, store_error};

/// The per-core application (one per listener on each core).
#[derive(Debug)]
pub struct Server {
    ctx: Ctx,
    /// The APIs this listener serves; another's path is not found.
    apis: ApiSet,
}

impl Server {
    pub fn new(
        core: Rc<Core>,
        routes: Arc<Routes>,
        config: Arc<Config>,
        tables: Arc<Tables>,
        extensions: Arc<Extensions>,
    ) -> Server {
        Server {
            ctx: Ctx {
                core,
                routes,
                config,
                tables,
                extensions,
            },
            apis: ApiSet::all(),
        }
    }

    /// What the handlers see of this core.
    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The headers every answer of `api` carries: for PyHSS's API, CORS
    /// for all origins and this HSS's identity (`HSS`), as PyHSS answers.
    fn common_headers(&self, api: Api) -> [(&str, &str); 2] {
        if api == Api::Pyhss {
            [
                ("Access-Control-Allow-Origin", "*"),
                ("HSS", self.ctx.config.hss.origin_host.as_str()),
            ]
        } else {
            [("", ""); 2]
        }
    }

    /// Writes an error response; `framing` is (keep-alive, send body).
    fn write_error(
        &self,
        err: &ApiError,
        api: Api,
        framing: (bool, bool),
        out: &mut Vec<u8>,
        extra: &[(&str, &str)],
    ) {
        let (keep_alive, send_body) = framing;
        let common = self.common_headers(api);
        let start = http1::begin_response_with(
            out,
            err.status_in(api),
            "application/json",
            keep_alive,
            common_of(&common),
            extra,
        );
        err.write_body(api, out);
        http1::finish(out, start, send_body);
    }
}

impl App for Server {
    async fn serve<'a>(
        &'a self,
        mut req: Request<'a>,
        received: std::time::Instant,
        out: &'a mut Vec<u8>,
    ) {
        let keep_alive = req.keep_alive;
        let send_body = req.method != Method::Head;
        let mark = out.len();
        let found = match self.ctx.routes.find(req.method, req.path) {
            Match::Found { api, .. } | Match::MethodNotAllowed { api, .. }
                if !self.apis.contains(api) =>
            {
                Match::NotFound { api }
            }
            m => m,
        };
        let (route, status) = match found {
            Match::Found {
                handler,
                params,
                api,
                route,
            } => {
                let common = self.common_headers(api);
                let mut reply = Reply {
                    out: &mut *out,
                    common: common_of(&common),
                    keep_alive,
                    send_body,
                    status: 200,
                };
                let result = match handler {
                    Handler::Sync(h) => h(&self.ctx, &mut req, &params, &mut reply),
                    Handler::Async(h) => h(&self.ctx, req, params, &mut reply).await,
                };
                let status = reply.status;
                match result {
                    Ok(()) => (route, status),
                    Err(e) => {
                        out.truncate(mark);
                        self.write_error(&e, api, (keep_alive, send_body), out, &[]);
                        (route, e.status_in(api))
                    }
                }
            }
            Match::MethodNotAllowed { allow, api } => {
                let allow: Vec<&str> = allow.iter().map(|m| m.as_str()).collect();
                let allow = allow.join(", ");
                if req.method == Method::Options && api == Api::Pyhss {
                    // A CORS preflight: any origin may use PyHSS's API.
                    let common = self.common_headers(api);
                    let extra = [
                        ("Allow", allow.as_str()),
                        ("Access-Control-Allow-Methods", allow.as_str()),
                        ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                        ("Access-Control-Max-Age", "600"),
                    ];
                    let start = http1::begin_response_with(
                        out,
                        200,
                        "text/plain",
                        keep_alive,
                        common_of(&common),
                        &extra,
                    );
                    http1::finish(out, start, false);
                    self.ctx
                        .core
                        .metrics
                        .borrow_mut()
                        .record(usize::MAX, 200, 0);
                    return;
                }
                let e = ApiError::MethodNotAllowed;
                let id = (api == Api::Stir).then(|| request_id_from(req.header("x-requestid")));
                let mut extra = vec![("Allow", allow.as_str())];
                extra.extend(id.as_deref().map(|id| ("X-RequestID", id)));
                self.write_error(&e, api, (keep_alive, send_body), out, &extra);
                (usize::MAX, e.status())
            }
            Match::NotFound { api } => {
                let e = ApiError::NotFound;
                let id = (api == Api::Stir).then(|| request_id_from(req.header("x-requestid")));
                let extra: Vec<(&str, &str)> = id
                    .as_deref()
                    .map(|id| ("X-RequestID", id))
                    .into_iter()
                    .collect();
                self.write_error(&e, api, (keep_alive, send_body), out, &extra);
                (usize::MAX, e.status())
            }
        };
        let ns = u64::try_from(clock::now().saturating_duration_since(received).as_nanos())
            .unwrap_or(u64::MAX);
        self.ctx.core.metrics.borrow_mut().record(route, status, ns);
    }

    fn serving(&self, apis: ApiSet) -> Server {
        Server {
            ctx: self.ctx.clone(),
            apis,
        }
    }

    fn reject(&self, err: ApiError, path: &str, out: &mut Vec<u8>) {
        self.write_error(&err, Api::guess(path), (false, true), out, &[]);
        self.ctx
            .core
            .metrics
            .borrow_mut()
            .record(usize::MAX, err.status(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Borrowing<'a> {
        imsi: &'a str,
        n: u32,
    }

    #[test]
    fn json_bodies_parse_in_place_and_borrow() {
        let mut body = br#"{"imsi":"001010000000001","n":3}"#.to_vec();
        let v: Borrowing<'_> = json_body(&mut body).unwrap();
        assert_eq!((v.imsi, v.n), ("001010000000001", 3));
        assert!(json_body::<Borrowing<'_>>(&mut b"{".to_vec()).is_err());
        assert!(json_body::<Borrowing<'_>>(&mut []).is_err());
    }
}
