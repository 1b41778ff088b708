//! Subscriber attributes (PyHSS's `/subscriber_attributes`): key/value
//! pairs attached to a subscriber, kept on the subscriber's shard with an
//! index by subscriber in the same commit, so a subscriber's reads by IMSI
//! and MSISDN carry them.

use serde::{Deserialize, Serialize};

use super::{subscriber::Subscriber, tables};
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::{Core, LocalBoxFuture};
use crate::server::crud::{id_param, Paths, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{
    self, exists, owner_of, Home, Multi, Placement, Reference, Row, TableDef, TableError,
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct SubscriberAttribute {
    pub subscriber_attributes_id: u64,
    pub subscriber_id: u64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub last_modified: String,
}

/// Longest key and value (PyHSS's columns).
pub const MAX_KEY: usize = 60;
pub const MAX_VALUE: usize = 12_000;

static SUBSCRIBER_ATTRIBUTES: TableDef = TableDef {
    name: "subscriber_attributes",
    noun: "subscriber attribute",
    id_field: "subscriber_attributes_id",
    store: tables::SUB_ATTRIBUTES,
    counter: tables::META_SUB_ATTRIBUTES_NEXT,
    fields: crate::table::json::fields,
};

fn home(a: &SubscriberAttribute) -> Home {
    Home::WithRow(a.subscriber_id)
}

impl Row for SubscriberAttribute {
    const DEF: &'static TableDef = &SUBSCRIBER_ATTRIBUTES;
    const PLACEMENT: Placement<Self> = Placement::Sharded(home);
    const REQUIRED: &'static [&'static str] = &["subscriber_id"];
    const MULTI: &'static [Multi<Self>] = &[Multi {
        field: "subscriber_id",
        store: tables::SUB_ATTRIBUTES_BY_SUBSCRIBER,
        key: |a| Some(a.subscriber_id.to_string()),
    }];
    const REFERENCES: &'static [Reference<Self>] = &[Reference {
        field: "subscriber_id",
        target: <Subscriber as Row>::DEF,
        ids: |a| Ok(vec![a.subscriber_id]),
        exists: exists::<Subscriber>,
        list: false,
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.subscriber_attributes_id
    }
    fn set_id(&mut self, id: u64) {
        self.subscriber_attributes_id = id;
    }
    fn blank() -> Self {
        SubscriberAttribute::default()
    }
    fn check(&self) -> Result<(), TableError> {
        for (field, v, max) in [
            ("key", &self.key, MAX_KEY),
            ("value", &self.value, MAX_VALUE),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > max) {
                return Err(TableError::field(
                    field,
                    format!("longer than {max} characters"),
                ));
            }
        }
        Ok(())
    }
    fn fixed(&self, before: &Self) -> Option<&'static str> {
        (self.subscriber_id != before.subscriber_id).then_some("subscriber_id")
    }
    crate::json_row!();
}

impl Resource for SubscriberAttribute {
    /// Read per subscriber (`GET /subscriber_attributes/{subscriber_id}`);
    /// patched and deleted by the attribute's own id.
    const PATHS: Paths = Paths {
        base: "/subscriber_attributes",
        list: "/subscriber_attributes/list",
        item: "/subscriber_attributes/{subscriber_attributes_id}",
    };
}

/// The attributes of subscriber `subscriber_id`, in id order.
pub async fn of(core: &Core, subscriber_id: u64) -> Result<Vec<SubscriberAttribute>, ApiError> {
    let shard = owner_of(subscriber_id, core.shards());
    let key = subscriber_id.to_string();
    Ok(table::find_all_on(core, shard, "subscriber_id", &key).await?)
}

/// `GET /subscriber_attributes/{subscriber_id}`.
pub fn get_for_subscriber<'a>(
    ctx: &'a Ctx,
    _: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        let id = id_param(&params, "subscriber_id")?;
        let attributes = of(&ctx.core, id).await?;
        reply.json(200, &attributes)
    })
}
