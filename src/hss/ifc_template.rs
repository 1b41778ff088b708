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

/// The IMS subscription of an IMS subscriber without a template.
pub const DEFAULT_TEMPLATE: &str = include_str!("templates/default_ifc.xml");

/// Why a template could not give an IMS subscription.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the template does not render: {0}")]
    Render(String),
    #[error("the rendered User-Data is not well-formed XML: {0}")]
    Xml(String),
    #[error("the rendered User-Data is not an IMSSubscription (TS 29.228 Annex D): {0}")]
    Shape(&'static str),
}

/// Renders `template` (Jinja2) with `vars` as `iFC_vars`, as PyHSS does.
/// A value is written XML-escaped unless the template marks it `safe`.
/// The result must be a well-formed IMSSubscription: a PrivateID and at
/// least one ServiceProfile, each with a PublicIdentity naming an
/// Identity.
pub fn render(template: &str, vars: &serde_json::Value) -> Result<String, RenderError> {
    let mut env = minijinja::Environment::new();
    env.set_formatter(|out, _, value| {
        let failed = |_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write failed");
        if value.is_safe() {
            return write!(out, "{value}").map_err(failed);
        }
        let text = value.to_string();
        for c in text.chars() {
            match c {
                '&' => out.write_str("&amp;"),
                '<' => out.write_str("&lt;"),
                '>' => out.write_str("&gt;"),
                '"' => out.write_str("&quot;"),
                '\'' => out.write_str("&apos;"),
                c => write!(out, "{c}"),
            }
            .map_err(failed)?;
        }
        Ok(())
    });
    let xml = env
        .render_str(
            template,
            minijinja::context! { iFC_vars => minijinja::value::Serde(vars) },
        )
        .map_err(|e| RenderError::Render(e.to_string()))?;
    check_subscription(&xml)?;
    Ok(xml)
}

/// The child elements of `n` named `name`.
fn children<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.has_tag_name(name))
}

/// Whether `xml` is an IMSSubscription of TS 29.228 Annex D's shape.
fn check_subscription(xml: &str) -> Result<(), RenderError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| RenderError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if !root.has_tag_name("IMSSubscription") {
        return Err(RenderError::Shape(
            "the root element must be IMSSubscription",
        ));
    }
    let filled = |n: roxmltree::Node<'_, '_>| n.text().is_some_and(|t| !t.trim().is_empty());
    if !children(root, "PrivateID").any(filled) {
        return Err(RenderError::Shape("no PrivateID"));
    }
    let mut profiles = children(root, "ServiceProfile").peekable();
    if profiles.peek().is_none() {
        return Err(RenderError::Shape("no ServiceProfile"));
    }
    for p in profiles {
        let mut ids = children(p, "PublicIdentity").peekable();
        if ids.peek().is_none() {
            return Err(RenderError::Shape(
                "a ServiceProfile without a PublicIdentity",
            ));
        }
        if !ids.all(|i| children(i, "Identity").any(filled)) {
            return Err(RenderError::Shape("a PublicIdentity without an Identity"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> serde_json::Value {
        serde_json::json!({"imsi": "001010000000001", "msisdn": "1234", "mcc": "001", "mnc": "001"})
    }

    #[test]
    fn the_default_template_renders_an_ims_subscription() {
        let xml = render(DEFAULT_TEMPLATE, &vars()).unwrap();
        assert!(xml
            .contains("<PrivateID>001010000000001@ims.mnc001.mcc001.3gppnetwork.org</PrivateID>"));
        assert!(xml.contains("<Identity>tel:1234</Identity>"));
    }

    #[test]
    fn values_are_escaped_and_a_broken_result_is_refused() {
        let t = "<IMSSubscription><PrivateID>{{ iFC_vars.imsi }}</PrivateID><ServiceProfile>\
                 <PublicIdentity><Identity>sip:{{ iFC_vars.msisdn }}</Identity></PublicIdentity>\
                 </ServiceProfile></IMSSubscription>";
        let v = serde_json::json!({"imsi": "1", "msisdn": "a<b&c"});
        assert!(render(t, &v).unwrap().contains("sip:a&lt;b&amp;c"));
        let unsafe_ = t.replace("iFC_vars.msisdn", "iFC_vars.msisdn|safe");
        assert!(matches!(render(&unsafe_, &v), Err(RenderError::Xml(_))));
        let no_profile = "<IMSSubscription><PrivateID>x</PrivateID></IMSSubscription>";
        assert!(matches!(render(no_profile, &v), Err(RenderError::Shape(_))));
        let wrong_root = "<Subscription/>";
        assert!(matches!(render(wrong_root, &v), Err(RenderError::Shape(_))));
        assert!(matches!(
            render("{{ broken", &v),
            Err(RenderError::Render(_))
        ));
    }
}
