//! The carrier AAA: the TCXC AAA API (seed `tcxc-aaa-api.txt`). NAS
//! clients authenticate every request by login, password and source
//! address; SIP callers are authenticated (digest or by address) and
//! authorized with least-cost routes in sippy b2bua's format and a credit
//! time their balance pays for; calls are rated per leg in integer
//! micro-units; SMPP binds are authenticated, messages routed with one
//! reservation per route and settled by accounting. Every AAA outcome is
//! HTTP 200 with `status` accept, failed or error.
//!
//! Money never overspends: a customer's balance and reservations live on
//! one shard (the hash of its id), and every reservation, debit and CDR is
//! made there, atomically, and durable before the answer.

pub mod admin;
pub mod form;
pub mod import;
pub mod nas;
pub mod rows;
pub mod sms;
pub mod voice;
pub mod wallet;

use crate::domain::api_error::Api;
use crate::domain::http1::Method;
use crate::domain::router::RouteError;
use crate::server::crud;
use crate::server::{Handler, Routes};
use crate::table::{DeclareError, Tables};

/// The AAA's storage tables.
pub mod tables {
    use crate::storage::TableId;

    /// Catalog: i_nas → NAS (JSON).
    pub const NAS: TableId = 40;
    /// Catalog: nas_login → i_nas.
    pub const NAS_LOGIN_INDEX: TableId = 41;
    /// Catalog: i_customer → customer (JSON).
    pub const CUSTOMER: TableId = 42;
    /// Catalog: i_account → account (JSON).
    pub const ACCOUNT: TableId = 43;
    /// Catalog: "auth_type:username" → i_account.
    pub const ACCOUNT_USER_INDEX: TableId = 44;
    /// Catalog: i_tariff → tariff (JSON).
    pub const TARIFF: TableId = 45;
    /// Catalog: i_rate → rate (JSON).
    pub const RATE: TableId = 46;
    /// Catalog: "i_tariff/prefix" → i_rate.
    pub const RATE_PREFIX_INDEX: TableId = 47;
    /// Catalog: i_vendor → vendor (JSON).
    pub const VENDOR: TableId = 48;
    /// Catalog: i_connection → connection (JSON).
    pub const CONNECTION: TableId = 49;
    /// Catalog: i_route → route (JSON).
    pub const ROUTE: TableId = 50;
    /// Catalog: i_customer ‖ i_route → ().
    pub const ROUTE_CUSTOMER_INDEX: TableId = 51;

    /// Shard of the customer: i_customer → balance (i64 BE micro-units);
    /// absent: the customer's opening balance.
    pub const WALLET: TableId = 40;
    /// Shard of the customer: a reservation (JSON): "v" ‖ i_nas ‖ call-id
    /// base for a call, "s" ‖ session ‖ "/" ‖ n for a message route.
    pub const HOLD: TableId = 41;
    /// Shard of the customer: i_nas ‖ call-id of a leg → i_cdr (a leg
    /// billed once).
    pub const BILLED: TableId = 42;
    /// Shard of the customer: i_cdr → CDR (JSON).
    pub const CDR: TableId = 43;
    /// Shard of the call (hash of i_nas ‖ call-id base): → i_customer.
    pub const CALL_LOCATOR: TableId = 44;
    /// Shard of the customer (the token is drawn to hash there):
    /// session_id → SMPP session (JSON).
    pub const SMPP_SESSION: TableId = 45;
    /// Shard of the customer: i_sdr → SDR (JSON).
    pub const SDR: TableId = 46;
    /// Shard of the customer: message_id ‖ 0 ‖ i_connection → i_sdr.
    pub const MESSAGE_INDEX: TableId = 47;
    /// Shard of the customer: i_entry → balance change (JSON), the audit
    /// of `PUT /aaa/customer/{i_customer}/balance`.
    pub const BALANCE_LOG: TableId = 48;

    pub const META_CDR_NEXT: &[u8] = b"aaa_cdr_next";
    pub const META_SDR_NEXT: &[u8] = b"aaa_sdr_next";
    pub const META_HOLD_NEXT: &[u8] = b"aaa_hold_next";
    pub const META_BALANCE_LOG_NEXT: &[u8] = b"aaa_balance_log_next";
}

/// Declares every table of the AAA.
pub fn declare(t: &mut Tables) -> Result<(), DeclareError> {
    t.declare::<rows::Nas>()?
        .declare::<rows::Customer>()?
        .declare::<rows::Account>()?
        .declare::<rows::Tariff>()?
        .declare::<rows::Rate>()?
        .declare::<rows::Vendor>()?
        .declare::<rows::Connection>()?
        .declare::<rows::Route>()?;
    Ok(())
}

/// The nine endpoints, each with and without `.php`, and the
/// provisioning API.
pub fn register(r: &mut Routes) -> Result<(), RouteError> {
    use Handler::Async;
    let a = Api::Aaa;
    let endpoints: [(&str, &str, crate::server::AsyncHandler); 9] = [
        (
            "/aaa_authenticate",
            "/aaa_authenticate.php",
            voice::authenticate,
        ),
        ("/aaa_authorize", "/aaa_authorize.php", voice::authorize),
        (
            "/aaa_accounting_start",
            "/aaa_accounting_start.php",
            voice::accounting_start,
        ),
        (
            "/aaa_accounting_stop",
            "/aaa_accounting_stop.php",
            voice::accounting_stop,
        ),
        ("/aaa_bind", "/aaa_bind.php", sms::bind),
        ("/aaa_unbind", "/aaa_unbind.php", sms::unbind),
        (
            "/aaa_smpp_authorize",
            "/aaa_smpp_authorize.php",
            sms::authorize,
        ),
        (
            "/aaa_smpp_accounting",
            "/aaa_smpp_accounting.php",
            sms::accounting,
        ),
        (
            "/aaa_smpp_delivered",
            "/aaa_smpp_delivered.php",
            sms::delivered,
        ),
    ];
    for (plain, php, h) in endpoints {
        r.add(Method::Post, plain, a, Async(h))?;
        r.add(Method::Post, php, a, Async(h))?;
        r.document(Method::Post, plain, form::doc());
        r.document(Method::Post, php, form::doc());
    }
    crud::register_face::<crud::Redacted<rows::Nas>>(r)?;
    admin::register_customer(r)?;
    crud::register_face::<crud::Redacted<rows::Account>>(r)?;
    crud::register::<rows::Tariff>(r)?;
    crud::register::<rows::Rate>(r)?;
    crud::register::<rows::Vendor>(r)?;
    crud::register_face::<crud::Redacted<rows::Connection>>(r)?;
    crud::register::<rows::Route>(r)?;
    admin::register(r)
}
