//! The API document: `GET /swagger.json` is an OpenAPI 3.1 document of
//! every route the server registered (all its APIs), built from the
//! routing table itself and the schemas the routes' own types derive
//! (`utoipa::ToSchema`), so it cannot drift from what is served.
//! `GET /docs/` is the Swagger UI rendering it, its files packaged in the
//! binary.

use std::sync::{Arc, OnceLock};

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder,
    PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
};

use super::{Ctx, Reply, Routes};
use crate::domain::api_error::{Api, ApiError};
use crate::domain::http1::{Method, Request};
use crate::domain::router::{Params, RouteInfo};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/swagger.json";

fn http_method(m: Method) -> Option<HttpMethod> {
    Some(match m {
        Method::Get => HttpMethod::Get,
        Method::Head => HttpMethod::Head,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
        Method::Options => HttpMethod::Options,
        Method::Other => return None,
    })
}

fn api_name(api: Api) -> &'static str {
    match api {
        Api::Pyhss => "HSS (PyHSS API)",
        Api::Stir => "STIR/SHAKEN (ATIS-1000082)",
        Api::Aaa => "Carrier AAA (TCXC)",
        Api::Sim => "SIM authentication (sim-rest-server)",
        Api::Server => "Server",
    }
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn query(name: &str, what: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(what))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String),
        ))
        .build()
}

/// The operation of one route.
fn operation(r: &RouteInfo<'_>) -> utoipa::openapi::path::Operation {
    let tag = r
        .pattern
        .split('/')
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .unwrap_or("server");
    let mut op = OperationBuilder::new()
        .tag(tag)
        .summary(Some(format!("{} {}", r.method.as_str(), r.pattern)))
        .description(Some(format!("{}.", api_name(r.api))))
        .operation_id(Some(format!("{} {}", r.method.as_str(), r.pattern)));
    for p in &r.params {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*p)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::Type::String),
                )),
        );
    }
    let writes = matches!(r.method, Method::Put | Method::Patch | Method::Delete);
    if r.api == Api::Pyhss && writes {
        op = op.parameter(query(
            "operation_id",
            "Groups writes in the operation log, to roll back as one",
        ));
    }
    if r.doc.many {
        op = op
            .parameter(query("page", "Page number, from 0"))
            .parameter(query("page_size", "Items per page"));
    }
    if let Some(body) = &r.doc.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_content(reference(body)))
                .required(Some(Required::True))
                .build(),
        ));
    }
    let ok = ResponseBuilder::new().description("Success");
    let ok = match &r.doc.answer {
        Some(a) if r.doc.many => ok.content(
            "application/json",
            json_content(RefOr::T(Schema::Array(
                ArrayBuilder::new().items(reference(a)).build(),
            ))),
        ),
        Some(a) => ok.content("application/json", json_content(reference(a))),
        None => ok,
    };
    op.response("200", ok.build())
        .response(
            "default",
            ResponseBuilder::new()
                .description(format!("An error, in the {} error shape", api_name(r.api)))
                .build(),
        )
        .build()
}

/// The OpenAPI document of `routes`.
pub fn document(routes: &Routes) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for r in routes.each() {
        let Some(m) = http_method(r.method) else {
            continue;
        };
        paths = paths.path(r.pattern.clone(), PathItem::new(m, operation(&r)));
    }
    let mut components = ComponentsBuilder::new();
    for (name, schema) in routes.schemas() {
        if let Ok(s) = serde_json::from_value::<RefOr<Schema>>(schema.clone()) {
            components = components.schema(name.clone(), s);
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("authplane")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "HSS/AuC (PyHSS's API), SIM authentication over PC/SC, \
                     STIR/SHAKEN signing and verification, and carrier AAA.",
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// The document's bytes, made once per process (the routes are fixed at
/// start).
fn document_bytes(routes: &Routes) -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&document(routes)).unwrap_or_default())
}

/// `GET /swagger.json`.
pub fn swagger_json(
    ctx: &Ctx,
    _: &mut Request<'_>,
    _: &Params<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), ApiError> {
    let bytes = document_bytes(&ctx.routes);
    reply.with_body(200, "application/json", |out| out.extend_from_slice(bytes));
    Ok(())
}

/// `GET /docs/` and `GET /docs/{file}`: the Swagger UI.
pub fn docs(
    _: &Ctx,
    req: &mut Request<'_>,
    params: &Params<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), ApiError> {
    if req.path == "/docs" {
        // The page's files are named relative to `/docs/`.
        return reply.json_with(301, "/docs/", &[("Location", "/docs/")]);
    }
    let file = params.get("file").unwrap_or("index.html");
    let config = Arc::new(utoipa_swagger_ui::Config::new([DOCUMENT_PATH]));
    match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(f)) => {
            reply.with_body(200, &f.content_type, |out| out.extend_from_slice(&f.bytes));
            Ok(())
        }
        Ok(None) => Err(ApiError::NotFound),
        Err(e) => Err(ApiError::Internal(format!("Swagger UI: {e}"))),
    }
}
