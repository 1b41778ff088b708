//! Cx, SWx and S13 through the real server, against python-diameter 0.9.0
//! as the S-CSCF, the ePDG's 3GPP AAA server and the MME
//! (tests/tools/diameter_peer.py): every vector recomputed by the
//! independent Milenage and KDF of tests/tools/aka_check.py (its CK'/IK'
//! first checked against RFC 9048's published case), the User-Data XML
//! parsed by Python's own XML parser, every capture decoded by tshark.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::diameter::{aka_tool, all, codes, hex_of, one, provision, u32_of, usim_auts, Mme};
use crate::diameter_peers::{tshark, Capture};
use crate::harness::Server;
use crate::hss_vectors::check_cases;

/// TS 35.208 test set 1.
const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
const OPC: &str = "cd63cb71954a9f4e48a5994e37a02baf";
const CX: u32 = 16_777_216;
const SWX: u32 = 16_777_265;
const S13: u32 = 16_777_252;
const S6A: u32 = 16_777_251;

/// An iFC template in PyHSS's style: `iFC_vars[...]` and attribute access.
const TEMPLATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<IMSSubscription>
  <PrivateID>{{ iFC_vars['imsi'] }}@ims.mnc{{ iFC_vars['mnc'] }}.mcc{{ iFC_vars['mcc'] }}.3gppnetwork.org</PrivateID>
  <ServiceProfile>
    <PublicIdentity><Identity>sip:{{ iFC_vars.msisdn }}@ims.mnc{{ iFC_vars.mnc }}.mcc{{ iFC_vars.mcc }}.3gppnetwork.org</Identity></PublicIdentity>
    <PublicIdentity><Identity>tel:{{ iFC_vars.msisdn }}</Identity></PublicIdentity>
    <InitialFilterCriteria>
      <Priority>10</Priority>
      <TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF><SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>MESSAGE</Method></SPT></TriggerPoint>
      <ApplicationServer><ServerName>sip:smsc.mnc{{ iFC_vars.mnc }}.mcc{{ iFC_vars.mcc }}.3gppnetwork.org:5060</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer>
    </InitialFilterCriteria>
  </ServiceProfile>
</IMSSubscription>
"#;

/// An IMS subscriber for `imsi` (MSISDN 61 + the IMSI's last 9 digits)
/// with `template`; returns its MSISDN and id.
fn provision_ims(s: &Server, imsi: &str, template: Option<u64>) -> (String, u64) {
    let msisdn = format!("61{}", &imsi[6..]);
    let mut body = json!({"msisdn": msisdn, "imsi": imsi});
    if let Some(t) = template {
        body["ifc_template_id"] = t.into();
    }
    let r = s.send_json("PUT", "/ims_subscriber/", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    (msisdn, r.json()["ims_subscriber_id"].as_u64().unwrap())
}

/// The User-Data of a message (an SAA, a PPR), parsed by Python's
/// xml.etree.
fn parse_user_data(answer: &Value) -> Value {
    let data = one(&answer["avps"], 606).expect("User-Data");
    let xml = hex::decode(hex_of(data)).unwrap();
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
print(json.dumps({
    "root": root.tag,
    "private": root.findtext("PrivateID"),
    "identities": [e.text for e in root.iter("Identity")],
    "servers": [e.text for e in root.iter("ServerName")],
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(&xml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&xml)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The SIP-Auth-Data-Items of an MAA as aka_check cases of `kind`.
fn sip_items(answer: &Value, kind: &str, anid: Option<&str>) -> Vec<Value> {
    all(&answer["avps"], 612)
        .iter()
        .map(|item| {
            let f = |c| hex_of(one(&item["avps"], c).unwrap());
            let challenge = f(609);
            let mut case = json!({"k": K, "opc": OPC, "amf": "8000", "kind": kind,
                "item": u32_of(one(&item["avps"], 613).unwrap()),
                "scheme": String::from_utf8(hex::decode(f(608)).unwrap()).unwrap(),
                "vector": {"rand": &challenge[..32], "autn": &challenge[32..], "xres": f(610),
                    "ck": f(625), "ik": f(626)}});
            if let Some(a) = anid {
                case["anid"] = a.into();
            }
            case
        })
        .collect()
}

fn text_of(a: &Value) -> String {
    String::from_utf8(hex::decode(hex_of(a)).unwrap()).unwrap()
}

#[test]
fn an_ims_registration_runs_uar_mar_sar_lir_and_rtr_from_deregister() {
    let s = Server::start(&["--cores", "2"], &[]);
    let imsi = "001010000000011";
    provision(&s, imsi, K, OPC);
    let t = s.send_json(
        "PUT",
        "/ifc_template/",
        &json!({"name": "volte", "template_content": TEMPLATE}).to_string(),
    );
    assert_eq!(t.status, 200, "{}", t.text());
    let template_id = t.json()["ifc_template_id"].as_u64().unwrap();
    let (msisdn, ims_id) = provision_ims(&s, imsi, Some(template_id));
    let private = format!("{imsi}@ims.mnc001.mcc001.3gppnetwork.org");
    let public = format!("sip:{msisdn}@ims.mnc001.mcc001.3gppnetwork.org");
    let capture = Capture::start("cx", s.diameter.unwrap().port());
    let mut cscf = Mme::connect_as(&s, "scscf.ims.test", "ims.test", &[CX]);

    // Unknown identity: 5001. Another IMSI as the private identity: 5002.
    let a = cscf.cmd(
        json!({"op": "uar", "public": "sip:999@ims.test", "private": "001019999999999@ims.test"}),
    );
    assert_eq!(codes(&a), (None, Some(5001)), "{a}");
    let a = cscf.cmd(json!({"op": "uar", "public": public, "private": "001010000000099@ims.test"}));
    assert_eq!(codes(&a), (None, Some(5002)), "{a}");
    // A de-registration UAR before any registration: 5003.
    let a = cscf.cmd(json!({"op": "uar", "public": public, "private": private, "type": 1}));
    assert_eq!(codes(&a), (None, Some(5003)), "{a}");

    // First registration: an S-CSCF to choose (hss.ims_domain's default).
    let a = cscf.cmd(json!({"op": "uar", "public": public, "private": private}));
    assert_eq!(codes(&a), (None, Some(2001)), "{a}");
    assert_eq!(
        text_of(one(&a["avps"], 602).unwrap()),
        "sip:scscf.ims.mnc001.mcc001.3gppnetwork.org"
    );
    // Cx answers name their application.
    let vsai = one(&a["avps"], 260).expect("Vendor-Specific-Application-Id");
    assert_eq!(u32_of(one(&vsai["avps"], 258).unwrap()), CX);

    // MAR: two Digest-AKAv1-MD5 items, recomputed independently.
    let a = cscf.cmd(
        json!({"op": "mar", "public": public, "private": private, "n": 2,
        "scheme": "Digest-AKAv1-MD5"}),
    );
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    assert_eq!(u32_of(one(&a["avps"], 607).unwrap()), 2);
    let items = sip_items(&a, "utran", None);
    assert_eq!(items.len(), 2, "{a}");
    assert!(items.iter().all(|i| i["scheme"] == "Digest-AKAv1-MD5"));
    assert_eq!(items[0]["item"], 1);
    assert_eq!(items[1]["item"], 2);
    let sqns = check_cases(&items);
    assert!(sqns[0] < sqns[1], "{sqns:?}");
    // Another scheme: 5006.
    let a = cscf
        .cmd(json!({"op": "mar", "public": public, "private": private, "scheme": "Digest-MD5"}));
    assert_eq!(codes(&a), (None, Some(5006)), "{a}");
    // Resync: the USIM is far ahead; SIP-Authorization = RAND || AUTS.
    let rand = "00112233445566778899aabbccddeeff";
    let sqn_ms = 50_000 << 5;
    let auts = usim_auts(K, OPC, rand, sqn_ms);
    let a = cscf.cmd(
        json!({"op": "mar", "public": public, "private": private, "n": 1,
        "scheme": "Digest-AKAv1-MD5", "resync": format!("{rand}{auts}")}),
    );
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let sqn = check_cases(&sip_items(&a, "utran", None))[0];
    assert!(sqn > sqn_ms, "{sqn} not above {sqn_ms}");

    // SAR REGISTRATION: the S-CSCF kept, the template rendered.
    let a = cscf.cmd(json!({"op": "sar", "public": public, "private": private,
        "server": "sip:scscf1.ims.test:6060", "type": 1}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let doc = parse_user_data(&a);
    assert_eq!(doc["root"], "IMSSubscription");
    assert_eq!(doc["private"], private.as_str());
    assert_eq!(
        doc["identities"],
        json!([public, format!("tel:{msisdn}")]),
        "{doc}"
    );
    assert_eq!(
        doc["servers"],
        json!(["sip:smsc.mnc001.mcc001.3gppnetwork.org:5060"])
    );
    let served = s.get("/oam/serving_subs_ims").json();
    assert_eq!(
        served[imsi]["scscf"], "sip:scscf1.ims.test:6060",
        "{served}"
    );
    assert_eq!(served[imsi]["scscf_realm"], "ims.test");
    assert_eq!(served[imsi]["scscf_peer"], "scscf.ims.test");

    // What the User-Data comes from changes: a PPR with the new one.
    let r = s.send_json(
        "PATCH",
        &format!("/ims_subscriber/{ims_id}"),
        &json!({"msisdn_list": format!("{msisdn},61999")}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = cscf.cmd(json!({"op": "requests", "wait": 10, "count": 1}));
    let ppr = &got["requests"][0];
    assert_eq!(ppr["header"]["code"], 305, "{got}");
    assert_eq!(ppr["header"]["app"], CX);
    assert_eq!(text_of(one(&ppr["avps"], 1).unwrap()), private);
    assert_eq!(parse_user_data(ppr)["private"], private.as_str());
    let r = s.send_json(
        "PATCH",
        &format!("/ifc_template/{template_id}"),
        &json!({"template_content": TEMPLATE.replace("sip:smsc.", "sip:sms-gw.")}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = cscf.cmd(json!({"op": "requests", "wait": 10, "count": 2}));
    let ppr = &got["requests"][1];
    assert_eq!(ppr["header"]["code"], 305, "{got}");
    assert_eq!(
        parse_user_data(ppr)["servers"],
        json!(["sip:sms-gw.mnc001.mcc001.3gppnetwork.org:5060"])
    );
    // A change the User-Data does not come from pushes nothing.
    let r = s.send_json(
        "PATCH",
        &format!("/ims_subscriber/{ims_id}"),
        r#"{"xcap_profile":"<x/>"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Registered: UAR says SUBSEQUENT with the stored S-CSCF; LIR finds it.
    let a = cscf.cmd(json!({"op": "uar", "public": public, "private": private}));
    assert_eq!(codes(&a), (None, Some(2002)), "{a}");
    assert_eq!(
        text_of(one(&a["avps"], 602).unwrap()),
        "sip:scscf1.ims.test:6060"
    );
    let a = cscf.cmd(json!({"op": "lir", "public": format!("tel:+{msisdn}")}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    assert_eq!(
        text_of(one(&a["avps"], 602).unwrap()),
        "sip:scscf1.ims.test:6060"
    );
    // A de-registration from an S-CSCF that does not serve it changes nothing.
    let a = cscf.cmd(json!({"op": "sar", "public": public, "private": private,
        "server": "sip:other.ims.test", "type": 5}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    assert!(one(&a["avps"], 606).is_none());
    assert_eq!(
        s.get("/oam/serving_subs_ims").json()[imsi]["scscf"],
        "sip:scscf1.ims.test:6060"
    );

    // The operator de-registers: an RTR reaches the S-CSCF.
    let d = s.get(&format!("/oam/deregister/{imsi}"));
    assert_eq!(d.status, 200, "{}", d.text());
    let d = d.json();
    assert_eq!(d["rtr"]["outcome"], "answered", "{d}");
    assert_eq!(d["rtr"]["result_code"], 2001);
    assert!(d["ims_subscriber"]["scscf"].is_null(), "{d}");
    let got = cscf.cmd(json!({"op": "requests", "wait": 10, "count": 3}));
    assert_eq!(got["requests"].as_array().unwrap().len(), 3, "{got}");
    let rtr = &got["requests"][2];
    assert_eq!(rtr["header"]["code"], 304, "{got}");
    assert_eq!(rtr["header"]["app"], CX);
    assert_eq!(text_of(one(&rtr["avps"], 1).unwrap()), private);
    let publics: Vec<String> = all(&rtr["avps"], 601).iter().map(|p| text_of(p)).collect();
    assert!(publics.contains(&public), "{publics:?}");
    let reason = one(&rtr["avps"], 615).expect("Deregistration-Reason");
    assert_eq!(u32_of(one(&reason["avps"], 616).unwrap()), 0);
    assert_eq!(text_of(one(&rtr["avps"], 293).unwrap()), "scscf.ims.test");
    // Nobody serves it now: LIR answers an S-CSCF for unregistered services.
    let a = cscf.cmd(json!({"op": "lir", "public": public}));
    assert_eq!(codes(&a), (None, Some(2003)), "{a}");
    assert!(s.get("/oam/serving_subs_ims").json().get(imsi).is_none());

    // Without a template: the default IMS subscription.
    let imsi2 = "001010000000012";
    provision(&s, imsi2, K, OPC);
    let (msisdn2, _) = provision_ims(&s, imsi2, None);
    let a = cscf.cmd(json!({"op": "sar", "public": format!("tel:{msisdn2}"),
        "private": format!("{imsi2}@ims.mnc001.mcc001.3gppnetwork.org"), "type": 1}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let doc = parse_user_data(&a);
    assert!(
        doc["identities"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("tel:{msisdn2}"))),
        "{doc}"
    );
    cscf.stop();
    decodes_cleanly(capture, &s, &["300", "301", "302", "303", "304", "305"]);
}

/// tshark decodes every message of the capture without a malformed field
/// or an expert error, and sees each command of `codes`.
fn decodes_cleanly(capture: Capture, s: &Server, codes: &[&str]) {
    let pcap = capture.stop();
    let rows = tshark(
        &pcap,
        s.diameter.unwrap().port(),
        &["diameter.cmd.code", "_ws.malformed", "_ws.expert.severity"],
    );
    for r in &rows {
        assert!(r[1].is_empty(), "malformed: {r:?}");
        assert!(
            !r[2].split(',').any(|s| s == "8388608"),
            "expert error: {r:?}"
        );
    }
    for c in codes {
        assert!(
            rows.iter().any(|r| r[0].split(',').any(|x| x == *c)),
            "no command {c} in {rows:?}"
        );
    }
}

#[test]
fn swx_gives_eap_aka_and_eap_aka_prime_vectors_and_the_non_3gpp_profile() {
    // The independent CK'/IK' is right first: RFC 9048's case 1.
    let vectors: Value =
        serde_json::from_str(include_str!("../vectors/eap_aka_prime.json")).unwrap();
    let case = &vectors["vectors"][0];
    let ask = json!({"kind": "ck_ik_prime", "ck": case["CK"], "ik": case["IK"],
        "anid": case["access_network_name"], "sqn_xor_ak": case["SQN_xor_AK"]});
    let out = aka_tool(&ask);
    assert_eq!(
        out.trim(),
        format!(
            "ckik {} {}",
            case["CK_prime"].as_str().unwrap(),
            case["IK_prime"].as_str().unwrap()
        )
    );

    let s = Server::start(&[], &[]);
    let imsi = "001010000000021";
    let id = provision(&s, imsi, K, OPC);
    let capture = Capture::start("swx", s.diameter.unwrap().port());
    let mut aaa = Mme::connect_as(&s, "aaa.epc.test", "epc.test", &[SWX]);
    // No apn_list_swx: no non-3GPP subscription (5450), nothing issued.
    let a = aaa.cmd(json!({"op": "swx_mar", "user": imsi, "scheme": "EAP-AKA"}));
    assert_eq!(codes(&a), (None, Some(5450)), "{a}");
    let a = aaa.cmd(json!({"op": "swx_sar", "user": imsi, "type": 1}));
    assert_eq!(codes(&a), (None, Some(5450)), "{a}");
    let apn = s.get("/subscriber/imsi/001010000000021").json()["default_apn"].clone();
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{id}"),
        &json!({"apn_list_swx": apn.to_string()}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // EAP-AKA: CK and IK; the permanent NAI names the same subscriber.
    let a = aaa.cmd(json!({"op": "swx_mar", "user": imsi, "scheme": "EAP-AKA", "n": 2}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let aka = sip_items(&a, "utran", None);
    assert_eq!(aka.len(), 2);
    let nai = format!("0{imsi}@nai.epc.mnc001.mcc001.3gppnetwork.org");
    let a = aaa.cmd(json!({"op": "swx_mar", "user": nai, "scheme": "EAP-AKA"}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let mut cases = aka;
    cases.extend(sip_items(&a, "utran", None));
    // EAP-AKA': CK' and IK' for the access network name.
    let a = aaa
        .cmd(json!({"op": "swx_mar", "user": imsi, "scheme": "EAP-AKA'", "anid": "WLAN", "n": 2}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let prime = sip_items(&a, "aka_prime", Some("WLAN"));
    assert!(prime.iter().all(|c| c["scheme"] == "EAP-AKA'"));
    cases.extend(prime);
    let sqns = check_cases(&cases);
    assert!(sqns.windows(2).all(|w| w[0] < w[1]), "{sqns:?}");
    // EAP-AKA' without ANID: 5005. Another scheme: 5006.
    let a = aaa.cmd(json!({"op": "swx_mar", "user": imsi, "scheme": "EAP-AKA'"}));
    assert_eq!(codes(&a), (Some(5005), None), "{a}");
    let a = aaa.cmd(json!({"op": "swx_mar", "user": imsi, "scheme": "EAP-SIM"}));
    assert_eq!(codes(&a), (None, Some(5006)), "{a}");

    // SAR REGISTRATION: the AAA server kept, the profile from apn_list_swx.
    let a = aaa.cmd(json!({"op": "swx_sar", "user": imsi, "type": 1}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    let profile = one(&a["avps"], 1500).expect("Non-3GPP-User-Data");
    assert_eq!(u32_of(one(&profile["avps"], 1501).unwrap()), 0);
    let apns = all(&profile["avps"], 1430);
    assert_eq!(apns.len(), 1, "{profile}");
    assert_eq!(text_of(one(&apns[0]["avps"], 493).unwrap()), "internet");
    let sub = s.get("/subscriber/imsi/001010000000021").json();
    assert_eq!(sub["serving_aaa"], "aaa.epc.test", "{sub}");
    assert_eq!(sub["serving_aaa_realm"], "epc.test");
    assert!(s.get("/oam/serving_subs").json().get(imsi).is_some());

    // The profile changes: a PPR with the new one.
    let r = s.send_json(
        "PATCH",
        &format!("/subscriber/{id}"),
        r#"{"ue_ambr_dl":77000000}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = aaa.cmd(json!({"op": "requests", "wait": 10, "count": 1}));
    let ppr = &got["requests"][0];
    assert_eq!(ppr["header"]["code"], 305, "{got}");
    assert_eq!(ppr["header"]["app"], SWX);
    let profile = one(&ppr["avps"], 1500).expect("Non-3GPP-User-Data");
    let ambr = one(&profile["avps"], 1435).expect("AMBR");
    assert_eq!(u32_of(one(&ambr["avps"], 515).unwrap()), 77_000_000);

    // The operator de-registers: an SWx RTR reaches the AAA server.
    let d = s.get(&format!("/oam/deregister/{imsi}")).json();
    assert_eq!(d["rtr_swx"]["outcome"], "answered", "{d}");
    assert!(d["subscriber"].get("serving_aaa").is_none(), "{d}");
    let got = aaa.cmd(json!({"op": "requests", "wait": 10, "count": 2}));
    let rtr = &got["requests"][1];
    assert_eq!(rtr["header"]["code"], 304, "{got}");
    assert_eq!(rtr["header"]["app"], SWX);
    assert_eq!(text_of(one(&rtr["avps"], 1).unwrap()), imsi);
    // A user de-registration SAR from the AAA server clears it too.
    aaa.cmd(json!({"op": "swx_sar", "user": imsi, "type": 1}));
    let a = aaa.cmd(json!({"op": "swx_sar", "user": imsi, "type": 5}));
    assert_eq!(codes(&a), (Some(2001), None), "{a}");
    assert!(s
        .get("/subscriber/imsi/001010000000021")
        .json()
        .get("serving_aaa")
        .is_none());
    aaa.stop();
    decodes_cleanly(capture, &s, &["301", "303", "304", "305"]);
}

#[test]
fn ecr_answers_from_the_eir_rules_and_every_check_is_in_the_history() {
    let s = Server::start(&[], &[("AUTHPLANE_HSS__EIR_NO_MATCH_RESPONSE", "0")]);
    let rules = [
        (r#"{"imei":"35609204079301","regex_mode":0,"match_response_code":0}"#),
        (r#"{"imei":"35609204079302","regex_mode":0,"match_response_code":1}"#),
        (r#"{"imei":"8654[0-9]+","regex_mode":1,"match_response_code":2}"#),
        // Blacklisted for one IMSI only.
        (r#"{"imei":"35609204079303","imsi":"001010000000031","regex_mode":0,"match_response_code":1}"#),
    ];
    for r in rules {
        let a = s.send_json("PUT", "/eir/", r);
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let capture = Capture::start("s13", s.diameter.unwrap().port());
    let mut mme = Mme::connect_as(&s, "mme1.epc.test", "epc.test", &[S6A, S13]);
    let imsi = "001010000000031";
    for (imei, status) in [
        ("35609204079301", 0), // whitelisted
        ("35609204079302", 1), // blacklisted
        ("86540012345678", 2), // greylisted by a regex
        ("35609204079303", 1), // blacklisted for this IMSI
        ("99999999999999", 0), // unknown: hss.eir_no_match_response
    ] {
        let a = mme.cmd(json!({"op": "ecr", "imei": imei, "imsi": imsi, "sv": "01"}));
        assert_eq!(codes(&a), (Some(2001), None), "{a}");
        assert_eq!(
            u32_of(one(&a["avps"], 1445).expect("Equipment-Status")),
            status,
            "{imei}: {a}"
        );
    }
    // The IMSI-bound rule does not apply to another IMSI.
    let a = mme.cmd(json!({"op": "ecr", "imei": "35609204079303", "imsi": "001010000000032"}));
    assert_eq!(u32_of(one(&a["avps"], 1445).unwrap()), 0, "{a}");
    // Each check is in the history.
    let h = s.get(&format!("/eir/eir_history/{imsi}")).json();
    let seen: Vec<(String, i64)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["imei"].as_str().unwrap().to_owned(),
                e["match_response_code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("35609204079301".to_owned(), 0),
            ("35609204079302".to_owned(), 1),
            ("86540012345678".to_owned(), 2),
            ("35609204079303".to_owned(), 1),
            ("99999999999999".to_owned(), 0),
        ]
    );
    // Without User-Name: answered, nothing recorded.
    let a = mme.cmd(json!({"op": "ecr", "imei": "35609204079302"}));
    assert_eq!(u32_of(one(&a["avps"], 1445).unwrap()), 1, "{a}");
    assert_eq!(
        s.get("/eir/eir_history/35609204079302")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A rule added later applies at once (each core's list of regular
    // expressions follows the rules).
    let r = s.send_json(
        "PUT",
        "/eir/",
        r#"{"imei":"99999[0-9]+","regex_mode":1,"match_response_code":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let a = mme.cmd(json!({"op": "ecr", "imei": "99999999999999", "imsi": imsi}));
    assert_eq!(u32_of(one(&a["avps"], 1445).unwrap()), 1, "{a}");
    // A malformed IMEI: 5004, never an Equipment-Status.
    let a = mme.cmd(json!({"op": "ecr", "imei": "12ab", "imsi": imsi}));
    assert_eq!(codes(&a), (Some(5004), None), "{a}");
    assert!(one(&a["avps"], 1445).is_none());
    mme.stop();
    decodes_cleanly(capture, &s, &["324"]);
}
