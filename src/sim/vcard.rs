//! `authplane vcard`: the virtual USIM of `domain::usim` connected to
//! vsmartcard's vpcd (the PC/SC driver that listens for virtual cards), so
//! the server, pcscd and any PC/SC tool see a card in a reader.
//!
//! vpcd's protocol: every message both ways is a 2-byte big-endian length
//! and its payload. From vpcd, a 1-byte payload is control (00 power off,
//! 01 power on, 02 reset, 04 "send the ATR"); anything longer is a command
//! APDU, answered with `data ‖ SW1 SW2`. vpcd polls with 04 about every
//! 400 ms; a closed connection is a removed card.
//!
//! Debian's vpcd (vsmartcard 3.3) sends the length and the payload in two
//! writes; with Nagle on its side and delayed ACK on ours every APDU would
//! wait ~40 ms, so the card sets TCP_QUICKACK before every read (and
//! TCP_NODELAY, and writes each answer in one piece).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::domain::usim::{CardSpec, VirtualUsim};

/// How the card reaches vpcd.
#[derive(Debug, Clone)]
pub struct Options {
    /// vpcd's address (host:port); slot n of the Debian package listens on
    /// port 35963 + n.
    pub addr: String,
    /// Simulated card processing time per AUTHENTICATE (a real card takes
    /// tens of milliseconds).
    pub auth_delay: Duration,
    /// Stop after the first connection ends instead of reconnecting.
    pub once: bool,
}

/// Runs the card: connects to vpcd (retrying every 500 ms while it is not
/// there) and answers it until `once` or forever.
pub fn run(spec: &CardSpec, opts: &Options) -> std::io::Result<()> {
    let mut card = VirtualUsim::new(spec);
    let mut announced = false;
    loop {
        match TcpStream::connect(&opts.addr) {
            Ok(stream) => {
                announced = false;
                eprintln!("vcard: connected to vpcd at {}", opts.addr);
                let result = serve(&mut card, stream, opts);
                eprintln!(
                    "vcard: vpcd closed the connection ({}); highest SQN accepted {}",
                    match &result {
                        Ok(()) => "end of stream".to_string(),
                        Err(e) => e.to_string(),
                    },
                    card.highest_sqn()
                );
                if opts.once {
                    return result;
                }
            }
            Err(e) => {
                if !announced {
                    eprintln!("vcard: waiting for vpcd at {}: {e}", opts.addr);
                    announced = true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn quickack(stream: &TcpStream) {
    // Linux re-enables delayed ACK after a while: set it before each read.
    let _ = socket2::SockRef::from(stream).set_quickack(true);
}

fn serve(card: &mut VirtualUsim, mut stream: TcpStream, opts: &Options) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = Vec::with_capacity(300);
    loop {
        quickack(&stream);
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        quickack(&stream);
        stream.read_exact(&mut msg)?;
        let answer = match msg.as_slice() {
            [0x00] | [0x01] | [0x02] => {
                card.reset();
                continue;
            }
            [0x04] => card.atr().to_vec(),
            [_] => continue,
            apdu => {
                if apdu.get(1) == Some(&0x88) && !opts.auth_delay.is_zero() {
                    std::thread::sleep(opts.auth_delay);
                }
                card.command(apdu)
            }
        };
        let Ok(n) = u16::try_from(answer.len()) else {
            continue;
        };
        out.clear();
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&answer);
        stream.write_all(&out)?;
        zeroize::Zeroize::zeroize(&mut out);
        zeroize::Zeroize::zeroize(&mut msg);
    }
}
