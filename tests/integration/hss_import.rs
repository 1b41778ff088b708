//! `authplane hss import`: SIM vendor CSV files into the AuC tables.

use std::process::Command;

use crate::harness::{temp_dir, Server, BIN};

/// `authplane hss import FILE --data-dir DIR --cores 2 ARGS...` with the
/// extra environment: (exit code, stdout, stderr).
fn import(
    file: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["hss", "import"])
        .arg(file)
        .arg("--data-dir")
        .arg(dir)
        .args(["--cores", "2"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_vendor_file_imports_idempotently_with_per_line_errors() {
    let work = temp_dir("import");
    let csv = work.join("sims.csv");
    // TS 35.208 set 1 for the first line (OPc given), set 1's OP for the second.
    std::fs::write(
        &csv,
        "ICCID,IMSI,KI,OPC,OP,AMF,SQN,ADM1\n\
         8988211000000000001,001010000000101,465b5ce8b199b49faa5f0a2ee238a6bc,cd63cb71954a9f4e48a5994e37a02baf,,8000,0,1\n\
         8988211000000000002,001010000000102,465b5ce8b199b49faa5f0a2ee238a6bc,,cdc202d5123e20f62b6d676ac72cb318,8000,64,2\n\
         8988211000000000003,not-an-imsi,465b5ce8b199b49faa5f0a2ee238a6bc,cd63cb71954a9f4e48a5994e37a02baf,,8000,0,3\n\
         8988211000000000004,001010000000104,zz,cd63cb71954a9f4e48a5994e37a02baf,,8000,0,4\n\
         8988211000000000001,001010000000105,465b5ce8b199b49faa5f0a2ee238a6bc,cd63cb71954a9f4e48a5994e37a02baf,,8000,0,5\n",
    )
    .unwrap();
    let dir = work.join("data");
    let kek = [(
        "AUTHPLANE_HSS__KEY_ENCRYPTION_KEY",
        "000102030405060708090a0b0c0d0e0f",
    )];
    let (code, out, err) = import(&csv, &dir, &[], &kek);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("2 created") && out.contains("3 refused"),
        "{out}"
    );
    assert!(err.contains("sims.csv:4: imsi"), "{err}");
    assert!(err.contains("sims.csv:5: ki"), "{err}");
    assert!(
        err.contains("sims.csv:6: iccid 8988211000000000001"),
        "{err}"
    );
    // Again: nothing changes.
    let (_, out, _) = import(&csv, &dir, &[], &kek);
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");

    let s = Server::start_in(dir, &["--cores", "2"], &kek);
    let a = s.get("/auc/imsi/001010000000101").json();
    assert_eq!(a["iccid"], "8988211000000000001");
    assert_eq!(
        s.get("/auc/iccid/8988211000000000002").json()["imsi"],
        "001010000000102"
    );
    assert_eq!(s.get("/auc/imsi/001010000000102").json()["sqn"], 64);
    // Both lines carry set 1's keys (OPc given, or derived from OP): the
    // vectors verify independently with set 1's OPc.
    for imsi in ["001010000000101", "001010000000102"] {
        let v = s
            .get(&format!("/auc/aka/vector_count/1/imsi/{imsi}"))
            .json();
        let c = serde_json::json!({"k": "465b5ce8b199b49faa5f0a2ee238a6bc", "opc": "cd63cb71954a9f4e48a5994e37a02baf", "amf": "8000", "kind": "eps", "vector": v[0]});
        crate::hss_vectors::check_cases(&[c]);
    }
    // A running server holds the directory: import is refused.
    let (code, _, err) = import(&csv, &s.data_dir, &[], &kek);
    assert_ne!(code, 0);
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn a_file_larger_than_the_sort_spills_to_disk_and_keeps_every_rule() {
    let work = temp_dir("import-spill");
    let dir = work.join("data");
    let line = |iccid: &str, imsi: u64, sqn: u64| {
        format!("{iccid},{imsi:015},465b5ce8b199b49faa5f0a2ee238a6bc,cd63cb71954a9f4e48a5994e37a02baf,8000,{sqn}\n")
    };
    let header = "ICCID,IMSI,KI,OPC,AMF,SQN\n";
    let first = work.join("first.csv");
    std::fs::write(
        &first,
        format!(
            "{header}{}{}",
            line("8988211000000000900", 1010000000900, 0),
            line("8988211000000000901", 1010000000901, 0)
        ),
    )
    .unwrap();
    let import_with =
        |file: &std::path::Path, sort: &str| import(file, &dir, &["--sort-lines", sort], &[]);
    let (code, out, err) = import_with(&first, "3");
    assert_eq!(code, 0, "{out}{err}");
    // 40 new IMSIs in a scrambled order, sorted 3 lines at a time.
    let mut body = String::from(header);
    for j in 0..40u64 {
        let i = (j * 17) % 40;
        body += &line(&format!("89882110000000010{i:02}"), 1010000000100 + i, 0);
    }
    // Line 42: IMSI 1010000000105 again (its first line wins).
    body += &line("8988211000000000199", 1010000000105, 0);
    // Line 43: the ICCID of IMSI 1010000000107, on a new IMSI.
    body += &line("8988211000000001007", 1010000000200, 0);
    // Line 44: an ICCID an earlier import gave to another AuC.
    body += &line("8988211000000000900", 1010000000201, 0);
    // Line 45: an AuC of the earlier import, its SQN raised.
    body += &line("8988211000000000901", 1010000000901, 96);
    // Line 46: an AuC of the earlier import moves to a new ICCID (its old
    // one, which line 44 claimed, is released; the claim is still refused).
    body += &line("8988211000000000950", 1010000000900, 0);
    let second = work.join("second.csv");
    std::fs::write(&second, body).unwrap();
    let (code, out, err) = import_with(&second, "3");
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("40 created, 2 updated, 0 unchanged; 3 refused"),
        "{out}"
    );
    assert!(
        err.contains("second.csv:42: imsi 001010000000105 repeats line"),
        "{err}"
    );
    assert!(
        err.contains(
            "second.csv:43: iccid 8988211000000001007 repeats the line of imsi 001010000000107"
        ),
        "{err}"
    );
    assert!(
        err.contains("second.csv:44: iccid 8988211000000000900 already provisioned"),
        "{err}"
    );
    // The refused lines are listed in file order.
    let at = |needle: &str| err.find(needle).unwrap();
    assert!(at("second.csv:42") < at("second.csv:43") && at("second.csv:43") < at("second.csv:44"));
    assert!(!dir.join("import.tmp").exists());
    let (ok, report) = crate::harness::data_check(&dir);
    assert!(ok, "{report}");

    // The released ICCID is free for another IMSI.
    let third = work.join("third.csv");
    std::fs::write(
        &third,
        format!("{header}{}", line("8988211000000000900", 1010000000300, 0)),
    )
    .unwrap();
    let (code, out, err) = import_with(&third, "3");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 created, 0 updated"), "{out}");

    let s = Server::start_in(dir.clone(), &["--cores", "2"], &[]);
    let mut ids = std::collections::HashSet::new();
    for i in 0..40u64 {
        let a = s
            .get(&format!("/auc/imsi/{:015}", 1010000000100 + i))
            .json();
        assert_eq!(a["iccid"], format!("89882110000000010{i:02}"), "{a}");
        assert!(ids.insert(a["auc_id"].as_u64().unwrap()), "id reused: {a}");
        let by_iccid = s.get(&format!("/auc/iccid/89882110000000010{i:02}")).json();
        assert_eq!(by_iccid["auc_id"], a["auc_id"]);
    }
    assert_eq!(s.get("/auc/imsi/001010000000200").status, 404);
    assert_eq!(s.get("/auc/imsi/001010000000201").status, 404);
    assert_eq!(s.get("/auc/imsi/001010000000901").json()["sqn"], 96);
    assert_eq!(
        s.get("/auc/iccid/8988211000000000900").json()["imsi"],
        "001010000000300"
    );
    assert_eq!(
        s.get("/auc/iccid/8988211000000000950").json()["imsi"],
        "001010000000900"
    );
    assert_eq!(
        s.get("/auc/imsi/001010000000900").json()["iccid"],
        "8988211000000000950"
    );
}
