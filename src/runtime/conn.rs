//! One connection: read, feed the codec, serve each complete request in
//! order (pipelining), write the responses, repeat. The loop only moves
//! bytes; parsing is `domain::http1`, meaning is the `App`'s.

use std::io;
use std::time::Instant;

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::tls::TlsConn;
use super::{clock, App, ConnSettings, Core};
use crate::domain::api_error::ApiError;
use crate::domain::http1::{self, ClientAuth, Progress};

/// What a connection's bytes travel over: TCP, or TLS over TCP.
pub(super) trait Transport {
    /// Reads into the spare capacity of `buf`; 0 at the end of the stream.
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);
    /// Writes all of `buf`; gives it back for reuse.
    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>);
    /// Ends the stream as its protocol wants before the socket closes.
    async fn close(&mut self);
}

impl Transport for TcpStream {
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = AsyncReadRent::read(self, buf.slice_mut(len..cap)).await;
        (res, SliceMut::into_inner(slice))
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (res, buf) = AsyncWriteRentExt::write_all(self, buf).await;
        (res.map(|_| ()), buf)
    }

    async fn close(&mut self) {}
}

impl Transport for TlsConn {
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        TlsConn::read(self, buf).await
    }

    async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        TlsConn::write_all(self, buf).await
    }

    async fn close(&mut self) {
        TlsConn::close(self).await;
    }
}

/// Bytes a connection's read buffer starts with and grows by at least.
const READ_CHUNK: usize = 16 * 1024;

/// Answers 503 to a connection over the per-core limit, then closes it.
pub(super) async fn refuse<A: App>(mut stream: TcpStream, app: std::rc::Rc<A>) {
    let mut out = Vec::with_capacity(256);
    app.reject(ApiError::Overloaded, "/", &mut out);
    let _ = Transport::write_all(&mut stream, out).await;
}

/// Serves one connection until it closes, errs, times out or the core
/// shuts down; then ends its stream.
pub(super) async fn serve<A: App, S: Transport>(
    core: &Core,
    app: &A,
    mut stream: S,
    client: (std::net::IpAddr, ClientAuth),
    settings: &ConnSettings,
) {
    exchange(core, app, &mut stream, client, settings).await;
    // A client that reads nothing more must not hold the task open.
    let _ = monoio::time::timeout(CLOSE_WAIT, stream.close()).await;
}

/// How long the end of a stream (TLS's close_notify) may take to send.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

async fn exchange<A: App, S: Transport>(
    core: &Core,
    app: &A,
    stream: &mut S,
    (peer, client_auth): (std::net::IpAddr, ClientAuth),
    settings: &ConnSettings,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut continue_sent = false;
    // When the first byte of the request being read arrived.
    let mut request_began: Option<Instant> = None;
    // When the last read completed: the clock is read once per read.
    let mut received = clock::now();

    loop {
        // Serve every complete request already in the buffer, in order.
        let mut start = 0usize;
        let mut close = false;
        let mut want_total = None;
        while let Some(pending) = buf.get_mut(start..).filter(|p| !p.is_empty()) {
            match http1::parse(pending, &settings.limits) {
                Ok(Progress::Complete(parsed)) => {
                    let consumed = parsed.consumed;
                    let mut req = parsed.view(pending);
                    req.peer = Some(peer);
                    req.client_auth = client_auth;
                    if core.is_shutting_down() {
                        req.keep_alive = false;
                    }
                    close = !req.keep_alive;
                    app.serve(req, received, &mut out).await;
                    start += consumed;
                    continue_sent = false;
                    request_began = None;
                    if close {
                        break;
                    }
                }
                Ok(Progress::NeedMore {
                    send_continue,
                    want_total: want,
                }) => {
                    if send_continue && !continue_sent {
                        out.extend_from_slice(http1::CONTINUE);
                        continue_sent = true;
                    }
                    want_total = want;
                    break;
                }
                Err(e) => {
                    let path = target_of(pending);
                    app.reject(ApiError::Http(e), path, &mut out);
                    close = true;
                    break;
                }
            }
        }
        if start > 0 {
            buf.copy_within(start.., 0);
            buf.truncate(buf.len() - start);
        }

        if !out.is_empty() {
            let (res, written) = stream.write_all(out).await;
            out = written;
            out.clear();
            if res.is_err() {
                return;
            }
        }
        if close || (core.is_shutting_down() && buf.is_empty()) {
            return;
        }

        // Room for the next read, within the limits the codec enforces.
        let need = want_total.unwrap_or(0).saturating_sub(buf.len());
        let spare = buf.capacity() - buf.len();
        if spare < READ_CHUNK.max(need) {
            buf.reserve(READ_CHUNK.max(need));
        }

        let deadline = if buf.is_empty() {
            received + settings.idle_timeout
        } else {
            *request_began.get_or_insert(received) + settings.header_timeout
        };
        let len = buf.len();
        let read = stream.read(buf);
        let timed = monoio::time::timeout_at(deadline.into(), read);
        let outcome = if len == 0 {
            monoio::select! {
                r = timed => Some(r),
                _ = core.shutdown.wait() => None,
            }
        } else {
            Some(timed.await)
        };
        match outcome {
            // Shutdown while idle: close.
            None => return,
            Some(Err(_elapsed)) => {
                if len > 0 {
                    // The head (or body) did not arrive in time: 408.
                    let mut out = Vec::with_capacity(256);
                    app.reject(ApiError::HeaderTimeout, "/", &mut out);
                    let _ = stream.write_all(out).await;
                }
                return;
            }
            Some(Ok((res, back))) => {
                buf = back;
                match res {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        received = clock::now();
                        if len == 0 {
                            request_began = Some(received);
                        }
                    }
                }
            }
        }
    }
}

/// The request target of a (possibly partial) request, for choosing the
/// error shape.
fn target_of(buf: &[u8]) -> &str {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
    std::str::from_utf8(target).unwrap_or("/")
}
