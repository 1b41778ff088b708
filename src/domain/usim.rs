//! A virtual UICC with a USIM and an ISIM, as a pure state machine: command
//! APDU in, response APDU out. `authplane vcard` puts it behind vsmartcard's
//! vpcd so the whole PC/SC path runs without hardware.
//!
//! It answers what a terminal needs for authentication: SELECT (by file id
//! and by full or partial AID), READ RECORD of EF.DIR, GET RESPONSE, STATUS
//! and AUTHENTICATE (3G context with Milenage; GSM context on the USIM).
//! SQN freshness follows TS 33.102 Annex C (SEQ ‖ IND with 5 IND bits and
//! Δ = 2^28); a stale SQN is answered with AUTS. Like a real T=0 card it
//! answers data-bearing commands with `61xx` and a wrong Le with `6Cxx`.

use super::apdu::{App, Protocol};
use super::milenage::{self, Milenage};

/// IND bits of the SQN array (TS 33.102 C.3.2: a = 5, 32 entries).
const IND_BITS: u32 = 5;
/// Δ: how far ahead of the highest accepted SEQ a new SEQ may be (C.2.1).
const DELTA: u64 = 1 << 28;
/// Length of an EF.DIR record.
const DIR_RECORD_LEN: u8 = 0x26;

/// Full AIDs of the card's applications (RID, app code, provider part).
const USIM_AID: [u8; 12] = [
    0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xff, 0x49, 0xff, 0x05, 0x89,
];
const ISIM_AID: [u8; 12] = [
    0xa0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x04, 0xff, 0x49, 0xff, 0x05, 0x89,
];

/// ATRs: T=0 (TA1 = 96, T=15 global bytes, TCK) and T=1.
const ATR_T0: [u8; 22] = [
    0x3b, 0x9f, 0x96, 0x80, 0x1f, 0xc7, 0x80, 0x31, 0xe0, 0x73, 0xfe, 0x21, 0x1b, 0x63, 0x3a, 0x20,
    0x4e, 0x83, 0x00, 0x90, 0x00, 0x93,
];
const ATR_T1: [u8; 19] = [
    0x3b, 0x8f, 0x01, 0x80, 0x31, 0xe0, 0x73, 0xfe, 0x21, 0x1b, 0x63, 0x3a, 0x20, 0x4e, 0x83, 0x00,
    0x90, 0x00, 0x4c,
];

/// How the card is made.
#[derive(Clone)]
pub struct CardSpec {
    pub k: [u8; 16],
    pub opc: [u8; 16],
    /// The highest SQN the card has accepted (None: a new card, which
    /// accepts any SQN within Δ of 0, SQN 0 included, once).
    pub sqn: Option<u64>,
    pub protocol: Protocol,
    /// Answer every AUTHENTICATE with this status word (tests, demos).
    pub forced_sw: Option<u16>,
}

impl std::fmt::Debug for CardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSpec")
            .field("sqn", &self.sqn)
            .field("protocol", &self.protocol)
            .field("forced_sw", &self.forced_sw)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    Mf,
    EfDir,
    Adf(App),
}

/// The card's state.
pub struct VirtualUsim {
    milenage: Milenage,
    protocol: Protocol,
    forced_sw: Option<u16>,
    /// SEQ_MS(i) per IND value; None: never used.
    seq: [Option<u64>; 1 << IND_BITS],
    /// The highest SQN accepted (SQN_MS of an AUTS).
    highest: u64,
    current: File,
    /// The application selected (AUTHENTICATE needs one).
    adf: Option<App>,
    /// Data waiting for GET RESPONSE (T=0).
    pending: Vec<u8>,
    /// Commands answered since power-on (for statistics).
    pub commands: u64,
}

impl std::fmt::Debug for VirtualUsim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualUsim")
            .field("highest_sqn", &self.highest)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn sw(data: &[u8], sw: u16) -> Vec<u8> {
    let mut r = Vec::with_capacity(data.len() + 2);
    r.extend_from_slice(data);
    r.extend_from_slice(&sw.to_be_bytes());
    r
}

/// An FCP template (tag 62) of the given TLVs.
fn fcp(tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut inner = Vec::new();
    for (t, v) in tlvs {
        inner.push(*t);
        inner.push(u8::try_from(v.len()).unwrap_or(0));
        inner.extend_from_slice(v);
    }
    let mut out = vec![0x62, u8::try_from(inner.len()).unwrap_or(0)];
    out.extend_from_slice(&inner);
    out
}

fn dir_record(aid: &[u8; 12], label: &[u8; 4]) -> Vec<u8> {
    let mut r = vec![0x61, 0x14, 0x4f, 0x0c];
    r.extend_from_slice(aid);
    r.extend_from_slice(&[0x50, 0x04]);
    r.extend_from_slice(label);
    r.resize(usize::from(DIR_RECORD_LEN), 0xff);
    r
}

impl VirtualUsim {
    pub fn new(spec: &CardSpec) -> VirtualUsim {
        let mut seq = [None; 1 << IND_BITS];
        let highest = spec.sqn.unwrap_or(0);
        if let Some(s) = spec.sqn {
            // Every IND has seen SEQ(s): only newer SEQs are fresh.
            seq = [Some(s >> IND_BITS); 1 << IND_BITS];
        }
        VirtualUsim {
            milenage: Milenage::new(&spec.k, &spec.opc),
            protocol: spec.protocol,
            forced_sw: spec.forced_sw,
            seq,
            highest,
            current: File::Mf,
            adf: None,
            pending: Vec::new(),
            commands: 0,
        }
    }

    /// The answer to reset.
    pub fn atr(&self) -> &'static [u8] {
        match self.protocol {
            Protocol::T0 => &ATR_T0,
            Protocol::T1 => &ATR_T1,
        }
    }

    /// Power-on or reset: the MF is selected, nothing pending. The SQN
    /// state is non-volatile and survives.
    pub fn reset(&mut self) {
        self.current = File::Mf;
        self.adf = None;
        self.pending.clear();
    }

    /// The highest SQN accepted so far.
    pub fn highest_sqn(&self) -> u64 {
        self.highest
    }

    /// Answers one command APDU (as vpcd passes it: a T=0 TPDU or a T=1
    /// APDU with Le).
    pub fn command(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.commands += 1;
        let [cla, ins, p1, p2, rest @ ..] = apdu else {
            return sw(&[], 0x6700);
        };
        if *cla & 0xf0 != 0x00 && *cla & 0xf0 != 0x80 {
            return sw(&[], 0x6e00);
        }
        // Body and Le: case 2 (P3 = Le) or case 3/4 (P3 = Lc [+ Le]).
        let (data, le): (&[u8], Option<u8>) = match rest {
            [] => (&[], None),
            [p3] => (&[], Some(*p3)),
            [lc, body @ ..] => {
                let lc = usize::from(*lc);
                match body.len().checked_sub(lc) {
                    Some(0) => (body, None),
                    Some(1) => (&body[..lc], body.last().copied()),
                    _ => return sw(&[], 0x6700),
                }
            }
        };
        if *ins != 0xc0 {
            self.pending.clear();
        }
        match *ins {
            0xa4 => self.select(*p1, *p2, data),
            0xb2 => self.read_record(*p1, *p2, le),
            0xc0 => self.get_response(le.unwrap_or(0)),
            0xf2 => self.reply(self.status_fcp()),
            0x88 => self.authenticate(*p2, data),
            _ => sw(&[], 0x6d00),
        }
    }

    /// Answers data: directly on T=1, with `61xx` and GET RESPONSE on T=0.
    fn reply(&mut self, data: Vec<u8>) -> Vec<u8> {
        match self.protocol {
            Protocol::T1 => sw(&data, 0x9000),
            Protocol::T0 if data.is_empty() => sw(&[], 0x9000),
            Protocol::T0 => {
                let len = u8::try_from(data.len()).unwrap_or(0);
                self.pending = data;
                sw(&[], 0x6100 | u16::from(len))
            }
        }
    }

    fn get_response(&mut self, le: u8) -> Vec<u8> {
        if self.pending.is_empty() {
            return sw(&[], 0x6985);
        }
        let len = u8::try_from(self.pending.len()).unwrap_or(0);
        if le != len {
            return sw(&[], 0x6c00 | u16::from(len));
        }
        let data = std::mem::take(&mut self.pending);
        sw(&data, 0x9000)
    }

    fn status_fcp(&self) -> Vec<u8> {
        match self.current {
            File::Adf(app) => self.adf_fcp(app),
            _ => fcp(&[
                (0x82, &[0x78, 0x21]),
                (0x83, &[0x3f, 0x00]),
                (0x8a, &[0x05]),
            ]),
        }
    }

    fn adf_fcp(&self, app: App) -> Vec<u8> {
        let aid = match app {
            App::Usim => &USIM_AID,
            App::Isim => &ISIM_AID,
        };
        fcp(&[
            (0x82, &[0x78, 0x21]),
            (0x83, &[0x7f, 0xf0]),
            (0x84, aid),
            (0x8a, &[0x05]),
        ])
    }

    fn select(&mut self, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
        let file = match (p1, data) {
            (0x00, [0x3f, 0x00]) => File::Mf,
            (0x00, [0x2f, 0x00]) if self.current == File::Mf || self.current == File::EfDir => {
                File::EfDir
            }
            (0x04, aid) if !aid.is_empty() => {
                let found = [(App::Usim, &USIM_AID), (App::Isim, &ISIM_AID)]
                    .into_iter()
                    .find(|(_, full)| full.starts_with(aid));
                match found {
                    Some((app, _)) => File::Adf(app),
                    None => return sw(&[], 0x6a82),
                }
            }
            (0x00 | 0x04, _) => return sw(&[], 0x6a82),
            _ => return sw(&[], 0x6a86),
        };
        self.current = file;
        if let File::Adf(app) = file {
            self.adf = Some(app);
        }
        let fcp = match file {
            File::Mf | File::Adf(_) => self.status_fcp(),
            File::EfDir => fcp(&[
                (0x82, &[0x42, 0x21, 0x00, DIR_RECORD_LEN, 0x02]),
                (0x83, &[0x2f, 0x00]),
                (0x8a, &[0x05]),
                (0x80, &[0x00, 2 * DIR_RECORD_LEN]),
            ]),
        };
        match p2 {
            0x04 => self.reply(fcp),
            0x0c => sw(&[], 0x9000),
            _ => sw(&[], 0x6a86),
        }
    }

    fn read_record(&mut self, n: u8, p2: u8, le: Option<u8>) -> Vec<u8> {
        if self.current != File::EfDir {
            return sw(&[], 0x6986);
        }
        let record = match (n, p2) {
            (1, 0x04) => dir_record(&USIM_AID, b"USIM"),
            (2, 0x04) => dir_record(&ISIM_AID, b"ISIM"),
            (_, 0x04) => return sw(&[], 0x6a83),
            _ => return sw(&[], 0x6a86),
        };
        if le != Some(DIR_RECORD_LEN) {
            return sw(&[], 0x6c00 | u16::from(DIR_RECORD_LEN));
        }
        sw(&record, 0x9000)
    }

    fn authenticate(&mut self, p2: u8, data: &[u8]) -> Vec<u8> {
        let Some(app) = self.adf else {
            return sw(&[], 0x6985);
        };
        if let Some(forced) = self.forced_sw {
            return sw(&[], forced);
        }
        match (p2, app) {
            (0x81, _) => self.authenticate_3g(app, data),
            (0x80, App::Usim) => self.authenticate_gsm(data),
            _ => sw(&[], 0x9864),
        }
    }

    fn authenticate_gsm(&mut self, data: &[u8]) -> Vec<u8> {
        let [0x10, rand @ ..] = data else {
            return sw(&[], 0x6700);
        };
        let Ok(rand) = <[u8; 16]>::try_from(rand) else {
            return sw(&[], 0x6700);
        };
        let o = self.milenage.compute(&rand, &[0; 6], &[0; 2]);
        let mut out = vec![0x04];
        out.extend_from_slice(&milenage::sres(&o.res));
        out.push(0x08);
        out.extend_from_slice(&milenage::kc(&o.ck, &o.ik));
        self.reply(out)
    }

    fn authenticate_3g(&mut self, app: App, data: &[u8]) -> Vec<u8> {
        use subtle::ConstantTimeEq;
        let [0x10, rest @ ..] = data else {
            return sw(&[], 0x6700);
        };
        let (Some(rand), Some([0x10, autn @ ..])) = (rest.get(..16), rest.get(16..)) else {
            return sw(&[], 0x6700);
        };
        let (Ok(rand), Ok(autn)) = (<[u8; 16]>::try_from(rand), <[u8; 16]>::try_from(autn)) else {
            return sw(&[], 0x6700);
        };
        // AK does not depend on SQN: unmask SQN first, then check MAC-A.
        let ak = self.milenage.compute(&rand, &[0; 6], &[0; 2]).ak;
        let mut sqn = [0u8; 6];
        for (i, b) in sqn.iter_mut().enumerate() {
            *b = autn[i] ^ ak[i];
        }
        let amf = [autn[6], autn[7]];
        let o = self.milenage.compute(&rand, &sqn, &amf);
        if !bool::from(o.mac_a.ct_eq(&autn[8..])) {
            return sw(&[], 0x9862);
        }
        let sqn = milenage::sqn_to_u64(&sqn);
        if !self.fresh(sqn) {
            let auts = milenage::make_auts(&self.milenage, &rand, self.highest);
            let mut out = vec![0xdc, 0x0e];
            out.extend_from_slice(&auts);
            return self.reply(out);
        }
        let ind = usize::try_from(sqn & ((1 << IND_BITS) - 1)).unwrap_or(0);
        if let Some(slot) = self.seq.get_mut(ind) {
            *slot = Some(sqn >> IND_BITS);
        }
        self.highest = self.highest.max(sqn);
        let mut out = Vec::with_capacity(53);
        out.push(0xdb);
        out.push(0x08);
        out.extend_from_slice(&o.res);
        out.push(0x10);
        out.extend_from_slice(&o.ck);
        out.push(0x10);
        out.extend_from_slice(&o.ik);
        if app == App::Usim {
            out.push(0x08);
            out.extend_from_slice(&milenage::kc(&o.ck, &o.ik));
        }
        self.reply(out)
    }

    /// TS 33.102 C.2.2: SEQ newer than SEQ_MS(IND), and not more than Δ
    /// ahead of the highest SEQ accepted.
    fn fresh(&self, sqn: u64) -> bool {
        let seq = sqn >> IND_BITS;
        let ind = usize::try_from(sqn & ((1 << IND_BITS) - 1)).unwrap_or(0);
        let newer = match self.seq.get(ind).copied().flatten() {
            None => true,
            Some(s) => seq > s,
        };
        newer && seq.saturating_sub(self.highest >> IND_BITS) <= DELTA
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::apdu::{self, AuthResult};

    const K0: &str = "841ead87bc9d974eca1c167409357601";
    const OPC0: &str = "3211cacdd64f51c3fd3013ecd9a582a0";

    fn card(protocol: Protocol, sqn: Option<u64>) -> VirtualUsim {
        VirtualUsim::new(&CardSpec {
            k: hex::decode(K0).unwrap().try_into().unwrap(),
            opc: hex::decode(OPC0).unwrap().try_into().unwrap(),
            sqn,
            protocol,
            forced_sw: None,
        })
    }

    fn auth(c: &mut VirtualUsim, protocol: Protocol, rand: &str, autn: &str) -> apdu::Response {
        let rand: [u8; 16] = hex::decode(rand).unwrap().try_into().unwrap();
        let autn: [u8; 16] = hex::decode(autn).unwrap().try_into().unwrap();
        let mut tx = |t: &[u8]| Ok::<_, ()>(c.command(t));
        apdu::transceive(protocol, &apdu::authenticate(&rand, &autn), &mut tx).unwrap()
    }

    fn select(c: &mut VirtualUsim, protocol: Protocol, app: App) {
        let mut tx = |t: &[u8]| Ok::<_, ()>(c.command(t));
        let a = apdu::select_aid(app.aid_prefix()).unwrap();
        apdu::exchange(protocol, &a, &mut tx).unwrap();
    }

    #[test]
    fn the_seeds_real_card_exchange_is_reproduced_on_t0_and_t1() {
        for p in [Protocol::T0, Protocol::T1] {
            let mut c = card(p, None);
            select(&mut c, p, App::Usim);
            let r = auth(
                &mut c,
                p,
                "fb195c7873b20affa278887920b9dd57",
                "d420895a6aa2000089cd016f8d8ae67c",
            );
            assert_eq!(r.sw, 0x9000);
            let Some(AuthResult::Success {
                ref res,
                ref ck,
                ref ik,
                ref kc,
            }) = apdu::parse_auth(&r.data)
            else {
                panic!("no success");
            };
            assert_eq!(hex::encode(res), "131004db2ff1ce8e");
            assert_eq!(hex::encode(ck), "d42eb5aa085307903271b2422b698bad");
            assert_eq!(hex::encode(ik), "485f81e6fd957fe3cad374adf12fe1ca");
            assert_eq!(
                kc.as_ref().map(hex::encode).as_deref(),
                Some("64d3f2a32f801214")
            );
            // The same SQN again is stale: AUTS with SQN_MS = 0 that verifies.
            let r = auth(
                &mut c,
                p,
                "fb195c7873b20affa278887920b9dd57",
                "d420895a6aa2000089cd016f8d8ae67c",
            );
            let Some(AuthResult::SyncFailure { ref auts }) = apdu::parse_auth(&r.data) else {
                panic!("no sync failure");
            };
            let m = Milenage::new(
                &hex::decode(K0).unwrap().try_into().unwrap(),
                &hex::decode(OPC0).unwrap().try_into().unwrap(),
            );
            let rand = hex::decode("fb195c7873b20affa278887920b9dd57").unwrap();
            assert_eq!(
                milenage::verify_auts(
                    &m,
                    &rand.try_into().unwrap(),
                    &auts.clone().try_into().unwrap()
                ),
                Ok(0)
            );
        }
    }

    fn autn_for(c: &VirtualUsim, rand: &[u8; 16], sqn: u64) -> [u8; 16] {
        let o = c
            .milenage
            .compute(rand, &milenage::sqn_bytes(sqn), &[0x80, 0]);
        milenage::autn(&milenage::sqn_bytes(sqn), &[0x80, 0], &o)
    }

    #[test]
    fn annex_c_freshness_per_ind_and_delta() {
        let mut c = card(Protocol::T1, Some(32 * 100));
        select(&mut c, Protocol::T1, App::Usim);
        let rand = [7u8; 16];
        let try_sqn = |c: &mut VirtualUsim, sqn: u64| {
            let autn = autn_for(c, &rand, sqn);
            let r = auth(c, Protocol::T1, &hex::encode(rand), &hex::encode(autn));
            apdu::parse_auth(&r.data).map(|a| matches!(a, AuthResult::Success { .. }))
        };
        assert_eq!(try_sqn(&mut c, 32 * 100 + 3), Some(false), "same SEQ");
        assert_eq!(try_sqn(&mut c, 32 * 101 + 3), Some(true));
        assert_eq!(try_sqn(&mut c, 32 * 101 + 4), Some(true), "other IND");
        assert_eq!(try_sqn(&mut c, 32 * 101 + 3), Some(false), "replay");
        assert_eq!(c.highest_sqn(), 32 * 101 + 4);
        assert_eq!(
            try_sqn(&mut c, 32 * (101 + DELTA + 1)),
            Some(false),
            "beyond Δ"
        );
        assert_eq!(try_sqn(&mut c, 32 * (101 + DELTA)), Some(true), "at Δ");
    }

    #[test]
    fn errors_status_words_and_t0_behaviour() {
        let mut c = card(Protocol::T0, None);
        // AUTHENTICATE before any ADF is selected.
        assert_eq!(
            c.command(&apdu::authenticate(&[0; 16], &[0; 16])[..39]),
            vec![0x69, 0x85]
        );
        select(&mut c, Protocol::T0, App::Isim);
        // Wrong MAC.
        let r = auth(&mut c, Protocol::T0, &"00".repeat(16), &"00".repeat(16));
        assert_eq!(r.sw, 0x9862);
        // GSM context on the ISIM: not supported.
        assert_eq!(c.command(&[0, 0x88, 0, 0x80, 0x11, 0x10]), vec![0x67, 0x00]);
        let mut gsm = vec![0, 0x88, 0, 0x80, 0x11, 0x10];
        gsm.extend_from_slice(&[1; 16]);
        assert_eq!(c.command(&gsm), vec![0x98, 0x64]);
        // An ISIM answers without Kc.
        let rand = [9u8; 16];
        let autn = autn_for(&c, &rand, 32);
        let r = auth(&mut c, Protocol::T0, &hex::encode(rand), &hex::encode(autn));
        assert!(matches!(
            apdu::parse_auth(&r.data),
            Some(AuthResult::Success { kc: None, .. })
        ));
        // T=0: wrong Le on READ RECORD gives 6C26; GET RESPONSE with
        // nothing pending 6985; unknown INS 6D00; a bad CLA 6E00.
        let mut tx = |t: &[u8]| Ok::<_, ()>(c.command(t));
        apdu::exchange(Protocol::T0, &apdu::select_fid([0x3f, 0]), &mut tx).unwrap();
        apdu::exchange(Protocol::T0, &apdu::select_fid(apdu::EF_DIR), &mut tx).unwrap();
        assert_eq!(c.command(&apdu::read_record(1, 0)), vec![0x6c, 0x26]);
        assert_eq!(c.command(&[0, 0xc0, 0, 0, 5]), vec![0x69, 0x85]);
        assert_eq!(c.command(&[0, 0x12, 0, 0]), vec![0x6d, 0x00]);
        assert_eq!(c.command(&[0xa0, 0xa4, 0, 0]), vec![0x6e, 0x00]);
        assert_eq!(c.command(&[0, 0xa4]), vec![0x67, 0x00]);
        assert_eq!(c.command(&[0, 0xa4, 0, 4, 9, 1]), vec![0x67, 0x00]);
    }

    #[test]
    fn forced_status_word_answers_every_authenticate() {
        let mut c = VirtualUsim::new(&CardSpec {
            forced_sw: Some(0x9865),
            ..CardSpec {
                k: [0; 16],
                opc: [0; 16],
                sqn: None,
                protocol: Protocol::T0,
                forced_sw: None,
            }
        });
        select(&mut c, Protocol::T0, App::Usim);
        let r = auth(&mut c, Protocol::T0, &"00".repeat(16), &"00".repeat(16));
        assert_eq!(r.sw, 0x9865);
    }

    #[test]
    fn ef_dir_lists_both_applications_through_the_client_code() {
        let mut c = card(Protocol::T0, None);
        let mut tx = |t: &[u8]| Ok::<_, ()>(c.command(t));
        let fcp = apdu::exchange(Protocol::T0, &apdu::select_fid(apdu::EF_DIR), &mut tx).unwrap();
        let (len, n) = apdu::record_layout(&fcp).unwrap();
        let aids: Vec<Option<App>> = (1..=n)
            .map(|i| {
                let rec =
                    apdu::exchange(Protocol::T0, &apdu::read_record(i, len), &mut tx).unwrap();
                apdu::dir_record_aid(&rec).and_then(App::of_aid)
            })
            .collect();
        assert_eq!(aids, vec![Some(App::Usim), Some(App::Isim)]);
    }

    proptest::proptest! {
        #[test]
        fn any_command_gets_a_status_word_and_no_panic(
            apdus in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..48), 1..8)
        ) {
            for p in [Protocol::T0, Protocol::T1] {
                let mut c = card(p, None);
                for a in &apdus {
                    proptest::prop_assert!(c.command(a).len() >= 2);
                }
            }
        }
    }
}
