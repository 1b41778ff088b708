//! The API document and its viewer: `/swagger.json` lists every API the
//! server serves and passes an independent OpenAPI validator
//! (`openapi-spec-validator`); `/docs/` serves the Swagger UI from the
//! binary, pointed at the document.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::harness::Server;

#[test]
fn swagger_json_lists_every_api_and_is_valid_openapi() {
    let s = Server::start(&[], &[]);
    let r = s.get("/swagger.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/oam/ping", "get"),
        ("/apn", "put"),
        ("/apn/{apn_id}", "patch"),
        ("/auc/aka/vector_count/{count}/imsi/{imsi}", "get"),
        ("/oam/rollback_operation/{operation_id}", "get"),
        ("/ims_subscriber/ims_subscriber_imsi/{imsi}", "get"),
        ("/swagger.json", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    // Validated by an implementation other than the one that wrote it.
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/openapi_check.py");
    let mut child = Command::new("python3")
        .arg(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "validator: {text}");
    assert!(text.starts_with("valid "), "{text}");
}

#[test]
fn docs_serves_the_swagger_ui_pointed_at_the_document() {
    let s = Server::start(&[], &[]);
    let r = s.get("/docs");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/"));
    let page = s.get("/docs/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    assert!(html.contains("swagger-ui"), "{html}");
    // Every file the page loads is served.
    for file in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(html.contains(file), "{file} not in the page");
        let f = s.get(&format!("/docs/{file}"));
        assert_eq!(f.status, 200, "{file}");
        assert!(!f.body.is_empty(), "{file}");
    }
    let init = s.get("/docs/swagger-initializer.js").text();
    assert!(init.contains("\"url\": \"/swagger.json\""), "{init}");
    assert_eq!(s.get("/docs/no-such-file.js").status, 404);
}
