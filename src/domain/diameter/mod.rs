//! Diameter (RFC 6733) without I/O: framing, a message's header and AVPs
//! read in place from the connection's buffer, a check of the whole
//! message against the dictionary ([`dict`]) that says how to answer a
//! malformed one, and a builder that writes lengths once the contents are
//! known.
//!
//! Every function is total: any input gives a value or an error, never a
//! panic.

pub mod dict;

use dict::{Def, Kind};

/// Bytes of a message header.
pub const HEADER_LEN: usize = 20;
/// The only Diameter version.
pub const VERSION: u8 = 1;
/// Grouped AVPs nested deeper than this are refused (a message is
/// checked recursively; this bounds the work and the stack).
pub const MAX_DEPTH: usize = 8;
/// AVPs one message may carry, all levels counted.
pub const MAX_AVPS: usize = 4096;

/// Command flags.
pub mod flag {
    pub const REQUEST: u8 = 0x80;
    pub const PROXIABLE: u8 = 0x40;
    pub const ERROR: u8 = 0x20;
    pub const RETRANSMIT: u8 = 0x10;
}

/// AVP flags.
pub mod avp_flag {
    pub const VENDOR: u8 = 0x80;
    pub const MANDATORY: u8 = 0x40;
}

/// Result codes of RFC 6733 used here.
pub mod result {
    pub const SUCCESS: u32 = 2001;
    pub const COMMAND_UNSUPPORTED: u32 = 3001;
    pub const UNABLE_TO_DELIVER: u32 = 3002;
    pub const APPLICATION_UNSUPPORTED: u32 = 3007;
    pub const INVALID_HDR_BITS: u32 = 3008;
    pub const INVALID_AVP_BITS: u32 = 3009;
    pub const UNKNOWN_PEER: u32 = 3010;
    pub const AVP_UNSUPPORTED: u32 = 5001;
    pub const INVALID_AVP_VALUE: u32 = 5004;
    pub const MISSING_AVP: u32 = 5005;
    pub const NO_COMMON_APPLICATION: u32 = 5010;
    pub const UNSUPPORTED_VERSION: u32 = 5011;
    pub const UNABLE_TO_COMPLY: u32 = 5012;
    pub const INVALID_AVP_LENGTH: u32 = 5014;
    pub const INVALID_MESSAGE_LENGTH: u32 = 5015;
}

/// Application ids.
pub mod app {
    /// Diameter common messages (CER, DWR, DPR).
    pub const BASE: u32 = 0;
    pub const CX: u32 = 16_777_216;
    pub const S6A: u32 = 16_777_251;
    pub const S13: u32 = 16_777_252;
    pub const SWX: u32 = 16_777_265;
    /// The relay application id (RFC 6733 §2.4).
    pub const RELAY: u32 = 0xffff_ffff;
}

/// Command codes.
pub mod command {
    pub const CAPABILITIES_EXCHANGE: u32 = 257;
    pub const DEVICE_WATCHDOG: u32 = 280;
    pub const DISCONNECT_PEER: u32 = 282;
    pub const UPDATE_LOCATION: u32 = 316;
    pub const CANCEL_LOCATION: u32 = 317;
    pub const AUTHENTICATION_INFORMATION: u32 = 318;
    pub const PURGE_UE: u32 = 321;
    pub const NOTIFY: u32 = 323;
    pub const ME_IDENTITY_CHECK: u32 = 324;
    /// Cx and SWx (TS 29.229, TS 29.273).
    pub const USER_AUTHORIZATION: u32 = 300;
    pub const SERVER_ASSIGNMENT: u32 = 301;
    pub const LOCATION_INFO: u32 = 302;
    pub const MULTIMEDIA_AUTH: u32 = 303;
    pub const REGISTRATION_TERMINATION: u32 = 304;
    pub const PUSH_PROFILE: u32 = 305;
}

/// The 3GPP Experimental-Result-Codes of TS 29.272, 29.229 and 29.273.
pub mod experimental {
    /// Cx successes: the UAR's and SAR's registration states, the LIR's
    /// unregistered services.
    pub const FIRST_REGISTRATION: u32 = 2001;
    pub const SUBSEQUENT_REGISTRATION: u32 = 2002;
    pub const UNREGISTERED_SERVICE: u32 = 2003;
    pub const USER_UNKNOWN: u32 = 5001;
    pub const IDENTITIES_DONT_MATCH: u32 = 5002;
    pub const IDENTITY_NOT_REGISTERED: u32 = 5003;
    pub const ROAMING_NOT_ALLOWED: u32 = 5004;
    pub const AUTH_SCHEME_NOT_SUPPORTED: u32 = 5006;
    pub const IN_ASSIGNMENT_TYPE: u32 = 5007;
    pub const EQUIPMENT_UNKNOWN: u32 = 5422;
    pub const USER_NO_NON_3GPP_SUBSCRIPTION: u32 = 5450;
    pub const UNKNOWN_EPS_SUBSCRIPTION: u32 = 5420;
    pub const RAT_NOT_ALLOWED: u32 = 5421;
    pub const AUTHENTICATION_DATA_UNAVAILABLE: u32 = 4181;
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    /// The whole message, header included.
    pub length: u32,
    pub flags: u8,
    /// 24 bits.
    pub code: u32,
    pub app_id: u32,
    pub hop_by_hop: u32,
    pub end_to_end: u32,
}

impl Header {
    pub fn is_request(&self) -> bool {
        self.flags & flag::REQUEST != 0
    }

    pub fn is_error(&self) -> bool {
        self.flags & flag::ERROR != 0
    }

    fn read(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Header {
            version: b[0],
            length: word(0) & 0x00ff_ffff,
            flags: b[4],
            code: word(4) & 0x00ff_ffff,
            app_id: word(8),
            hop_by_hop: word(12),
            end_to_end: word(16),
        })
    }
}

/// Why the byte stream cannot be cut into messages: the connection is
/// answered (when the header could be read) and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("Diameter version {0} is not supported (only 1)")]
    Version(u8),
    #[error("message length {0} is not a multiple of 4 of at least 20 bytes")]
    Length(u32),
    #[error("message of {length} bytes is over the limit of {max}")]
    TooLong { length: u32, max: usize },
}

impl FrameError {
    /// The result code that answers it.
    pub fn result_code(&self) -> u32 {
        match self {
            FrameError::Version(_) => result::UNSUPPORTED_VERSION,
            FrameError::Length(_) | FrameError::TooLong { .. } => result::INVALID_MESSAGE_LENGTH,
        }
    }
}

/// The length of the message at the start of `buf`: `Ok(None)` until its
/// header has arrived.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(h) = Header::read(buf) else {
        return Ok(None);
    };
    if h.version != VERSION {
        return Err(FrameError::Version(h.version));
    }
    let len = h.length as usize;
    if len < HEADER_LEN || !len.is_multiple_of(4) {
        return Err(FrameError::Length(h.length));
    }
    if len > max {
        return Err(FrameError::TooLong {
            length: h.length,
            max,
        });
    }
    Ok(Some(len))
}

/// The header of a (possibly partial or damaged) message, to answer it.
pub fn peek_header(buf: &[u8]) -> Option<Header> {
    Header::read(buf)
}

/// One message read in place.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub header: Header,
    /// The AVPs (everything after the header).
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// Reads the message that is exactly `buf` (as cut by [`frame_len`]).
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, FrameError> {
        let header = Header::read(buf).ok_or(FrameError::Length(0))?;
        if header.version != VERSION {
            return Err(FrameError::Version(header.version));
        }
        if header.length as usize != buf.len() || !buf.len().is_multiple_of(4) {
            return Err(FrameError::Length(header.length));
        }
        Ok(Message {
            header,
            body: buf.get(HEADER_LEN..).unwrap_or_default(),
        })
    }

    /// The top-level AVPs.
    pub fn avps(&self) -> Avps<'a> {
        Avps { rest: self.body }
    }

    /// The first top-level AVP `def` (a malformed one reads as absent:
    /// [`check`] has refused such a message before any handler reads it).
    pub fn get(&self, def: &Def) -> Option<Avp<'a>> {
        self.avps().find_def(def)
    }

    /// Every top-level AVP `def`.
    pub fn all(&self, def: &'a Def) -> impl Iterator<Item = Avp<'a>> + 'a {
        self.avps().filter_map(Result::ok).filter(|a| a.is(def))
    }

    /// A UTF-8 top-level AVP's text.
    pub fn text(&self, def: &Def) -> Option<&'a str> {
        self.get(def).and_then(|a| a.utf8())
    }

    /// An Unsigned32 (or Enumerated) top-level AVP's value.
    pub fn u32(&self, def: &Def) -> Option<u32> {
        self.get(def).and_then(|a| a.u32())
    }
}

/// One AVP read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avp<'a> {
    pub code: u32,
    pub flags: u8,
    /// 0 without the vendor flag.
    pub vendor: u32,
    pub data: &'a [u8],
    /// The AVP as received, header included, padding excluded.
    pub raw: &'a [u8],
}

impl<'a> Avp<'a> {
    pub fn is(&self, def: &Def) -> bool {
        self.code == def.code && self.vendor == def.vendor
    }

    pub fn mandatory(&self) -> bool {
        self.flags & avp_flag::MANDATORY != 0
    }

    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.data.try_into().ok()?))
    }

    pub fn u64(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.data.try_into().ok()?))
    }

    pub fn utf8(&self) -> Option<&'a str> {
        std::str::from_utf8(self.data).ok()
    }

    /// The AVPs of a grouped AVP.
    pub fn group(&self) -> Avps<'a> {
        Avps { rest: self.data }
    }

    /// The first AVP `def` of a grouped AVP.
    pub fn get(&self, def: &Def) -> Option<Avp<'a>> {
        self.group().find_def(def)
    }

    /// An Address AVP's IP address bytes (4 or 16).
    pub fn address(&self) -> Option<&'a [u8]> {
        match self.data {
            [0, 1, rest @ ..] if rest.len() == 4 => Some(rest),
            [0, 2, rest @ ..] if rest.len() == 16 => Some(rest),
            _ => None,
        }
    }
}

/// Why an AVP cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvpError<'a> {
    /// The AVP's header as far as it arrived.
    pub head: &'a [u8],
}

/// The AVPs of a message or grouped AVP, in order.
#[derive(Debug, Clone, Copy)]
pub struct Avps<'a> {
    rest: &'a [u8],
}

impl<'a> Avps<'a> {
    fn find_def(self, def: &Def) -> Option<Avp<'a>> {
        self.map_while(Result::ok).find(|a| a.is(def))
    }
}

impl<'a> Iterator for Avps<'a> {
    type Item = Result<Avp<'a>, AvpError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let fail = |head: &'a [u8]| {
            Some(Err(AvpError {
                head: head.get(..head.len().min(12)).unwrap_or(head),
            }))
        };
        let Some(h) = b.get(..8) else {
            self.rest = &[];
            return fail(b);
        };
        let code = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let flags = h[4];
        let len = u32::from_be_bytes([0, h[5], h[6], h[7]]) as usize;
        let (vendor, head_len) = if flags & avp_flag::VENDOR != 0 {
            match b.get(8..12) {
                Some(v) => (u32::from_be_bytes([v[0], v[1], v[2], v[3]]), 12),
                None => {
                    self.rest = &[];
                    return fail(b);
                }
            }
        } else {
            (0, 8)
        };
        let (Some(raw), true) = (b.get(..len), len >= head_len) else {
            self.rest = &[];
            return fail(b);
        };
        let padded = len.next_multiple_of(4);
        self.rest = b.get(padded..).unwrap_or_default();
        Some(Ok(Avp {
            code,
            flags,
            vendor,
            data: raw.get(head_len..).unwrap_or_default(),
            raw,
        }))
    }
}

/// What is wrong with a message, and how RFC 6733 answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub result_code: u32,
    /// The offending AVP for the answer's Failed-AVP (well formed: for a
    /// bad length, its header with no data).
    pub failed_avp: Option<Vec<u8>>,
    /// Why, for the answer's Error-Message and the log.
    pub why: String,
}

impl Fault {
    fn new(result_code: u32, why: impl Into<String>) -> Fault {
        Fault {
            result_code,
            failed_avp: None,
            why: why.into(),
        }
    }

    /// Whether the answer carries the E bit (protocol errors, 3xxx).
    pub fn is_protocol_error(&self) -> bool {
        (3000..4000).contains(&self.result_code)
    }
}

/// A bad-length AVP for Failed-AVP: its header with its length set to the
/// header alone.
fn header_only(head: &[u8]) -> Vec<u8> {
    let vendor = head.get(4).is_some_and(|f| f & avp_flag::VENDOR != 0) && head.len() >= 12;
    let n = if vendor { 12 } else { 8 };
    let mut out = vec![0u8; n];
    for (o, i) in out.iter_mut().zip(head) {
        *o = *i;
    }
    if let Some(f) = out.get_mut(4) {
        if !vendor {
            *f &= !avp_flag::VENDOR;
        }
    }
    let len = (n as u32).to_be_bytes();
    out[5..8].copy_from_slice(&len[1..]);
    out
}

/// Checks a request: header bits, every AVP's framing at every level of
/// grouping, fixed-size values, and that every AVP with the M bit is one
/// this dictionary knows. The first fault found is returned.
pub fn check(msg: &Message<'_>) -> Result<(), Fault> {
    let h = msg.header;
    if h.is_request() && h.is_error() {
        return Err(Fault::new(
            result::INVALID_HDR_BITS,
            "the E bit is set on a request",
        ));
    }
    let mut count = 0usize;
    check_avps(msg.avps(), 0, &mut count)
}

fn check_avps(avps: Avps<'_>, depth: usize, count: &mut usize) -> Result<(), Fault> {
    for avp in avps {
        let avp = avp.map_err(|e| Fault {
            result_code: result::INVALID_AVP_LENGTH,
            failed_avp: Some(header_only(e.head)),
            why: "an AVP's length overruns its message or group".into(),
        })?;
        *count += 1;
        if *count > MAX_AVPS {
            return Err(Fault::new(
                result::UNABLE_TO_COMPLY,
                format!("more than {MAX_AVPS} AVPs"),
            ));
        }
        let failed = |code: u32, why: String| Fault {
            result_code: code,
            failed_avp: Some(pad(avp.raw)),
            why,
        };
        if avp.flags & avp_flag::VENDOR != 0 && avp.vendor == 0 {
            return Err(failed(
                result::INVALID_AVP_BITS,
                format!("AVP {} has the V bit with vendor 0", avp.code),
            ));
        }
        let Some(def) = dict::lookup(avp.code, avp.vendor) else {
            if avp.mandatory() {
                return Err(failed(
                    result::AVP_UNSUPPORTED,
                    format!(
                        "AVP {} (vendor {}) has the M bit and is not supported",
                        avp.code, avp.vendor
                    ),
                ));
            }
            continue;
        };
        let size_ok = match def.kind {
            Kind::U32 | Kind::I32 | Kind::Enum | Kind::Time => avp.data.len() == 4,
            Kind::U64 => avp.data.len() == 8,
            Kind::Address => avp.data.len() >= 2,
            Kind::Octets | Kind::Utf8 | Kind::Ident | Kind::Grouped => true,
        };
        if !size_ok {
            return Err(Fault {
                result_code: result::INVALID_AVP_LENGTH,
                failed_avp: Some(header_only(avp.raw)),
                why: format!("{} has a data length of {}", def.name, avp.data.len()),
            });
        }
        if matches!(def.kind, Kind::Utf8 | Kind::Ident) && avp.utf8().is_none() {
            return Err(failed(
                result::INVALID_AVP_VALUE,
                format!("{} is not UTF-8", def.name),
            ));
        }
        if def.kind == Kind::Grouped {
            if depth + 1 >= MAX_DEPTH {
                return Err(failed(
                    result::INVALID_AVP_VALUE,
                    format!("grouped AVPs nested deeper than {MAX_DEPTH}"),
                ));
            }
            check_avps(avp.group(), depth + 1, count)?;
        }
    }
    Ok(())
}

/// An AVP's bytes padded to 4.
fn pad(raw: &[u8]) -> Vec<u8> {
    let mut v = raw.to_vec();
    v.resize(raw.len().next_multiple_of(4), 0);
    v
}

/// Builds a message: AVPs are appended, groups opened and closed, and
/// every length is written when its end is known.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Builder {
    /// A request (R bit set, plus `flags`).
    pub fn request(code: u32, app_id: u32, flags: u8, hop_by_hop: u32, end_to_end: u32) -> Self {
        Self::with_header(flag::REQUEST | flags, code, app_id, hop_by_hop, end_to_end)
    }

    /// The answer to a request: its code, application, ids and P bit.
    pub fn answer(req: &Header) -> Self {
        Self::with_header(
            req.flags & flag::PROXIABLE,
            req.code,
            req.app_id,
            req.hop_by_hop,
            req.end_to_end,
        )
    }

    /// The answer to a request carrying a protocol error (E bit).
    pub fn error_answer(req: &Header) -> Self {
        let mut b = Self::answer(req);
        if let Some(f) = b.buf.get_mut(4) {
            *f |= flag::ERROR;
        }
        b
    }

    fn with_header(flags: u8, code: u32, app_id: u32, hbh: u32, e2e: u32) -> Self {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(&[VERSION, 0, 0, 0]);
        let c = code.to_be_bytes();
        buf.extend_from_slice(&[flags, c[1], c[2], c[3]]);
        buf.extend_from_slice(&app_id.to_be_bytes());
        buf.extend_from_slice(&hbh.to_be_bytes());
        buf.extend_from_slice(&e2e.to_be_bytes());
        Builder {
            buf,
            open: Vec::new(),
        }
    }

    fn head(&mut self, def: &Def) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&def.code.to_be_bytes());
        let mut flags = if def.mandatory {
            avp_flag::MANDATORY
        } else {
            0
        };
        if def.vendor != 0 {
            flags |= avp_flag::VENDOR;
        }
        self.buf.extend_from_slice(&[flags, 0, 0, 0]);
        if def.vendor != 0 {
            self.buf.extend_from_slice(&def.vendor.to_be_bytes());
        }
        start
    }

    /// Writes the length of the AVP at `start` and pads it.
    fn close(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        let l = len.to_be_bytes();
        if let Some(slot) = self.buf.get_mut(start + 5..start + 8) {
            slot.copy_from_slice(&l[1..]);
        }
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }

    /// An AVP with `data` as its value.
    pub fn bytes(&mut self, def: &Def, data: &[u8]) -> &mut Self {
        let start = self.head(def);
        self.buf.extend_from_slice(data);
        self.close(start);
        self
    }

    pub fn text(&mut self, def: &Def, s: &str) -> &mut Self {
        self.bytes(def, s.as_bytes())
    }

    pub fn u32(&mut self, def: &Def, v: u32) -> &mut Self {
        self.bytes(def, &v.to_be_bytes())
    }

    pub fn u64(&mut self, def: &Def, v: u64) -> &mut Self {
        self.bytes(def, &v.to_be_bytes())
    }

    /// An Address AVP (IPv4 or IPv6).
    pub fn address(&mut self, def: &Def, ip: &[u8]) -> &mut Self {
        let family: u16 = if ip.len() == 16 { 2 } else { 1 };
        let start = self.head(def);
        self.buf.extend_from_slice(&family.to_be_bytes());
        self.buf.extend_from_slice(ip);
        self.close(start);
        self
    }

    /// An AVP copied as received (Proxy-Info, Failed-AVP contents).
    pub fn raw(&mut self, raw: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(raw);
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
        self
    }

    /// Opens a grouped AVP; AVPs until [`Builder::end`] go inside it.
    pub fn begin(&mut self, def: &Def) -> &mut Self {
        let start = self.head(def);
        self.open.push(start);
        self
    }

    /// Closes the innermost open group.
    pub fn end(&mut self) -> &mut Self {
        if let Some(start) = self.open.pop() {
            self.close(start);
        }
        self
    }

    /// The AVPs written so far (every group closed), to be copied into
    /// another message with [`Builder::raw`].
    pub fn avps(&self) -> &[u8] {
        self.buf.get(HEADER_LEN..).unwrap_or_default()
    }

    /// The message, every open group closed and its length written.
    pub fn finish(mut self) -> Vec<u8> {
        while !self.open.is_empty() {
            self.end();
        }
        let len = (self.buf.len() as u32).to_be_bytes();
        if let Some(slot) = self.buf.get_mut(1..4) {
            slot.copy_from_slice(&len[1..]);
        }
        self.buf
    }
}

/// Digits in TBCD (TS 29.002): two per byte, low nibble first, an odd
/// count padded with F. None for a non-digit.
pub fn tbcd(digits: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(digits.len().div_ceil(2));
    for pair in digits.as_bytes().chunks(2) {
        let d = |c: u8| c.is_ascii_digit().then(|| c - b'0');
        let lo = d(*pair.first()?)?;
        let hi = match pair.get(1) {
            Some(&c) => d(c)?,
            None => 0xf,
        };
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// A PLMN id (TS 24.008 §10.5.1.13, 3 bytes) as MCC and MNC digits.
pub fn plmn_digits(id: &[u8]) -> Option<(String, String)> {
    let [a, b, c]: [u8; 3] = id.try_into().ok()?;
    let digit = |n: u8| (n <= 9).then(|| char::from(b'0' + n));
    let mcc: String = [a & 0xf, a >> 4, b & 0xf]
        .into_iter()
        .map(digit)
        .collect::<Option<_>>()?;
    let mut mnc: String = [c & 0xf, c >> 4]
        .into_iter()
        .map(digit)
        .collect::<Option<_>>()?;
    match b >> 4 {
        0xf => {}
        n => mnc.push(digit(n)?),
    }
    Some((mcc, mnc))
}

#[cfg(test)]
mod tests {
    use super::dict::avp;
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = Builder::request(318, 16777251, flag::PROXIABLE, 7, 9);
        b.text(&avp::SESSION_ID, "mme;1;2")
            .u32(&avp::AUTH_SESSION_STATE, 1)
            .text(&avp::USER_NAME, "001010000000001")
            .begin(&avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO)
            .u32(&avp::NUMBER_OF_REQUESTED_VECTORS, 3)
            .u32(&avp::IMMEDIATE_RESPONSE_PREFERRED, 0)
            .end()
            .bytes(&avp::VISITED_PLMN_ID, &[0x00, 0xf1, 0x10]);
        b.finish()
    }

    #[test]
    fn a_built_message_reads_back_with_its_groups() {
        let bytes = sample();
        assert_eq!(frame_len(&bytes, 65536), Ok(Some(bytes.len())));
        assert_eq!(bytes.len() % 4, 0);
        let m = Message::parse(&bytes).unwrap();
        assert!(m.header.is_request());
        assert_eq!(
            (m.header.code, m.header.app_id, m.header.hop_by_hop),
            (318, 16777251, 7)
        );
        check(&m).unwrap();
        assert_eq!(m.text(&avp::SESSION_ID), Some("mme;1;2"));
        let req = m.get(&avp::REQUESTED_EUTRAN_AUTHENTICATION_INFO).unwrap();
        assert_eq!(
            req.get(&avp::NUMBER_OF_REQUESTED_VECTORS)
                .and_then(|a| a.u32()),
            Some(3)
        );
        let plmn = m.get(&avp::VISITED_PLMN_ID).unwrap();
        assert_eq!(plmn_digits(plmn.data), Some(("001".into(), "01".into())));
        // The vendor flag and M bit as the dictionary says.
        let v = m.get(&avp::VISITED_PLMN_ID).unwrap();
        assert_eq!(v.vendor, 10415);
        assert!(v.mandatory());
    }

    /// A hand-assembled CER as RFC 6733 lays it out (not from the builder).
    #[test]
    fn a_hand_assembled_message_is_read() {
        let mut m = vec![
            1, 0, 0, 0, 0x80, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2,
        ];
        // Origin-Host "mme" (8 + 3, padded to 12), Auth-Application-Id.
        m.extend_from_slice(&[0, 0, 1, 8, 0x40, 0, 0, 11, b'm', b'm', b'e', 0]);
        m.extend_from_slice(&[0, 0, 1, 2, 0x40, 0, 0, 12, 1, 0, 0, 0x23]);
        let n = m.len() as u8;
        m[3] = n;
        let msg = Message::parse(&m).unwrap();
        assert_eq!(msg.header.code, 257);
        check(&msg).unwrap();
        assert_eq!(msg.text(&avp::ORIGIN_HOST), Some("mme"));
        assert_eq!(msg.u32(&avp::AUTH_APPLICATION_ID), Some(16777251));
    }

    #[test]
    fn framing_errors_are_named() {
        assert_eq!(frame_len(&[1, 0, 0], 100), Ok(None));
        let mut h = [0u8; 20];
        h[0] = 2;
        assert_eq!(frame_len(&h, 100), Err(FrameError::Version(2)));
        h[0] = 1;
        h[3] = 19;
        assert_eq!(frame_len(&h, 100), Err(FrameError::Length(19)));
        h[3] = 22;
        assert_eq!(frame_len(&h, 100), Err(FrameError::Length(22)));
        h[2] = 1;
        h[3] = 0;
        assert!(matches!(
            frame_len(&h, 100),
            Err(FrameError::TooLong { length: 256, .. })
        ));
    }

    #[test]
    fn malformed_messages_get_the_rfc_answer() {
        // An unknown AVP with the M bit: 5001 with it as Failed-AVP.
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        b.raw(&[0, 0, 0x30, 0x39, 0x40, 0, 0, 9, 0xaa]);
        let bytes = b.finish();
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::AVP_UNSUPPORTED);
        assert_eq!(
            f.failed_avp.as_deref(),
            Some(&[0, 0, 0x30, 0x39, 0x40, 0, 0, 9, 0xaa, 0, 0, 0][..])
        );
        // Without the M bit it is ignored.
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        b.raw(&[0, 0, 0x30, 0x39, 0, 0, 0, 9, 0xaa]);
        let bytes = b.finish();
        check(&Message::parse(&bytes).unwrap()).unwrap();
        // An AVP overrunning the message: 5014.
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        b.raw(&[0, 0, 1, 8, 0x40, 0, 0, 200, b'x', 0, 0, 0]);
        let bytes = b.finish();
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::INVALID_AVP_LENGTH);
        assert_eq!(
            f.failed_avp.as_deref(),
            Some(&[0, 0, 1, 8, 0x40, 0, 0, 8][..])
        );
        // An Unsigned32 of 3 bytes: 5014.
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        b.bytes(&avp::AUTH_SESSION_STATE, &[0, 0, 1]);
        let bytes = b.finish();
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::INVALID_AVP_LENGTH);
        // The E bit on a request: 3008.
        let mut bytes = Builder::request(318, 16777251, 0, 1, 1).finish();
        bytes[4] |= flag::ERROR;
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::INVALID_HDR_BITS);
        assert!(f.is_protocol_error());
        // The V bit with vendor 0: 3009.
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        b.raw(&[0, 0, 1, 8, 0xc0, 0, 0, 12, 0, 0, 0, 0]);
        let bytes = b.finish();
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::INVALID_AVP_BITS);
    }

    #[test]
    fn groups_nested_too_deep_are_refused() {
        let mut b = Builder::request(318, 16777251, 0, 1, 1);
        for _ in 0..MAX_DEPTH + 2 {
            b.begin(&avp::PROXY_INFO);
        }
        let bytes = b.finish();
        let f = check(&Message::parse(&bytes).unwrap()).unwrap_err();
        assert_eq!(f.result_code, result::INVALID_AVP_VALUE);
    }

    #[test]
    fn tbcd_and_plmn() {
        assert_eq!(tbcd("12345"), Some(vec![0x21, 0x43, 0xf5]));
        assert_eq!(tbcd("1234"), Some(vec![0x21, 0x43]));
        assert_eq!(tbcd("12a"), None);
        // MCC 310, MNC 410 (three digits).
        assert_eq!(
            plmn_digits(&[0x13, 0x00, 0x14]),
            Some(("310".into(), "410".into()))
        );
        assert_eq!(plmn_digits(&[0x13, 0x00]), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_framed_parsed_and_checked_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)
        ) {
            if let Ok(Some(n)) = frame_len(&bytes, 4096) {
                if let Some(b) = bytes.get(..n) {
                    if let Ok(m) = Message::parse(b) {
                        let _ = check(&m);
                        for a in m.avps().flatten() {
                            let _ = (a.u32(), a.utf8(), a.address(), a.group().count());
                        }
                    }
                }
            }
        }

        #[test]
        fn a_checked_avp_survives_a_rebuild(s in "[a-z0-9.;]{0,40}", v in proptest::num::u32::ANY) {
            let mut b = Builder::request(316, 16777251, 0, v, v);
            b.text(&avp::SESSION_ID, &s).begin(&avp::SUBSCRIPTION_DATA).u32(&avp::ACCESS_RESTRICTION_DATA, v).end();
            let bytes = b.finish();
            let m = Message::parse(&bytes).unwrap();
            proptest::prop_assert!(check(&m).is_ok());
            proptest::prop_assert_eq!(m.text(&avp::SESSION_ID), Some(s.as_str()));
            let sd = m.get(&avp::SUBSCRIPTION_DATA).unwrap();
            proptest::prop_assert_eq!(sd.get(&avp::ACCESS_RESTRICTION_DATA).and_then(|a| a.u32()), Some(v));
        }
    }
}
