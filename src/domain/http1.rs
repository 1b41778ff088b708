//! HTTP/1.1 request codec, sans-IO.
//!
//! The connection task owns a byte buffer; [`parse`] looks at what has
//! arrived so far and says either "need more" (and whether to send
//! `100 Continue`) or "here is one complete request, it used `consumed`
//! bytes". Chunked bodies are decoded in place, so a [`Request`] borrows
//! its method, path, headers and body from the connection buffer with no
//! copy. Limits are checked before the caller grows its buffer: the codec
//! never asks for more than [`Limits`] allow.
//!
//! Check, then parse (mini-redis): the head is parsed by `httparse` only
//! once it is complete; the body is framed by `Content-Length` or by
//! chunked transfer coding, and nothing here panics on any input.

use std::mem::MaybeUninit;
use std::ops::Range;

/// Longest request line (method, target, version) accepted: 414 beyond.
pub const MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// Largest request head (request line and headers): 431 beyond.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request: 431 beyond.
pub const MAX_HEADERS: usize = 64;
/// Largest request body, after chunked decoding: 413 beyond.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest chunk-size line (size and extensions) in a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// The size limits a connection enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub request_line_bytes: usize,
    pub header_bytes: usize,
    /// At most [`MAX_HEADERS`]: the parser's header array has that size.
    pub headers: usize,
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line_bytes: MAX_REQUEST_LINE_BYTES,
            header_bytes: MAX_HEADER_BYTES,
            headers: MAX_HEADERS,
            body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Request methods the services route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    /// Any other token: routes never match it, so it answers 405 or 404.
    Other,
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// The method's token as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// Why a request cannot be served. Each cause has one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request line longer than {0} bytes")]
    RequestLineTooLong(usize),
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("transfer coding not supported (only chunked)")]
    UnsupportedTransferCoding,
    #[error("HTTP version not supported")]
    UnsupportedVersion,
}

impl HttpError {
    /// The status code the server answers this error with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::RequestLineTooLong(_) => 414,
            HttpError::HeadTooLarge(_) | HttpError::TooManyHeaders(_) => 431,
            HttpError::BodyTooLarge(_) => 413,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::UnsupportedVersion => 505,
        }
    }
}

/// What [`parse`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// The request is not complete yet.
    NeedMore {
        /// The head is complete and asked for `Expect: 100-continue`: the
        /// caller sends [`CONTINUE`] once before reading the body.
        send_continue: bool,
        /// Bytes the buffer must be able to hold for the request to
        /// complete, when the codec knows (a `Content-Length` body).
        /// Never more than the limits allow.
        want_total: Option<usize>,
    },
    /// One whole request; its body (decoded if chunked) is in place.
    Complete(Parsed),
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A complete request located in the buffer (offsets, no borrows), so the
/// body can be decoded in place before the request is viewed.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    method: Method,
    http10: bool,
    path: Range<usize>,
    query: Option<Range<usize>>,
    head_len: usize,
    body: Range<usize>,
    /// Bytes of the buffer this request used (head and framed body).
    pub consumed: usize,
    /// The connection stays open after the response.
    pub keep_alive: bool,
}

impl Parsed {
    /// The request, borrowing everything from `buf` (the buffer given to
    /// [`parse`], unchanged since).
    pub fn view<'b>(&'b self, buf: &'b mut [u8]) -> Request<'b> {
        let (head, rest) = buf.split_at_mut(self.head_len.min(buf.len()));
        let head: &'b [u8] = head;
        let start = self.body.start.saturating_sub(self.head_len);
        let end = self.body.end.saturating_sub(self.head_len);
        let body = rest.get_mut(start..end).unwrap_or_default();
        Request {
            method: self.method,
            http10: self.http10,
            path: str_at(head, self.path.clone()),
            query: self.query.clone().map(|q| str_at(head, q)),
            head,
            body,
            keep_alive: self.keep_alive,
            peer: None,
            client_auth: ClientAuth::None,
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }
}

fn str_at(head: &[u8], r: Range<usize>) -> &str {
    head.get(r)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

/// One request, borrowed from the connection buffer.
#[derive(Debug)]
pub struct Request<'b> {
    pub method: Method,
    /// The request came as HTTP/1.0.
    pub http10: bool,
    /// The target's path, still percent-encoded.
    pub path: &'b str,
    /// The target's query, after `?`, still percent-encoded.
    pub query: Option<&'b str>,
    /// The whole head, already validated by the parser.
    head: &'b [u8],
    /// The body, decoded if it was chunked; mutable so that JSON can be
    /// parsed in place.
    pub body: &'b mut [u8],
    pub keep_alive: bool,
    /// The client's address (set by the connection, None in tests).
    pub peer: Option<core::net::IpAddr>,
    /// What the connection's TLS handshake proved of the client.
    pub client_auth: ClientAuth,
}

/// What a TLS listener's client-certificate check says of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate asked for, or none needed: provisioning is
    /// as `hss.lock_provisioning` says.
    #[default]
    None,
    /// The client presented a certificate the listener's CA verified: it
    /// may provision without a Provisioning-Key.
    Verified,
    /// The listener allows provisioning only to clients with a verified
    /// certificate, and this one presented none.
    Missing,
}

impl<'b> Request<'b> {
    /// The value of the first header field named `name` (ASCII case
    /// insensitive).
    ///
    /// Headers are looked up rarely, so the head (validated by the parser)
    /// is scanned here rather than indexed for every request.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        let [value] = self.headers([name]);
        value
    }

    /// The values of the first header fields named `names`, in one pass
    /// over the head.
    pub fn headers<const N: usize>(&self, names: [&str; N]) -> [Option<&'b [u8]>; N] {
        let head: &'b [u8] = self.head;
        let mut found = [None; N];
        for line in head.split(|&b| b == b'\n').skip(1) {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (n, rest) = line.split_at(colon);
            for (slot, name) in found.iter_mut().zip(names) {
                if slot.is_none() && n.eq_ignore_ascii_case(name.as_bytes()) {
                    *slot = rest.get(1..).map(trim);
                }
            }
        }
        found
    }
}

/// Whether `buf` starts with a request line `METHOD SP target SP
/// HTTP/d.d` (any version): what a 505 may answer.
fn names_a_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    !method.is_empty()
        && method.iter().all(token)
        && !target.is_empty()
        && matches!(version, [b'H', b'T', b'T', b'P', b'/', a, b'.', c] if a.is_ascii_digit() && c.is_ascii_digit())
}

/// Looks at `buf` (everything read so far on the connection, starting at
/// the first byte of a request) and finds one request.
///
/// On `Complete`, a chunked body has been decoded in place; the caller
/// serves the request, then drops `consumed` bytes from the front.
pub fn parse(buf: &mut [u8], limits: &Limits) -> Result<Progress, HttpError> {
    let head_limit = limits.header_bytes;
    // The request line: 414 when it is too long, before anything else.
    let line_window = &buf[..buf.len().min(limits.request_line_bytes + 2)];
    if !line_window.contains(&b'\n') && buf.len() > limits.request_line_bytes {
        return Err(HttpError::RequestLineTooLong(limits.request_line_bytes));
    }

    let max_headers = limits.headers.min(MAX_HEADERS);
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let window = &buf[..buf.len().min(head_limit)];
    let status = req
        .parse_with_uninit_headers(window, &mut slots[..max_headers])
        .map_err(|e| match e {
            httparse::Error::TooManyHeaders => HttpError::TooManyHeaders(max_headers),
            // 505 only for a well-formed request line naming another
            // HTTP version; anything else is not HTTP at all: 400.
            httparse::Error::Version if names_a_version(window) => HttpError::UnsupportedVersion,
            httparse::Error::Version => HttpError::Malformed("invalid request line"),
            httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
            httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
            httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
            httparse::Error::Status => HttpError::Malformed("invalid request line"),
            httparse::Error::Token => HttpError::Malformed("invalid method or target"),
        })?;
    let head_len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            if buf.len() >= head_limit {
                return Err(HttpError::HeadTooLarge(head_limit));
            }
            return Ok(Progress::NeedMore {
                send_continue: false,
                want_total: None,
            });
        }
    };

    let base = buf.as_ptr() as usize;
    let offset_of = |s: &[u8]| (s.as_ptr() as usize).saturating_sub(base);

    let method = Method::from_token(req.method.unwrap_or(""));
    let http10 = req.version == Some(0);
    let target = req.path.unwrap_or("");
    if !target.starts_with('/') {
        return Err(HttpError::Malformed(
            "request target must be an absolute path",
        ));
    }
    let target_start = offset_of(target.as_bytes());
    let (path, query) = match target.find('?') {
        Some(q) => (
            target_start..target_start + q,
            Some(target_start + q + 1..target_start + target.len()),
        ),
        None => (target_start..target_start + target.len(), None),
    };

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(h.value)?;
            if content_length.is_some_and(|c| c != n) {
                return Err(HttpError::Malformed("conflicting Content-Length fields"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let v = trim(h.value);
            if v.eq_ignore_ascii_case(b"chunked") && !chunked {
                chunked = true;
            } else if v.eq_ignore_ascii_case(b"identity") {
            } else {
                return Err(HttpError::UnsupportedTransferCoding);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if trim(h.value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(HttpError::Malformed("unsupported Expect value"));
            }
        }
    }
    let keep_alive = !close && (!http10 || keep_alive_token);
    if chunked && content_length.is_some() {
        // RFC 9112 §6.3: a request smuggling vector; refuse it.
        return Err(HttpError::Malformed(
            "both Content-Length and Transfer-Encoding",
        ));
    }

    let (body, consumed) = if chunked {
        match decode_chunked(&mut buf[head_len..], limits, false)? {
            None => {
                return Ok(Progress::NeedMore {
                    send_continue: expect_continue && buf.len() == head_len,
                    want_total: None,
                })
            }
            Some(_) => {
                let (decoded, raw) =
                    decode_chunked(&mut buf[head_len..], limits, true)?.unwrap_or((0, 0));
                (head_len..head_len + decoded, head_len + raw)
            }
        }
    } else {
        let n = content_length.unwrap_or(0);
        if n > limits.body_bytes {
            return Err(HttpError::BodyTooLarge(limits.body_bytes));
        }
        let total = head_len + n;
        if buf.len() < total {
            return Ok(Progress::NeedMore {
                send_continue: expect_continue && buf.len() == head_len,
                want_total: Some(total),
            });
        }
        (head_len..total, total)
    };

    Ok(Progress::Complete(Parsed {
        method,
        http10,
        path,
        query,
        head_len,
        body,
        consumed,
        keep_alive,
    }))
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn parse_content_length(v: &[u8]) -> Result<usize, HttpError> {
    let v = trim(v);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::Malformed("invalid Content-Length"));
    }
    Ok(v.iter()
        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')))
}

/// Decodes a chunked body at the start of `data` without changing it (for
/// a client reading an answer): the body and the raw length it took, once
/// the last chunk and trailers have arrived; `None` while incomplete.
pub fn decode_chunked_body(
    data: &[u8],
    max_body: usize,
) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let limits = Limits {
        body_bytes: max_body,
        ..Limits::default()
    };
    let mut copy = data.to_vec();
    let Some((n, raw)) = decode_chunked(&mut copy, &limits, false)? else {
        return Ok(None);
    };
    decode_chunked(&mut copy, &limits, true)?;
    copy.truncate(n);
    Ok(Some((copy, raw)))
}

/// Walks a chunked body at the start of `data`. Returns `None` while it is
/// incomplete, or `(decoded length, raw length)` once the last chunk and
/// trailers have arrived. With `compact`, also moves the chunk data down
/// to the front of `data` (call it so only once the body is complete, so
/// an incomplete body is never touched).
fn decode_chunked(
    data: &mut [u8],
    limits: &Limits,
    compact: bool,
) -> Result<Option<(usize, usize)>, HttpError> {
    let mut pos = 0usize;
    let mut out = 0usize;
    loop {
        let Some(line_end) = find_line(data, pos, MAX_CHUNK_LINE_BYTES)? else {
            return Ok(None);
        };
        let line = &data[pos..line_end];
        let size_part = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_chunk_size(trim(size_part))?;
        pos = line_end + 2;
        if size == 0 {
            break;
        }
        if out + size > limits.body_bytes {
            return Err(HttpError::BodyTooLarge(limits.body_bytes));
        }
        let Some(end) = pos.checked_add(size) else {
            return Err(HttpError::Malformed("chunk size overflow"));
        };
        if data.len() < end + 2 {
            return Ok(None);
        }
        if data.get(end..end + 2) != Some(b"\r\n".as_slice()) {
            return Err(HttpError::Malformed("chunk data not followed by CRLF"));
        }
        if compact {
            data.copy_within(pos..end, out);
        }
        out += size;
        pos = end + 2;
    }
    // Trailer fields, then the empty line.
    let mut trailer_bytes = 0usize;
    loop {
        let Some(line_end) = find_line(data, pos, limits.header_bytes)? else {
            return Ok(None);
        };
        let empty = line_end == pos;
        trailer_bytes += line_end - pos + 2;
        if trailer_bytes > limits.header_bytes {
            return Err(HttpError::HeadTooLarge(limits.header_bytes));
        }
        pos = line_end + 2;
        if empty {
            return Ok(Some((out, pos)));
        }
    }
}

/// Index of the CR of the next CRLF at or after `from`, if it has arrived
/// within `max` bytes.
fn find_line(data: &[u8], from: usize, max: usize) -> Result<Option<usize>, HttpError> {
    let rest = data.get(from..).unwrap_or_default();
    let window = &rest[..rest.len().min(max + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && window[i - 1] == b'\r' => Ok(Some(from + i - 1)),
        Some(_) => Err(HttpError::Malformed("bare LF in chunked body")),
        None if rest.len() > max => Err(HttpError::Malformed("chunk line too long")),
        None => Ok(None),
    }
}

fn parse_chunk_size(hex: &[u8]) -> Result<usize, HttpError> {
    if hex.is_empty() || hex.len() > 8 {
        return Err(HttpError::Malformed("invalid chunk size"));
    }
    hex.iter().try_fold(0usize, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(HttpError::Malformed("invalid chunk size")),
        };
        Ok(n * 16 + usize::from(d))
    })
}

/// Where the body of a response being written starts, so its length can be
/// filled in once it has been written.
#[derive(Debug)]
pub struct BodyStart {
    length_at: usize,
    body_at: usize,
}

/// Width of the `Content-Length` value reserved in a response head: ten
/// digits cover every body the server can produce.
const LENGTH_WIDTH: usize = 10;

/// The reason phrase of a status code the server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Writes a response head into `out`, with room for `Content-Length`; the
/// body follows, written straight into `out`, then [`finish`].
pub fn begin_response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    keep_alive: bool,
    extra: &[(&str, &str)],
) -> BodyStart {
    begin_response_with(out, status, content_type, keep_alive, &[], extra)
}

/// [`begin_response`] with the headers every answer of an API carries
/// (`common`) before this answer's own (`extra`).
pub fn begin_response_with(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    keep_alive: bool,
    common: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> BodyStart {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: authplane\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    for (name, value) in common.iter().chain(extra) {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    if !keep_alive {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    let length_at = out.len();
    out.extend_from_slice(&[b' '; LENGTH_WIDTH]);
    out.extend_from_slice(b"\r\n\r\n");
    BodyStart {
        length_at,
        body_at: out.len(),
    }
}

/// Fills in the length of the body written since [`begin_response`]. For a
/// HEAD request (`send_body` false) the body is then dropped: the length
/// stays that of the body a GET would have had.
pub fn finish(out: &mut Vec<u8>, start: BodyStart, send_body: bool) {
    let len = out.len().saturating_sub(start.body_at);
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(len).as_bytes();
    // Right-aligned; the spaces before it are optional whitespace (RFC 9110 §5.6.3).
    let field = out
        .get_mut(start.length_at..start.length_at + LENGTH_WIDTH)
        .unwrap_or_default();
    let pad = field.len().saturating_sub(digits.len());
    if let Some(dst) = field.get_mut(pad..) {
        dst.copy_from_slice(&digits[..dst.len().min(digits.len())]);
    }
    if !send_body {
        out.truncate(start.body_at);
    }
}

/// `application/x-www-form-urlencoded` pairs of a query string or form body.
pub fn form_pairs(input: &[u8]) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_that_is_not_http_is_400_and_another_version_505() {
        for (line, status) in [
            (&b"THIS IS NOT HTTP\r\n\r\n"[..], 400),
            (b"GET / HTTP/2.0\r\n\r\n", 505),
            (b"GET / HTTP/3.0\r\n\r\n", 505),
            (b"GET / FTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
            (b"GET / HTTP/x.y\r\n\r\n", 400),
        ] {
            let mut buf = line.to_vec();
            let got = parse(&mut buf, &Limits::default())
                .map(|_| 200)
                .unwrap_or_else(|e| e.status());
            assert_eq!(got, status, "{}", String::from_utf8_lossy(line));
        }
    }

    fn complete(buf: &mut [u8]) -> Parsed {
        match parse(buf, &Limits::default()) {
            Ok(Progress::Complete(p)) => p,
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    /// Requests of every shape the server must read: each fixture and what
    /// its body decodes to.
    const FIXTURES: &[(&[u8], &str, &[u8])] = &[
        (b"GET /oam/ping HTTP/1.1\r\nHost: x\r\n\r\n", "/oam/ping", b""),
        (
            b"PUT /auc/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ki\":\"00\"}",
            "/auc/",
            b"{\"ki\":\"00\"}",
        ),
        (
            b"POST /aaa_authorize.php?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nuser\r\n6\r\n_name=\r\n1\r\na\r\n0\r\nX-Trailer: t\r\n\r\n",
            "/aaa_authorize.php",
            b"user_name=a",
        ),
        (
            b"POST /stir/v1/signing HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
            "/stir/v1/signing",
            b"{}",
        ),
        (b"HEAD /oam/ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "/oam/ping", b""),
    ];

    #[test]
    fn every_fixture_parses_at_every_split_point() {
        for &(raw, path, body) in FIXTURES {
            for cut in 0..raw.len() {
                let mut partial = raw[..cut].to_vec();
                match parse(&mut partial, &Limits::default()) {
                    Ok(Progress::NeedMore { .. }) => {}
                    other => panic!("{path}: cut at {cut} gave {other:?}"),
                }
                // The buffer must be untouched by a NeedMore.
                assert_eq!(partial, &raw[..cut]);
            }
            let mut whole = raw.to_vec();
            let p = complete(&mut whole);
            assert_eq!(p.consumed, raw.len());
            let req = p.view(&mut whole);
            assert_eq!(req.path, path);
            assert_eq!(&*req.body, body);
        }
    }

    #[test]
    fn pipelined_requests_parse_one_at_a_time() {
        let mut buf = b"GET /a HTTP/1.1\r\n\r\nGET /b?q=1 HTTP/1.1\r\n\r\n".to_vec();
        let first = complete(&mut buf);
        assert_eq!(first.view(&mut buf).path, "/a");
        buf.drain(..first.consumed);
        let second = complete(&mut buf);
        let req = second.view(&mut buf);
        assert_eq!((req.path, req.query), ("/b", Some("q=1")));
    }

    #[test]
    fn keep_alive_rules() {
        let mut b = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(complete(&mut b).keep_alive);
        let mut b = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec();
        assert!(!complete(&mut b).keep_alive);
        let mut b = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        assert!(!complete(&mut b).keep_alive);
        let mut b = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".to_vec();
        assert!(complete(&mut b).keep_alive);
    }

    #[test]
    fn expect_continue_is_reported_once_the_head_is_in() {
        let mut b =
            b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n".to_vec();
        assert_eq!(
            parse(&mut b, &Limits::default()),
            Ok(Progress::NeedMore {
                send_continue: true,
                want_total: Some(b.len() + 5)
            })
        );
    }

    #[test]
    fn each_limit_plus_one_is_refused() {
        let limits = Limits::default();
        let long_line = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE_BYTES)
        );
        assert_eq!(
            parse(&mut long_line.into_bytes(), &limits),
            Err(HttpError::RequestLineTooLong(MAX_REQUEST_LINE_BYTES))
        );
        let big_head = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(
            parse(&mut big_head.into_bytes(), &limits),
            Err(HttpError::HeadTooLarge(MAX_HEADER_BYTES))
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse(&mut many.into_bytes(), &limits),
            Err(HttpError::TooManyHeaders(MAX_HEADERS))
        );
        let body = format!(
            "PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(
            parse(&mut body.into_bytes(), &limits),
            Err(HttpError::BodyTooLarge(MAX_BODY_BYTES))
        );
        let chunk = format!(
            "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(
            parse(&mut chunk.into_bytes(), &limits),
            Err(HttpError::BodyTooLarge(MAX_BODY_BYTES))
        );
    }

    #[test]
    fn exactly_at_the_limits_is_accepted() {
        let limits = Limits::default();
        let many: String = (0..MAX_HEADERS).map(|i| format!("X{i}: v\r\n")).collect();
        let mut many = format!("GET / HTTP/1.1\r\n{many}\r\n").into_bytes();
        assert!(matches!(
            parse(&mut many, &limits),
            Ok(Progress::Complete(_))
        ));
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            b"PUT / HTTP/1.1\r\nExpect: something\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                parse(&mut raw.to_vec(), &Limits::default()).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let mut b = b"GET / HTTP/1.1\r\nProvisioning-Key: abc \r\n\r\n".to_vec();
        let p = complete(&mut b);
        let req = p.view(&mut b);
        assert_eq!(req.header("provisioning-key"), Some(b"abc".as_slice()));
        assert_eq!(req.header("x-missing"), None);
    }

    #[test]
    fn response_length_is_filled_in_and_head_drops_the_body() {
        let mut out = Vec::new();
        let start = begin_response(&mut out, 200, "application/json", true, &[]);
        out.extend_from_slice(b"{\"result\":\"OK\"}");
        finish(&mut out, start, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length:         15\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"result\":\"OK\"}"));

        let mut out = Vec::new();
        let start = begin_response(&mut out, 200, "application/json", false, &[]);
        out.extend_from_slice(b"12345");
        finish(&mut out, start, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("Content-Length:          5\r\n\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut buf = data;
            let _ = parse(&mut buf, &Limits::default());
        }

        #[test]
        fn chunked_bodies_round_trip(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300), split in 1usize..40) {
            let mut raw = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for chunk in body.chunks(split) {
                raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                raw.extend_from_slice(chunk);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let total = raw.len();
            let p = complete(&mut raw);
            proptest::prop_assert_eq!(p.consumed, total);
            proptest::prop_assert_eq!(&*p.view(&mut raw).body, body.as_slice());
        }
    }
}
