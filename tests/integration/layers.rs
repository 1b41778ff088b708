//! Keeps the layering true: `src/domain` is pure, and only `src/runtime`
//! names the executor.

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
