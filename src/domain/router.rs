//! Path routing: a static table of (method, pattern) → handler, matched on
//! path segments (no regex). Services register their routes; a disabled
//! service registers none.
//!
//! Patterns are written `/auc/imsi/{imsi}`. Empty segments are ignored, so
//! `/auc/` and `/auc` are the same route (PyHSS writes both).

use std::collections::HashMap;

use super::api_error::Api;
use super::http1::Method;

/// Most path parameters one pattern may name.
pub const MAX_PARAMS: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(&'static str),
}

#[derive(Debug)]
struct Route<H> {
    method: Method,
    segments: Vec<Segment>,
    api: Api,
    handler: H,
    doc: RouteDoc,
}

/// What the API document says of a route beyond its method, pattern and
/// API: the schemas (by name, see [`Router::schema`]) of its body and
/// answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDoc {
    pub body: Option<String>,
    pub answer: Option<String>,
    /// The answer is a JSON array of `answer`.
    pub many: bool,
}

/// One registered route, as the API document lists it.
#[derive(Debug)]
pub struct RouteInfo<'r> {
    pub method: Method,
    /// `/tft/{tft_id}`.
    pub pattern: String,
    pub params: Vec<&'static str>,
    pub api: Api,
    pub doc: &'r RouteDoc,
}

/// The routing table, built once at start and shared read-only by every
/// core.
#[derive(Debug)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
    /// Route indexes by first literal segment; patterns starting with a
    /// parameter are in `wildcard`.
    by_first: HashMap<String, Vec<usize>>,
    wildcard: Vec<usize>,
    /// JSON schemas the routes' docs name.
    schemas: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Path parameters captured by a match, by name, still percent-encoded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Params<'p> {
    names: [&'static str; MAX_PARAMS],
    values: [&'p str; MAX_PARAMS],
    len: usize,
}

impl<'p> Params<'p> {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.names[..self.len]
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values[i])
    }
}

/// The outcome of routing one request.
#[derive(Debug)]
pub enum Match<'r, 'p, H> {
    Found {
        handler: &'r H,
        params: Params<'p>,
        api: Api,
        /// Index of the route, for per-route metrics.
        route: usize,
    },
    /// The path exists for other methods (listed for `Allow`).
    MethodNotAllowed {
        allow: Vec<Method>,
        api: Api,
    },
    NotFound {
        api: Api,
    },
}

/// A pattern that cannot be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("route {0}: more than {MAX_PARAMS} parameters")]
    TooManyParams(String),
    #[error("route {0} {1} registered twice")]
    Duplicate(&'static str, String),
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn parse(pattern: &'static str) -> Vec<Segment> {
    segments(pattern)
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect()
}

/// A route's pattern as registered (`/` for the root).
fn pattern_of(segs: &[Segment]) -> String {
    let mut s = String::new();
    for seg in segs {
        s.push('/');
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Param(p) => {
                s.push('{');
                s.push_str(p);
                s.push('}');
            }
        }
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            by_first: HashMap::new(),
            wildcard: Vec::new(),
            schemas: Default::default(),
        }
    }
}

impl<H> Router<H> {
    /// Registers `pattern` for `method`, answering errors in `api`'s shape.
    pub fn add(
        &mut self,
        method: Method,
        pattern: &'static str,
        api: Api,
        handler: H,
    ) -> Result<(), RouteError> {
        let segs = parse(pattern);
        let params = segs
            .iter()
            .filter(|s| matches!(s, Segment::Param(_)))
            .count();
        if params > MAX_PARAMS {
            return Err(RouteError::TooManyParams(pattern.to_owned()));
        }
        if self
            .routes
            .iter()
            .any(|r| r.method == method && r.segments == segs)
        {
            return Err(RouteError::Duplicate(method.as_str(), pattern.to_owned()));
        }
        let index = self.routes.len();
        match segs.first() {
            Some(Segment::Literal(first)) => {
                self.by_first.entry(first.clone()).or_default().push(index)
            }
            _ => self.wildcard.push(index),
        }
        self.routes.push(Route {
            method,
            segments: segs,
            api,
            handler,
            doc: RouteDoc::default(),
        });
        Ok(())
    }

    /// Sets the doc of route `method pattern` (registered before).
    pub fn document(&mut self, method: Method, pattern: &'static str, doc: RouteDoc) {
        let segs: Vec<Segment> = parse(pattern);
        if let Some(r) = self
            .routes
            .iter_mut()
            .find(|r| r.method == method && r.segments == segs)
        {
            r.doc = doc;
        }
    }

    /// Adds JSON schema `name` for route docs to name.
    pub fn schema(&mut self, name: String, schema: serde_json::Value) {
        self.schemas.insert(name, schema);
    }

    /// The schemas route docs name.
    pub fn schemas(&self) -> &std::collections::BTreeMap<String, serde_json::Value> {
        &self.schemas
    }

    /// Every route, in registration order.
    pub fn each(&self) -> impl Iterator<Item = RouteInfo<'_>> + '_ {
        self.routes.iter().map(|r| RouteInfo {
            method: r.method,
            pattern: pattern_of(&r.segments),
            params: r
                .segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(p) => Some(*p),
                    Segment::Literal(_) => None,
                })
                .collect(),
            api: r.api,
            doc: &r.doc,
        })
    }

    /// Number of registered routes (route indexes are below it).
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `METHOD pattern` of route `index`, for metrics labels.
    pub fn describe(&self, index: usize) -> String {
        self.routes
            .get(index)
            .map(|r| format!("{} {}", r.method.as_str(), pattern_of(&r.segments)))
            .unwrap_or_default()
    }

    /// Finds the route for `method` and `path`. HEAD matches GET routes.
    pub fn find<'r, 'p>(&'r self, method: Method, path: &'p str) -> Match<'r, 'p, H> {
        let first = segments(path).next().unwrap_or("");
        let candidates = self
            .by_first
            .get(first)
            .into_iter()
            .flatten()
            .chain(self.wildcard.iter());
        let mut allow = Vec::new();
        let mut api = Api::guess(path);
        for &index in candidates {
            let Some(route) = self.routes.get(index) else {
                continue;
            };
            let Some(params) = match_segments(&route.segments, path) else {
                continue;
            };
            api = route.api;
            let wanted = if method == Method::Head {
                Method::Get
            } else {
                method
            };
            if route.method == wanted {
                return Match::Found {
                    handler: &route.handler,
                    params,
                    api: route.api,
                    route: index,
                };
            }
            if !allow.contains(&route.method) {
                allow.push(route.method);
            }
        }
        if allow.is_empty() {
            Match::NotFound { api }
        } else {
            Match::MethodNotAllowed { allow, api }
        }
    }
}

fn match_segments<'p>(pattern: &[Segment], path: &'p str) -> Option<Params<'p>> {
    let mut params = Params::default();
    let mut parts = segments(path);
    for seg in pattern {
        let part = parts.next()?;
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                let i = params.len;
                *params.names.get_mut(i)? = name;
                *params.values.get_mut(i)? = part;
                params.len += 1;
            }
        }
    }
    parts.next().is_none().then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<u32> {
        let mut r = Router::default();
        r.add(Method::Get, "/auc/{auc_id}", Api::Pyhss, 1).unwrap();
        r.add(Method::Put, "/auc/", Api::Pyhss, 2).unwrap();
        r.add(Method::Get, "/auc/imsi/{imsi}", Api::Pyhss, 3)
            .unwrap();
        r.add(
            Method::Get,
            "/auc/aka/vector_count/{count}/imsi/{imsi}",
            Api::Pyhss,
            4,
        )
        .unwrap();
        r.add(Method::Post, "/stir/v1/signing", Api::Stir, 5)
            .unwrap();
        r
    }

    #[test]
    fn finds_routes_with_typed_params() {
        let r = router();
        match r.find(Method::Get, "/auc/aka/vector_count/3/imsi/001010000000001") {
            Match::Found {
                handler, params, ..
            } => {
                assert_eq!(*handler, 4);
                assert_eq!(params.get("count"), Some("3"));
                assert_eq!(params.get("imsi"), Some("001010000000001"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.find(Method::Put, "/auc"),
            Match::Found { handler: 2, .. }
        ));
        assert!(matches!(
            r.find(Method::Head, "/auc/7"),
            Match::Found { handler: 1, .. }
        ));
    }

    #[test]
    fn distinguishes_404_and_405() {
        let r = router();
        match r.find(Method::Get, "/stir/v1/signing") {
            Match::MethodNotAllowed { allow, api } => {
                assert_eq!(allow, vec![Method::Post]);
                assert_eq!(api, Api::Stir);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.find(Method::Get, "/nope"),
            Match::NotFound { .. }
        ));
        assert!(matches!(
            r.find(Method::Get, "/auc/1/2/3"),
            Match::NotFound { .. }
        ));
    }

    #[test]
    fn refuses_duplicates() {
        let mut r = router();
        assert!(r.add(Method::Put, "/auc", Api::Pyhss, 9).is_err());
    }

    #[test]
    fn describes_routes_for_metrics() {
        let r = router();
        assert_eq!(r.describe(0), "GET /auc/{auc_id}");
        assert_eq!(r.describe(1), "PUT /auc");
    }
}
