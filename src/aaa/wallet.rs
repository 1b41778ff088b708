//! A customer's money, on the one shard that owns it (the hash of its
//! id): the balance, the reservations held against it (calls being
//! authorized or in progress, message routes awaiting accounting), the
//! CDRs and SDRs of what was billed. Every function here runs on that
//! shard's core and decides synchronously, from what the core holds, then
//! commits: two requests for one customer never both spend the same
//! money, whatever cores they arrived on. Answers wait until the commit
//! is durable.
//!
//! What is held is also kept in memory per customer (loaded from the
//! stored reservations at the core's first AAA request), so the
//! available amount is `balance + credit_limit − held` without a scan.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::rows::Customer;
use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::money::{self, Micros, Rating};
use crate::domain::shard::{shard_of, ShardId};
use crate::runtime::Core;
use crate::storage::Op;
use crate::table::ids;
use crate::table::store_error;

/// The shard that owns customer `i_customer`'s money.
pub fn home(i_customer: u64, shards: u16) -> ShardId {
    shard_of(&i_customer.to_be_bytes(), shards)
}

/// One route as offered and, once reserved, with its credit time: what
/// rating its leg needs later, copied so a tariff change does not rerate
/// a call in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Leg {
    pub i_route: u64,
    pub i_connection: u64,
    pub i_vendor: u64,
    pub i_rate: u64,
    pub billing_prefix: String,
    /// The number as sent to the vendor.
    pub cld_out: String,
    /// The selling rate's terms (SMS: `price_1` per part).
    #[serde(flatten)]
    pub rating: Rating,
    /// Seconds the route may wait to connect (sippy's `expires`).
    pub expires: u32,
    /// SIP: the credit time granted; SMS: the billed parts.
    pub credit_time: u32,
    /// SMS: the platform's share per part (recorded).
    #[serde(default)]
    pub commission: Micros,
}

/// A reservation, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hold {
    pub i_customer: u64,
    pub i_account: u64,
    pub amount: Micros,
    /// When it is released if never settled (Unix µs).
    pub expires: i64,
    pub created: i64,
    #[serde(default)]
    pub call: Option<CallHold>,
    #[serde(default)]
    pub sms: Option<SmsHold>,
}

/// What a call's reservation remembers.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CallHold {
    pub i_nas: u64,
    pub call_id: String,
    pub cli: String,
    pub cld: String,
    pub client_remote_ip: String,
    pub legs: Vec<Leg>,
    /// Legs whose stop was accounted.
    pub reported: Vec<u32>,
    pub connected: Option<u32>,
}

/// What a message route's reservation remembers.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SmsHold {
    pub session_id: String,
    pub source_addr: String,
    pub destination_addr: String,
    pub leg: Option<Leg>,
}

/// The key of a call's reservation.
pub fn call_key(i_nas: u64, base: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + base.len());
    k.push(b'v');
    k.extend_from_slice(&i_nas.to_be_bytes());
    k.extend_from_slice(base.as_bytes());
    k
}

/// The prefix of a session's message reservations.
pub fn sms_prefix(session_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + session_id.len() + 8);
    k.push(b's');
    k.extend_from_slice(session_id.as_bytes());
    k.push(b'/');
    k
}

#[derive(Debug, Default)]
struct Held {
    total: Micros,
    calls: u32,
    /// key → (amount, expires, is a call)
    keys: HashMap<Vec<u8>, (Micros, i64, bool)>,
    /// (expires, key): the next to expire first.
    by_expiry: BTreeSet<(i64, Vec<u8>)>,
    /// The message holds' keys, in order (a session's oldest first).
    sms_keys: BTreeSet<Vec<u8>>,
}

impl Held {
    fn add(&mut self, key: Vec<u8>, h: &Hold) {
        self.remove(&key);
        let call = h.call.is_some();
        self.by_expiry.insert((h.expires, key.clone()));
        if h.sms.is_some() {
            self.sms_keys.insert(key.clone());
        }
        self.keys.insert(key, (h.amount, h.expires, call));
        self.total += h.amount;
        self.calls += u32::from(call);
    }
    fn remove(&mut self, key: &[u8]) {
        if let Some((a, e, c)) = self.keys.remove(key) {
            self.by_expiry.remove(&(e, key.to_vec()));
            self.sms_keys.remove(key);
            self.total -= a;
            self.calls -= u32::from(c);
        }
    }
}

thread_local! {
    /// This core's reservations per customer (None until loaded).
    static HELD: RefCell<Option<HashMap<u64, Held>>> = const { RefCell::new(None) };
}

fn with_held<R>(core: &Core, f: impl FnOnce(&mut HashMap<u64, Held>) -> R) -> R {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        let map = h.get_or_insert_with(|| load(core));
        f(map)
    })
}

/// Every reservation stored on this core's shard.
fn load(core: &Core) -> HashMap<u64, Held> {
    let mut map: HashMap<u64, Held> = HashMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let part = match core.store.scan(tables::HOLD, after.as_deref(), 1024) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "AAA reservations past this point cannot be read");
                break;
            }
        };
        let done = part.len() < 1024;
        for (k, v) in &part {
            match serde_json::from_slice::<Hold>(v) {
                Ok(h) => map.entry(h.i_customer).or_default().add(k.clone(), &h),
                Err(e) => tracing::error!(error = %e, "damaged AAA reservation"),
            }
        }
        after = part.last().map(|(k, _)| k.clone());
        if done {
            break;
        }
    }
    map
}

/// The reservation stored at `key` on this core (changes not yet durable
/// included); None when there is none or it does not decode.
fn stored_hold(core: &Core, key: &[u8]) -> Result<Option<Hold>, ApiError> {
    core.store
        .read(tables::HOLD, key, |v| {
            v.and_then(|b| serde_json::from_slice::<Hold>(b).ok())
        })
        .map_err(store_error)
}

/// The customer's balance on this shard.
fn balance(core: &Core, c: &Customer) -> Result<Micros, ApiError> {
    core.store
        .read(tables::WALLET, &c.i_customer.to_be_bytes(), |v| {
            v.and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(c.balance, i64::from_be_bytes)
        })
        .map_err(store_error)
}

fn put_balance(i_customer: u64, m: Micros) -> Op {
    Op::Put {
        table: tables::WALLET,
        key: i_customer.to_be_bytes().to_vec(),
        value: m.to_be_bytes().to_vec(),
    }
}

/// Releases the customer's expired reservations (their deletes join `ops`).
fn purge(i_customer: u64, now: i64, held: &mut Held, ops: &mut Vec<Op>) {
    while let Some((e, k)) = held.by_expiry.first().cloned() {
        if e > now {
            break;
        }
        tracing::info!(i_customer, "AAA reservation expired unreported: released");
        held.remove(&k);
        ops.push(Op::Delete {
            table: tables::HOLD,
            key: k,
        });
    }
}

/// What the customer has: balance, held, calls in progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Funds {
    pub balance: Micros,
    pub held: Micros,
    pub calls: u32,
}

/// The customer's funds (read on its shard).
pub fn funds(core: &Core, c: &Customer) -> Result<Funds, ApiError> {
    let (held, calls) = with_held(core, |m| {
        m.get(&c.i_customer).map_or((0, 0), |h| (h.total, h.calls))
    });
    Ok(Funds {
        balance: balance(core, c)?,
        held,
        calls,
    })
}

/// Why an authorization was refused (`failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Blocked,
    Sessions,
    Funds,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Blocked => "customer blocked",
            Refusal::Sessions => "concurrent call limit reached",
            Refusal::Funds => "not enough funds for any route",
        }
    }
}

async fn durable(core: &Core, ops: &[Op]) -> Result<(), ApiError> {
    if ops.is_empty() {
        return Ok(());
    }
    core.store.commit(ops).await.map_err(store_error)
}

/// Reserves a call: each offered leg gets the credit time the available
/// money pays for (at most `cap`); legs it does not pay for are dropped;
/// the most expensive remaining leg's cost is held until the call's legs
/// are reported or `hold_for` past its longest leg. A repeated request
/// for a call already held answers its legs again, holding nothing more.
/// `locator` joins the commit when the call's locator lives here.
#[allow(clippy::too_many_arguments)]
pub async fn reserve_call(
    core: &Core,
    customer: &Customer,
    i_account: u64,
    mut call: CallHold,
    offered: Vec<Leg>,
    cap: u32,
    now: i64,
    locator: Option<Op>,
) -> Result<Result<Vec<Leg>, Refusal>, ApiError> {
    let key = call_key(call.i_nas, &call.call_id);
    let existing = core
        .store
        .read_durable(tables::HOLD, &key, |v| {
            v.and_then(|b| serde_json::from_slice::<Hold>(b).ok())
        })
        .await
        .map_err(store_error)?;
    if let Some(h) = existing.and_then(|h| h.call) {
        return Ok(Ok(h.legs));
    }
    let mut ops = Vec::new();
    let stored = balance(core, customer)?;
    let outcome = with_held(core, |m| {
        let held = m.entry(customer.i_customer).or_default();
        purge(customer.i_customer, now, held, &mut ops);
        if customer.blocked {
            return Err(Refusal::Blocked);
        }
        if customer.max_sessions > 0 && held.calls >= customer.max_sessions {
            return Err(Refusal::Sessions);
        }
        let available = stored
            .saturating_add(customer.credit_limit)
            .saturating_sub(held.total);
        let mut most = 0;
        let mut longest = 0u32;
        let mut kept = Vec::with_capacity(offered.len());
        for mut leg in offered {
            let r = leg.rating;
            let Some(ct) = r.credit_time(available, cap) else {
                continue;
            };
            leg.credit_time = ct;
            most = most.max(r.cost(u64::from(ct)));
            longest = longest.max(ct.saturating_add(leg.expires));
            kept.push(leg);
        }
        if kept.is_empty() {
            return Err(Refusal::Funds);
        }
        let waits: u64 = kept.iter().map(|l| u64::from(l.expires)).sum();
        call.legs = kept.clone();
        let hold = Hold {
            i_customer: customer.i_customer,
            i_account,
            amount: most,
            expires: now + (i64::from(longest) + waits as i64 + HOLD_MARGIN_SECS) * 1_000_000,
            created: now,
            call: Some(call),
            sms: None,
        };
        let value = serde_json::to_vec(&hold).unwrap_or_default();
        held.add(key.clone(), &hold);
        ops.push(Op::Put {
            table: tables::HOLD,
            key: key.clone(),
            value,
        });
        Ok(kept)
    });
    ops.extend(locator.filter(|_| outcome.is_ok()));
    match commit_now(core, &ops) {
        Ok(wait) => wait.await.map_err(store_error)?,
        Err(e) => {
            // Nothing was written: forget what was counted.
            if outcome.is_ok() {
                with_held(core, |m| {
                    if let Some(h) = m.get_mut(&customer.i_customer) {
                        h.remove(&key);
                    }
                });
            }
            return Err(e);
        }
    }
    Ok(outcome)
}

/// Seconds a reservation outlives its longest possible use.
const HOLD_MARGIN_SECS: i64 = 300;

fn commit_now(core: &Core, ops: &[Op]) -> Result<crate::storage::store::Durable, ApiError> {
    core.store.begin_commit(ops).map_err(store_error)
}

/// A call leg's stop, as accounted.
#[derive(Debug, Clone)]
pub struct Stop {
    pub i_nas: u64,
    /// The leg's call-id as received.
    pub call_id: String,
    /// Its base (without the last `-b2b_N`).
    pub base: String,
    /// 0 for the caller's own leg (`call_origin=answer`).
    pub leg: u32,
    pub duration: u64,
    pub disconnect_code: u64,
    pub setup_time: Option<i64>,
    pub connect_time: Option<i64>,
    pub disconnect_time: Option<i64>,
    pub client_remote_ip: String,
}

/// What accounting a stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounted {
    /// Billed (or recorded) now.
    Billed,
    /// Already accounted: nothing changed.
    Repeated,
    /// No reservation for this call (never authorized, or expired).
    Unknown,
    /// The leg was never offered.
    NoSuchLeg,
}

fn billed_key(i_nas: u64, call_id: &str) -> Vec<u8> {
    let mut k = i_nas.to_be_bytes().to_vec();
    k.extend_from_slice(call_id.as_bytes());
    k
}

/// A CDR, as stored and listed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cdr {
    pub i_cdr: u64,
    pub i_customer: u64,
    pub i_account: u64,
    pub i_nas: u64,
    pub call_id: String,
    pub call_origin: String,
    pub leg: u32,
    pub i_purchased_route: u64,
    pub i_connection: u64,
    pub i_vendor: u64,
    pub i_rate: u64,
    pub cli: String,
    pub cld: String,
    pub cld_out: String,
    pub billing_prefix: String,
    pub billing_price_1: String,
    pub billing_price_n: String,
    pub billing_interval_1: u32,
    pub billing_interval_n: u32,
    pub connect_fee: String,
    pub setup_time: Option<String>,
    pub connect_time: Option<String>,
    pub disconnect_time: Option<String>,
    pub duration: u64,
    pub billed_duration: u64,
    pub customer_amount: String,
    pub disconnect_code: u64,
    pub client_remote_ip: String,
    /// When it was recorded (Unix seconds).
    pub recorded: i64,
}

/// Accounts a call leg's stop: bills it once (a repeated stop changes
/// nothing), records its CDR, and releases the call's reservation once
/// its last attempted leg has reported (a connected leg is the last; a
/// failed last route is too). Durable before it returns.
pub async fn settle_call(
    core: &Core,
    customer: &Customer,
    stop: Stop,
    now: i64,
) -> Result<Accounted, ApiError> {
    let billed = billed_key(stop.i_nas, &stop.call_id);
    let key = call_key(stop.i_nas, &stop.base);
    // What this core holds may not be durable yet: a retry must not be
    // told "repeated" of a leg a crash could still lose.
    core.store
        .read_durable(tables::BILLED, &billed, |_| ())
        .await
        .map_err(store_error)?;
    if core
        .store
        .read(tables::BILLED, &billed, |v| v.is_some())
        .map_err(store_error)?
    {
        return Ok(Accounted::Repeated);
    }
    let Some(mut hold) = stored_hold(core, &key)? else {
        return Ok(Accounted::Unknown);
    };
    let Some(call) = hold.call.as_mut() else {
        return Ok(Accounted::Unknown);
    };
    let leg = match stop.leg {
        0 => None,
        n => match call.legs.get(n as usize - 1) {
            Some(l) => Some(l.clone()),
            None => return Ok(Accounted::NoSuchLeg),
        },
    };
    let (cost, billed_seconds) = leg.as_ref().map_or((0, 0), |l| {
        let r = l.rating;
        (r.cost(stop.duration), r.billed_seconds(stop.duration))
    });
    let (i_cdr, counter) = ids::next(core, tables::META_CDR_NEXT).map_err(store_error)?;
    let none = Leg {
        i_route: 0,
        i_connection: 0,
        i_vendor: 0,
        i_rate: 0,
        billing_prefix: String::new(),
        cld_out: String::new(),
        rating: Rating::default(),
        expires: 0,
        credit_time: 0,
        commission: 0,
    };
    let l = leg.as_ref().unwrap_or(&none);
    let fmt_time = |t: Option<i64>| t.map(crate::domain::tcxc::format_time);
    let cdr = Cdr {
        i_cdr,
        i_customer: customer.i_customer,
        i_account: hold.i_account,
        i_nas: stop.i_nas,
        call_id: stop.call_id.clone(),
        call_origin: if stop.leg == 0 { "answer" } else { "originate" }.into(),
        leg: stop.leg,
        i_purchased_route: l.i_route,
        i_connection: l.i_connection,
        i_vendor: l.i_vendor,
        i_rate: l.i_rate,
        cli: call.cli.clone(),
        cld: call.cld.clone(),
        cld_out: l.cld_out.clone(),
        billing_prefix: l.billing_prefix.clone(),
        billing_price_1: money::format6(l.rating.price_1),
        billing_price_n: money::format6(l.rating.price_n),
        billing_interval_1: l.rating.interval_1,
        billing_interval_n: l.rating.interval_n,
        connect_fee: money::format6(l.rating.connect_fee),
        setup_time: fmt_time(stop.setup_time),
        connect_time: fmt_time(stop.connect_time),
        disconnect_time: fmt_time(stop.disconnect_time),
        duration: stop.duration,
        billed_duration: billed_seconds,
        customer_amount: money::format6(cost),
        disconnect_code: stop.disconnect_code,
        client_remote_ip: stop.client_remote_ip.clone(),
        recorded: now / 1_000_000,
    };
    let mut ops = vec![
        Op::Put {
            table: tables::CDR,
            key: i_cdr.to_be_bytes().to_vec(),
            value: serde_json::to_vec(&cdr).unwrap_or_default(),
        },
        ids::persist(core, tables::META_CDR_NEXT, counter),
        Op::Put {
            table: tables::BILLED,
            key: billed,
            value: i_cdr.to_be_bytes().to_vec(),
        },
    ];
    if cost != 0 {
        let b = balance(core, customer)?.saturating_sub(cost);
        ops.push(put_balance(customer.i_customer, b));
    }
    call.reported.push(stop.leg);
    let last = stop.leg == 0 || stop.duration > 0 || stop.leg as usize >= call.legs.len();
    if last {
        ops.push(Op::Delete {
            table: tables::HOLD,
            key: key.clone(),
        });
    } else {
        ops.push(Op::Put {
            table: tables::HOLD,
            key: key.clone(),
            value: serde_json::to_vec(&hold).unwrap_or_default(),
        });
    }
    let wait = commit_now(core, &ops)?;
    if last {
        with_held(core, |m| {
            if let Some(h) = m.get_mut(&customer.i_customer) {
                h.remove(&key);
            }
        });
    }
    wait.await.map_err(store_error)?;
    Ok(Accounted::Billed)
}

/// Marks the leg that connected (`aaa_accounting_start`); unknown calls
/// and repeated starts change nothing.
pub async fn start_call(core: &Core, i_nas: u64, base: &str, leg: u32) -> Result<(), ApiError> {
    let key = call_key(i_nas, base);
    let Some(mut hold) = stored_hold(core, &key)? else {
        return Ok(());
    };
    let Some(call) = hold.call.as_mut() else {
        return Ok(());
    };
    if call.connected == Some(leg) || leg as usize > call.legs.len() {
        return Ok(());
    }
    call.connected = Some(leg);
    let value = serde_json::to_vec(&hold).unwrap_or_default();
    durable(
        core,
        &[Op::Put {
            table: tables::HOLD,
            key,
            value,
        }],
    )
    .await
}

/// A balance change, as audited.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceChange {
    pub i_entry: u64,
    pub i_customer: u64,
    pub amount: String,
    pub balance: String,
    pub reason: String,
    pub operation_id: Option<String>,
    pub timestamp: String,
}

/// Adds `amount` (negative: takes) to the balance, audited.
pub async fn adjust(
    core: &Core,
    customer: &Customer,
    amount: Micros,
    reason: String,
    operation_id: Option<String>,
    now_secs: u64,
) -> Result<BalanceChange, ApiError> {
    let after = balance(core, customer)?
        .checked_add(amount)
        .filter(|b| b.abs() <= money::MAX)
        .ok_or_else(|| ApiError::bad_request("amount: the balance would be out of range"))?;
    let (i_entry, counter) = ids::next(core, tables::META_BALANCE_LOG_NEXT).map_err(store_error)?;
    let change = BalanceChange {
        i_entry,
        i_customer: customer.i_customer,
        amount: money::format6(amount),
        balance: money::format6(after),
        reason,
        operation_id,
        timestamp: crate::table::json::timestamp(now_secs),
    };
    let ops = [
        put_balance(customer.i_customer, after),
        Op::Put {
            table: tables::BALANCE_LOG,
            key: i_entry.to_be_bytes().to_vec(),
            value: serde_json::to_vec(&change).unwrap_or_default(),
        },
        ids::persist(core, tables::META_BALANCE_LOG_NEXT, counter),
    ];
    durable(core, &ops).await?;
    Ok(change)
}

/// Reserves message routes: each leg costs `price_1 × parts`; legs are
/// kept, in order, while the available money covers them all.
pub async fn reserve_sms(
    core: &Core,
    customer: &Customer,
    i_account: u64,
    sms: SmsHold,
    offered: Vec<(Leg, u64)>,
    now: i64,
) -> Result<Result<Vec<Leg>, Refusal>, ApiError> {
    let mut ops = Vec::new();
    let mut keys = Vec::new();
    let stored = balance(core, customer)?;
    let hold_counter = ids::stored(core, tables::META_HOLD_NEXT).map_err(store_error)?;
    let outcome = with_held(core, |m| {
        let held = m.entry(customer.i_customer).or_default();
        purge(customer.i_customer, now, held, &mut ops);
        if customer.blocked {
            return Err(Refusal::Blocked);
        }
        let mut available = stored
            .saturating_add(customer.credit_limit)
            .saturating_sub(held.total);
        let mut kept = Vec::new();
        for (leg, timeout) in offered {
            let amount = leg
                .rating
                .price_1
                .saturating_mul(i64::from(leg.credit_time));
            if amount > available {
                continue;
            }
            available -= amount;
            let (n, counter) = ids::next_after(core, tables::META_HOLD_NEXT, hold_counter);
            let mut key = sms_prefix(&sms.session_id);
            key.extend_from_slice(&n.to_be_bytes());
            let hold = Hold {
                i_customer: customer.i_customer,
                i_account,
                amount,
                expires: now
                    + (i64::try_from(timeout).unwrap_or(i64::MAX / 4_000_000) + HOLD_MARGIN_SECS)
                        * 1_000_000,
                created: now,
                call: None,
                sms: Some(SmsHold {
                    leg: Some(leg.clone()),
                    ..sms.clone()
                }),
            };
            held.add(key.clone(), &hold);
            ops.push(Op::Put {
                table: tables::HOLD,
                key: key.clone(),
                value: serde_json::to_vec(&hold).unwrap_or_default(),
            });
            ops.push(ids::persist(core, tables::META_HOLD_NEXT, counter));
            keys.push(key);
            kept.push(leg);
        }
        if kept.is_empty() {
            return Err(Refusal::Funds);
        }
        Ok(kept)
    });
    match commit_now(core, &ops) {
        Ok(wait) => wait.await.map_err(store_error)?,
        Err(e) => {
            with_held(core, |m| {
                if let Some(h) = m.get_mut(&customer.i_customer) {
                    for k in &keys {
                        h.remove(k);
                    }
                }
            });
            return Err(e);
        }
    }
    Ok(outcome)
}

/// An SDR, as stored and listed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sdr {
    pub i_sdr: u64,
    pub i_customer: u64,
    pub i_account: u64,
    pub session_id: String,
    pub i_purchased_route: u64,
    pub i_connection: u64,
    pub i_vendor: u64,
    pub i_rate: u64,
    pub billing_prefix: String,
    pub billed_msgs_cnt: u32,
    pub price: String,
    pub smpp_commission: String,
    pub amount: String,
    pub source_addr: String,
    pub destination_addr: String,
    pub attempted: bool,
    pub sent: bool,
    pub message_id: String,
    pub error_text: String,
    pub recorded: i64,
    pub delivered: Option<i64>,
}

/// What message accounting reports of one route.
#[derive(Debug, Clone)]
pub struct SmsReport {
    pub session_id: String,
    pub destination_addr: String,
    pub i_connection: u64,
    pub i_rate: u64,
    pub price: Micros,
    pub parts: u32,
    pub attempted: bool,
    pub sent: bool,
    pub message_id: String,
    pub error_text: String,
}

fn message_key(message_id: &str, i_connection: u64) -> Vec<u8> {
    let mut k = message_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&i_connection.to_be_bytes());
    k
}

/// Settles (sent) or releases the oldest reservation of the session that
/// matches the report; no match (a repeat) changes nothing.
pub async fn settle_sms(
    core: &Core,
    customer: &Customer,
    report: SmsReport,
    now: i64,
) -> Result<Accounted, ApiError> {
    let prefix = sms_prefix(&report.session_id);
    if !report.message_id.is_empty() {
        let mk = message_key(&report.message_id, report.i_connection);
        core.store
            .read_durable(tables::MESSAGE_INDEX, &mk, |_| ())
            .await
            .map_err(store_error)?;
        if core
            .store
            .read(tables::MESSAGE_INDEX, &mk, |v| v.is_some())
            .map_err(store_error)?
        {
            return Ok(Accounted::Repeated);
        }
    }
    // The session's holds in order (oldest first), from what this core
    // holds in memory: settled ones are gone from it.
    let matches = |h: &Hold| {
        h.sms.as_ref().is_some_and(|sms| {
            sms.destination_addr == report.destination_addr
                && sms.leg.as_ref().is_some_and(|leg| {
                    leg.i_connection == report.i_connection
                        && leg.i_rate == report.i_rate
                        && leg.rating.price_1 == report.price
                        && leg.credit_time == report.parts
                })
        })
    };
    let found = with_held(core, |m| -> Result<_, ApiError> {
        let Some(held) = m.get(&customer.i_customer) else {
            return Ok(None);
        };
        for k in held
            .sms_keys
            .range(prefix.clone()..)
            .take_while(|k| k.starts_with(&prefix))
        {
            if let Some(h) = stored_hold(core, k)?.filter(|h| matches(h)) {
                return Ok(Some((k.clone(), h)));
            }
        }
        Ok(None)
    })?;
    let Some((key, hold)) = found else {
        return Ok(Accounted::Unknown);
    };
    let Some(sms) = hold.sms.as_ref() else {
        return Ok(Accounted::Unknown);
    };
    let Some(leg) = sms.leg.as_ref() else {
        return Ok(Accounted::Unknown);
    };
    let charge = report.attempted && report.sent;
    let amount = if charge { hold.amount } else { 0 };
    let (i_sdr, counter) = ids::next(core, tables::META_SDR_NEXT).map_err(store_error)?;
    let sdr = Sdr {
        i_sdr,
        i_customer: customer.i_customer,
        i_account: hold.i_account,
        session_id: report.session_id.clone(),
        i_purchased_route: leg.i_route,
        i_connection: leg.i_connection,
        i_vendor: leg.i_vendor,
        i_rate: leg.i_rate,
        billing_prefix: leg.billing_prefix.clone(),
        billed_msgs_cnt: leg.credit_time,
        price: money::format_short(leg.rating.price_1),
        smpp_commission: money::format_short(leg.commission),
        amount: money::format6(amount),
        source_addr: sms.source_addr.clone(),
        destination_addr: sms.destination_addr.clone(),
        attempted: report.attempted,
        sent: report.sent,
        message_id: report.message_id.clone(),
        error_text: report.error_text.clone(),
        recorded: now / 1_000_000,
        delivered: None,
    };
    let mut ops = vec![
        Op::Delete {
            table: tables::HOLD,
            key: key.clone(),
        },
        Op::Put {
            table: tables::SDR,
            key: i_sdr.to_be_bytes().to_vec(),
            value: serde_json::to_vec(&sdr).unwrap_or_default(),
        },
        ids::persist(core, tables::META_SDR_NEXT, counter),
    ];
    if !report.message_id.is_empty() {
        ops.push(Op::Put {
            table: tables::MESSAGE_INDEX,
            key: message_key(&report.message_id, report.i_connection),
            value: i_sdr.to_be_bytes().to_vec(),
        });
    }
    if amount != 0 {
        let b = balance(core, customer)?.saturating_sub(amount);
        ops.push(put_balance(customer.i_customer, b));
    }
    let wait = commit_now(core, &ops)?;
    with_held(core, |m| {
        if let Some(h) = m.get_mut(&customer.i_customer) {
            h.remove(&key);
        }
    });
    wait.await.map_err(store_error)?;
    Ok(Accounted::Billed)
}

/// Marks this shard's SDRs of `message_id` delivered; how many.
pub async fn delivered_here(core: &Core, message_id: &str, now: i64) -> Result<usize, ApiError> {
    let mut prefix = message_id.as_bytes().to_vec();
    prefix.push(0);
    let hits = core
        .store
        .scan_while(tables::MESSAGE_INDEX, Some(&prefix), 64, |k| {
            k.starts_with(&prefix)
        })
        .map_err(store_error)?;
    let mut ops = Vec::new();
    for (_, id) in &hits {
        let Some(mut sdr) = core
            .store
            .read(tables::SDR, id, |v| {
                v.and_then(|b| serde_json::from_slice::<Sdr>(b).ok())
            })
            .map_err(store_error)?
        else {
            continue;
        };
        if sdr.delivered.is_none() {
            sdr.delivered = Some(now / 1_000_000);
            ops.push(Op::Put {
                table: tables::SDR,
                key: id.clone(),
                value: serde_json::to_vec(&sdr).unwrap_or_default(),
            });
        }
    }
    durable(core, &ops).await?;
    Ok(hits.len())
}
