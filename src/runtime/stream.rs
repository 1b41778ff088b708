//! Plain TCP streams for protocols other than HTTP (Diameter): a listener
//! on every core, each connection split into a read half and a write half
//! so one task can read while others write. The protocol's own loop decides
//! what the bytes mean.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;

use super::{Core, StartError};

/// Binds one `SO_REUSEPORT` listener per core on `addr` (port 0: the first
/// bind picks a free port, the others join it).
pub fn bind(addr: SocketAddr, cores: u16) -> Result<Vec<std::net::TcpListener>, StartError> {
    super::bind_listeners(addr, cores.max(1))
}

/// The read half of a connection.
pub struct Reader(OwnedReadHalf<TcpStream>);

/// The write half of a connection.
pub struct Writer(OwnedWriteHalf<TcpStream>);

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Reader {
    /// Reads into the spare capacity of `buf` (reserving `min_spare` bytes
    /// first); returns how many bytes arrived (0: the peer closed).
    pub async fn read(
        &mut self,
        mut buf: Vec<u8>,
        min_spare: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        if buf.capacity() - buf.len() < min_spare {
            buf.reserve(min_spare);
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = self.0.read(buf.slice_mut(len..cap)).await;
        (res, SliceMut::into_inner(slice))
    }
}

impl Writer {
    /// Writes all of `buf`; gives it back for reuse.
    pub async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let (res, buf) = self.0.write_all(buf).await;
        (res.map(|_| ()), buf)
    }

    /// Closes the sending side (the peer reads end of stream).
    pub async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// Accepts connections on `listener` on this core until it shuts down,
/// each served by `serve` (with the peer's and the local address) in its
/// own task.
pub fn accept_loop<F, Fut>(core: Rc<Core>, listener: std::net::TcpListener, serve: F)
where
    F: Fn(Reader, Writer, (SocketAddr, SocketAddr)) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    if monoio::utils::is_legacy() {
        let _ = listener.set_nonblocking(true);
    }
    let bound = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let listener = match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, core = core.shard.0, "cannot serve the listener");
            return;
        }
    };
    drop(monoio::spawn(async move {
        loop {
            let accepted = monoio::select! {
                r = listener.accept() => r,
                _ = core.shutdown.wait() => break,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let local = stream.local_addr().unwrap_or(bound);
                    let (r, w) = stream.into_split();
                    drop(monoio::spawn(serve(Reader(r), Writer(w), (peer, local))));
                }
                Err(e) => {
                    tracing::warn!(error = %e, core = core.shard.0, "accept failed");
                    monoio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }));
}

/// Opens a connection to `addr` (an outbound peer).
pub async fn connect(addr: SocketAddr) -> io::Result<(Reader, Writer)> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let (r, w) = stream.into_split();
    Ok((Reader(r), Writer(w)))
}

/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs both futures and returns the first to finish (the other is
/// dropped).
pub async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    monoio::select! {
        x = a => Either::Left(x),
        y = b => Either::Right(y),
    }
}

/// Sleeps for `d` on this core's timer.
pub async fn sleep(d: std::time::Duration) {
    monoio::time::sleep(d).await;
}
