//! The AAA's provisioned tables, all in the catalog (read lock-free by
//! every core on the request path): NAS clients, customers, accounts,
//! tariffs and their rates, vendors, vendor connections and the routes a
//! customer bought. Money fields are decimal strings with six places,
//! held as integer micro-units. Passwords are stored, never answered.

use serde::{Deserialize, Serialize};

use super::tables;
use crate::domain::money::{self, Micros};
use crate::domain::tcxc::{route_safe, Cidr};
use crate::server::crud::{Paths, Resource, Secret};
use crate::table::{exists, Multi, Placement, Reference, Row, TableDef, TableError, Unique};

fn bad<T>(field: &str, reason: &str) -> Result<T, TableError> {
    Err(TableError::field(field, reason))
}

fn name(field: &str, v: &str) -> Result<(), TableError> {
    if v.is_empty() || v.len() > 128 {
        return bad(field, "must be 1 to 128 characters");
    }
    Ok(())
}

/// A credential a route string carries: no `;`, `@`, `=`, `:` in a login.
fn credential(field: &str, v: &Option<String>, login: bool) -> Result<(), TableError> {
    match v {
        Some(s)
            if s.is_empty() || s.len() > 128 || !route_safe(s) || (login && s.contains(':')) =>
        {
            bad(
                field,
                "must be 1 to 128 characters without ; @ = spaces (or : in a login)",
            )
        }
        _ => Ok(()),
    }
}

fn addresses(field: &str, list: &[String]) -> Result<(), TableError> {
    if list.len() > 256 {
        return bad(field, "at most 256 entries");
    }
    for a in list {
        Cidr::parse(a).map_err(|e| TableError::field(field, e.to_string()))?;
    }
    Ok(())
}

fn amount(field: &str, m: Micros, negative_ok: bool) -> Result<(), TableError> {
    if (!negative_ok && m < 0) || m.abs() > money::MAX {
        return bad(field, "out of range");
    }
    Ok(())
}

/// The public fields of a stored row with secrets (for the operation log).
fn public(bytes: &[u8], secret: &[&str]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    for k in secret {
        if m.contains_key(*k) {
            m.insert(
                (*k).to_owned(),
                serde_json::Value::String("(secret)".into()),
            );
        }
    }
    Some(m)
}

macro_rules! catalog_table {
    ($ty:ident, $def:ident, $name:literal, $noun:literal, $id:literal, $store:expr, $counter:expr, $fields:expr) => {
        static $def: TableDef = TableDef {
            name: $name,
            noun: $noun,
            id_field: $id,
            store: $store,
            counter: $counter,
            fields: $fields,
        };
    };
}

/// A NAS (an API client): its login, password and the addresses it may
/// call from, per NAS type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Nas {
    pub i_nas: u64,
    pub nas_login: String,
    pub nas_password: String,
    /// Addresses or networks allowed on the SIP endpoints.
    pub sip_ips: Vec<String>,
    /// Addresses or networks allowed on the SMPP endpoints.
    pub smpp_ips: Vec<String>,
    pub last_modified: String,
}

fn nas_fields(b: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    public(b, <Nas as Secret>::SECRET)
}

catalog_table!(
    Nas,
    NAS,
    "aaa_nas",
    "NAS",
    "i_nas",
    tables::NAS,
    b"aaa_nas_next",
    nas_fields
);

impl Row for Nas {
    const DEF: &'static TableDef = &NAS;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["nas_login", "nas_password"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "nas_login",
        store: tables::NAS_LOGIN_INDEX,
        key: |n| Some(n.nas_login.clone()),
    }];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_nas
    }
    fn set_id(&mut self, id: u64) {
        self.i_nas = id;
    }
    fn blank() -> Self {
        Nas::default()
    }
    fn check(&self) -> Result<(), TableError> {
        name("nas_login", &self.nas_login)?;
        if self.nas_password.is_empty() || self.nas_password.len() > 128 {
            return bad("nas_password", "must be 1 to 128 characters");
        }
        addresses("sip_ips", &self.sip_ips)?;
        addresses("smpp_ips", &self.smpp_ips)
    }
    crate::json_row!();
}

impl Resource for Nas {
    const PATHS: Paths = Paths {
        base: "/aaa/nas",
        list: "/aaa/nas/list",
        item: "/aaa/nas/{i_nas}",
    };
}
impl Secret for Nas {
    const SECRET: &'static [&'static str] = &["nas_password"];
}

/// A customer: who buys routes and pays. `balance` is the opening
/// balance here; the live one moves with accounting and
/// `PUT /aaa/customer/{i_customer}/balance`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Customer {
    pub i_customer: u64,
    pub name: String,
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "10.000000", default = "0.000000")]
    pub balance: Micros,
    /// How far below zero the balance may go.
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "0.000000", default = "0.000000")]
    pub credit_limit: Micros,
    /// Most calls in progress at once (0: no limit).
    pub max_sessions: u32,
    pub blocked: bool,
    pub last_modified: String,
}

catalog_table!(
    Customer,
    CUSTOMER,
    "aaa_customer",
    "customer",
    "i_customer",
    tables::CUSTOMER,
    b"aaa_customer_next",
    crate::table::json::fields
);

impl Row for Customer {
    const DEF: &'static TableDef = &CUSTOMER;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["name"];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_customer
    }
    fn set_id(&mut self, id: u64) {
        self.i_customer = id;
    }
    fn blank() -> Self {
        Customer::default()
    }
    fn check(&self) -> Result<(), TableError> {
        name("name", &self.name)?;
        amount("balance", self.balance, true)?;
        amount("credit_limit", self.credit_limit, false)
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        // The live balance moves through PUT …/balance, audited.
        (self.balance != before.balance).then_some("balance")
    }
    crate::json_row!();
}

impl Resource for Customer {
    const PATHS: Paths = Paths {
        base: "/aaa/customer",
        list: "/aaa/customer/list",
        item: "/aaa/customer/{i_customer}",
    };
}

/// How an account authenticates.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    /// SIP digest: the NAS gets the password to check the digest.
    #[default]
    Digest,
    /// SIP by source address (`user_name` is the caller's address).
    Ip,
    /// An SMPP system id and password (`aaa_bind`).
    Smpp,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Digest => "digest",
            AuthType::Ip => "ip",
            AuthType::Smpp => "smpp",
        }
    }
}

/// An account of a customer: a SIP user, a SIP trunk by address, or an
/// SMPP system id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Account {
    pub i_account: u64,
    pub i_customer: u64,
    pub auth_type: AuthType,
    /// Digest user name or SMPP system id (unique per auth type).
    pub username: Option<String>,
    pub password: Option<String>,
    /// IP auth: the caller's addresses or networks; SMPP: where binds may
    /// come from (empty: anywhere).
    pub ips: Vec<String>,
    /// Longest call authorized, in seconds (1 to 86400).
    pub max_credit_time: u32,
    pub blocked: bool,
    pub last_modified: String,
}

impl Default for Account {
    fn default() -> Self {
        Account {
            i_account: 0,
            i_customer: 0,
            auth_type: AuthType::Digest,
            username: None,
            password: None,
            ips: Vec::new(),
            max_credit_time: 3600,
            blocked: false,
            last_modified: String::new(),
        }
    }
}

impl Account {
    /// The unique key of an account with a user name.
    pub fn user_key(auth: AuthType, username: &str) -> String {
        format!("{}:{username}", auth.as_str())
    }
}

fn account_fields(b: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    public(b, <Account as Secret>::SECRET)
}

catalog_table!(
    Account,
    ACCOUNT,
    "aaa_account",
    "account",
    "i_account",
    tables::ACCOUNT,
    b"aaa_account_next",
    account_fields
);

impl Row for Account {
    const DEF: &'static TableDef = &ACCOUNT;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["i_customer", "auth_type"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "username",
        store: tables::ACCOUNT_USER_INDEX,
        key: |a| {
            a.username
                .as_deref()
                .map(|u| Account::user_key(a.auth_type, u))
        },
    }];
    const REFERENCES: &'static [Reference<Self>] = &[Reference {
        field: "i_customer",
        target: <Customer as Row>::DEF,
        ids: |a| Ok(vec![a.i_customer]),
        exists: exists::<Customer>,
        list: false,
    }];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_account
    }
    fn set_id(&mut self, id: u64) {
        self.i_account = id;
    }
    fn blank() -> Self {
        Account::default()
    }
    fn check(&self) -> Result<(), TableError> {
        credential("username", &self.username, true)?;
        credential("password", &self.password, false)?;
        addresses("ips", &self.ips)?;
        match self.auth_type {
            AuthType::Digest | AuthType::Smpp
                if self.username.is_none() || self.password.is_none() =>
            {
                return bad(
                    "username",
                    "a digest or SMPP account needs username and password",
                );
            }
            AuthType::Ip if self.ips.is_empty() => {
                return bad("ips", "an IP account needs at least one address");
            }
            _ => {}
        }
        if !(1..=86_400).contains(&self.max_credit_time) {
            return bad("max_credit_time", "must be 1 to 86400 seconds");
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for Account {
    const PATHS: Paths = Paths {
        base: "/aaa/account",
        list: "/aaa/account/list",
        item: "/aaa/account/{i_account}",
    };
}
impl Secret for Account {
    const SECRET: &'static [&'static str] = &["password"];
}

/// What a tariff rates.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    #[default]
    Voice,
    Sms,
}

/// A tariff: a named set of rates by destination prefix.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Tariff {
    pub i_tariff: u64,
    pub name: String,
    pub service: Service,
    pub last_modified: String,
}

catalog_table!(
    Tariff,
    TARIFF,
    "aaa_tariff",
    "tariff",
    "i_tariff",
    tables::TARIFF,
    b"aaa_tariff_next",
    crate::table::json::fields
);

impl Row for Tariff {
    const DEF: &'static TableDef = &TARIFF;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["name"];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_tariff
    }
    fn set_id(&mut self, id: u64) {
        self.i_tariff = id;
    }
    fn blank() -> Self {
        Tariff::default()
    }
    fn check(&self) -> Result<(), TableError> {
        name("name", &self.name)
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        (self.service != before.service).then_some("service")
    }
    crate::json_row!();
}

impl Resource for Tariff {
    const PATHS: Paths = Paths {
        base: "/aaa/tariff",
        list: "/aaa/tariff/list",
        item: "/aaa/tariff/{i_tariff}",
    };
}

/// A rate of a tariff: the price of destinations starting with `prefix`
/// (the longest matching prefix wins). Voice prices are per minute; an
/// SMS price (`price_1`) is per message part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Rate {
    pub i_rate: u64,
    pub i_tariff: u64,
    /// Digits (1 to 32).
    pub prefix: String,
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "0.003400", default = "0.000000")]
    pub price_1: Micros,
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "0.003400", default = "0.000000")]
    pub price_n: Micros,
    pub interval_1: u32,
    pub interval_n: u32,
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "0.000000", default = "0.000000")]
    pub connect_fee: Micros,
    pub free_seconds: u32,
    pub grace_seconds: u32,
    /// Calls to this prefix are refused.
    pub forbidden: bool,
    pub last_modified: String,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            i_rate: 0,
            i_tariff: 0,
            prefix: String::new(),
            price_1: 0,
            price_n: 0,
            interval_1: 1,
            interval_n: 1,
            connect_fee: 0,
            free_seconds: 0,
            grace_seconds: 0,
            forbidden: false,
            last_modified: String::new(),
        }
    }
}

impl Rate {
    /// The unique key of a prefix in a tariff.
    pub fn key(i_tariff: u64, prefix: &str) -> String {
        format!("{i_tariff}/{prefix}")
    }

    pub fn rating(&self) -> money::Rating {
        money::Rating {
            price_1: self.price_1,
            price_n: self.price_n,
            interval_1: self.interval_1,
            interval_n: self.interval_n,
            connect_fee: self.connect_fee,
            free_seconds: self.free_seconds,
            grace_seconds: self.grace_seconds,
        }
    }
}

catalog_table!(
    Rate,
    RATE,
    "aaa_rate",
    "rate",
    "i_rate",
    tables::RATE,
    b"aaa_rate_next",
    crate::table::json::fields
);

/// Longest rate prefix.
pub const MAX_PREFIX: usize = 32;

impl Row for Rate {
    const DEF: &'static TableDef = &RATE;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["i_tariff", "prefix", "price_1"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "prefix",
        store: tables::RATE_PREFIX_INDEX,
        key: |r| Some(Rate::key(r.i_tariff, &r.prefix)),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[Reference {
        field: "i_tariff",
        target: <Tariff as Row>::DEF,
        ids: |r| Ok(vec![r.i_tariff]),
        exists: exists::<Tariff>,
        list: false,
    }];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_rate
    }
    fn set_id(&mut self, id: u64) {
        self.i_rate = id;
    }
    fn blank() -> Self {
        Rate::default()
    }
    fn apply(&mut self, body: &crate::table::Body, _: &()) -> Result<(), TableError> {
        // A rate given one price has it for every interval.
        let first_only = body.contains_key("price_1") && !body.contains_key("price_n");
        *self = crate::table::json::merge(self, body, Self::DEF)?;
        if first_only && self.price_n == 0 {
            self.price_n = self.price_1;
        }
        Ok(())
    }
    fn check(&self) -> Result<(), TableError> {
        if self.prefix.is_empty()
            || self.prefix.len() > MAX_PREFIX
            || !self.prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return bad("prefix", "must be 1 to 32 digits");
        }
        amount("price_1", self.price_1, false)?;
        amount("price_n", self.price_n, false)?;
        amount("connect_fee", self.connect_fee, false)?;
        for (f, v) in [
            ("interval_1", self.interval_1),
            ("interval_n", self.interval_n),
        ] {
            if !(1..=3600).contains(&v) {
                return bad(f, "must be 1 to 3600 seconds");
            }
        }
        Ok(())
    }
    fn stamp(&mut self, now: u64) {
        self.last_modified = crate::table::json::timestamp(now);
    }
    fn encode(&self) -> Result<Vec<u8>, TableError> {
        crate::table::json::encode(self)
    }
    fn decode(bytes: &[u8]) -> Result<Self, TableError> {
        crate::table::json::decode(bytes, Self::DEF)
    }
}

impl Resource for Rate {
    const PATHS: Paths = Paths {
        base: "/aaa/rate",
        list: "/aaa/rate/list",
        item: "/aaa/rate/{i_rate}",
    };
}

/// A vendor: the carrier behind connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Vendor {
    pub i_vendor: u64,
    pub name: String,
    pub blocked: bool,
    pub last_modified: String,
}

catalog_table!(
    Vendor,
    VENDOR,
    "aaa_vendor",
    "vendor",
    "i_vendor",
    tables::VENDOR,
    b"aaa_vendor_next",
    crate::table::json::fields
);

impl Row for Vendor {
    const DEF: &'static TableDef = &VENDOR;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["name"];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_vendor
    }
    fn set_id(&mut self, id: u64) {
        self.i_vendor = id;
    }
    fn blank() -> Self {
        Vendor::default()
    }
    fn check(&self) -> Result<(), TableError> {
        name("name", &self.name)
    }
    crate::json_row!();
}

impl Resource for Vendor {
    const PATHS: Paths = Paths {
        base: "/aaa/vendor",
        list: "/aaa/vendor/list",
        item: "/aaa/vendor/{i_vendor}",
    };
}

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Sip,
    Smpp,
}

/// A vendor's trunk (SIP) or bind (SMPP): where calls or messages go,
/// with the number rule (strip, then prefix) and the timers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Connection {
    pub i_connection: u64,
    pub i_vendor: u64,
    pub protocol: Protocol,
    /// An IP address (sippy resolves names with a blocking lookup).
    pub host: String,
    /// SIP: left out of routes when absent; SMPP: required.
    pub port: Option<u16>,
    pub login: Option<String>,
    pub password: Option<String>,
    /// Leading digits removed from the number.
    pub cld_strip: u32,
    /// Put before the number (a vendor tech prefix may end in `#`).
    pub cld_prefix: String,
    /// The vendor's tariff: what a call costs us (loss checks, ordering).
    pub i_tariff: Option<u64>,
    pub expires: u32,
    pub np_expires: u32,
    pub session_timeout: u32,
    pub smpp_ka_interval: u32,
    pub submit_sm_timeout: u32,
    pub blocked: bool,
    pub last_modified: String,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            i_connection: 0,
            i_vendor: 0,
            protocol: Protocol::Sip,
            host: String::new(),
            port: None,
            login: None,
            password: None,
            cld_strip: 0,
            cld_prefix: String::new(),
            i_tariff: None,
            expires: 60,
            np_expires: 10,
            session_timeout: 30,
            smpp_ka_interval: 0,
            submit_sm_timeout: 120,
            blocked: false,
            last_modified: String::new(),
        }
    }
}

fn connection_fields(b: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    public(b, <Connection as Secret>::SECRET)
}

catalog_table!(
    Connection,
    CONNECTION,
    "aaa_connection",
    "connection",
    "i_connection",
    tables::CONNECTION,
    b"aaa_connection_next",
    connection_fields
);

impl Row for Connection {
    const DEF: &'static TableDef = &CONNECTION;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["i_vendor", "protocol", "host"];
    const REFERENCES: &'static [Reference<Self>] = &[
        Reference {
            field: "i_vendor",
            target: <Vendor as Row>::DEF,
            ids: |c| Ok(vec![c.i_vendor]),
            exists: exists::<Vendor>,
            list: false,
        },
        Reference {
            field: "i_tariff",
            target: <Tariff as Row>::DEF,
            ids: |c| Ok(c.i_tariff.into_iter().collect()),
            exists: exists::<Tariff>,
            list: false,
        },
    ];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_connection
    }
    fn set_id(&mut self, id: u64) {
        self.i_connection = id;
    }
    fn blank() -> Self {
        Connection::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if self.host.parse::<std::net::IpAddr>().is_err() {
            return bad("host", "must be an IP address");
        }
        credential("login", &self.login, true)?;
        credential("password", &self.password, false)?;
        if self.login.is_some() != self.password.is_some() {
            return bad("login", "login and password go together");
        }
        if self.cld_prefix.len() > 32
            || !self
                .cld_prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'#' | b'*' | b'+'))
        {
            return bad("cld_prefix", "at most 32 of 0-9 # * +");
        }
        if self.cld_strip > 32 {
            return bad("cld_strip", "at most 32");
        }
        if self.expires == 0 {
            return bad("expires", "0 makes sippy skip the route");
        }
        if self.protocol == Protocol::Smpp && self.port.is_none() {
            return bad("port", "an SMPP connection needs a port");
        }
        Ok(())
    }
    crate::json_row!();
}

impl Resource for Connection {
    const PATHS: Paths = Paths {
        base: "/aaa/connection",
        list: "/aaa/connection/list",
        item: "/aaa/connection/{i_connection}",
    };
}
impl Secret for Connection {
    const SECRET: &'static [&'static str] = &["password"];
}

/// A route a customer bought: its calls or messages (with this buyer
/// tech prefix) may go out on this connection, sold at this tariff.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default)]
pub struct Route {
    pub i_route: u64,
    pub i_customer: u64,
    pub i_connection: u64,
    /// The customer's (selling) tariff on this route.
    pub i_tariff: u64,
    /// The buyer tech prefix before `#` in the number ("": none).
    pub tech_prefix: String,
    /// Lower first.
    pub priority: i64,
    /// Offer the route even when the vendor costs more than it sells.
    pub allow_loss: bool,
    /// SMS: the platform's share per message part, recorded.
    #[serde(with = "money::serde_text")]
    #[schema(value_type = String, example = "0.000000", default = "0.000000")]
    pub smpp_commission: Micros,
    pub blocked: bool,
    pub last_modified: String,
}

catalog_table!(
    Route,
    ROUTE,
    "aaa_route",
    "route",
    "i_route",
    tables::ROUTE,
    b"aaa_route_next",
    crate::table::json::fields
);

impl Row for Route {
    const DEF: &'static TableDef = &ROUTE;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const GIVEN_IDS: bool = true;
    const REQUIRED: &'static [&'static str] = &["i_customer", "i_connection", "i_tariff"];
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "i_customer",
        store: tables::ROUTE_CUSTOMER_INDEX,
        key: |r| Some(r.i_customer.to_string()),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[
        Reference {
            field: "i_customer",
            target: <Customer as Row>::DEF,
            ids: |r| Ok(vec![r.i_customer]),
            exists: exists::<Customer>,
            list: false,
        },
        Reference {
            field: "i_connection",
            target: <Connection as Row>::DEF,
            ids: |r| Ok(vec![r.i_connection]),
            exists: exists::<Connection>,
            list: false,
        },
        Reference {
            field: "i_tariff",
            target: <Tariff as Row>::DEF,
            ids: |r| Ok(vec![r.i_tariff]),
            exists: exists::<Tariff>,
            list: false,
        },
    ];
    type Env = ();
    fn id(&self) -> u64 {
        self.i_route
    }
    fn set_id(&mut self, id: u64) {
        self.i_route = id;
    }
    fn blank() -> Self {
        Route::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if self.tech_prefix.len() > 32
            || !self.tech_prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return bad("tech_prefix", "at most 32 letters or digits");
        }
        amount("smpp_commission", self.smpp_commission, false)
    }
    crate::json_row!();
}

impl Resource for Route {
    const PATHS: Paths = Paths {
        base: "/aaa/route",
        list: "/aaa/route/list",
        item: "/aaa/route/{i_route}",
    };
}
