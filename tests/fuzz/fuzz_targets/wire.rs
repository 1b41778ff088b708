//! What arrives from the network besides the HTTP framing: form
//! parameters (AAA), JSON bodies (every API), a card's AUTHENTICATE
//! answer (APDU), and STIR's Identity header, x5u URL and TNAuthList.
//! Never a panic.
#![no_main]

use authplane::domain::http1::form_pairs;
use authplane::domain::{apdu, shaken};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
    }
});
