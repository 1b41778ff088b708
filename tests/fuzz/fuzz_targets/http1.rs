//! The HTTP/1.1 codec on arbitrary bytes: never panics; a complete request
//! never claims more bytes than it was given; every limit holds; and the
//! pipelined walk over a buffer always makes progress.
#![no_main]

use authplane::domain::http1::{parse, Limits, Progress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
