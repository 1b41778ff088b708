//! What each fuzz target checks, one function per target: libFuzzer runs
//! them long (`tests/fuzz/run.sh`), and the test suite replays every
//! committed seed through them (`tests/integration/fuzz_seeds.rs`), a
//! bounded smoke run with no fuzzing toolchain. Each function must never
//! panic on any input, and asserts what it says where an encoder exists.

use std::sync::OnceLock;

use authplane::aaa::rows::{Account, Connection, Customer, Nas, Rate, Route, Tariff, Vendor};
use authplane::aaa::wallet::{Cdr, Hold, Sdr};
use authplane::domain::diameter::{self, dict::avp, Avps, Builder, Message};
use authplane::domain::http1::{form_pairs, parse, Limits, Progress};
use authplane::domain::money::{self, Rating};
use authplane::domain::tcxc::{self, Cidr};
use authplane::domain::{apdu, shaken};
use authplane::hss::{
    apn::Apn, auc::Auc, charging_rule::ChargingRule, eir::EirRule, eir_history::EirHistory,
    emergency_subscriber::EmergencySubscriber, ifc_template::IfcTemplate,
    ims_subscriber::ImsSubscriber, roaming::RoamingNetwork, roaming::RoamingRule, routing::Routing,
    serving_apn::ServingApn, subscriber::Subscriber, subscriber_attributes::SubscriberAttribute,
    tft::Tft,
};
use authplane::stir::verify::{pem_certificates, ttl, CertEntry, Crl, Trust};
use authplane::storage::codec::{decode_batch, encode_batch};
use authplane::storage::record::Record;
use authplane::storage::snapshot::SnapHeader;
use authplane::storage::wal::{read_records, WalHeader};
use authplane::table::{Body, Row};

/// What a target checks of one input.
pub type Check = fn(&[u8]);

/// Every target, by name (the seed directory's).
pub const TARGETS: &[(&str, Check)] = &[
    ("http1", http1),
    ("storage", storage),
    ("rows", rows),
    ("wire", wire),
    ("aaa", aaa),
    ("diameter", diameter),
    ("x5u", x5u),
    ("bodies", bodies),
];

/// The HTTP/1.1 codec on arbitrary bytes: a complete request never claims
/// more bytes than it was given; every limit holds; the pipelined walk over
/// a buffer always makes progress; every error is a 4xx or 5xx.
pub fn http1(data: &[u8]) {
    let limits = Limits {
        request_line_bytes: 256,
        header_bytes: 1024,
        headers: 16,
        body_bytes: 2048,
    };
    let mut buf = data.to_vec();
    let mut at = 0;
    while at < buf.len() {
        match parse(&mut buf[at..], &limits) {
            Ok(Progress::Complete(p)) => {
                assert!(p.consumed > 0 && at + p.consumed <= buf.len());
                let len = buf.len();
                let req = p.view(&mut buf[at..len]);
                assert!(req.body.len() <= limits.body_bytes);
                let _ = req.header("content-type");
                at += p.consumed;
            }
            Ok(Progress::NeedMore { want_total, .. }) => {
                if let Some(w) = want_total {
                    assert!(w <= limits.header_bytes + limits.body_bytes);
                }
                break;
            }
            Err(e) => {
                assert!(e.status() >= 400);
                break;
            }
        }
    }
}

fn batch_round_trip(bytes: &[u8]) {
    if let Ok(ops) = decode_batch(bytes) {
        let mut out = Vec::new();
        if encode_batch(&ops, &mut out).is_ok() {
            assert_eq!(decode_batch(&out).ok(), Some(ops));
        }
    }
}

/// Storage decoders (what a damaged or hostile data directory holds): a
/// log's records, the batches in them, the log and snapshot headers; every
/// batch and header that decodes encodes back to what decodes the same.
pub fn storage(data: &[u8]) {
    if let Ok(h) = WalHeader::decode(data) {
        assert_eq!(WalHeader::decode(&h.encode()), Ok(h));
    }
    if let Ok(h) = SnapHeader::decode(data) {
        assert_eq!(SnapHeader::decode(&h.encode()).ok(), Some(h));
    }
    let mut seen = 0usize;
    let _ = read_records(data, |r| {
        assert!(r.end <= data.len() && r.end > seen);
        seen = r.end;
        batch_round_trip(r.payload);
    });
    batch_round_trip(data);
}

fn round_trip<R: Row + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(row) = R::decode(data) {
        let bytes = row.encode().expect("a decoded row encodes");
        assert_eq!(R::decode(&bytes).ok(), Some(row));
    }
}

/// Stored rows: the AuC's tagged record, every JSON row of the table layer
/// (HSS and AAA) and the AAA's money records; a row that decodes encodes
/// to bytes that decode to the same row.
pub fn rows(data: &[u8]) {
    if let Ok(auc) = Auc::from_bytes(data) {
        let bytes = auc.to_bytes();
        let again = Auc::from_bytes(&bytes).expect("an encoded AuC decodes");
        assert_eq!(again.to_bytes(), bytes);
    }
    round_trip::<Subscriber>(data);
    round_trip::<ImsSubscriber>(data);
    round_trip::<Apn>(data);
    round_trip::<Tft>(data);
    round_trip::<ChargingRule>(data);
    round_trip::<EirHistory>(data);
    round_trip::<ServingApn>(data);
    let _ = EirRule::decode(data);
    round_trip::<Nas>(data);
    round_trip::<Customer>(data);
    round_trip::<Account>(data);
    round_trip::<Tariff>(data);
    round_trip::<Rate>(data);
    round_trip::<Vendor>(data);
    round_trip::<Connection>(data);
    round_trip::<Route>(data);
    let _ = serde_json::from_slice::<Hold>(data);
    let _ = serde_json::from_slice::<Cdr>(data);
    let _ = serde_json::from_slice::<Sdr>(data);
}

/// What arrives besides the HTTP framing: form parameters (AAA), JSON
/// bodies, a card's AUTHENTICATE answer, STIR's Identity header, x5u URL
/// and TNAuthList, Cx identities.
pub fn wire(data: &[u8]) {
    for (k, v) in form_pairs(data) {
        let _ = (k.len(), v.len());
    }
    let mut body = data.to_vec();
    let _ = authplane::server::json_body::<serde_json::Map<String, serde_json::Value>>(&mut body);
    let _ = apdu::parse_auth(data);
    let _ = shaken::tn_auth_list_spc(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(url) = shaken::parse_url(text) {
            assert!(url.port > 0 && !url.host.is_empty() && url.path.starts_with('/'));
        }
        let tns = vec!["12155551213".to_owned()];
        let req = shaken::Request {
            from_tn: "12155551212",
            to_tns: &tns,
            time: 1_700_000_000,
            identity: text,
        };
        let _ = shaken::check(&req, 1_700_000_000, 60, |_| true);
        let user = authplane::hss::cx::user_part(text);
        assert!(text.contains(user));
    }
}

fn u32_at(d: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i + k).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// The AAA's decoders (each decoded value re-encodes to itself) and its
/// rating: the credit time granted never costs more than the balance.
pub fn aaa(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = tcxc::parse_time(text) {
            assert_eq!(tcxc::parse_time(&tcxc::format_time(t)), Ok(t), "{text:?}");
        }
        if let Some((base, n)) = tcxc::call_leg(text) {
            assert!(n >= 1 && text.starts_with(base) && text.ends_with(&n.to_string()));
        }
        if let Ok(m) = money::parse(text) {
            assert_eq!(money::parse(&money::format6(m)), Ok(m));
            assert_eq!(money::parse(&money::format_short(m)), Ok(m));
        }
        if let Ok(c) = Cidr::parse(text) {
            assert_eq!(Cidr::parse(&c.to_string()), Ok(c));
        }
        let (_, parts) = tcxc::sms_parts(text);
        assert!(parts >= 1);
        let _ = tcxc::route_safe(text);
    }
    if data.len() >= 32 {
        let r = Rating {
            price_1: i64::from(u32_at(data, 0)),
            price_n: i64::from(u32_at(data, 4)),
            interval_1: u32_at(data, 8) % 3600 + 1,
            interval_n: u32_at(data, 12) % 3600 + 1,
            connect_fee: i64::from(u32_at(data, 16)),
            free_seconds: u32_at(data, 20) % 600,
            grace_seconds: u32_at(data, 24) % 60,
        };
        let available = i64::from(u32_at(data, 28)) * 1000;
        if let Some(ct) = r.credit_time(available, 86_400) {
            assert!(ct >= 1);
            assert!(r.cost(u64::from(ct)) <= available, "{r:?} {available} {ct}");
        }
        let d = u64::from(u32_at(data, 0) % 100_000);
        assert!(r.billed_seconds(d) >= d.saturating_sub(u64::from(r.free_seconds)));
        assert!(r.cost(d) >= 0);
    }
}

fn walk(avps: Avps<'_>, depth: usize) {
    for a in avps.flatten() {
        let _ = (a.u32(), a.u64(), a.utf8(), a.address(), a.mandatory());
        let _ = diameter::plmn_digits(a.data);
        if depth < diameter::MAX_DEPTH {
            walk(a.group(), depth + 1);
        }
    }
}

/// Diameter from a peer: framing, the header, every AVP at every level of
/// grouping, the RFC 6733 check and the answer built from its fault
/// (itself a well-framed message), PLMN ids and TBCD.
pub fn diameter(data: &[u8]) {
    let _ = diameter::peek_header(data);
    let mut rest = data;
    while let Ok(Some(n)) = diameter::frame_len(rest, 65_536) {
        let Some(frame) = rest.get(..n) else { break };
        rest = &rest[n..];
        let Ok(m) = Message::parse(frame) else {
            continue;
        };
        walk(m.avps(), 0);
        let _ = (m.text(&avp::USER_NAME), m.u32(&avp::ULR_FLAGS));
        if let Err(fault) = diameter::check(&m) {
            let mut b = if fault.is_protocol_error() {
                Builder::error_answer(&m.header)
            } else {
                Builder::answer(&m.header)
            };
            b.u32(&avp::RESULT_CODE, fault.result_code);
            if let Some(f) = &fault.failed_avp {
                b.begin(&avp::FAILED_AVP).raw(f).end();
            }
            let answer = b.finish();
            assert_eq!(
                diameter::frame_len(&answer, 1 << 24),
                Ok(Some(answer.len()))
            );
            let back = Message::parse(&answer).expect("the answer parses");
            assert!(back.get(&avp::RESULT_CODE).is_some());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(t) = diameter::tbcd(text) {
            assert_eq!(t.len(), text.len().div_ceil(2));
        }
    }
}

/// The test PKI (tests/fixtures/stir): its roots, intermediate and CRLs.
fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("authplane-fuzz-x5u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let put = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("a scratch file");
            p
        };
        let roots = put(
            "roots.pem",
            include_bytes!("../../fixtures/stir/trust/sti-ca-roots.pem"),
        );
        let inter = put(
            "intermediates.pem",
            include_bytes!("../../fixtures/stir/trust/intermediates.pem"),
        );
        let crls = [
            put(
                "root.crl",
                include_bytes!("../../fixtures/stir/crl/root.crl"),
            ),
            put(
                "intermediate.crl",
                include_bytes!("../../fixtures/stir/crl/intermediate.crl"),
            ),
        ];
        Trust::load(Some(&roots), Some(&inter), &crls).expect("the test PKI loads")
    })
}

/// What an x5u URL or a CRL distribution point answers: a PEM chain whose
/// first certificate signs (parsed, its key and CRL URLs read, the chain
/// validated against the test PKI), and a CRL (DER or PEM; checked against
/// the leaf when both parse).
pub fn x5u(data: &[u8]) {
    let trust = trust();
    let _ = pem_certificates(data);
    let crl = Crl::parse(data).ok();
    if let Ok(entry) = CertEntry::parse(data) {
        let _ = entry.crl_urls();
        let _ = entry.verify(b"signing input", data);
        let _ = entry.validate(trust, 1_767_225_600);
        if let Some(crl) = &crl {
            let _ = entry.check_fetched_crl(crl, trust);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ttl(Some(text), 1_767_225_600, u64::MAX);
    }
}

/// Applies `body` to a blank `R`; a checked row round-trips.
fn create<R: Row<Env = ()> + PartialEq + std::fmt::Debug>(body: &Body) {
    let mut row = R::blank();
    if row.apply(body, &()).is_ok() && row.check().is_ok() {
        let bytes = row.encode().expect("a checked row encodes");
        assert_eq!(R::decode(&bytes).ok(), Some(row));
    }
}

/// Every table API's JSON request body as the server reads it, applied to
/// a blank row of every table (what a PUT creates) and checked; a row that
/// passes its check encodes to bytes that decode to the same row.
pub fn bodies(data: &[u8]) {
    let mut bytes = data.to_vec();
    let Ok(body) = authplane::server::json_body::<Body>(&mut bytes) else {
        return;
    };
    create::<Subscriber>(&body);
    create::<ImsSubscriber>(&body);
    create::<Apn>(&body);
    create::<Tft>(&body);
    create::<ChargingRule>(&body);
    create::<IfcTemplate>(&body);
    create::<EirHistory>(&body);
    create::<EmergencySubscriber>(&body);
    create::<RoamingNetwork>(&body);
    create::<RoamingRule>(&body);
    create::<Routing>(&body);
    create::<SubscriberAttribute>(&body);
    create::<ServingApn>(&body);
    create::<Nas>(&body);
    create::<Customer>(&body);
    create::<Account>(&body);
    create::<Tariff>(&body);
    create::<Rate>(&body);
    create::<Vendor>(&body);
    create::<Connection>(&body);
    create::<Route>(&body);
    // EIR rules compile their patterns; AuCs wrap their keys.
    let mut rule = EirRule::blank();
    if rule.apply(&body, &()).is_ok() && rule.check().is_ok() {
        let bytes = rule.encode().expect("a checked rule encodes");
        assert!(EirRule::decode(&bytes).is_ok());
    }
    let mut auc = Auc::blank();
    if auc.apply(&body, &None).is_ok() && auc.check().is_ok() {
        let bytes = auc.encode().expect("a checked AuC encodes");
        assert!(Auc::decode(&bytes).is_ok());
    }
}
