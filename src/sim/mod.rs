//! pysim's sim-rest-server: `POST /sim-auth-api/v1/slot/{n}` runs UMTS AKA
//! on the USIM (or ISIM) in PC/SC reader `n`, and `GET
//! /sim-auth-api/v1/slots` lists the readers. Card I/O runs on the reader
//! threads of [`reader`]; a handler only queues a job and awaits its answer.
//!
//! Bodies are pysim's: `successful_3g_authentication {res, ck, ik, kc}`,
//! `synchronisation_failure {auts}`, and `{"error": {"message"[,
//! "status_word"]}}` with 400/404/410, 500 for a card's status word (as
//! pysim answers) and 503 when PC/SC or the slot cannot take the request.
//! docs/api/sim.md has the details.

pub mod reader;
pub mod vcard;

use serde::Serialize;
use serde_json::Value;

use crate::domain::apdu::{App, AuthResult};
use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{Method, Request};
use crate::domain::router::{Params, RouteError};
use crate::runtime::LocalBoxFuture;
use crate::server::{Ctx, Handler, Reply, Routes};

pub use reader::{Readers, SimError};

pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    r.add(
        Method::Post,
        "/sim-auth-api/v1/slot/{slot}",
        Api::Sim,
        Handler::Async(authenticate),
    )?;
    r.add(
        Method::Get,
        "/sim-auth-api/v1/slots",
        Api::Sim,
        Handler::Async(slots),
    )?;
    Ok(())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_word: Option<String>,
}

/// Writes a SIM error: pysim's body, with the card's status word (lower
/// case hex) when the card refused.
fn write_error(reply: &mut Reply<'_>, e: &SimError) -> Result<(), ApiError> {
    let status_word = match e {
        SimError::Card { sw, .. } => Some(format!("{sw:04x}")),
        _ => None,
    };
    let message = e.to_string();
    reply.json(
        e.status(),
        &ErrorBody {
            error: ErrorDetail {
                message: &message,
                status_word,
            },
        },
    )
}

fn malformed(why: &str) -> SimError {
    SimError::Protocol(why.into())
}

/// A 400 in pysim's words, with what was wrong.
fn bad_request(reply: &mut Reply<'_>, why: &str) -> Result<(), ApiError> {
    let message = format!("Malformed Request: {why}");
    reply.json(
        400,
        &ErrorBody {
            error: ErrorDetail {
                message: &message,
                status_word: None,
            },
        },
    )
}

/// `rand`/`autn`: exactly 32 hex digits.
fn hex16(root: &Value, name: &str) -> Result<[u8; 16], String> {
    let v = root
        .get(name)
        .ok_or_else(|| format!("'{name}' is missing"))?;
    let s = v
        .as_str()
        .ok_or_else(|| format!("'{name}' must be a string of 32 hex digits"))?;
    let mut out = [0u8; 16];
    if s.len() != 32 || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(format!("'{name}' must be 32 hex digits"));
    }
    Ok(out)
}

/// The request body: `{"rand", "autn"[, "application": "USIM"|"ISIM"]}`
/// (`app` accepted as an alias of `application`).
fn parse_request(body: &mut [u8]) -> Result<(App, [u8; 16], [u8; 16]), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("empty body".into());
    }
    let root: Value =
        simd_json::serde::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    if !root.is_object() {
        return Err("body must be a JSON object".into());
    }
    let rand = hex16(&root, "rand")?;
    let autn = hex16(&root, "autn")?;
    let app = match root.get("application").or_else(|| root.get("app")) {
        None | Some(Value::Null) => App::Usim,
        Some(v) => v
            .as_str()
            .and_then(App::parse)
            .ok_or("'application' must be \"USIM\" or \"ISIM\"")?,
    };
    Ok((app, rand, autn))
}

#[derive(Serialize)]
enum AuthBody {
    #[serde(rename = "successful_3g_authentication")]
    Success {
        res: String,
        ck: String,
        ik: String,
        /// null when the application gives no Kc (an ISIM), as pysim
        /// would render it: the key set stays the same.
        kc: Option<String>,
    },
    #[serde(rename = "synchronisation_failure")]
    SyncFailure { auts: String },
}

fn readers(ctx: &Ctx) -> Result<&Readers, SimError> {
    ctx.extension::<Readers>()
        .ok_or_else(|| SimError::Unavailable("the SIM service is not running".into()))
}

/// Runs `task` on `slot` and waits for the card, at most the configured
/// timeout.
async fn run(ctx: &Ctx, slot: usize, task: reader::Task) -> Result<reader::Answer, SimError> {
    let readers = readers(ctx)?;
    let answer = readers.submit(slot, task)?;
    wait(readers, answer).await
}

/// Waits for a slot's answer, at most the configured timeout.
async fn wait(
    readers: &Readers,
    answer: futures_channel::oneshot::Receiver<Result<reader::Answer, SimError>>,
) -> Result<reader::Answer, SimError> {
    let limit = readers.timeout();
    match crate::runtime::timeout(limit, answer).await {
        None => Err(SimError::Timeout(
            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        )),
        Some(Err(_)) => Err(SimError::Unavailable("the slot thread ended".into())),
        Some(Ok(a)) => a,
    }
}

/// `POST /sim-auth-api/v1/slot/{slot}`.
fn authenticate<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let Some(slot) = params.get("slot").and_then(|s| s.parse::<usize>().ok()) else {
            return write_error(reply, &SimError::NoSlot);
        };
        let (app, rand, autn) = match parse_request(req.body) {
            Ok(r) => r,
            Err(why) => return bad_request(reply, &why),
        };
        let task = reader::Task::Authenticate { app, rand, autn };
        match run(ctx, slot, task).await {
            Ok(reader::Answer::Auth(result)) => {
                let body = match &result {
                    AuthResult::Success { res, ck, ik, kc } => AuthBody::Success {
                        res: hex::encode(res),
                        ck: hex::encode(ck),
                        ik: hex::encode(ik),
                        kc: kc.as_ref().map(hex::encode),
                    },
                    AuthResult::SyncFailure { auts } => AuthBody::SyncFailure {
                        auts: hex::encode(auts),
                    },
                };
                reply.json(200, &body)
            }
            Ok(reader::Answer::Slot(_)) => write_error(reply, &malformed("unexpected answer")),
            Err(e) => write_error(reply, &e),
        }
    })
}

#[derive(Serialize)]
struct SlotsBody {
    slots: Vec<SlotEntry>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SlotEntry {
    Info(reader::SlotInfo),
    Error { slot: usize, error: String },
}

/// `GET /sim-auth-api/v1/slots`: every reader, its card and applications.
fn slots<'a>(
    ctx: &'a Ctx,
    _req: Request<'a>,
    _params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let (readers, n) = match readers(ctx).and_then(|r| Ok((r, r.slots()?))) {
            Ok(found) => found,
            Err(e) => return write_error(reply, &e),
        };
        // Every slot is asked at once (each has its own thread), then the
        // answers are gathered in order.
        let asked: Vec<_> = (0..n)
            .map(|slot| readers.submit(slot, reader::Task::Describe))
            .collect();
        let mut out = Vec::with_capacity(n);
        for (slot, asked) in asked.into_iter().enumerate() {
            let answer = match asked {
                Ok(rx) => wait(readers, rx).await,
                Err(e) => Err(e),
            };
            out.push(match answer {
                Ok(reader::Answer::Slot(info)) => SlotEntry::Info(info),
                Ok(reader::Answer::Auth(_)) => SlotEntry::Error {
                    slot,
                    error: "unexpected answer".into(),
                },
                Err(e) => SlotEntry::Error {
                    slot,
                    error: e.to_string(),
                },
            });
        }
        reply.json(200, &SlotsBody { slots: out })
    })
}
