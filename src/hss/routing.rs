//! Subscriber → APN routing entries (PyHSS's `/subscriber/routing`), a
//! declared table: one entry per (subscriber, APN), holding the UE's static
//! IP for that APN. An entry lives on its subscriber's shard; its id names
//! that shard too. The pair is a unique key, through which the entry is
//! found and deleted; a PATCH names the entry by its id.

use serde::{Deserialize, Serialize};

use super::{apn::Apn, subscriber::Subscriber, tables};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud::{self, id_param, Deleted, Paths, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{self, exists, Home, Placement, Reference, Row, TableDef, TableError, Unique};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct Routing {
    pub subscriber_routing_id: u64,
    pub subscriber_id: u64,
    pub apn_id: u64,
    pub ip_version: i64,
    pub ip_address: Option<String>,
    pub last_modified: String,
}

static ROUTING: TableDef = TableDef {
    name: "subscriber_routing",
    noun: "routing entry",
    id_field: "subscriber_routing_id",
    store: tables::ROUTING,
    counter: tables::META_ROUTING_NEXT,
    fields: crate::table::json::fields,
};

/// The unique key of an entry: its subscriber and APN.
pub(crate) fn pair(subscriber_id: u64, apn_id: u64) -> String {
    format!("{subscriber_id}/{apn_id}")
}

fn home(r: &Routing) -> Home {
    Home::WithRow(r.subscriber_id)
}

impl Row for Routing {
    const DEF: &'static TableDef = &ROUTING;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["subscriber_id", "apn_id"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "apn_id",
        store: tables::ROUTING_KEY_INDEX,
        key: |r| Some(pair(r.subscriber_id, r.apn_id)),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[
        Reference {
            field: "subscriber_id",
            target: <Subscriber as Row>::DEF,
            ids: |r| Ok(vec![r.subscriber_id]),
            exists: exists::<Subscriber>,
            list: false,
        },
        Reference {
            field: "apn_id",
            target: <Apn as Row>::DEF,
            ids: |r| Ok(vec![r.apn_id]),
            exists: exists::<Apn>,
            list: false,
        },
    ];
    type Env = ();

    fn id(&self) -> u64 {
        self.subscriber_routing_id
    }
    fn set_id(&mut self, id: u64) {
        self.subscriber_routing_id = id;
    }
    fn blank() -> Self {
        Routing::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if !(0..=3).contains(&self.ip_version) {
            return Err(TableError::field("ip_version", "must be 0 to 3"));
        }
        if let Some(ip) = &self.ip_address {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| TableError::field("ip_address", "not an IP address"))?;
        }
        Ok(())
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        (self.subscriber_id != before.subscriber_id || self.apn_id != before.apn_id)
            .then_some("subscriber_id and apn_id")
    }
    crate::json_row!();
}

impl Resource for Routing {
    /// Created at the base, patched by id; read and deleted by (subscriber,
    /// APN) (`super::register`), never listed.
    const PATHS: Paths = Paths {
        base: "/subscriber/routing",
        list: "/subscriber/routing/list",
        item: "/subscriber/routing/{subscriber_routing_id}",
    };
}

/// The entry of (subscriber, APN) named by the path.
async fn find(ctx: &Ctx, params: &Params<'_>) -> Result<Routing, ApiError> {
    let (s, a) = (
        id_param(params, "subscriber_id")?,
        id_param(params, "apn_id")?,
    );
    table::find(&ctx.core, "apn_id", &pair(s, a))
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET /subscriber/routing/{subscriber_id}/{apn_id}`.
pub fn get<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let r = find(ctx, &params).await?;
        reply.json(200, &r)
    })
}

/// `DELETE /subscriber/routing/{subscriber_id}/{apn_id}`.
pub fn delete<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        let w = crud::write_of(ctx, &req)?;
        let r = find(ctx, &params).await?;
        ctx.tables
            .delete::<Routing>(&ctx.core, r.subscriber_routing_id, &w)
            .await?;
        reply.json(200, &Deleted::OK)
    })
}
