//! A small non-blocking HTTP/1.1 client on the core's executor, for
//! fetching certificates (STIR x5u) and pushing state to peers (GeoRed). One request per connection
//! (`Connection: close`), the whole exchange under one deadline, the body
//! capped. Host names are resolved off the core (getaddrinfo blocks).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use std::sync::Arc;

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// What came back.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    /// `Cache-Control` and `Expires`, as sent.
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub body: Vec<u8>,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("address {0} not allowed")]
    Forbidden(IpAddr),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed HTTP answer: {0}")]
    Malformed(&'static str),
    #[error("TLS: {0}")]
    Tls(String),
}

/// The limits and policy of a fetch.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeout: Duration,
    pub max_body: usize,
    /// Loopback, private and link-local addresses are refused unless this
    /// is set (an x5u is attacker-chosen: no probing of the inside).
    pub allow_internal: bool,
    /// The TLS client for https.
    pub tls: Arc<rustls::ClientConfig>,
}

/// A TLS client configuration trusting the Mozilla roots (webpki-roots)
/// and `extra` (DER certificates). Built once, at configuration.
pub fn tls_client_config(extra: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra {
        roots
            .add(rustls_pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("TLS root: {e}"))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| internal(IpAddr::V4(v4)))
        }
    }
}

/// Resolves `host` (an IP literal at once; a name on a helper thread).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // A thread per lookup, but never more than MAX_RESOLVING at once in
    // the process: x5u names are attacker-chosen.
    static RESOLVING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    const MAX_RESOLVING: usize = 16;
    use std::sync::atomic::Ordering;
    if RESOLVING.fetch_add(1, Ordering::AcqRel) >= MAX_RESOLVING {
        RESOLVING.fetch_sub(1, Ordering::AcqRel);
        return Err(FetchError::Resolve(format!(
            "{host}: {MAX_RESOLVING} lookups already in flight"
        )));
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let name = host.to_owned();
    let spawned = std::thread::Builder::new()
        .name("authplane-resolve".into())
        .spawn(move || {
            let r = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                .map(Iterator::collect::<Vec<_>>);
            RESOLVING.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        RESOLVING.fetch_sub(1, Ordering::AcqRel);
        return Err(FetchError::Resolve(format!("{host}: {e}")));
    }
    match rx.await {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(FetchError::Resolve(host.to_owned())),
        Ok(Err(e)) => Err(FetchError::Resolve(format!("{host}: {e}"))),
        Err(_) => Err(FetchError::Resolve(host.to_owned())),
    }
}

/// `GET http(s)://host:port/path`.
pub async fn http_get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    limits: &Limits,
) -> Result<Fetched, FetchError> {
    let req = Outgoing {
        method: "GET",
        path,
        accept: "application/x-pem-file, application/pem-certificate-chain, */*",
        headers: &[],
        body: None,
    };
    http_request(https, host, port, &req, limits).await
}

/// A request to send.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub accept: &'a str,
    /// Extra headers (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    /// Content type and body.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// One request to `http(s)://host:port` and its answer, under
/// `limits.timeout` for the whole exchange.
pub async fn http_request(
    https: bool,
    host: &str,
    port: u16,
    req: &Outgoing<'_>,
    limits: &Limits,
) -> Result<Fetched, FetchError> {
    match monoio::time::timeout(limits.timeout, get(https, host, port, req, limits)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(limits.timeout)),
    }
}

async fn get(
    https: bool,
    host: &str,
    port: u16,
    req: &Outgoing<'_>,
    limits: &Limits,
) -> Result<Fetched, FetchError> {
    let addrs = resolve(host, port).await?;
    let mut last = FetchError::Resolve(host.to_owned());
    let mut stream = None;
    for addr in addrs {
        if !limits.allow_internal && internal(addr.ip()) {
            last = FetchError::Forbidden(addr.ip());
            continue;
        }
        match monoio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = FetchError::Connect(e.to_string()),
        }
    }
    let stream = stream.ok_or(last)?;
    if https {
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| FetchError::Tls(format!("{host}: {e}")))?;
        let connector = monoio_rustls::TlsConnector::from(limits.tls.clone());
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| FetchError::Tls(e.to_string()))?;
        exchange(tls, host, port, req, limits).await
    } else {
        exchange(stream, host, port, req, limits).await
    }
}

/// One request and its answer over an open connection.
async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    mut stream: S,
    host: &str,
    port: u16,
    req: &Outgoing<'_>,
    limits: &Limits,
) -> Result<Fetched, FetchError> {
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let (method, path, accept) = (req.method, req.path, req.accept);
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: authplane\r\nAccept: {accept}\r\nConnection: close\r\n"
    )
    .into_bytes();
    for (name, value) in req.headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    match req.body {
        Some((content_type, body)) => {
            request.extend_from_slice(
                format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(body);
        }
        None => request.extend_from_slice(b"\r\n"),
    }
    let (res, _) = stream.write_all(request).await;
    res.map_err(|e| FetchError::Connect(e.to_string()))?;
    // Read to the end (the server closes), within the cap.
    let cap = limits.max_body + 16 * 1024;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        if buf.len() >= cap {
            return Err(FetchError::TooLarge(limits.max_body));
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let len = buf.len();
        let end = buf.capacity().min(cap);
        let (res, slice) = stream.read(buf.slice_mut(len..end)).await;
        buf = SliceMut::into_inner(slice);
        match res {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(FetchError::Connect(e.to_string())),
        }
        if let Some(done) = complete(&buf, limits.max_body, false)? {
            return Ok(done);
        }
    }
    complete(&buf, limits.max_body, true)?.ok_or(FetchError::Malformed("connection closed early"))
}

/// The whole answer once `buf` holds it (Content-Length or chunked).
fn complete(buf: &[u8], max_body: usize, eof: bool) -> Result<Option<Fetched>, FetchError> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(FetchError::Malformed("bad status line or headers")),
    };
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let status = r.code.unwrap_or(0);
    let rest = &buf[head..];
    let chunked =
        header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        match crate::domain::http1::decode_chunked_body(rest, max_body) {
            Ok(Some((body, _))) => body,
            Ok(None) => return Ok(None),
            Err(crate::domain::http1::HttpError::BodyTooLarge(_)) => {
                return Err(FetchError::TooLarge(max_body))
            }
            Err(_) => return Err(FetchError::Malformed("bad chunked body")),
        }
    } else if let Some(len) = header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| FetchError::Malformed("bad Content-Length"))?;
        if len > max_body {
            return Err(FetchError::TooLarge(max_body));
        }
        match rest.get(..len) {
            Some(b) => b.to_vec(),
            None => return Ok(None),
        }
    } else if eof {
        // Delimited by the close.
        rest.to_vec()
    } else {
        return Ok(None);
    };
    if body.len() > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    Ok(Some(Fetched {
        status,
        cache_control: header("cache-control"),
        expires: header("expires"),
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_complete_by_length_or_chunks() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nCache-Control: max-age=60\r\n\r\nabc";
        let f = complete(a, 100, false).unwrap().unwrap();
        assert_eq!((f.status, f.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(f.cache_control.as_deref(), Some("max-age=60"));
        assert!(complete(&a[..a.len() - 1], 100, false).unwrap().is_none());
        let c =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(complete(c, 100, false).unwrap().unwrap().body, b"abc");
        assert_eq!(complete(a, 2, false).unwrap_err(), FetchError::TooLarge(2));
        assert!(complete(b"NOPE\r\n\r\n", 10, false).is_err());
        // No length: the body ends with the connection.
        let close = b"HTTP/1.0 200 OK\r\n\r\nxyz";
        assert!(complete(close, 100, false).unwrap().is_none());
        assert_eq!(complete(close, 100, true).unwrap().unwrap().body, b"xyz");
    }

    #[test]
    fn internal_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:4860::8888"] {
            assert!(!internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
