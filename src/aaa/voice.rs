//! SIP: `aaa_authenticate`, `aaa_authorize` (least-cost routes in sippy
//! b2bua's format with a credit time per route), and accounting start and
//! stop per route leg.

use std::net::IpAddr;
use std::sync::Arc;

use super::form::{self, Attribute, Form};
use super::nas::{self, NasType};
use super::rows::{Account, AuthType, Connection, Customer, Protocol, Rate, Route, Vendor};
use super::tables;
use super::wallet::{self, Accounted, CallHold, Leg, Stop};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::domain::shard::shard_of;
use crate::domain::tcxc::{self, route_safe, Cidr, SipRoute};
use crate::runtime::{clock, CatalogView, LocalBoxFuture};
use crate::server::{mesh_error, store_error, Ctx, Reply};
use crate::storage::Op;
use crate::table::{catalog_find, catalog_shared, find_all, typed_rows};

/// The account a SIP `user_name` names: an address (IP authentication)
/// or a digest user name.
pub fn sip_account(view: &CatalogView, user: &str) -> Option<Arc<Account>> {
    let account = match user.parse::<IpAddr>() {
        Ok(ip) => typed_rows::<Account>(view)?
            .rows
            .values()
            .find(|a| {
                a.auth_type == AuthType::Ip
                    && a.ips
                        .iter()
                        .any(|c| Cidr::parse(c).is_ok_and(|c| c.contains(ip)))
            })
            .cloned(),
        Err(_) => {
            catalog_find::<Account>(view, "username", &Account::user_key(AuthType::Digest, user))
        }
    }?;
    (!account.blocked).then_some(account)
}

/// The customer of an account, unless blocked or gone.
pub fn customer_of(view: &CatalogView, a: &Account) -> Option<Arc<Customer>> {
    catalog_shared::<Customer>(view, a.i_customer).filter(|c| !c.blocked)
}

/// A number as routed: the buyer tech prefix before `#`, and the digits
/// after it (a leading `+` dropped).
pub fn split_number<'n>(field: &str, cld: &'n str) -> Result<(&'n str, &'n str), ApiError> {
    let (tech, number) = cld.split_once('#').unwrap_or(("", cld));
    let number = number.strip_prefix('+').unwrap_or(number);
    if number.is_empty()
        || number.len() > 32
        || !number.bytes().all(|b| b.is_ascii_digit())
        || tech.len() > 32
        || !tech.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ApiError::bad_request(format!(
            "{field}: must be [tech prefix#]digits (up to 32 digits)"
        )));
    }
    Ok((tech, number))
}

/// The rate of the longest prefix of `number` in tariff `i_tariff`: the
/// index key `i_tariff/number` is built once and probed shorter and
/// shorter.
pub fn longest_rate(view: &CatalogView, i_tariff: u64, number: &str) -> Option<Arc<Rate>> {
    let key = Rate::key(i_tariff, number);
    let stem = key.len() - number.len();
    (1..=number.len().min(super::rows::MAX_PREFIX))
        .rev()
        .find_map(|n| catalog_find::<Rate>(view, "prefix", key.get(..stem + n)?))
}

/// One route a customer may use for a number.
#[derive(Debug, Clone)]
pub struct Offer {
    pub leg: Leg,
    pub connection: Arc<Connection>,
}

/// The customer's routes for `number` with buyer tech prefix `tech` on
/// `protocol`: each with its selling rate (longest prefix; a forbidden
/// or missing rate drops the route), routes that would sell at a loss
/// dropped unless allowed, ordered by priority, then by what they cost
/// (the vendor's rate, else the selling one), then by id.
pub fn offers(
    view: &CatalogView,
    i_customer: u64,
    tech: &str,
    number: &str,
    protocol: Protocol,
) -> Vec<Offer> {
    let routes = find_all::<Route>(view, "i_customer", &i_customer.to_string()).unwrap_or_default();
    let mut out: Vec<(i64, i64, u64, Offer)> = Vec::new();
    for r in routes
        .iter()
        .filter(|r| !r.blocked && r.tech_prefix == tech)
    {
        let Some(conn) = catalog_shared::<Connection>(view, r.i_connection) else {
            continue;
        };
        if conn.blocked || conn.protocol != protocol {
            continue;
        }
        if catalog_shared::<Vendor>(view, conn.i_vendor).is_none_or(|v| v.blocked) {
            continue;
        }
        let Some(sell) = longest_rate(view, r.i_tariff, number).filter(|s| !s.forbidden) else {
            continue;
        };
        let cost = conn
            .i_tariff
            .and_then(|t| longest_rate(view, t, number))
            .map(|c| c.rating().cost(60));
        let sell_minute = sell.rating().cost(60);
        if !r.allow_loss && cost.is_some_and(|c| c > sell_minute) {
            continue;
        }
        let leg = Leg {
            i_route: r.i_route,
            i_connection: conn.i_connection,
            i_vendor: conn.i_vendor,
            i_rate: sell.i_rate,
            billing_prefix: sell.prefix.clone(),
            cld_out: tcxc::vendor_cld(number, conn.cld_strip, &conn.cld_prefix),
            rating: sell.rating(),
            expires: conn.expires,
            credit_time: 0,
            commission: r.smpp_commission,
        };
        out.push((
            r.priority,
            cost.unwrap_or(sell_minute),
            r.i_route,
            Offer {
                leg,
                connection: conn,
            },
        ));
    }
    out.sort_by_key(|(p, c, id, _)| (*p, *c, *id));
    out.into_iter().map(|(_, _, _, o)| o).collect()
}

fn text_param<'f>(form: &'f Form<'_>, name: &str, max: usize) -> Result<&'f str, ApiError> {
    let v = form.required(name)?;
    if v.len() > max || v.bytes().any(|b| b.is_ascii_control()) {
        return Err(ApiError::bad_request(format!(
            "{name}: at most {max} printable characters"
        )));
    }
    Ok(v)
}

/// `aaa_authenticate`: the password the NAS checks the caller with
/// (`cisco` for an account authenticated by address).
pub fn authenticate<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (view, _) = nas::admit(ctx, req.peer, &form, NasType::Sip)?;
        let user = text_param(&form, "user_name", 128)?;
        form.required("cld")?;
        let Some(account) = sip_account(&view, user) else {
            return form::failed(reply, "unknown SIP user");
        };
        if customer_of(&view, &account).is_none() {
            return form::failed(reply, "customer blocked");
        }
        let attr = |a: &str, v: &str| Attribute {
            attribute: a.into(),
            value: v.into(),
        };
        match account.auth_type {
            AuthType::Ip => form::accept_with(reply, &[attr("Cleartext-Password", "cisco")]),
            _ => form::accept_with(
                reply,
                &[
                    attr(
                        "Cleartext-Password",
                        account.password.as_deref().unwrap_or(""),
                    ),
                    attr("Auth-Type", "Digest"),
                ],
            ),
        }
    })
}

/// `aaa_authorize`: the caller's routes for the number, each with the
/// credit time its balance pays for, a reservation held for the call.
pub fn authorize<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (view, nas) = nas::admit(ctx, req.peer, &form, NasType::Sip)?;
        let user = text_param(&form, "user_name", 128)?;
        let (tech, number) = split_number("cld", text_param(&form, "cld", 80)?)?;
        let cli = form.get("cli").unwrap_or("");
        if cli.len() > 64 || !route_safe(cli) {
            return Err(ApiError::bad_request(
                "cli: at most 64 characters without ; @ = or spaces",
            ));
        }
        let call_id = text_param(&form, "call_id", 256)?;
        let remote = form.get("client_remote_ip").unwrap_or("");
        if remote.len() > 64 {
            return Err(ApiError::bad_request("client_remote_ip: too long"));
        }
        let Some(account) = sip_account(&view, user) else {
            return form::failed(reply, "unknown SIP user");
        };
        let Some(customer) = customer_of(&view, &account) else {
            return form::failed(reply, "customer blocked");
        };
        let offered = offers(&view, customer.i_customer, tech, number, Protocol::Sip);
        if offered.is_empty() {
            return form::failed(reply, "no route");
        }
        let connections: Vec<Arc<Connection>> =
            offered.iter().map(|o| o.connection.clone()).collect();
        let legs: Vec<Leg> = offered.into_iter().map(|o| o.leg).collect();
        let call = CallHold {
            i_nas: nas.i_nas,
            call_id: call_id.to_owned(),
            cli: cli.to_owned(),
            cld: number.to_owned(),
            client_remote_ip: remote.to_owned(),
            ..CallHold::default()
        };
        let shards = ctx.core.shards();
        let home = wallet::home(customer.i_customer, shards);
        let loc_key = wallet::call_key(nas.i_nas, call_id);
        let loc_shard = shard_of(&loc_key, shards);
        let locator = Op::Put {
            table: tables::CALL_LOCATOR,
            key: loc_key,
            value: customer.i_customer.to_be_bytes().to_vec(),
        };
        let here = (loc_shard == home).then(|| locator.clone());
        let (cap, i_account) = (account.max_credit_time, account.i_account);
        let now = clock::unix_micros() as i64;
        let outcome = ctx
            .core
            .on(home, move |c| async move {
                wallet::reserve_call(&c, &customer, i_account, call, legs, cap, now, here).await
            })
            .await
            .map_err(mesh_error)??;
        let kept = match outcome {
            Ok(kept) => kept,
            Err(refusal) => return form::failed(reply, refusal.as_str()),
        };
        if loc_shard != home {
            ctx.core
                .on(loc_shard, move |c| async move {
                    c.store.commit(&[locator]).await
                })
                .await
                .map_err(mesh_error)?
                .map_err(store_error)?;
        }
        let mut attributes = Vec::with_capacity(kept.len());
        for (i, leg) in kept.iter().enumerate() {
            let Some(conn) = connections
                .iter()
                .find(|c| c.i_connection == leg.i_connection)
            else {
                continue;
            };
            let auth = conn.login.as_deref().zip(conn.password.as_deref());
            let route = SipRoute {
                cld: &leg.cld_out,
                host: &conn.host,
                port: conn.port,
                cli,
                credit_time: leg.credit_time,
                rid: -1,
                auth,
                expires: conn.expires,
                np_expires: conn.np_expires,
            };
            attributes.push(Attribute {
                attribute: format!("Route{}", i + 1),
                value: route.to_string(),
            });
        }
        form::accept_with(reply, &attributes)
    })
}

/// A time parameter, if given (empty: not given).
fn time_param(form: &Form<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    match form.get(name) {
        None | Some("") => Ok(None),
        Some(t) => tcxc::parse_time(t)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("{name}: {e}"))),
    }
}

/// The customer whose shard holds the call, from the call's locator.
async fn locate(ctx: &Ctx, i_nas: u64, base: &str) -> Result<Option<Arc<Customer>>, ApiError> {
    let key = wallet::call_key(i_nas, base);
    let shard = shard_of(&key, ctx.core.shards());
    let found = ctx
        .core
        .on(shard, move |c| async move {
            c.store
                .read_durable(tables::CALL_LOCATOR, &key, |v| {
                    v.and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes)
                })
                .await
        })
        .await
        .map_err(mesh_error)?
        .map_err(store_error)?;
    Ok(found.and_then(|id| catalog_shared::<Customer>(&ctx.core.catalog(), id)))
}

/// `call_id`, its base and leg: `-b2b_N` is required on an originate
/// leg; the caller's own leg (`answer`) is leg 0.
fn leg_of(call_id: &str, answer: bool) -> Result<(&str, u32), ApiError> {
    match tcxc::call_leg(call_id) {
        Some((base, n)) if !answer => Ok((base, n)),
        Some((base, _)) => Ok((base, 0)),
        None if answer => Ok((call_id, 0)),
        None => Err(ApiError::bad_request(
            "call_id: must end in -b2b_N, the route it was sent on",
        )),
    }
}

/// `aaa_accounting_start`: marks the leg that connected. The spec's own
/// example posts a stop here: a request with `disconnect_time` or
/// `duration` is accounted as a stop.
pub fn accounting_start<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        if form.get("disconnect_time").is_some() || form.get("duration").is_some() {
            drop(form);
            return accounting_stop(ctx, req, params, reply).await;
        }
        let (_, nas) = nas::admit(ctx, req.peer, &form, NasType::Sip)?;
        let call_id = text_param(&form, "call_id", 256)?;
        time_param(&form, "setup_time")?;
        time_param(&form, "connect_time")?;
        let (base, leg) = leg_of(call_id, false)?;
        if let Some(customer) = locate(ctx, nas.i_nas, base).await? {
            let home = wallet::home(customer.i_customer, ctx.core.shards());
            let (i_nas, base) = (nas.i_nas, base.to_owned());
            ctx.core
                .on(home, move |c| async move {
                    wallet::start_call(&c, i_nas, &base, leg).await
                })
                .await
                .map_err(mesh_error)??;
        }
        form::accept(reply)
    })
}

/// `aaa_accounting_stop`: rates the leg and debits it once, with its CDR,
/// durable before the answer; a repeated stop changes nothing.
pub fn accounting_stop<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    _: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let form = Form::parse(&req)?;
        let (_, nas) = nas::admit(ctx, req.peer, &form, NasType::Sip)?;
        let call_id = text_param(&form, "call_id", 256)?;
        let answer = match form.get("call_origin").unwrap_or("originate") {
            "originate" | "" => false,
            "answer" => true,
            _ => {
                return Err(ApiError::bad_request(
                    "call_origin: must be originate or answer",
                ))
            }
        };
        let duration = form.number("duration")?;
        if duration > 366 * 86_400 {
            return Err(ApiError::bad_request("duration: longer than a year"));
        }
        let disconnect_code = match form.get("disconnect_code") {
            None | Some("") => 0,
            Some(_) => form.number("disconnect_code")?,
        };
        let stop_times = (
            time_param(&form, "setup_time")?,
            time_param(&form, "connect_time")?,
            time_param(&form, "disconnect_time")?,
        );
        let remote = form.get("client_remote_ip").unwrap_or("");
        if remote.len() > 64 {
            return Err(ApiError::bad_request("client_remote_ip: too long"));
        }
        let (base, leg) = leg_of(call_id, answer)?;
        let Some(customer) = locate(ctx, nas.i_nas, base).await? else {
            return form::failed(reply, "no authorization for this call");
        };
        let stop = Stop {
            i_nas: nas.i_nas,
            call_id: call_id.to_owned(),
            base: base.to_owned(),
            leg,
            duration,
            disconnect_code,
            setup_time: stop_times.0,
            connect_time: stop_times.1,
            disconnect_time: stop_times.2,
            client_remote_ip: remote.to_owned(),
        };
        let home = wallet::home(customer.i_customer, ctx.core.shards());
        let now = clock::unix_micros() as i64;
        let done = ctx
            .core
            .on(home, move |c| async move {
                wallet::settle_call(&c, &customer, stop, now).await
            })
            .await
            .map_err(mesh_error)??;
        match done {
            Accounted::Billed | Accounted::Repeated => form::accept(reply),
            Accounted::Unknown => form::failed(reply, "no reservation for this call"),
            Accounted::NoSuchLeg => Err(ApiError::bad_request(format!(
                "call_id: leg {leg} was not offered for this call"
            ))),
        }
    })
}
