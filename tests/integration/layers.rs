//! Keeps the layering true: `src/domain` is pure, only `src/runtime`
//! names the executor, and each layer names only the layers below it:
//! domain ← clock ← storage ← runtime ← table ← server ← diameter ←
//! services ← entry
//! (`main.rs` and `services.rs`, the only files that name every service).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn files(sub: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(sub);
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).expect("read"),
            )
        })
        .collect()
}

#[test]
fn domain_is_pure() {
    let forbidden = [
        "monoio",
        "glommio",
        "std::fs",
        "std::net",
        "std::thread",
        "Instant::now",
        "SystemTime::now",
        "crate::runtime",
        "crate::server",
        "crate::config",
        "crate::storage",
        "crate::table",
        "crate::clock",
        "crate::services",
        "crate::hss",
        "crate::sim",
        "crate::stir",
        "crate::oam",
        "rand::",
    ];
    let domain = files("domain");
    assert!(!domain.is_empty());
    for (path, text) in domain {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{path} uses {word}: src/domain must stay pure"
            );
        }
    }
}

#[test]
fn only_the_runtime_names_the_executor() {
    for (path, text) in files("") {
        if path.contains("/src/runtime/") {
            continue;
        }
        for word in ["monoio", "glommio", "io_uring"] {
            assert!(
                !text.contains(word),
                "{path} names {word}: only src/runtime may"
            );
        }
    }
}

/// Every service folder: only the entry level names them.
const SERVICES: [&str; 4] = ["hss", "sim", "stir", "oam"];

/// `crate::x` paths a layer may not use, and the known exceptions (file,
/// path) still to be removed.
fn forbid(layer: &str, words: &[&str], exceptions: &[(&str, &str)]) {
    let found = files(layer);
    assert!(!found.is_empty(), "no files in src/{layer}");
    for (path, text) in found {
        for word in words {
            let allowed = exceptions
                .iter()
                .any(|(file, w)| path.ends_with(file) && w == word);
            if !allowed {
                assert!(
                    !text.contains(word),
                    "{path} uses {word}: src/{layer} may not (docs/ARCHITECTURE.md, layers)"
                );
            }
        }
    }
}

fn paths(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("crate::{n}")).collect()
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    let mut above_storage = vec![
        "runtime", "server", "table", "config", "services", "diameter",
    ];
    above_storage.extend(SERVICES);
    let storage = paths(&above_storage);
    forbid(
        "storage",
        &storage.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let mut above_runtime = vec!["server", "table", "services", "diameter"];
    above_runtime.extend(SERVICES);
    let runtime = paths(&above_runtime);
    forbid(
        "runtime",
        &runtime.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let mut above_table = vec!["server", "config", "services", "diameter"];
    above_table.extend(SERVICES);
    let table = paths(&above_table);
    forbid(
        "table",
        &table.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    let mut above_server = vec!["services", "diameter"];
    above_server.extend(SERVICES);
    let server = paths(&above_server);
    forbid(
        "server",
        &server.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    // Configuration is values: it names no layer above storage (each
    // service loads what its values name).
    let mut above_config = vec!["server", "table", "services", "runtime", "diameter"];
    above_config.extend(SERVICES);
    let config = paths(&above_config);
    forbid(
        "config",
        &config.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
    // The Diameter peer layer serves the applications the services
    // register; it names none of them.
    let mut services = vec!["services"];
    services.extend(SERVICES);
    let diameter = paths(&services);
    forbid(
        "diameter",
        &diameter.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
}

#[test]
fn only_the_entry_level_names_the_services() {
    for (path, text) in files("") {
        if path.ends_with("/src/main.rs") || path.ends_with("/src/services.rs") {
            continue;
        }
        if text.contains("crate::services") {
            panic!("{path} names crate::services: only main.rs may");
        }
        for service in SERVICES {
            let own = format!("/src/{service}/");
            if path.contains(&own) {
                continue;
            }
            assert!(
                !text.contains(&format!("crate::{service}::"))
                    && !text.contains(&format!("crate::{service};")),
                "{path} names the {service} service: only the entry level may"
            );
        }
    }
}
