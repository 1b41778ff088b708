//! One enum of causes for every failed request, one table from cause to
//! status code, and the error body in the shape of the API the route
//! belongs to.

use std::io::Write;

use super::http1::HttpError;

/// The API a route belongs to: it decides the shape of error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// PyHSS: `{"result": "Failed", "reason": "..."}`.
    Pyhss,
    /// ATIS-1000082: `{"requestError": {"serviceException": {...}}}`.
    Stir,
    /// TCXC AAA: `{"status": "error", "error_message": "..."}`.
    Aaa,
    /// pysim sim-rest-server: `{"error": {"message": "..."}}`.
    Sim,
    /// Server endpoints (`/metrics`): the PyHSS shape.
    Server,
}

impl Api {
    /// Every API, in the order of their names.
    pub const ALL: [Api; 5] = [Api::Pyhss, Api::Sim, Api::Aaa, Api::Stir, Api::Server];

    /// The API's name in the configuration (`[[server.listeners]] apis`).
    pub fn name(self) -> &'static str {
        match self {
            Api::Pyhss => "hss",
            Api::Sim => "sim",
            Api::Aaa => "aaa",
            Api::Stir => "stir",
            Api::Server => "server",
        }
    }

    /// The API named `name` (as [`Api::name`] gives it).
    pub fn from_name(name: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The API a path most likely belongs to, for errors found before
    /// routing (limits, malformed requests, unknown routes).
    pub fn guess(path: &str) -> Api {
        if path.starts_with("/stir/") {
            Api::Stir
        } else if path.starts_with("/aaa_") {
            Api::Aaa
        } else if path.starts_with("/sim-auth-api/") {
            Api::Sim
        } else {
            Api::Pyhss
        }
    }
}

/// A set of APIs: what one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiSet(u8);

impl ApiSet {
    /// No API.
    pub const EMPTY: ApiSet = ApiSet(0);

    /// Every API.
    pub fn all() -> ApiSet {
        Api::ALL.into_iter().fold(ApiSet::EMPTY, ApiSet::with)
    }

    fn bit(api: Api) -> u8 {
        1 << (api as u8)
    }

    /// This set and `api`.
    pub fn with(self, api: Api) -> ApiSet {
        ApiSet(self.0 | ApiSet::bit(api))
    }

    pub fn contains(self, api: Api) -> bool {
        self.0 & ApiSet::bit(api) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the APIs in the set, comma-separated.
    pub fn names(self) -> String {
        let names: Vec<&str> = Api::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .map(Api::name)
            .collect();
        names.join(",")
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("Not Found")]
    NotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("request head not received in time")]
    HeaderTimeout,
    #[error("{reason}")]
    BadRequest {
        reason: String,
        /// The STIR service exception id (SVC4000…), where one applies.
        stir_id: Option<&'static str>,
        /// Names of the offending parameters (STIR `variables`).
        variables: Vec<String>,
    },
    #[error("Unauthorized - Provisioning-Key Invalid")]
    Unauthorized,
    /// The client may not use this API (403).
    #[error("{0}")]
    Forbidden(String),
    /// A resource the server needs is not configured (410, as PyHSS
    /// answers for a missing EIR TAC file).
    #[error("{0}")]
    Gone(String),
    /// What the request needs cannot be reached now (503 with the
    /// reason: no Diameter peer for a CLR, ...).
    #[error("{0}")]
    Unavailable(String),
    /// A peer the request was sent on to did not answer in time (504).
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("server at its connection limit")]
    Overloaded,
    #[error("server shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            reason: reason.into(),
            stir_id: None,
            variables: Vec::new(),
        }
    }

    /// The status code of this cause.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Http(e) => e.status(),
            ApiError::NotFound => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::HeaderTimeout => 408,
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::Gone(_) => 410,
            ApiError::Unavailable(_) => 503,
            ApiError::GatewayTimeout(_) => 504,
            ApiError::Overloaded | ApiError::ShuttingDown => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The status code of this cause in `api`: the TCXC AAA answers its
    /// outcomes, errors included, with 200 (`{"status": "error"}`), so a
    /// RADIUS front end (rlm_rest) does not take them for server faults;
    /// unknown paths, wrong methods and server faults keep theirs.
    pub fn status_in(&self, api: Api) -> u16 {
        match (api, self.status()) {
            (Api::Aaa, 400 | 401 | 403) => 200,
            (_, s) => s,
        }
    }

    /// ATIS-1000082 exception id: service exceptions (SVC) for the
    /// client's mistakes, policy exceptions (POL) for method and server
    /// failures.
    fn stir_id(&self) -> &'static str {
        match self {
            ApiError::BadRequest {
                stir_id: Some(id), ..
            } => id,
            ApiError::MethodNotAllowed => "POL4050",
            ApiError::Forbidden(_) => "POL4030",
            ApiError::Internal(_) | ApiError::Overloaded | ApiError::ShuttingDown => "POL5000",
            ApiError::Http(HttpError::Malformed(_)) => "SVC4006",
            _ => "SVC4000",
        }
    }

    /// Writes the error body in `api`'s shape.
    pub fn write_body(&self, api: Api, out: &mut Vec<u8>) {
        let text = self.to_string();
        // Writing into a Vec cannot fail.
        let _ = match api {
            Api::Pyhss | Api::Server => {
                if *self == ApiError::Unauthorized {
                    // The seed's exact body (capital R).
                    write!(out, "{{\"Result\": {}}}", Json(&text))
                } else {
                    write!(
                        out,
                        "{{\"result\": \"Failed\", \"reason\": {}}}",
                        Json(&text)
                    )
                }
            }
            Api::Aaa => write!(
                out,
                "{{\"status\": \"error\", \"error_message\": {}}}",
                Json(&text)
            ),
            Api::Sim => write!(out, "{{\"error\": {{\"message\": {}}}}}", Json(&text)),
            Api::Stir => {
                let id = self.stir_id();
                let kind = if id.starts_with("POL") {
                    "policyException"
                } else {
                    "serviceException"
                };
                let _ = write!(
                    out,
                    "{{\"requestError\": {{\"{kind}\": {{\"messageId\": \"{id}\", \"text\": {}, \"variables\": [",
                    Json(&text)
                );
                if let ApiError::BadRequest { variables, .. } = self {
                    for (i, v) in variables.iter().enumerate() {
                        let sep = if i == 0 { "" } else { ", " };
                        let _ = write!(out, "{sep}{}", Json(v));
                    }
                }
                write!(out, "]}}}}}}")
            }
        };
    }
}

/// A string written as a JSON string literal.
pub struct Json<'a>(pub &'a str);

impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        f.write_char('"')?;
        // Runs that need no escape are written whole.
        let mut plain = 0;
        for (at, b) in self.0.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            f.write_str(self.0.get(plain..at).unwrap_or_default())?;
            if escaped.is_empty() {
                write!(f, "\\u{:04x}", b)?;
            } else {
                f.write_str(escaped)?;
            }
            plain = at + 1;
        }
        f.write_str(self.0.get(plain..).unwrap_or_default())?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_sets_hold_what_they_name() {
        let all = ApiSet::all();
        for api in Api::ALL {
            assert!(all.contains(api));
            assert_eq!(Api::from_name(api.name()), Some(api));
            assert!(!ApiSet::EMPTY.contains(api));
        }
        let some = ApiSet::EMPTY.with(Api::Stir).with(Api::Pyhss);
        assert!(some.contains(Api::Stir) && !some.contains(Api::Aaa));
        assert_eq!(some.names(), "hss,stir");
        assert_eq!(Api::from_name("pyhss"), None);
    }

    #[test]
    fn json_literals_match_serde_json() {
        for s in [
            "",
            "plain",
            "a\"b\\c",
            "\u{1}x\u{1f}\n\r\t",
            "\"",
            "é and 日本 and 🙂 \" end",
            "tail\\",
        ] {
            assert_eq!(
                Json(s).to_string(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    fn body(e: &ApiError, api: Api) -> serde_json::Value {
        let mut out = Vec::new();
        e.write_body(api, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn each_api_has_its_own_error_shape() {
        let e = ApiError::bad_request("bad \"imsi\"\n");
        assert_eq!(
            body(&e, Api::Pyhss),
            serde_json::json!({"result": "Failed", "reason": "bad \"imsi\"\n"})
        );
        assert_eq!(
            body(&e, Api::Aaa),
            serde_json::json!({"status": "error", "error_message": "bad \"imsi\"\n"})
        );
        assert_eq!(
            body(&e, Api::Sim),
            serde_json::json!({"error": {"message": "bad \"imsi\"\n"}})
        );
        assert_eq!(
            body(&ApiError::Unauthorized, Api::Pyhss),
            serde_json::json!({"Result": "Unauthorized - Provisioning-Key Invalid"})
        );
    }

    #[test]
    fn stir_errors_carry_exception_ids() {
        let e = ApiError::BadRequest {
            reason: "Error: Missing mandatory parameter 'iat'".into(),
            stir_id: Some("SVC4001"),
            variables: vec!["iat".into()],
        };
        assert_eq!(
            body(&e, Api::Stir),
            serde_json::json!({"requestError": {"serviceException": {
                "messageId": "SVC4001",
                "text": "Error: Missing mandatory parameter 'iat'",
                "variables": ["iat"]}}})
        );
        let v = body(&ApiError::MethodNotAllowed, Api::Stir);
        assert_eq!(v["requestError"]["policyException"]["messageId"], "POL4050");
    }

    #[test]
    fn status_table() {
        assert_eq!(ApiError::NotFound.status(), 404);
        assert_eq!(ApiError::HeaderTimeout.status(), 408);
        assert_eq!(ApiError::Http(HttpError::BodyTooLarge(1)).status(), 413);
        assert_eq!(ApiError::Overloaded.status(), 503);
    }
}
