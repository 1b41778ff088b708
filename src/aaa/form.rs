//! The AAA's request parameters (form-encoded, as curl `-d` sends them:
//! raw spaces, `:` and `#` are taken as they are, `%XX` and `+` are
//! decoded) and its answers (`{"status": …}`, always HTTP 200).

use std::borrow::Cow;

use serde::Serialize;

use crate::domain::api_error::ApiError;
use crate::domain::http1::{form_pairs, Request};
use crate::domain::router::RouteDoc;
use crate::server::Reply;

/// Most parameters one request may carry.
const MAX_PARAMS: usize = 64;
/// Longest parameter value (a short message may be longer).
const MAX_VALUE: usize = 1024;
const MAX_MESSAGE: usize = 4096;

/// The parameters of a request: the body's, then the query's.
#[derive(Debug)]
pub struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    /// Reads the parameters; too many, too long, or a duplicate with
    /// another value is an error naming the parameter.
    pub fn parse(req: &'a Request<'_>) -> Result<Form<'a>, ApiError> {
        let body: &'a [u8] = req.body;
        let query: &'a [u8] = req.query.unwrap_or("").as_bytes();
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        for (k, v) in form_pairs(body).chain(form_pairs(query)) {
            let limit = if k == "short_message" {
                MAX_MESSAGE
            } else {
                MAX_VALUE
            };
            if v.len() > limit {
                return Err(ApiError::bad_request(format!(
                    "{k}: longer than {limit} bytes"
                )));
            }
            if let Some((_, old)) = pairs.iter().find(|(n, _)| *n == k) {
                if *old != v {
                    return Err(ApiError::bad_request(format!("{k}: given twice")));
                }
                continue;
            }
            if pairs.len() == MAX_PARAMS {
                return Err(ApiError::bad_request("too many parameters"));
            }
            pairs.push((k, v));
        }
        Ok(Form { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The value of `name`; absent or empty is an error.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::bad_request(format!("{name}: required"))),
        }
    }

    /// `name` as a non-negative integer (required).
    pub fn number(&self, name: &str) -> Result<u64, ApiError> {
        let v = self.required(name)?;
        if v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!(
                "{name}: must be a non-negative integer"
            )));
        }
        v.parse()
            .map_err(|_| ApiError::bad_request(format!("{name}: out of range")))
    }

    /// `name` as 0 or 1 (absent: `default`).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(_) => Err(ApiError::bad_request(format!("{name}: must be 0 or 1"))),
        }
    }
}

/// `{"attribute": name, "value": value}`.
#[derive(Debug, Serialize)]
pub struct Attribute {
    pub attribute: String,
    pub value: String,
}

#[derive(Serialize)]
struct WithAttributes<'a> {
    status: &'static str,
    attributes: &'a [Attribute],
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

/// `{"status": "accept", "attributes": [...]}`.
pub fn accept_with(reply: &mut Reply<'_>, attributes: &[Attribute]) -> Result<(), ApiError> {
    reply.json(
        200,
        &WithAttributes {
            status: "accept",
            attributes,
        },
    )
}

/// `{"status": "accept"}`.
pub fn accept(reply: &mut Reply<'_>) -> Result<(), ApiError> {
    reply.json(200, &Status { status: "accept" })
}

/// `{"status": "failed"}`: the AAA refused (no credit, no route, unknown
/// user). Why is logged at debug, not told.
pub fn failed(reply: &mut Reply<'_>, why: &str) -> Result<(), ApiError> {
    tracing::debug!(why, "AAA request refused");
    reply.json(200, &Status { status: "failed" })
}

/// The API document's entry of an AAA endpoint.
pub fn doc() -> RouteDoc {
    RouteDoc::default()
}
