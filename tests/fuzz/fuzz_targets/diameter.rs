//! Diameter from a peer: framing, the header, every AVP at every level of
//! grouping, the RFC 6733 check and the answer built from its fault, the
//! S6a values read (PLMN ids, TBCD). Never a panic.
#![no_main]

use authplane::domain::diameter::{self, dict::avp, Avps, Builder, Message};
use libfuzzer_sys::fuzz_target;

fn walk(avps: Avps<'_>, depth: usize) {
    for a in avps.flatten() {
        let _ = (a.u32(), a.u64(), a.utf8(), a.address(), a.mandatory());
        let _ = diameter::plmn_digits(a.data);
        if depth < diameter::MAX_DEPTH {
            walk(a.group(), depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = diameter::peek_header(data);
    let mut rest = data;
    while let Ok(Some(n)) = diameter::frame_len(rest, 65_536) {
        let Some(frame) = rest.get(..n) else { break };
        rest = &rest[n..];
        let Ok(m) = Message::parse(frame) else { continue };
        walk(m.avps(), 0);
        let _ = (m.text(&avp::USER_NAME), m.u32(&avp::ULR_FLAGS));
        if let Err(fault) = diameter::check(&m) {
            // The answer to it is itself a well-framed message.
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
            assert_eq!(diameter::frame_len(&answer, 1 << 24), Ok(Some(answer.len())));
            let back = Message::parse(&answer).expect("the answer parses");
            assert!(back.get(&avp::RESULT_CODE).is_some());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(t) = diameter::tbcd(text) {
            assert_eq!(t.len(), text.len().div_ceil(2));
        }
    }
});
