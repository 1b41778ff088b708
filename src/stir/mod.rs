//! STIR/SHAKEN over ATIS-1000082's REST API: STI-AS signing
//! (`POST /stir/v1/signing`). Every answer carries `X-RequestID` (echoed,
//! or generated); errors are `requestError` bodies with the seed's
//! SVC/POL ids.

use serde::Serialize;
use simd_json::prelude::*;
use simd_json::BorrowedValue as Value;

use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{Method, Request};
use crate::domain::passport::{self, Attest, Claims};
use crate::domain::router::{Params, RouteError};
use crate::domain::shaken;
use crate::runtime::LocalBoxFuture;
use crate::server::{Ctx, Handler, Reply, Routes};

pub mod keys;
pub mod state;
pub mod verify;

pub use state::Stir;

/// The loaded STIR state (the entry level starts it with the service).
fn state(ctx: &Ctx) -> Result<&Stir, ApiError> {
    ctx.extension::<Stir>()
        .ok_or_else(|| ApiError::Internal("the STIR service is not loaded".into()))
}

pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    r.add(
        Method::Post,
        "/stir/v1/signing",
        Api::Stir,
        Handler::Sync(signing),
    )?;
    r.add(
        Method::Post,
        "/stir/v1/verification",
        Api::Stir,
        Handler::Async(verification),
    )?;
    r.add(
        Method::Get,
        DEV_CERT_PATH,
        Api::Stir,
        Handler::Sync(dev_certificate),
    )?;
    Ok(())
}

/// The path the development certificate is served at (its x5u).
pub const DEV_CERT_PATH: &str = "/stir/v1/certs/dev.pem";

/// `GET /stir/v1/certs/dev.pem`: the development certificate, if in use.
fn dev_certificate(
    ctx: &Ctx,
    _: &mut Request<'_>,
    _: &Params<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), ApiError> {
    let pem = state(ctx)?
        .dev_certificate
        .as_ref()
        .ok_or(ApiError::NotFound)?;
    reply.with_body(200, "application/x-pem-file", |out| {
        out.extend_from_slice(pem.as_bytes())
    });
    Ok(())
}

fn svc(id: &'static str, text: impl Into<String>, variables: &[&str]) -> ApiError {
    ApiError::BadRequest {
        reason: text.into(),
        stir_id: Some(id),
        variables: variables.iter().map(|v| (*v).to_owned()).collect(),
    }
}

fn missing(name: &str) -> ApiError {
    svc(
        "SVC4001",
        format!("Error: Missing mandatory parameter '{name}'"),
        &[name],
    )
}

fn invalid(name: &str) -> ApiError {
    svc(
        "SVC4005",
        format!("Error: Invalid parameter value '{name}'"),
        &[name],
    )
}

/// 415, 406 and 411 as the seed defines them, for both endpoints.
fn check_headers(
    content_type: Option<&[u8]>,
    accept: Option<&[u8]>,
    content_length: Option<&[u8]>,
) -> Result<(), (u16, ApiError)> {
    fn media(v: &[u8]) -> &[u8] {
        v.split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii()
    }
    let is_json = |v: &[u8]| media(v).eq_ignore_ascii_case(b"application/json");
    if !content_type.is_some_and(is_json) {
        return Err((
            415,
            svc(
                "SVC4004",
                "Error: Unsupported Content-Type, application/json expected",
                &[],
            ),
        ));
    }
    if let Some(accept) = accept {
        let ok = accept.split(|&b| b == b',').any(|t| {
            let t = media(t);
            t.eq_ignore_ascii_case(b"application/json")
                || t.eq_ignore_ascii_case(b"application/*")
                || t == b"*/*"
        });
        if !ok {
            return Err((
                406,
                svc(
                    "SVC4002",
                    "Error: Not Acceptable, application/json is what this service answers",
                    &[],
                ),
            ));
        }
    }
    if content_length.is_none() {
        return Err((
            411,
            svc(
                "SVC4007",
                "Error: Missing mandatory Content-Length header",
                &[],
            ),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct SigningResponse {
    #[serde(rename = "signingResponse")]
    signing_response: Identity,
}

#[derive(Serialize)]
struct Identity {
    identity: String,
}

/// The request body parsed (in place), with its root element `name`
/// present and an object: SVC4000 (empty), SVC4006 (not JSON), SVC4001
/// (no root), SVC4005 (not an object).
fn root_element<'b>(body: &'b mut [u8], name: &str) -> Result<Value<'b>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(svc(
            "SVC4000",
            "Error: Missing JSON body in the request",
            &[],
        ));
    }
    let root = simd_json::to_borrowed_value(body).map_err(|e| {
        svc(
            "SVC4006",
            format!("Error: Failed to parse JSON body: {e}"),
            &[],
        )
    })?;
    match root.get(name) {
        None => Err(missing(name)),
        Some(r) if !r.is_object() => Err(invalid(name)),
        Some(_) => Ok(root),
    }
}

/// The claims of a `signingRequest`, validated; `origid` generated when
/// absent (the seed's rule), `attest` from the configuration when absent.
fn parse_signing(ctx: &Ctx, body: &mut [u8]) -> Result<Claims, ApiError> {
    let root = root_element(body, "signingRequest")?;
    let req = &root["signingRequest"];
    let orig = req.get("orig").ok_or_else(|| missing("orig"))?;
    let orig_tn = orig
        .get("tn")
        .and_then(|v| v.as_str())
        .filter(|t| passport::valid_tn(t))
        .ok_or_else(|| invalid("orig"))?
        .to_owned();
    let dest = req.get("dest").ok_or_else(|| missing("dest"))?;
    let dest_tns: Vec<String> = dest
        .get("tn")
        .and_then(|v| v.as_array())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("dest"))?
        .iter()
        .map(|t| {
            t.as_str()
                .filter(|t| passport::valid_tn(t))
                .map(str::to_owned)
        })
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("dest"))?;
    let iat = req
        .get("iat")
        .ok_or_else(|| missing("iat"))?
        .as_u64()
        .ok_or_else(|| invalid("iat"))?;
    let attest = match req.get("attest") {
        None => ctx.config.stir.attest_for(&orig_tn),
        Some(v) if v.is_null() => ctx.config.stir.attest_for(&orig_tn),
        Some(a) => a
            .as_str()
            .and_then(Attest::parse)
            .ok_or_else(|| invalid("attest"))?,
    };
    let origid = match req.get("origid") {
        None => crate::server::uuid_v4(),
        Some(v) if v.is_null() => crate::server::uuid_v4(),
        Some(o) => o
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| u.hyphenated().to_string())
            .ok_or_else(|| invalid("origid"))?,
    };
    Ok(Claims {
        attest,
        dest_tns,
        iat,
        orig_tn,
        origid,
    })
}

/// The request id (echoed or generated) and the 415/406/411 checks of
/// both endpoints, from one pass over the head.
fn preamble(req: &Request<'_>) -> (String, Result<(), (u16, ApiError)>) {
    let [id, content_type, accept, content_length] =
        req.headers(["x-requestid", "content-type", "accept", "content-length"]);
    (
        crate::server::request_id_from(id),
        check_headers(content_type, accept, content_length),
    )
}

/// `POST /stir/v1/signing` (STI-AS).
fn signing(
    ctx: &Ctx,
    req: &mut Request<'_>,
    _: &Params<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), ApiError> {
    let (request_id, checked) = preamble(req);
    let headers = [("X-RequestID", request_id.as_str())];
    if let Err((status, e)) = checked {
        reply.error_with(status, &e, Api::Stir, &headers);
        return Ok(());
    }
    let result = parse_signing(ctx, req.body).and_then(|claims| {
        state(ctx)?.with_credential(&claims.orig_tn, |cred| {
            let cred = cred.ok_or_else(|| {
                ApiError::Internal("no signing credential for this originating TN".into())
            })?;
            passport::sign_identity(&*cred.key, &cred.header_b64, &claims, &cred.x5u)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
    });
    match result {
        Ok(identity) => reply.json_with(
            200,
            &SigningResponse {
                signing_response: Identity { identity },
            },
            &headers,
        ),
        Err(e) => {
            reply.error_with(e.status(), &e, Api::Stir, &headers);
            Ok(())
        }
    }
}

/// The fields of a `verificationRequest`, checked for presence (E1,
/// SVC4001) and form (E2, SVC4005).
struct VerificationFields {
    from_tn: String,
    to_tns: Vec<String>,
    time: u64,
    identity: String,
}

fn parse_verification(body: &mut [u8]) -> Result<VerificationFields, ApiError> {
    let root = root_element(body, "verificationRequest")?;
    let req = &root["verificationRequest"];
    for field in ["from", "to", "time", "identity"] {
        if req.get(field).is_none_or(|v| v.is_null()) {
            return Err(missing(field));
        }
    }
    let from_tn = req
        .get("from")
        .and_then(|f| f.get("tn"))
        .and_then(|v| v.as_str())
        .filter(|t| passport::valid_tn(t))
        .ok_or_else(|| invalid("from"))?
        .to_owned();
    let to_tns = req
        .get("to")
        .and_then(|t| t.get("tn"))
        .and_then(|v| v.as_array())
        .filter(|a| !a.is_empty())
        .and_then(|a| {
            a.iter()
                .map(|t| {
                    t.as_str()
                        .filter(|t| passport::valid_tn(t))
                        .map(str::to_owned)
                })
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| invalid("to"))?;
    let time = req
        .get("time")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| invalid("time"))?;
    let identity = req
        .get("identity")
        .and_then(|v| v.as_str())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| invalid("identity"))?
        .to_owned();
    Ok(VerificationFields {
        from_tn,
        to_tns,
        time,
        identity,
    })
}

#[derive(Serialize)]
struct VerificationResponse {
    #[serde(rename = "verificationResponse")]
    verification_response: Verdict,
}

#[derive(Serialize)]
struct Verdict {
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoncode: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasontext: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasondesc: Option<String>,
    verstat: &'static str,
}

/// `POST /stir/v1/verification` (STI-VS).
fn verification<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (request_id, checked) = preamble(&req);
        let headers = [("X-RequestID", request_id.as_str())];
        let settings = &state(ctx)?.verify;
        if !settings.trusted_hosts.is_empty()
            && !req
                .peer
                .is_some_and(|p| settings.trusted_hosts.contains(&p))
        {
            reply.error_with(
                403,
                &ApiError::Forbidden("Error: Forbidden, client is not a trusted host".into()),
                Api::Stir,
                &headers,
            );
            return Ok(());
        }
        if let Err((status, e)) = checked {
            reply.error_with(status, &e, Api::Stir, &headers);
            return Ok(());
        }
        if let Some(instance) = req.header("x-instanceid") {
            tracing::debug!(
                request_id = %request_id,
                instance_id = %String::from_utf8_lossy(instance),
                "verification request"
            );
        }
        let fields = match parse_verification(req.body) {
            Ok(f) => f,
            Err(e) => {
                reply.error_with(e.status(), &e, Api::Stir, &headers);
                return Ok(());
            }
        };
        let request = shaken::Request {
            from_tn: &fields.from_tn,
            to_tns: &fields.to_tns,
            time: fields.time,
            identity: &fields.identity,
        };
        let verdict = match verify::verify(&ctx.core, settings, &request).await {
            Ok(()) => Verdict {
                reasoncode: None,
                reasontext: None,
                reasondesc: None,
                verstat: shaken::PASSED,
            },
            Err(r) => Verdict {
                reasoncode: Some(r.case.reason_code()),
                reasontext: Some(r.case.reason_text()),
                reasondesc: Some(r.desc),
                verstat: r.case.verstat(),
            },
        };
        reply.json_with(
            200,
            &VerificationResponse {
                verification_response: verdict,
            },
            &headers,
        )
    })
}
