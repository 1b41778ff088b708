//! iFC templates (the seed's `/ifc_template`): Jinja2 XML documents of
//! Initial Filter Criteria, rendered per IMS subscriber at registration.
//! A template that does not parse as Jinja2 is refused when written, so
//! registration never meets one. Catalog: every core reads the current
//! version, so there is no cache to invalidate.

use serde::{Deserialize, Serialize};

use super::tables;
use crate::domain::api_error::ApiError;
use crate::domain::http1::Request;
use crate::domain::router::Params;
use crate::runtime::LocalBoxFuture;
use crate::server::crud::{self, Lookup, Paths, Plain, Resource};
use crate::server::{Ctx, Reply};
use crate::table::{self, Placement, Row, TableDef, TableError, Unique};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, utoipa::ToSchema)]
pub struct IfcTemplate {
    pub ifc_template_id: u64,
    pub name: String,
    pub description: Option<String>,
    /// Jinja2: the IMSSubscription XML with the subscriber's variables.
    pub template_content: String,
    pub last_modified: String,
}

/// Longest name and description.
pub const MAX_NAME: usize = 255;
/// Largest template.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

static IFC_TEMPLATE: TableDef = TableDef {
    name: "ifc_template",
    noun: "iFC template",
    id_field: "ifc_template_id",
    store: tables::IFC_TEMPLATE,
    counter: tables::META_IFC_TEMPLATE_NEXT,
    fields: crate::table::json::fields,
};

/// Whether `content` parses as a Jinja2 template (the error says where
/// not).
pub fn parse(content: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.template_from_str(content)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Row for IfcTemplate {
    const DEF: &'static TableDef = &IFC_TEMPLATE;
    const PLACEMENT: Placement<Self> = Placement::Catalog;
    const REQUIRED: &'static [&'static str] = &["name", "template_content"];
    const UNIQUE: &'static [Unique<Self>] = &[Unique {
        field: "name",
        store: tables::IFC_NAME_INDEX,
        key: |t| Some(t.name.clone()),
    }];
    type Env = ();

    fn id(&self) -> u64 {
        self.ifc_template_id
    }
    fn set_id(&mut self, id: u64) {
        self.ifc_template_id = id;
    }
    fn blank() -> Self {
        IfcTemplate::default()
    }
    fn check(&self) -> Result<(), TableError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME {
            return Err(TableError::field(
                "name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.len() > MAX_NAME)
        {
            return Err(TableError::field(
                "description",
                format!("longer than {MAX_NAME} characters"),
            ));
        }
        if self.template_content.len() > MAX_TEMPLATE_BYTES {
            return Err(TableError::field(
                "template_content",
                format!("larger than {MAX_TEMPLATE_BYTES} bytes"),
            ));
        }
        parse(&self.template_content).map_err(|e| {
            TableError::field("template_content", format!("not a Jinja2 template: {e}"))
        })
    }
    crate::json_row!();
}

impl Resource for IfcTemplate {
    const PATHS: Paths = Paths {
        base: "/ifc_template",
        list: "/ifc_template/list",
        item: "/ifc_template/{ifc_template_id}",
    };
}

/// `GET /ifc_template/name/{template_name}`.
#[derive(Debug)]
pub struct ByName;

impl Lookup for ByName {
    type Face = Plain<IfcTemplate>;
    const FIELD: &'static str = "name";
    const PARAM: &'static str = "template_name";
    fn key(raw: &str) -> Result<String, ApiError> {
        Ok(raw.to_owned())
    }
}

/// `POST /ifc_template/cache/invalidate[/{ifc_template_id}]`: templates
/// are read from the current catalog version on every core, so nothing is
/// cached; answers success (404 for a template that does not exist).
pub fn invalidate<'a>(
    ctx: &'a Ctx,
    req: Request<'a>,
    params: Params<'a>,
    reply: &'a mut Reply<'_>,
) -> LocalBoxFuture<'a, Result<(), ApiError>> {
    Box::pin(async move {
        crud::provisioning(ctx, &req)?;
        if params.get("ifc_template_id").is_some() {
            let id = crud::id_param(&params, "ifc_template_id")?;
            let t: Option<IfcTemplate> = table::get(&ctx.core, id).await?;
            t.ok_or(ApiError::NotFound)?;
        }
        #[derive(Serialize)]
        struct Done {
            result: &'static str,
        }
        reply.json(200, &Done { result: "OK" })
    })
}
