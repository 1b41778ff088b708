//! UICC command APDUs as a terminal sends them (ETSI TS 102 221, 3GPP TS
//! 31.102): the T=0 transport rules, EF.DIR and its application records,
//! SELECT by AID, and AUTHENTICATE in the 3G context with its answer.
//!
//! Sans-IO: every exchange takes a `transmit` function, so the same code
//! runs over PC/SC on the reader thread and over a virtual card in tests.

/// The file id of EF.DIR (under the MF).
pub const EF_DIR: [u8; 2] = [0x2f, 0x00];

/// Most TPDUs one APDU may take (GET RESPONSE / re-issue rounds): a card
/// that keeps asking for more is answered with an error, not a loop.
const MAX_ROUNDS: usize = 8;

/// A UICC application the server authenticates against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    Usim,
    Isim,
}

impl App {
    /// The AID prefix registered for the application (RID + PIX app code):
    /// the full AID, with the provider's part, is read from EF.DIR.
    pub fn aid_prefix(self) -> &'static [u8] {
        match self {
            App::Usim => &[0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02],
            App::Isim => &[0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            App::Usim => "USIM",
            App::Isim => "ISIM",
        }
    }

    /// `"USIM"` or `"ISIM"`, in any case.
    pub fn parse(s: &str) -> Option<App> {
        if s.eq_ignore_ascii_case("usim") {
            Some(App::Usim)
        } else if s.eq_ignore_ascii_case("isim") {
            Some(App::Isim)
        } else {
            None
        }
    }

    /// The application an AID belongs to, by prefix.
    pub fn of_aid(aid: &[u8]) -> Option<App> {
        [App::Usim, App::Isim]
            .into_iter()
            .find(|a| aid.starts_with(a.aid_prefix()))
    }
}

/// The transmission protocol the card was connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    T0,
    T1,
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl std::fmt::Debug for Response {
    // The data may be key material (CK, IK): only its length is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({} bytes, SW {:04x})", self.data.len(), self.sw)
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError<E> {
    /// The link below failed (PC/SC error, card gone).
    #[error("{0}")]
    Link(E),
    /// The card answered something that is not a response APDU.
    #[error("card protocol error: {0}")]
    Protocol(&'static str),
    /// The card refused the command with this status word.
    #[error("card status word {0:04x}")]
    Status(u16),
}

/// Sends one command APDU with pySim's transport rules and returns the
/// final response with all data gathered.
///
/// * T=0, case 4 (Lc and Le): Le is not transmitted; case 1 gets P3 = 00.
/// * `61xx` / `9Fxx`: GET RESPONSE with Le = xx, data appended.
/// * `6Cxx`: the previous TPDU again with P3 = xx.
/// * T=1: the APDU goes unchanged (the same status handling applies, for
///   cards that use it there too).
pub fn transceive<E>(
    protocol: Protocol,
    apdu: &[u8],
    transmit: &mut impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Response, ApduError<E>> {
    let [cla, ..] = *apdu else {
        return Err(ApduError::Protocol("empty command"));
    };
    let mut tpdu = match protocol {
        Protocol::T0 => t0_tpdu(apdu).ok_or(ApduError::Protocol("malformed command APDU"))?,
        Protocol::T1 => apdu.to_vec(),
    };
    let mut data = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let raw = transmit(&tpdu).map_err(ApduError::Link)?;
        let Some((&[sw1, sw2], body)) = raw.split_last_chunk::<2>().map(|(b, sw)| (sw, b)) else {
            return Err(ApduError::Protocol("response shorter than a status word"));
        };
        data.extend_from_slice(body);
        match sw1 {
            0x61 | 0x9f => tpdu = vec![cla, 0xc0, 0x00, 0x00, sw2],
            0x6c if tpdu.len() == 5 => tpdu[4] = sw2,
            _ => {
                return Ok(Response {
                    data,
                    sw: u16::from_be_bytes([sw1, sw2]),
                })
            }
        }
    }
    Err(ApduError::Protocol(
        "card asked for too many GET RESPONSE rounds",
    ))
}

/// The T=0 TPDU of a command APDU (None if its length fields disagree).
fn t0_tpdu(apdu: &[u8]) -> Option<Vec<u8>> {
    match apdu.len() {
        0..=3 => None,
        4 => Some([apdu, &[0]].concat()),
        5 => Some(apdu.to_vec()),
        n => {
            let lc = usize::from(apdu[4]);
            if n == 5 + lc {
                Some(apdu.to_vec())
            } else if n == 6 + lc {
                Some(apdu[..n - 1].to_vec())
            } else {
                None
            }
        }
    }
}

/// `transceive`, then the status word must be 9000.
pub fn exchange<E>(
    protocol: Protocol,
    apdu: &[u8],
    transmit: &mut impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, ApduError<E>> {
    let r = transceive(protocol, apdu, transmit)?;
    if r.sw == 0x9000 {
        Ok(r.data)
    } else {
        Err(ApduError::Status(r.sw))
    }
}

/// SELECT by file id under the current DF, asking for the FCP (P2 = 04).
pub fn select_fid(fid: [u8; 2]) -> Vec<u8> {
    vec![0x00, 0xa4, 0x00, 0x04, 0x02, fid[0], fid[1], 0x00]
}

/// SELECT an application by (full or partial) AID, asking for the FCP.
pub fn select_aid(aid: &[u8]) -> Option<Vec<u8>> {
    let lc = u8::try_from(aid.len()).ok().filter(|&l| l > 0 && l <= 16)?;
    let mut a = vec![0x00, 0xa4, 0x04, 0x04, lc];
    a.extend_from_slice(aid);
    a.push(0x00);
    Some(a)
}

/// READ RECORD `n` of the current EF (absolute mode) with its length.
pub fn read_record(n: u8, len: u8) -> Vec<u8> {
    vec![0x00, 0xb2, n, 0x04, len]
}

/// The record layout of a linear fixed EF from its FCP: (record length,
/// number of records).
pub fn record_layout(fcp: &[u8]) -> Option<(u8, u8)> {
    let inner = tlv_find(fcp, 0x62)?;
    let desc = tlv_find(inner, 0x82)?;
    match *desc {
        // FDB, coding, record length (2 bytes), number of records.
        [_, _, 0, len, n, ..] if len > 0 => Some((len, n)),
        [_, _, 0, len, ..] if len > 0 => {
            // No count in the descriptor: file size (tag 80) / length.
            let size = tlv_find(inner, 0x80)?;
            let size = size.iter().fold(0usize, |acc, &b| {
                acc.saturating_mul(256).saturating_add(b.into())
            });
            u8::try_from(size / usize::from(len)).ok().map(|n| (len, n))
        }
        _ => None,
    }
}

/// The AID of an EF.DIR record (`61 L 4F L AID ...`), if it has one.
pub fn dir_record_aid(record: &[u8]) -> Option<&[u8]> {
    let template = tlv_find(record, 0x61)?;
    tlv_find(template, 0x4f).filter(|aid| !aid.is_empty())
}

/// The value of the first BER-TLV with a one-byte `tag` at the top level
/// of `data` (lengths in 1, 2 or 3 bytes; FF padding ends the scan).
pub fn tlv_find(mut data: &[u8], tag: u8) -> Option<&[u8]> {
    while let [t, rest @ ..] = data {
        if *t == 0xff || *t == 0x00 {
            return None;
        }
        let (len, rest) = match *rest {
            [l, ref r @ ..] if l < 0x80 => (usize::from(l), r),
            [0x81, l, ref r @ ..] => (usize::from(l), r),
            [0x82, h, l, ref r @ ..] => (usize::from(u16::from_be_bytes([h, l])), r),
            _ => return None,
        };
        let value = rest.get(..len)?;
        if *t == tag {
            return Some(value);
        }
        data = &rest[len..];
    }
    None
}

/// The AUTHENTICATE command in the 3G security context (P2 = 81): data
/// `10 RAND 10 AUTN`, Le = 00.
pub fn authenticate(rand: &[u8; 16], autn: &[u8; 16]) -> Vec<u8> {
    let mut a = Vec::with_capacity(40);
    a.extend_from_slice(&[0x00, 0x88, 0x00, 0x81, 0x22, 0x10]);
    a.extend_from_slice(rand);
    a.push(0x10);
    a.extend_from_slice(autn);
    a.push(0x00);
    a
}

/// What a card answers to AUTHENTICATE with SW 9000 (TS 31.102 §7.1.2.1).
#[derive(Clone, PartialEq, Eq)]
pub enum AuthResult {
    /// Tag DB: RES (4 to 16 bytes), CK, IK, and Kc when the application
    /// gives one (a USIM with service n°27; an ISIM never).
    Success {
        res: Vec<u8>,
        ck: Vec<u8>,
        ik: Vec<u8>,
        kc: Option<Vec<u8>>,
    },
    /// Tag DC: synchronisation failure with AUTS.
    SyncFailure { auts: Vec<u8> },
}

impl std::fmt::Debug for AuthResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthResult::Success { .. } => f.write_str("AuthResult::Success { .. }"),
            AuthResult::SyncFailure { .. } => f.write_str("AuthResult::SyncFailure { .. }"),
        }
    }
}

impl Drop for AuthResult {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let AuthResult::Success { ck, ik, kc, .. } = self {
            ck.zeroize();
            ik.zeroize();
            if let Some(kc) = kc {
                kc.zeroize();
            }
        }
    }
}

/// Parses the data of an AUTHENTICATE answer.
pub fn parse_auth(data: &[u8]) -> Option<AuthResult> {
    fn lv(d: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&l, rest) = d.split_first()?;
        let l = usize::from(l);
        Some((rest.get(..l)?, rest.get(l..)?))
    }
    match data.split_first()? {
        (0xdb, rest) => {
            let (res, rest) = lv(rest)?;
            let (ck, rest) = lv(rest)?;
            let (ik, rest) = lv(rest)?;
            let kc = if rest.is_empty() {
                None
            } else {
                Some(lv(rest)?.0.to_vec())
            };
            if !(4..=16).contains(&res.len()) || ck.len() != 16 || ik.len() != 16 {
                return None;
            }
            Some(AuthResult::Success {
                res: res.to_vec(),
                ck: ck.to_vec(),
                ik: ik.to_vec(),
                kc,
            })
        }
        (0xdc, rest) => {
            let (auts, _) = lv(rest)?;
            (auts.len() == 14).then(|| AuthResult::SyncFailure {
                auts: auts.to_vec(),
            })
        }
        _ => None,
    }
}

/// pysim's text for a status word refusing AUTHENTICATE (its server's
/// messages, kept so existing clients see the same words).
pub fn status_message(sw: u16) -> String {
    match sw {
        0x9862 => "Card Authentication Error - Incorrect MAC".into(),
        0x6982 => "Security Status not satisfied - Card PIN enabled?".into(),
        sw => format!("Card Communication Error SW match failed! Expected 9000 and got {sw:04x}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted card: expects each TPDU in turn and gives its answer.
    fn script(
        steps: &'static [(&'static str, &'static str)],
    ) -> impl FnMut(&[u8]) -> Result<Vec<u8>, String> {
        let mut i = 0;
        move |tpdu: &[u8]| {
            let (want, answer) = steps.get(i).ok_or("unexpected TPDU")?;
            i += 1;
            assert_eq!(hex::encode(tpdu), *want, "TPDU {i}");
            Ok(hex::decode(answer).unwrap())
        }
    }

    #[test]
    fn t0_strips_le_and_follows_61xx_with_get_response() {
        let mut card = script(&[("00a40004022f00", "611c"), ("00c000001c", "6202aabb9000")]);
        let r = transceive(Protocol::T0, &select_fid(EF_DIR), &mut card).unwrap();
        assert_eq!((r.data, r.sw), (vec![0x62, 0x02, 0xaa, 0xbb], 0x9000));
    }

    #[test]
    fn t1_sends_the_apdu_unchanged() {
        let mut card = script(&[("00a40004022f0000", "62009000")]);
        let r = transceive(Protocol::T1, &select_fid(EF_DIR), &mut card).unwrap();
        assert_eq!(r.sw, 0x9000);
    }

    #[test]
    fn wrong_le_is_reissued_with_the_cards_length() {
        let mut card = script(&[("00b2010400", "6c26"), ("00b2010426", "61009000")]);
        let r = transceive(Protocol::T0, &read_record(1, 0), &mut card).unwrap();
        assert_eq!((r.data, r.sw), (vec![0x61, 0x00], 0x9000));
        // 9Fxx is a GET RESPONSE too; a case-1 APDU gets P3 = 00.
        let mut card = script(&[("0070000000", "9f02"), ("00c0000002", "01029000")]);
        let r = transceive(Protocol::T0, &[0x00, 0x70, 0x00, 0x00], &mut card).unwrap();
        assert_eq!(r.data, vec![1, 2]);
    }

    #[test]
    fn errors_are_status_words_or_protocol_errors_never_panics() {
        let mut card = script(&[("0088008122", "9862")]);
        let apdu = {
            let mut a = authenticate(&[0; 16], &[0; 16]);
            a.truncate(5);
            a
        };
        assert_eq!(
            exchange(Protocol::T0, &apdu, &mut card),
            Err(ApduError::Status(0x9862))
        );
        let mut short = |_: &[u8]| Ok::<_, String>(vec![0x90]);
        assert!(matches!(
            transceive(Protocol::T0, &[0, 0xa4, 0, 0], &mut short),
            Err(ApduError::Protocol(_))
        ));
        let mut forever = |_: &[u8]| Ok::<_, String>(vec![0x61, 0x01]);
        assert!(matches!(
            transceive(Protocol::T0, &[0, 0xa4, 0, 0], &mut forever),
            Err(ApduError::Protocol(_))
        ));
        // Length fields that disagree are refused before anything is sent.
        let mut never = |_: &[u8]| -> Result<Vec<u8>, String> { panic!("sent") };
        for bad in [&[][..], &[0, 1, 2], &[0, 0xa4, 0, 0, 5, 1]] {
            assert!(transceive(Protocol::T0, bad, &mut never).is_err());
        }
    }

    #[test]
    fn ef_dir_fcp_and_records_parse() {
        // An FCP as a UICC returns it: linear fixed, 38-byte records, 2 of them.
        let fcp = hex::decode("621a8205422100260283022f008a01058b032f06018002004c8801f0").unwrap();
        assert_eq!(record_layout(&fcp), Some((0x26, 2)));
        // Without the count in tag 82, tag 80 / record length.
        let fcp = hex::decode("620e82044221002680020098830222f0").unwrap();
        assert_eq!(record_layout(&fcp), Some((0x26, 4)));
        // Truncated or foreign FCPs give nothing (and never panic).
        for n in 0..fcp.len() {
            assert_eq!(record_layout(&fcp[..n]), None);
        }
        assert_eq!(record_layout(&[0x6f, 0x00]), None);
        let mut rec = hex::decode("61144f0ca0000000871002ff49ff058950045553494d").unwrap();
        rec.resize(38, 0xff);
        let aid = dir_record_aid(&rec).unwrap();
        assert_eq!(hex::encode(aid), "a0000000871002ff49ff0589");
        assert_eq!(App::of_aid(aid), Some(App::Usim));
        assert_eq!(dir_record_aid(&[0xff; 38]), None);
        assert_eq!(dir_record_aid(&[0x61, 0x30, 0x4f]), None);
    }

    #[test]
    fn authenticate_answers_parse() {
        // The seed's slot 0 answer from a real card.
        let data = hex::decode(concat!(
            "db08131004db2ff1ce8e",
            "10d42eb5aa085307903271b2422b698bad",
            "10485f81e6fd957fe3cad374adf12fe1ca",
            "0864d3f2a32f801214"
        ))
        .unwrap();
        let Some(AuthResult::Success {
            ref res,
            ref ck,
            ref ik,
            ref kc,
        }) = parse_auth(&data)
        else {
            panic!("not a success");
        };
        assert_eq!(hex::encode(res), "131004db2ff1ce8e");
        assert_eq!(hex::encode(ck), "d42eb5aa085307903271b2422b698bad");
        assert_eq!(hex::encode(ik), "485f81e6fd957fe3cad374adf12fe1ca");
        assert_eq!(
            kc.as_ref().map(hex::encode).as_deref(),
            Some("64d3f2a32f801214")
        );
        // No Kc (an ISIM).
        let r = parse_auth(&data[..data.len() - 9]).unwrap();
        assert!(matches!(r, AuthResult::Success { kc: None, .. }));
        let auts = hex::decode("dc0edc2a591fe072c92d7c46ecfe97e5").unwrap();
        assert!(matches!(
            parse_auth(&auts),
            Some(AuthResult::SyncFailure { .. })
        ));
        for bad in [
            &[][..],
            &[0xdb],
            &[0xdb, 0x08, 1, 2],
            &[0xdc, 0x0d],
            &data[..20],
            &[0x99],
        ] {
            assert_eq!(parse_auth(bad), None);
        }
    }

    #[test]
    fn select_aid_bounds_and_status_texts() {
        assert_eq!(
            hex::encode(select_aid(App::Usim.aid_prefix()).unwrap()),
            "00a4040407a000000087100200"
        );
        assert_eq!(select_aid(&[]), None);
        assert_eq!(select_aid(&[0; 17]), None);
        assert_eq!(App::parse("isim"), Some(App::Isim));
        assert_eq!(App::parse("sim"), None);
        assert!(status_message(0x6f00).ends_with("got 6f00."));
        assert!(status_message(0x9862).contains("Incorrect MAC"));
    }
}
