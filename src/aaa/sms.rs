//! SMPP: `aaa_bind` (a session token and the account), `aaa_unbind`,
//! `aaa_smpp_authorize` (routes in the spec's `key:value;` form, one
//! reservation per route), `aaa_smpp_accounting` (settles a sent route,
//! releases the others) and `aaa_smpp_delivered`.
//!
//! A session token is drawn so that it hashes to the shard that owns its
//! customer's money: every later request of the session goes straight to
//! that shard.

use std::fmt::Write as _;

use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::form::{self, Attribute, Form};
use super::nas::{self, NasType};
use super::rows::{Account, AuthType, Customer, Protocol};
use super::tables;
use super::voice::{customer_of, offers, split_number};
use super::wallet::{self, Accounted, SmsHold, SmsReport};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::money;
use crate::domain::router::Params;
use crate::domain::shard::{shard_of, ShardId};
use crate::domain::tcxc::{sms_parts, Cidr};
use crate::runtime::{clock, LocalBoxFuture};
use crate::server::{mesh_error, store_error, Ctx, Reply};
use crate::storage::Op;
use crate::table::{catalog_find, catalog_shared};

/// An SMPP session, as stored on its customer's shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub i_account: u64,
    pub i_customer: u64,
    pub i_nas: u64,
    pub system_id: String,
    pub client_remote_ip: String,
    pub bound_at: u64,
    pub unbound_at: Option<u64>,
}

const TOKEN_LEN: usize = 10;

/// A fresh session token that hashes to `home`.
fn token_for(home: ShardId, shards: u16) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    loop {
        let t: String = (0..TOKEN_LEN)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        if shard_of(t.as_bytes(), shards) == home {
            return t;
        }
    }
}

fn token_param<'f>(form: &'f Form<'_>) -> Result<&'f str, ApiError> {
    let t = form.required("session_id")?;
    if t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::bad_request("session_id: not a session token"));
    }
    Ok(t)
}

/// The session of `token`, read durably on its shard.
async fn session(ctx: &Ctx, token: &str) -> Result<Option<Session>, ApiError> {
    let key = token.as_bytes().to_vec();
    let shard = shard_of(&key, ctx.core.shards());
    ctx.core
        .on(shard, move |c| async move {
            c.store
                .read_durable(tables::SMPP_SESSION, &key, |v| {
                    v.and_then(|b| serde_json::from_slice::<Session>(b).ok())
                })
                .await
        })
        .await
        .map_err(mesh_error)?
        .map_err(store_error)
}

/// `aaa_bind`: checks an SMPP system id, password and source address;
/// answers a session token and the account.
pub fn bind<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (view, nas) = nas::admit(ctx, req.peer, &form, NasType::Smpp)?;
        let now = clock::unix_seconds();
        let user = form.required("user_name")?;
        let password = form.required("password")?;
        let remote = form.get("client_remote_ip").unwrap_or("");
        if user.len() > 128 || remote.len() > 64 {
            return Err(ApiError::bad_request(
                "user_name or client_remote_ip: too long",
            ));
        }
        let account =
            catalog_find::<Account>(&view, "username", &Account::user_key(AuthType::Smpp, user));
        let stored = account
            .as_deref()
            .and_then(|a| a.password.as_deref())
            .unwrap_or("\u{0}");
        let password_ok = bool::from(stored.as_bytes().ct_eq(password.as_bytes()));
        let Some(account) = account.filter(|a| password_ok && !a.blocked) else {
            return form::failed(reply, "SMPP bind refused");
        };
        if !account.ips.is_empty() {
            let ip = remote.parse().ok();
            let allowed = ip.is_some_and(|ip| {
                account
                    .ips
                    .iter()
                    .any(|c| Cidr::parse(c).is_ok_and(|c| c.contains(ip)))
            });
            if !allowed {
                return form::failed(reply, "SMPP bind from an address not allowed");
            }
        }
        let Some(customer) = customer_of(&view, &account) else {
            return form::failed(reply, "customer blocked");
        };
        let shards = ctx.core.shards();
        let home = wallet::home(customer.i_customer, shards);
        let token = token_for(home, shards);
        let s = Session {
            i_account: account.i_account,
            i_customer: customer.i_customer,
            i_nas: nas.i_nas,
            system_id: user.to_owned(),
            client_remote_ip: remote.to_owned(),
            bound_at: now,
            unbound_at: None,
        };
        let op = Op::Put {
            table: tables::SMPP_SESSION,
            key: token.as_bytes().to_vec(),
            value: serde_json::to_vec(&s).unwrap_or_default(),
        };
        ctx.core
            .on(home, move |c| async move { c.store.commit(&[op]).await })
            .await
            .map_err(mesh_error)?
            .map_err(store_error)?;
        #[derive(Serialize)]
        struct Bound<'t> {
            status: &'static str,
            session_id: &'t str,
            i_account: String,
        }
        reply.json(
            200,
            &Bound {
                status: "accept",
                session_id: &token,
                i_account: account.i_account.to_string(),
            },
        )
    })
}

/// `aaa_unbind`: closes the session (an unknown or closed one too).
pub fn unbind<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        nas::admit(ctx, req.peer, &form, NasType::Smpp)?;
        let token = token_param(&form)?.to_owned();
        let shard = shard_of(token.as_bytes(), ctx.core.shards());
        let now = clock::unix_seconds();
        ctx.core
            .on(shard, move |c| async move {
                let key = token.into_bytes();
                let s = c.store.read(tables::SMPP_SESSION, &key, |v| {
                    v.and_then(|b| serde_json::from_slice::<Session>(b).ok())
                })?;
                match s {
                    Some(mut s) if s.unbound_at.is_none() => {
                        s.unbound_at = Some(now);
                        let value = serde_json::to_vec(&s).unwrap_or_default();
                        c.store
                            .commit(&[Op::Put {
                                table: tables::SMPP_SESSION,
                                key,
                                value,
                            }])
                            .await
                    }
                    _ => Ok(()),
                }
            })
            .await
            .map_err(mesh_error)?
            .map_err(store_error)?;
        form::accept(reply)
    })
}

fn destination<'f>(form: &'f Form<'_>) -> Result<&'f str, ApiError> {
    // The spec lists `destiation_addr`; its examples send `destination_addr`.
    let d = form
        .get("destination_addr")
        .or_else(|| form.get("destiation_addr"))
        .unwrap_or("");
    if d.is_empty() {
        return Err(ApiError::bad_request("destination_addr: required"));
    }
    Ok(d)
}

/// The bound session of `token` for account `i_account`.
async fn bound(ctx: &Ctx, token: &str, i_account: u64) -> Result<Option<Session>, ApiError> {
    Ok(session(ctx, token)
        .await?
        .filter(|s| s.i_account == i_account))
}

/// `aaa_smpp_authorize`: the message's routes, each with its price and
/// billed parts, a reservation held per route.
pub fn authorize<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (view, _) = nas::admit(ctx, req.peer, &form, NasType::Smpp)?;
        let token = token_param(&form)?;
        let i_account = form.number("i_account")?;
        let dest = destination(&form)?;
        let (tech, number) = split_number("destination_addr", dest)?;
        let source = form.get("source_addr").unwrap_or("");
        if source.len() > 64 {
            return Err(ApiError::bad_request("source_addr: too long"));
        }
        let (_, parts) = sms_parts(form.get("short_message").unwrap_or(""));
        let Some(s) = bound(ctx, token, i_account)
            .await?
            .filter(|s| s.unbound_at.is_none())
        else {
            return form::failed(reply, "no such bound session for this account");
        };
        let Some(customer) = catalog_shared::<Customer>(&view, s.i_customer).filter(|c| !c.blocked)
        else {
            return form::failed(reply, "customer blocked");
        };
        let offered = offers(&view, customer.i_customer, tech, number, Protocol::Smpp);
        if offered.is_empty() {
            return form::failed(reply, "no route");
        }
        let connections: Vec<_> = offered.iter().map(|o| o.connection.clone()).collect();
        let legs: Vec<_> = offered
            .into_iter()
            .map(|o| {
                let mut leg = o.leg;
                leg.credit_time = parts;
                let timeout = u64::from(o.connection.submit_sm_timeout);
                (leg, timeout)
            })
            .collect();
        let hold = SmsHold {
            session_id: token.to_owned(),
            source_addr: source.to_owned(),
            destination_addr: dest.to_owned(),
            leg: None,
        };
        let home = wallet::home(customer.i_customer, ctx.core.shards());
        let now = clock::unix_micros() as i64;
        let c2 = customer.clone();
        let outcome = ctx
            .core
            .on(home, move |c| async move {
                wallet::reserve_sms(&c, &c2, i_account, hold, legs, now).await
            })
            .await
            .map_err(mesh_error)??;
        let kept = match outcome {
            Ok(k) => k,
            Err(refusal) => return form::failed(reply, refusal.as_str()),
        };
        let mut attributes = Vec::with_capacity(kept.len());
        for (i, leg) in kept.iter().enumerate() {
            let Some(conn) = connections
                .iter()
                .find(|c| c.i_connection == leg.i_connection)
            else {
                continue;
            };
            let mut v = String::with_capacity(320);
            let _ = write!(
                v,
                "destination:{}:{};login:{};pass:{};session_timeout:{};smpp_ka_interval:{};\
                 submit_sm_timeout:{};destination_number:{};i_customer:{};i_purchased_route:{};\
                 i_connection:{};i_vendor:{};smpp_commission:{};i_rate:{};billed_msgs_cnt:{};\
                 billing_prefix:{};billing_i_account:{};price:{}",
                conn.host,
                conn.port.unwrap_or(0),
                conn.login.as_deref().unwrap_or(""),
                conn.password.as_deref().unwrap_or(""),
                conn.session_timeout,
                conn.smpp_ka_interval,
                conn.submit_sm_timeout,
                leg.cld_out,
                customer.i_customer,
                leg.i_route,
                leg.i_connection,
                leg.i_vendor,
                money::format_short(leg.commission),
                leg.i_rate,
                leg.credit_time,
                leg.billing_prefix,
                i_account,
                money::format_short(leg.rating.price_1),
            );
            attributes.push(Attribute {
                attribute: format!("Route{}", i + 1),
                value: v,
            });
        }
        form::accept_with(reply, &attributes)
    })
}

/// `aaa_smpp_accounting`: one returned route's outcome. Sent: its
/// reservation is charged; not attempted or not sent: released. A report
/// that matches no reservation (a repeat) changes nothing.
pub fn accounting<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (view, _) = nas::admit(ctx, req.peer, &form, NasType::Smpp)?;
        let token = token_param(&form)?;
        let i_account = form.number("i_account")?;
        let dest = destination(&form)?;
        let price = money::parse(form.required("price")?)
            .map_err(|e| ApiError::bad_request(format!("price: {e}")))?;
        let parts = u32::try_from(form.number("billed_msgs_cnt")?)
            .map_err(|_| ApiError::bad_request("billed_msgs_cnt: out of range"))?;
        let message_id = form.get("message_id").unwrap_or("");
        let error_text = form.get("error_text").unwrap_or("");
        if message_id.len() > 128 || error_text.len() > 512 {
            return Err(ApiError::bad_request("message_id or error_text: too long"));
        }
        let report = SmsReport {
            session_id: token.to_owned(),
            destination_addr: dest.to_owned(),
            i_connection: form.number("i_connection")?,
            i_rate: form.number("i_rate")?,
            price,
            parts,
            attempted: form.flag("attempted", true)?,
            sent: form.flag("sent", false)?,
            message_id: message_id.to_owned(),
            error_text: error_text.to_owned(),
        };
        let Some(s) = bound(ctx, token, i_account).await? else {
            return form::failed(reply, "no such session for this account");
        };
        let Some(customer) = catalog_shared::<Customer>(&view, s.i_customer) else {
            return form::failed(reply, "customer gone");
        };
        let home = wallet::home(customer.i_customer, ctx.core.shards());
        let now = clock::unix_micros() as i64;
        let done = ctx
            .core
            .on(home, move |c| async move {
                wallet::settle_sms(&c, &customer, report, now).await
            })
            .await
            .map_err(mesh_error)??;
        match done {
            Accounted::Billed | Accounted::Repeated | Accounted::Unknown => form::accept(reply),
            Accounted::NoSuchLeg => form::failed(reply, "no such route"),
        }
    })
}

/// `aaa_smpp_delivered`: marks the message's SDR delivered.
pub fn delivered<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        nas::admit(ctx, req.peer, &form, NasType::Smpp)?;
        let id = form.required("message_id")?;
        if id.len() > 128 {
            return Err(ApiError::bad_request("message_id: too long"));
        }
        let now = clock::unix_micros() as i64;
        // The message's SDR may be on any shard: each is asked.
        for k in 0..ctx.core.shards() {
            let id = id.to_owned();
            ctx.core
                .on(ShardId(k), move |c| async move {
                    wallet::delivered_here(&c, &id, now).await
                })
                .await
                .map_err(mesh_error)??;
        }
        form::accept(reply)
    })
}
