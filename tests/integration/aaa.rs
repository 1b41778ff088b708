//! The TCXC AAA API through the real binary: every example of the spec
//! (`tcxc-aaa-api.txt`) under its world (`tests/data/aaa/seed-world.json`),
//! every emitted route parsed by sippy b2bua's own parser, rating against
//! hand-computed CDRs, idempotent accounting, money never overspent under
//! 500 parallel authorizations, NAS checks and bad input.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::{Response, Server};

const NAS: &str = "nas_login=aaatest&nas_password=aaatest";

fn post(s: &Server, path: &str, form: &str) -> Response {
    let mut c = s.connect();
    c.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    c.response()
}

/// Posts and returns the JSON answer, which must come with status 200.
fn aaa(s: &Server, path: &str, form: &str) -> Value {
    let r = post(s, path, form);
    assert_eq!(r.status, 200, "{path} {form}: {}", r.text());
    r.json()
}

fn put(s: &Server, path: &str, body: &Value) -> Value {
    let r = s.send_json("PUT", path, &body.to_string());
    assert_eq!(r.status, 200, "PUT {path} {body}: {}", r.text());
    r.json()
}

fn world() -> Server {
    let s = Server::start(&[], &[]);
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/aaa/seed-world.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    for row in doc["rows"].as_array().unwrap() {
        let path = row["put"].as_str().unwrap();
        let got = put(&s, path, &row["body"]);
        // Rows keep the ids the world gives them.
        let (k, v) = row["body"].as_object().unwrap().iter().next().unwrap();
        assert_eq!(&got[k], v, "{path}");
    }
    s
}

fn routes(answer: &Value) -> Vec<String> {
    answer["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["value"].as_str().unwrap().to_owned())
        .collect()
}

/// Every route through sippy b2bua's own parser (PyPI sippy 2.5.0).
fn sippy_parse(routes: &[String]) -> Vec<Value> {
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/sippy_routes.py");
    let mut child = Command::new("python3")
        .arg(tool)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut input = routes.join("\n");
    input.push('\n');
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "sippy refused a route:\n{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_example_of_the_spec_answers_as_the_spec_shows() {
    let s = world();
    // aaa_authenticate: remote IP, then digest.
    let ip = aaa(
        &s,
        "/aaa_authenticate.php",
        "nas_login=AAASID&nas_password=AAATOKEN&user_name=192.168.3.1&cld=123",
    );
    assert_eq!(
        ip,
        json!({"status": "accept", "attributes": [{"attribute": "Cleartext-Password", "value": "cisco"}]})
    );
    let digest = aaa(
        &s,
        "/aaa_authenticate.php",
        "nas_login=aaatest&nas_password=aaatest&user_name=6XEDOma3&cld=123",
    );
    assert_eq!(
        digest,
        json!({"status": "accept", "attributes": [
            {"attribute": "Cleartext-Password", "value": "XXXpasswordXXX"},
            {"attribute": "Auth-Type", "value": "Digest"}]})
    );
    // aaa_authorize: one route, then five.
    let one = aaa(
        &s,
        "/aaa_authorize.php",
        "nas_login=aaatest&nas_password=aaatest&user_name=12.34.56.78&cld=32376#18661234567&cli=1234567&call_id=11122233&client_remote_ip=12.34.56.78",
    );
    assert_eq!(
        one,
        json!({"status": "accept", "attributes": [{"attribute": "Route1",
            "value": "Routing:666618661234567@1.2.3.4:5060;cli=1234567;credit-time=3600;rid=-1;expires=60;np_expires=10"}]})
    );
    let five = aaa(
        &s,
        "/aaa_authorize.php",
        "nas_login=aaatest&nas_password=aaatest&user_name=12.34.56.78&cld=44444012#18661234567&cli=1234567&call_id=11122234&client_remote_ip=12.34.56.78",
    );
    let expected = [
        "Routing:18661234567@1.2.3.4:6088;cli=1234567;credit-time=3600;rid=-1;expires=60;np_expires=10",
        "Routing:10578#18661234567@12.23.56.78;cli=1234567;credit-time=3600;rid=-1;auth=VLOGIN:VPASSWORD;expires=59;np_expires=9",
        "Routing:18661234567@11.22.33.44;cli=1234567;credit-time=3600;rid=-1;expires=60;np_expires=10",
        "Routing:18661234567@127.0.0.1:1111;cli=1234567;credit-time=3600;rid=-1;auth=VVVLOGIN:VVVPASSWORD;expires=60;np_expires=10",
        "Routing:18661234567@192.168.7.1:53000;cli=1234567;credit-time=3600;rid=-1;auth=SECRETLOGIN:SECRETPASSWORD;expires=60;np_expires=10",
    ];
    let attrs: Vec<Value> = expected
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"attribute": format!("Route{}", i + 1), "value": v}))
        .collect();
    assert_eq!(five, json!({"status": "accept", "attributes": attrs}));
    // Every route parses in sippy as the spec means it.
    let mut all = routes(&one);
    all.extend(routes(&five));
    let parsed = sippy_parse(&all);
    assert_eq!(parsed[0]["cld"], "666618661234567");
    assert_eq!(parsed[0]["port"], 5060);
    assert_eq!(parsed[2]["cld"], "10578#18661234567");
    assert_eq!(parsed[2]["auth_user"], "VLOGIN");
    assert_eq!(parsed[2]["expires"], 59);
    assert_eq!(parsed[3]["port"], 5060);
    assert!(parsed.iter().all(|p| p["credit_time"] == 3600));
    // Accounting start and the spec's stop (posted to the start endpoint,
    // with stop fields).
    let start = aaa(
        &s,
        "/aaa_accounting_start.php",
        "nas_login=aaatest&nas_password=aaatest&setup_time=12:35:26.032119 GMT Fri Oct 21 2022&connect_time=12:36:26.032119 GMT Fri Oct 21 2022&call_id=11122234-b2b_2",
    );
    assert_eq!(start, json!({"status": "accept"}));
    let stop = aaa(
        &s,
        "/aaa_accounting_start.php",
        "nas_login=aaatest&nas_password=aaatest&setup_time=12:35:26.032119 GMT Fri Oct 21 2022&connect_time=12:37:26.032119 GMT Fri Oct 21 2022&disconnect_time=12:38:26.032119 GMT Fri Oct 21 2022&call_id=11122233-b2b_1&duration=60&disconnect_code=16&client_remote_ip=12.34.56.78",
    );
    assert_eq!(stop, json!({"status": "accept"}));
    // 60 s at 0.01/min, 1/1: 0.010000, debited once.
    let c = s.get("/aaa/customer/1").json();
    assert_eq!(c["balance"], "999.990000", "{c}");
    let cdrs = s.get("/aaa/cdr/list").json();
    assert_eq!(cdrs.as_array().unwrap().len(), 1, "{cdrs}");
    assert_eq!(cdrs[0]["customer_amount"], "0.010000");
    assert_eq!(cdrs[0]["cld_out"], "666618661234567");
    assert_eq!(cdrs[0]["setup_time"], "12:35:26.032119 GMT Fri Oct 21 2022");
    // SMPP: bind, authorize (one route; a tech prefix with no route fails),
    // accounting, delivered, unbind.
    let bound = aaa(
        &s,
        "/aaa_bind.php",
        "nas_login=aaatest&nas_password=aaatest&user_name=V6FT9iZj&password=ZxIdeloR&client_remote_ip=12.34.56.78",
    );
    assert_eq!(bound["status"], "accept");
    assert_eq!(bound["i_account"], "4");
    let session = bound["session_id"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 10);
    assert!(session.bytes().all(|b| b.is_ascii_alphanumeric()));
    let sms = aaa(
        &s,
        "/aaa_smpp_authorize.php",
        &format!("{NAS}&session_id={session}&i_account=4&source_addr=O2App&destination_addr=380911234567&short_message=aaa"),
    );
    assert_eq!(
        sms,
        json!({"status": "accept", "attributes": [{"attribute": "Route1",
            "value": "destination:108.61.167.86:9870;login:perftest;pass:perftest;session_timeout:30;smpp_ka_interval:0;submit_sm_timeout:120;destination_number:380911234567;i_customer:1;i_purchased_route:150;i_connection:43;i_vendor:8;smpp_commission:0;i_rate:226997;billed_msgs_cnt:1;billing_prefix:380;billing_i_account:4;price:0.015"}]})
    );
    let none = aaa(
        &s,
        "/aaa_smpp_authorize.php",
        &format!("{NAS}&session_id={session}&i_account=4&source_addr=O2App&destination_addr=123#380911234567&short_message=aaa"),
    );
    assert_eq!(none, json!({"status": "failed"}));
    let report = format!("{NAS}&session_id={session}&i_account=4&source_addr=O2App&destination_addr=380911234567&short_message=aaa&sent=1&attempted=1&i_customer=1&i_purchased_route=150&i_connection=43&i_vendor=8&smpp_commission=0&i_rate=226997&billed_msgs_cnt=1&billing_prefix=380&billing_i_account=4&price=0.015&message_id=12121212&error_text=");
    assert_eq!(
        aaa(&s, "/aaa_smpp_accounting.php", &report),
        json!({"status": "accept"})
    );
    // Sent twice: charged once.
    assert_eq!(
        aaa(&s, "/aaa_smpp_accounting.php", &report),
        json!({"status": "accept"})
    );
    let c = s.get("/aaa/customer/1").json();
    assert_eq!(c["balance"], "999.975000", "{c}");
    // The five-route call (connected on its second route) still holds
    // its 3600 s at 0.01/min.
    assert_eq!(c["reserved"], "0.600000", "{c}");
    assert_eq!(c["calls_in_progress"], 1, "{c}");
    // Its first route failed; the second talked 30 s and ends the call.
    aaa(
        &s,
        "/aaa_accounting_stop.php",
        &format!("{NAS}&call_id=11122234-b2b_1&duration=0&disconnect_code=17"),
    );
    let c = s.get("/aaa/customer/1").json();
    assert_eq!(c["reserved"], "0.600000", "{c}");
    aaa(
        &s,
        "/aaa_accounting_stop.php",
        &format!("{NAS}&call_id=11122234-b2b_2&duration=30&disconnect_code=16"),
    );
    let c = s.get("/aaa/customer/1").json();
    assert_eq!(c["reserved"], "0.000000", "{c}");
    assert_eq!(c["balance"], "999.970000", "{c}");
    assert_eq!(
        aaa(
            &s,
            "/aaa_smpp_delivered.php",
            "nas_login=aaatest&nas_password=aaatest&message_id=12121212"
        ),
        json!({"status": "accept"})
    );
    let sdrs = s.get("/aaa/sdr/list").json();
    assert_eq!(sdrs.as_array().unwrap().len(), 1, "{sdrs}");
    assert_eq!(sdrs[0]["amount"], "0.015000");
    assert!(sdrs[0]["delivered"].is_number(), "{sdrs}");
    for _ in 0..2 {
        assert_eq!(
            aaa(
                &s,
                "/aaa_unbind.php",
                &format!("nas_login=aaatest&nas_password=aaatest&session_id={session}")
            ),
            json!({"status": "accept"})
        );
    }
    // An unbound session authorizes nothing.
    let after = aaa(
        &s,
        "/aaa_smpp_authorize",
        &format!("{NAS}&session_id={session}&i_account=4&destination_addr=380911234567&short_message=aaa"),
    );
    assert_eq!(after, json!({"status": "failed"}));
}

/// A customer with one IP account (`ip`) on a SIP route of `rate` (a
/// voice tariff with one prefix) to a vendor; returns i_customer.
fn customer_with(s: &Server, balance: &str, ip: &str, rate: Value, max_sessions: u32) -> u64 {
    let c = put(
        s,
        "/aaa/customer",
        &json!({"name": format!("c {ip}"), "balance": balance, "max_sessions": max_sessions}),
    );
    let id = c["i_customer"].as_u64().unwrap();
    put(
        s,
        "/aaa/account",
        &json!({"i_customer": id, "auth_type": "ip", "ips": [ip]}),
    );
    let t = put(s, "/aaa/tariff", &json!({"name": format!("t {ip}")}));
    let mut rate = rate;
    rate["i_tariff"] = t["i_tariff"].clone();
    put(s, "/aaa/rate", &rate);
    let v = put(s, "/aaa/vendor", &json!({"name": format!("v {ip}")}));
    let conn = put(
        s,
        "/aaa/connection",
        &json!({"i_vendor": v["i_vendor"], "protocol": "sip", "host": "10.0.0.1"}),
    );
    put(
        s,
        "/aaa/route",
        &json!({"i_customer": id, "i_connection": conn["i_connection"], "i_tariff": t["i_tariff"]}),
    );
    id
}

fn nas(s: &Server) {
    put(
        s,
        "/aaa/nas",
        &json!({"nas_login": "aaatest", "nas_password": "aaatest", "sip_ips": ["127.0.0.1"], "smpp_ips": ["127.0.0.1"]}),
    );
}

fn stop_form(call_id: &str, duration: u64) -> String {
    format!("{NAS}&call_id={call_id}&duration={duration}&disconnect_code=16&setup_time=12:35:26.032119 GMT Fri Oct 21 2022&disconnect_time=12:38:26.032119 GMT Fri Oct 21 2022")
}

#[test]
fn calls_are_rated_in_micro_units_and_billed_once_per_leg() {
    let s = Server::start(&[], &[]);
    nas(&s);
    // The TCXC CDR sample: 7 s at 6/6 and 0.0034/min bills 12 s, 0.000680.
    let rate = json!({"prefix": "44", "price_1": "0.0034", "interval_1": 6, "interval_n": 6});
    let id = customer_with(&s, "1.000000", "10.1.1.1", rate, 0);
    let auth = aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.1.1.1&cld=447700900123&cli=100&call_id=rated-1"),
    );
    assert_eq!(auth["status"], "accept", "{auth}");
    for _ in 0..2 {
        assert_eq!(
            aaa(&s, "/aaa_accounting_stop", &stop_form("rated-1-b2b_1", 7)),
            json!({"status": "accept"})
        );
    }
    let c = s.get(&format!("/aaa/customer/{id}")).json();
    assert_eq!(c["balance"], "0.999320", "{c}");
    assert_eq!(c["reserved"], "0.000000", "{c}");
    let cdrs = s.get(&format!("/aaa/cdr/list?i_customer={id}")).json();
    let cdrs = cdrs.as_array().unwrap();
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0]["billed_duration"], 12);
    assert_eq!(cdrs[0]["customer_amount"], "0.000680");
    assert_eq!(cdrs[0]["billing_prefix"], "44");
    assert_eq!(cdrs[0]["disconnect_code"], 16);
    // A failed first leg (duration 0) keeps the reservation for the next
    // route; the caller's own leg ends it.
    aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.1.1.1&cld=447700900123&cli=100&call_id=rated-2"),
    );
    aaa(
        &s,
        "/aaa_accounting_stop",
        &format!("{}&call_origin=answer", stop_form("rated-2", 0)),
    );
    let c = s.get(&format!("/aaa/customer/{id}")).json();
    assert_eq!(c["reserved"], "0.000000", "{c}");
    assert_eq!(c["balance"], "0.999320", "{c}");
    // A stop for a call never authorized: failed; a leg never offered: error.
    let unknown = aaa(&s, "/aaa_accounting_stop", &stop_form("nobody-b2b_1", 5));
    assert_eq!(unknown, json!({"status": "failed"}));
    aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.1.1.1&cld=447700900123&cli=100&call_id=rated-3"),
    );
    let leg9 = aaa(&s, "/aaa_accounting_stop", &stop_form("rated-3-b2b_9", 5));
    assert_eq!(leg9["status"], "error", "{leg9}");
    // CSV export carries the CDRs.
    let csv = s.get(&format!("/aaa/cdr/export?i_customer={id}"));
    assert_eq!(csv.status, 200);
    let text = csv.text();
    assert!(text.starts_with("i_cdr,"), "{text}");
    assert!(text.contains("0.000680"), "{text}");
}

#[test]
fn parallel_authorizations_never_reserve_or_debit_past_the_balance() {
    let s = Server::start(&[], &[]);
    nas(&s);
    // 0.60/min billed per minute: the 3600 s cap costs 36.00; the balance
    // covers seven full calls and part of an eighth.
    let rate = json!({"prefix": "1", "price_1": "0.60", "interval_1": 60, "interval_n": 60});
    let id = customer_with(&s, "260.000000", "10.2.2.2", rate, 0);
    let addr = s.addr;
    let granted: Vec<(String, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..20)
            .map(|w| {
                scope.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..25 {
                        let call = format!("par-{w}-{i}");
                        let form = format!(
                            "{NAS}&user_name=10.2.2.2&cld=15551234567&cli=1&call_id={call}"
                        );
                        let mut c = crate::harness::Client::connect(addr);
                        c.send(format!("POST /aaa_authorize HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{form}", form.len()).as_bytes());
                        let v = c.response().json();
                        if v["status"] == "accept" {
                            let route = v["attributes"][0]["value"].as_str().unwrap().to_owned();
                            let ct: u64 = route
                                .split(';')
                                .find_map(|p| p.strip_prefix("credit-time="))
                                .unwrap()
                                .parse()
                                .unwrap();
                            got.push((call, ct));
                        } else {
                            assert_eq!(v, json!({"status": "failed"}));
                        }
                    }
                    got
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    // What each granted call could cost at its credit time, in micro-units
    // (0.60/min per started minute), computed here.
    let cost = |ct: u64| ct.div_ceil(60) * 600_000;
    let reserved: u64 = granted.iter().map(|(_, ct)| cost(*ct)).sum();
    assert!(granted.len() >= 7, "{granted:?}");
    assert!(reserved <= 260_000_000, "reserved {reserved} of 260000000");
    assert_eq!(
        granted.iter().filter(|(_, ct)| *ct == 3600).count(),
        7,
        "{granted:?}"
    );
    let c = s.get(&format!("/aaa/customer/{id}")).json();
    assert_eq!(c["calls_in_progress"], granted.len() as u64, "{c}");
    // Every call talks its whole credit time; every stop is sent twice.
    for (call, ct) in &granted {
        for _ in 0..2 {
            let v = aaa(
                &s,
                "/aaa_accounting_stop",
                &stop_form(&format!("{call}-b2b_1"), *ct),
            );
            assert_eq!(v, json!({"status": "accept"}));
        }
    }
    let c = s.get(&format!("/aaa/customer/{id}")).json();
    let left = 260_000_000 - reserved;
    assert_eq!(
        c["balance"],
        format!("{}.{:06}", left / 1_000_000, left % 1_000_000),
        "{c}"
    );
    assert_eq!(c["reserved"], "0.000000");
    assert_eq!(c["calls_in_progress"], 0);
    let cdrs = s
        .get(&format!("/aaa/cdr/list?i_customer={id}&page_size=1000"))
        .json();
    assert_eq!(cdrs.as_array().unwrap().len(), granted.len());
}

#[test]
fn nas_and_session_limits_are_enforced() {
    let s = Server::start(&[], &[]);
    nas(&s);
    put(
        &s,
        "/aaa/nas",
        &json!({"nas_login": "smpponly", "nas_password": "pw", "smpp_ips": ["127.0.0.1"]}),
    );
    put(
        &s,
        "/aaa/nas",
        &json!({"nas_login": "elsewhere", "nas_password": "pw", "sip_ips": ["10.9.9.9"]}),
    );
    let rate = json!({"prefix": "1", "price_1": "0.01"});
    customer_with(&s, "100", "10.3.3.3", rate, 1);
    let ask = "user_name=10.3.3.3&cld=123";
    let mut texts = Vec::new();
    for nas in [
        "nas_login=aaatest&nas_password=wrong",
        "nas_login=nobody&nas_password=aaatest",
        "nas_login=smpponly&nas_password=pw",
        "nas_login=elsewhere&nas_password=pw",
        "nas_password=aaatest",
    ] {
        let v = aaa(&s, "/aaa_authenticate", &format!("{nas}&{ask}"));
        assert_eq!(v["status"], "error", "{nas}: {v}");
        texts.push(v["error_message"].clone());
    }
    // The answer never says which part failed.
    assert!(texts.iter().all(|t| *t == texts[0]), "{texts:?}");
    let ok = aaa(&s, "/aaa_authenticate", &format!("{NAS}&{ask}"));
    assert_eq!(ok["status"], "accept");
    // max_sessions = 1: a second call in progress is refused.
    let call = |id: &str| {
        aaa(
            &s,
            "/aaa_authorize",
            &format!("{NAS}&user_name=10.3.3.3&cld=15550001&cli=1&call_id={id}"),
        )
    };
    assert_eq!(call("one")["status"], "accept");
    // The same call asked again gets its routes again.
    assert_eq!(call("one")["status"], "accept");
    assert_eq!(call("two"), json!({"status": "failed"}));
    aaa(&s, "/aaa_accounting_stop", &stop_form("one-b2b_1", 30));
    assert_eq!(call("two")["status"], "accept");
}

#[test]
fn bad_input_is_an_error_in_the_aaa_shape_never_a_5xx() {
    let s = world();
    let cases = [
        ("/aaa_authorize", format!("{NAS}&user_name=12.34.56.78&cli=1&call_id=x")),
        ("/aaa_authorize", format!("{NAS}&user_name=12.34.56.78&cld=12a34&cli=1&call_id=x")),
        ("/aaa_authorize", format!("{NAS}&user_name=12.34.56.78&cld=1234&cli=a;b&call_id=x")),
        ("/aaa_authorize", format!("{NAS}&user_name=12.34.56.78&cld=1234&call_id={}", "x".repeat(2000))),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=a-b2b_1&duration=ten")),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=a-b2b_1&duration=5&setup_time=yesterday")),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=a-b2b_1&duration=5&setup_time=12:35:26.032119 GMT Mon Oct 21 2022")),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=no-suffix&duration=5")),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=a-b2b_1&duration=5&call_origin=sideways")),
        ("/aaa_accounting_stop", format!("{NAS}&call_id=a-b2b_1")),
        ("/aaa_smpp_authorize", format!("{NAS}&session_id=abc&i_account=x&destination_addr=1")),
        ("/aaa_smpp_accounting", format!("{NAS}&session_id=abc&i_account=4&destination_addr=1&price=0.0.1&billed_msgs_cnt=1&i_connection=1&i_rate=1")),
        ("/aaa_smpp_accounting", format!("{NAS}&session_id=a%20b&i_account=4")),
        ("/aaa_bind", format!("{NAS}&user_name=x")),
        ("/aaa_authorize", format!("{NAS}&cld=1&cld=2&user_name=x&call_id=y")),
    ];
    for (path, form) in &cases {
        let r = post(&s, path, form);
        assert_eq!(r.status, 200, "{path} {form}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "error", "{path} {form}: {v}");
        assert!(v["error_message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // An unknown endpoint is 404, in the AAA's shape; GET is not allowed.
    let r = post(&s, "/aaa_frobnicate.php", NAS);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "error");
    let r = s.get("/aaa_authorize");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["status"], "error");
    // The server is still whole.
    let ok = aaa(
        &s,
        "/aaa_authenticate",
        &format!("{NAS}&user_name=6XEDOma3&cld=1"),
    );
    assert_eq!(ok["status"], "accept");
}

#[test]
fn provisioning_hides_passwords_and_keeps_money_exact() {
    let s = world();
    let nas = s.get("/aaa/nas/1").json();
    assert!(nas.get("nas_password").is_none(), "{nas}");
    let acc = s.get("/aaa/account/4").json();
    assert!(acc.get("password").is_none(), "{acc}");
    let conns = s.get("/aaa/connection/list").json();
    assert!(conns
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("password").is_none()));
    // Floats are refused; decimal strings are exact.
    let r = s.send_json("PUT", "/aaa/customer", r#"{"name": "f", "balance": 0.1}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.send_json(
        "PUT",
        "/aaa/rate",
        r#"{"i_tariff": 1, "prefix": "9", "price_1": "0.0000001"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // The balance moves through PUT …/balance, audited; not through PATCH.
    let r = s.send_json("PATCH", "/aaa/customer/1", r#"{"balance": "5"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.send_json(
        "PUT",
        "/aaa/customer/1/balance",
        r#"{"amount": "-0.000001", "reason": "rounding test"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["balance"], "999.999999");
    assert_eq!(s.get("/aaa/customer/1").json()["balance"], "999.999999");
    // A given id below the next one is refused: ids are never reused.
    let r = s.send_json("PUT", "/aaa/vendor", r#"{"i_vendor": 3, "name": "again"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
}

/// SIGKILLs per run of the accounting crash test (`CRASH_SOAK_KILLS`
/// raises it: `bench/crash_soak.sh`).
fn kills() -> usize {
    crate::harness::soak_kills(3)
}

#[test]
fn sigkill_during_accounting_loses_no_cdr_and_bills_no_leg_twice() {
    let mut dir = crate::harness::temp_dir("aaa-crash");
    let env = [("AUTHPLANE_STORAGE__COMPACT_WAL_BYTES", "65536")];
    let s = Server::start_in(dir.clone(), &["--cores", "2"], &env);
    nas(&s);
    // 0.06/min, 1/1: a call of d seconds costs d × 1000 micro-units.
    let rate = json!({"prefix": "1", "price_1": "0.06", "interval_1": 1, "interval_n": 1});
    let id = customer_with(&s, "100000.000000", "10.4.4.4", rate, 0);
    dir = s.kill();
    let duration = |i: usize| (i % 50 + 1) as u64;
    let mut calls: Vec<String> = Vec::new();
    let mut acked: Vec<usize> = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..kills() {
        let s = Server::start_in(dir.clone(), &["--cores", "2"], &env);
        check_cdrs(&s, id, &calls, &acked, round);
        // New calls, authorized (each acknowledged, so durable).
        let first = calls.len();
        for i in first..first + 150 {
            let c = format!("crash-{i}");
            let v = aaa(
                &s,
                "/aaa_authorize",
                &format!("{NAS}&user_name=10.4.4.4&cld=1555&cli=1&call_id={c}"),
            );
            assert_eq!(v["status"], "accept", "{v}");
            calls.push(c);
        }
        // Four writers send their stops; SIGKILL lands while they run.
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let addr = s.addr;
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (got, calls) = (got.clone(), calls.clone());
                std::thread::spawn(move || {
                    let mut c = crate::harness::Client::connect(addr);
                    c.stream
                        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                        .unwrap();
                    for i in (first..calls.len()).filter(|i| i % 4 == w) {
                        let form = stop_form(&format!("{}-b2b_1", calls[i]), duration(i));
                        c.send(
                            format!(
                                "POST /aaa_accounting_stop HTTP/1.1\r\nContent-Length: {}\r\n\r\n{form}",
                                form.len()
                            )
                            .as_bytes(),
                        );
                        match c.try_response() {
                            Ok(r) if r.status == 200 && r.json()["status"] == "accept" => {
                                got.lock().unwrap().push(i);
                            }
                            _ => return,
                        }
                    }
                })
            })
            .collect();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(std::time::Duration::from_millis(20 + x % 150));
        dir = s.kill();
        for w in writers {
            w.join().unwrap();
        }
        acked.extend(got.lock().unwrap().iter().copied());
    }
    let s = Server::start_in(dir, &["--cores", "2"], &env);
    check_cdrs(&s, id, &calls, &acked, kills());
    eprintln!(
        "{} kills: {} of {} stops acknowledged before a kill, none lost or billed twice",
        kills(),
        acked.len(),
        calls.len()
    );
    // Every stop again (a NAS retrying): each leg billed exactly once.
    for (i, call) in calls.iter().enumerate() {
        let v = aaa(
            &s,
            "/aaa_accounting_stop",
            &stop_form(&format!("{call}-b2b_1"), duration(i)),
        );
        assert_eq!(v, json!({"status": "accept"}), "{call}");
    }
    let spent: u64 = (0..calls.len()).map(|i| duration(i) * 1000).sum();
    let left = 100_000_000_000 - spent;
    let c = s.get(&format!("/aaa/customer/{id}")).json();
    assert_eq!(
        c["balance"],
        format!("{}.{:06}", left / 1_000_000, left % 1_000_000),
        "{c}"
    );
    assert_eq!(c["reserved"], "0.000000", "{c}");
    let all = check_cdrs(&s, id, &calls, &acked, kills() + 1);
    assert_eq!(all, calls.len());
}

/// Every acknowledged stop has its CDR; no leg has two, no CDR id is
/// used twice. Returns the number of CDRs.
fn check_cdrs(s: &Server, id: u64, calls: &[String], acked: &[usize], round: usize) -> usize {
    let mut cdrs = Vec::new();
    for page in 0.. {
        let part = s
            .get(&format!(
                "/aaa/cdr/list?i_customer={id}&page={page}&page_size=5000"
            ))
            .json();
        let part = part.as_array().unwrap().clone();
        let last = part.len() < 5000;
        cdrs.extend(part);
        if last {
            break;
        }
    }
    let mut legs = std::collections::HashSet::new();
    let mut ids = std::collections::HashSet::new();
    for c in &cdrs {
        assert!(
            legs.insert(c["call_id"].as_str().unwrap().to_owned()),
            "round {round}: billed twice: {c}"
        );
        assert!(
            ids.insert(c["i_cdr"].as_u64().unwrap()),
            "round {round}: id reused: {c}"
        );
    }
    for i in acked {
        assert!(
            legs.contains(&format!("{}-b2b_1", calls[*i])),
            "round {round}: the acknowledged stop of {} is lost",
            calls[*i]
        );
    }
    cdrs.len()
}

fn import_rates(file: &std::path::Path, dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(crate::harness::BIN)
        .args(["aaa", "import-rates"])
        .arg(file)
        .arg("--data-dir")
        .arg(dir)
        .args(["--cores", "2"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_rate_deck_imports_idempotently_with_per_line_errors_and_rates_calls() {
    let work = crate::harness::temp_dir("rates");
    let dir = work.join("data");
    // A server provisions the tariff, the customer and the route, then stops.
    let s = Server::start_in(dir.clone(), &["--cores", "2"], &[]);
    nas(&s);
    let id = customer_with(
        &s,
        "10",
        "10.5.5.5",
        json!({"prefix": "9", "price_1": "1.00"}),
        0,
    );
    let tariff = s.get("/aaa/tariff/list").json()[0]["i_tariff"]
        .as_u64()
        .unwrap();
    let dir = s.kill();
    let csv = work.join("deck.csv");
    std::fs::write(
        &csv,
        format!(
            "Prefix,I_Tariff,Price_1,Price_N,Interval_1,Interval_N,Country\n\
             44,{tariff},0.0034,0.0034,6,6,UK\n\
             4477,{tariff},0.05,,60,60,UK mobile\n\
             44,{tariff},0.0035,,1,1,UK again\n\
             33,{tariff},0.1.2,,1,1,bad price\n\
             34,999,0.01,,1,1,no such tariff\n\
             3x,{tariff},0.01,,1,1,bad prefix\n"
        ),
    )
    .unwrap();
    let (code, out, err) = import_rates(&csv, &dir);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("2 created") && out.contains("4 refused"),
        "{out}"
    );
    assert!(err.contains("deck.csv:4: tariff"), "{err}");
    assert!(err.contains("deck.csv:5: price_1"), "{err}");
    assert!(err.contains("deck.csv:6: i_tariff"), "{err}");
    assert!(err.contains("deck.csv:7: prefix"), "{err}");
    // Again: nothing changes.
    let (_, out, _) = import_rates(&csv, &dir);
    assert!(
        out.contains("0 created") && out.contains("2 unchanged"),
        "{out}"
    );
    // The server rates by the longest prefix of the deck.
    let s = Server::start_in(dir, &["--cores", "2"], &[]);
    let a = aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.5.5.5&cld=447700900123&cli=1&call_id=deck-1"),
    );
    assert_eq!(a["status"], "accept", "{a}");
    aaa(&s, "/aaa_accounting_stop", &stop_form("deck-1-b2b_1", 61));
    aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.5.5.5&cld=441234&cli=1&call_id=deck-2"),
    );
    aaa(&s, "/aaa_accounting_stop", &stop_form("deck-2-b2b_1", 7));
    let cdrs = s.get(&format!("/aaa/cdr/list?i_customer={id}")).json();
    assert_eq!(cdrs[0]["billing_prefix"], "4477");
    assert_eq!(cdrs[0]["customer_amount"], "0.100000");
    assert_eq!(cdrs[1]["billing_prefix"], "44");
    assert_eq!(cdrs[1]["customer_amount"], "0.000680");
    // A rate created over the API after the import gets a fresh id.
    let r = put(
        &s,
        "/aaa/rate",
        &json!({"i_tariff": tariff, "prefix": "49", "price_1": "0.02"}),
    );
    let ids: Vec<u64> = s
        .get("/aaa/rate/list")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["i_rate"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids.iter().filter(|i| **i == r["i_rate"]).count(),
        1,
        "{ids:?}"
    );
}

#[test]
fn routes_are_ordered_by_priority_then_cost_and_loss_makers_dropped() {
    let s = Server::start(&[], &[]);
    nas(&s);
    let c = put(
        &s,
        "/aaa/customer",
        &json!({"name": "lcr", "balance": "100"}),
    );
    let id = c["i_customer"].as_u64().unwrap();
    put(
        &s,
        "/aaa/account",
        &json!({"i_customer": id, "auth_type": "ip", "ips": ["10.6.6.6"]}),
    );
    let sell = put(&s, "/aaa/tariff", &json!({"name": "sell"}))["i_tariff"].clone();
    put(
        &s,
        "/aaa/rate",
        &json!({"i_tariff": sell, "prefix": "49", "price_1": "0.05"}),
    );
    let vendor = put(&s, "/aaa/vendor", &json!({"name": "v"}))["i_vendor"].clone();
    // Four vendor trunks costing 0.04, 0.02, 0.09 (a loss) and 0.09 with
    // the loss allowed; the last has priority 2.
    let mut conn_of_cost = Vec::new();
    for (i, (cost, allow, priority)) in [
        ("0.04", false, 1),
        ("0.02", false, 1),
        ("0.09", false, 1),
        ("0.09", true, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let t = put(&s, "/aaa/tariff", &json!({"name": format!("cost {i}")}))["i_tariff"].clone();
        put(
            &s,
            "/aaa/rate",
            &json!({"i_tariff": t, "prefix": "4", "price_1": cost}),
        );
        let host = format!("10.7.0.{}", i + 1);
        let conn = put(
            &s,
            "/aaa/connection",
            &json!({"i_vendor": vendor, "protocol": "sip", "host": host, "i_tariff": t}),
        );
        put(
            &s,
            "/aaa/route",
            &json!({"i_customer": id, "i_connection": conn["i_connection"], "i_tariff": sell,
                    "priority": priority, "allow_loss": allow}),
        );
        conn_of_cost.push(host);
    }
    let v = aaa(
        &s,
        "/aaa_authorize",
        &format!("{NAS}&user_name=10.6.6.6&cld=4930123456&cli=1&call_id=lcr-1"),
    );
    let hosts: Vec<String> = routes(&v)
        .iter()
        .map(|r| {
            r.split('@')
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Cheapest first within priority 1; the loss-maker dropped; the
    // allowed loss-maker last (priority 2).
    assert_eq!(
        hosts,
        [
            conn_of_cost[1].clone(),
            conn_of_cost[0].clone(),
            conn_of_cost[3].clone()
        ],
        "{v}"
    );
    sippy_parse(&routes(&v));
}

#[test]
fn an_address_that_keeps_failing_nas_login_is_refused_for_a_while() {
    let s = Server::start(&["--cores", "1"], &[]);
    nas(&s);
    for _ in 0..20 {
        let v = aaa(
            &s,
            "/aaa_authenticate",
            "nas_login=aaatest&nas_password=guess&user_name=x&cld=1",
        );
        assert_eq!(v["error_message"], "NAS authentication failed");
    }
    // Now even the right password is refused from this address.
    let v = aaa(&s, "/aaa_authenticate", &format!("{NAS}&user_name=x&cld=1"));
    assert_eq!(v["status"], "error");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("too many failed NAS logins"),
        "{v}"
    );
}
