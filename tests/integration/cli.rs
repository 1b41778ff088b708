//! The command line: version, config print, configuration errors.

use std::process::Command;

use crate::harness::{temp_dir, BIN};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run authplane");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (code, out, _) = run(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("authplane "), "{out}");
    let (code, out, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("serve") && out.contains("config"), "{out}");
}

#[test]
fn config_print_shows_the_effective_configuration() {
    let (code, out, err) = run(
        &["config", "print", "--listen", "127.0.0.1:9999"],
        &[
            ("AUTHPLANE_SERVICES__AAA", "false"),
            ("AUTHPLANE_SERVER__LISTEN", "127.0.0.1:1"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: toml::Table = toml::from_str(&out).expect("config print is TOML");
    assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9999"));
    assert_eq!(v["services"]["aaa"].as_bool(), Some(false));
    assert_eq!(v["storage"]["data_dir"].as_str(), Some("./authplane-data"));
}

#[test]
fn a_bad_value_is_refused_naming_key_and_source() {
    let (code, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("AUTHPLANE_SERVER__HEADER_TIMEOUT_MS", "soon")],
    );
    assert_ne!(code, 0);
    assert!(err.contains("server.header_timeout_ms"), "{err}");
    assert!(err.contains("AUTHPLANE_SERVER__HEADER_TIMEOUT_MS"), "{err}");
}

#[test]
fn an_unknown_key_in_a_file_is_refused_naming_the_file() {
    let dir = temp_dir("cli");
    let path = dir.join("authplane.toml");
    std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 4\n").unwrap();
    let (code, _, err) = run(&["serve", "--config", path.to_str().unwrap()], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("server.workers"), "{err}");
    assert!(err.contains("authplane.toml"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["serve", "--listen", &addr], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn more_cores_than_the_machine_has_is_refused() {
    let (code, _, err) = run(
        &["serve", "--listen", "127.0.0.1:0", "--cores", "4096"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("server.cores") && err.contains("flag --cores"),
        "{err}"
    );
}

#[test]
fn tuning_check_reports_every_section_and_changes_nothing() {
    let dir = temp_dir("tuning");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tuning/check");
    let out = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .output()
        .expect("run tuning/check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for section in ["CPUs", "Disk for", "Network and limits", "io_uring"] {
        assert!(text.contains(section), "no {section}: {text}");
    }
    // Every line under a section is a verdict.
    for line in text.lines().filter(|l| l.starts_with("  ")) {
        assert!(
            ["  ok ", "  WARN ", "  info "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line}"
        );
    }
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
}
