//! Milenage (3GPP TS 35.206): f1, f1*, f2, f3, f4, f5, f5* and OP → OPc,
//! plus the GSM conversions c2/c3 (TS 55.205).
//!
//! One key schedule serves every vector of a request, and the five output
//! blocks of a vector (OUT1..OUT5) are encrypted in one `encrypt_blocks`
//! call, so the AES-NI pipeline has five independent blocks in flight.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use zeroize::Zeroize;

/// The outputs of one Milenage run.
#[derive(Clone, PartialEq, Eq)]
pub struct Outputs {
    /// f1: MAC-A.
    pub mac_a: [u8; 8],
    /// f1*: MAC-S.
    pub mac_s: [u8; 8],
    /// f2: RES / XRES.
    pub res: [u8; 8],
    /// f3: CK.
    pub ck: [u8; 16],
    /// f4: IK.
    pub ik: [u8; 16],
    /// f5: AK.
    pub ak: [u8; 6],
    /// f5*: AK* (resynchronisation).
    pub ak_star: [u8; 6],
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outputs { .. }")
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        self.ck.zeroize();
        self.ik.zeroize();
    }
}

/// Milenage keyed for one subscriber: the AES key schedule of Ki and OPc.
pub struct Milenage {
    cipher: Aes128,
    opc: [u8; 16],
}

impl std::fmt::Debug for Milenage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Milenage { .. }")
    }
}

impl Drop for Milenage {
    fn drop(&mut self) {
        self.opc.zeroize();
    }
}

const R: [u32; 5] = [64, 0, 32, 64, 96];

fn xor16(a: &[u8; 16], b: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// Cyclic rotation toward the most significant bit by `bits` (a multiple
/// of 8 in Milenage).
fn rot(x: &[u8; 16], bits: u32) -> [u8; 16] {
    u128::from_be_bytes(*x).rotate_left(bits).to_be_bytes()
}

/// c1..c5: 0, then 1, 2, 4, 8 in the last byte.
fn c(i: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[15] = match i {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        _ => 8,
    };
    out
}

/// OPc = E_K(OP) ⊕ OP.
pub fn opc_from_op(k: &[u8; 16], op: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(GenericArray::from_slice(k));
    let mut block = GenericArray::clone_from_slice(op);
    cipher.encrypt_block(&mut block);
    let mut out = [0u8; 16];
    for (o, (e, p)) in out.iter_mut().zip(block.iter().zip(op)) {
        *o = e ^ p;
    }
    out
}

impl Milenage {
    pub fn new(k: &[u8; 16], opc: &[u8; 16]) -> Milenage {
        Milenage {
            cipher: Aes128::new(GenericArray::from_slice(k)),
            opc: *opc,
        }
    }

    /// Every function for one RAND, SQN and AMF.
    pub fn compute(&self, rand: &[u8; 16], sqn: &[u8; 6], amf: &[u8; 2]) -> Outputs {
        let mut temp = GenericArray::clone_from_slice(&xor16(rand, &self.opc));
        self.cipher.encrypt_block(&mut temp);
        let temp: [u8; 16] = temp.into();
        let mut in1 = [0u8; 16];
        in1[..6].copy_from_slice(sqn);
        in1[6..8].copy_from_slice(amf);
        in1[8..14].copy_from_slice(sqn);
        in1[14..].copy_from_slice(amf);

        let temp_opc = xor16(&temp, &self.opc);
        let mut blocks = [GenericArray::default(); 5];
        // OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc
        blocks[0] = GenericArray::from(xor16(
            &xor16(&temp, &rot(&xor16(&in1, &self.opc), R[0])),
            &c(0),
        ));
        // OUTi = E_K(rot(TEMP ⊕ OPc, ri) ⊕ ci) ⊕ OPc, i = 2..5
        for (i, block) in blocks.iter_mut().enumerate().skip(1) {
            *block = GenericArray::from(xor16(&rot(&temp_opc, R[i]), &c(i)));
        }
        self.cipher.encrypt_blocks(&mut blocks);
        let out: [[u8; 16]; 5] = blocks.map(|b| xor16(&b.into(), &self.opc));

        let mut o = Outputs {
            mac_a: [0; 8],
            mac_s: [0; 8],
            res: [0; 8],
            ck: out[2],
            ik: out[3],
            ak: [0; 6],
            ak_star: [0; 6],
        };
        o.mac_a.copy_from_slice(&out[0][..8]);
        o.mac_s.copy_from_slice(&out[0][8..]);
        o.ak.copy_from_slice(&out[1][..6]);
        o.res.copy_from_slice(&out[1][8..]);
        o.ak_star.copy_from_slice(&out[4][..6]);
        o
    }

    /// f5*: AK* alone (to unmask SQN_MS in an AUTS).
    pub fn ak_star(&self, rand: &[u8; 16]) -> [u8; 6] {
        let mut temp = GenericArray::clone_from_slice(&xor16(rand, &self.opc));
        self.cipher.encrypt_block(&mut temp);
        let temp_opc = xor16(&temp.into(), &self.opc);
        let mut b = GenericArray::from(xor16(&rot(&temp_opc, R[4]), &c(4)));
        self.cipher.encrypt_block(&mut b);
        let out = xor16(&b.into(), &self.opc);
        let mut ak = [0u8; 6];
        ak.copy_from_slice(&out[..6]);
        ak
    }
}

/// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
pub fn autn(sqn: &[u8; 6], amf: &[u8; 2], o: &Outputs) -> [u8; 16] {
    let mut a = [0u8; 16];
    for (i, b) in a[..6].iter_mut().enumerate() {
        *b = sqn[i] ^ o.ak[i];
    }
    a[6..8].copy_from_slice(amf);
    a[8..].copy_from_slice(&o.mac_a);
    a
}

/// c2: SRES = RES[0..4] ⊕ RES[4..8] (TS 55.205, option 1).
pub fn sres(res: &[u8; 8]) -> [u8; 4] {
    [
        res[0] ^ res[4],
        res[1] ^ res[5],
        res[2] ^ res[6],
        res[3] ^ res[7],
    ]
}

/// c3: Kc = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2 (64-bit halves).
pub fn kc(ck: &[u8; 16], ik: &[u8; 16]) -> [u8; 8] {
    let mut kc = [0u8; 8];
    for (i, b) in kc.iter_mut().enumerate() {
        *b = ck[i] ^ ck[i + 8] ^ ik[i] ^ ik[i + 8];
    }
    kc
}

/// Why an AUTS is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AutsError {
    #[error("AUTS MAC-S does not verify")]
    BadMac,
}

/// Verifies an AUTS (TS 33.102 §6.3.3/6.3.5): unmasks SQN_MS with f5* and
/// checks MAC-S = f1*(SQN_MS ‖ RAND ‖ AMF* = 0000) in constant time.
/// Returns SQN_MS.
pub fn verify_auts(m: &Milenage, rand: &[u8; 16], auts: &[u8; 14]) -> Result<u64, AutsError> {
    use subtle::ConstantTimeEq;
    let ak_star = m.ak_star(rand);
    let mut sqn_ms = [0u8; 6];
    for (i, b) in sqn_ms.iter_mut().enumerate() {
        *b = auts[i] ^ ak_star[i];
    }
    let o = m.compute(rand, &sqn_ms, &[0, 0]);
    if bool::from(o.mac_s.ct_eq(&auts[6..])) {
        Ok(sqn_to_u64(&sqn_ms))
    } else {
        Err(AutsError::BadMac)
    }
}

/// Builds an AUTS as a USIM would (for tests and the load generator).
pub fn make_auts(m: &Milenage, rand: &[u8; 16], sqn_ms: u64) -> [u8; 14] {
    let sqn = sqn_bytes(sqn_ms);
    let ak_star = m.ak_star(rand);
    let o = m.compute(rand, &sqn, &[0, 0]);
    let mut auts = [0u8; 14];
    for i in 0..6 {
        auts[i] = sqn[i] ^ ak_star[i];
    }
    auts[6..].copy_from_slice(&o.mac_s);
    auts
}

/// A 48-bit SQN as 6 big-endian bytes.
pub fn sqn_bytes(sqn: u64) -> [u8; 6] {
    let b = sqn.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

pub fn sqn_to_u64(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    pub(crate) fn h<const N: usize>(v: &Value, k: &str) -> [u8; N] {
        let s = v[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} missing in {v}"));
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    fn cases(file: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(file).unwrap();
        v["vectors"].as_array().unwrap().clone()
    }

    /// Every set of TS 35.207 / 35.208 in tests/vectors/milenage.json.
    #[test]
    fn ts35_208_every_published_set() {
        let sets = cases(include_str!("../../tests/vectors/milenage.json"));
        assert!(sets.len() >= 20);
        for v in sets {
            let k = h::<16>(&v, "K");
            let opc = h::<16>(&v, "OPc");
            if v.get("OP").is_some_and(|o| o.is_string()) {
                assert_eq!(opc_from_op(&k, &h::<16>(&v, "OP")), opc, "{}: OPc", v["id"]);
            }
            let m = Milenage::new(&k, &opc);
            let o = m.compute(&h(&v, "RAND"), &h(&v, "SQN"), &h(&v, "AMF"));
            let id = &v["id"];
            assert_eq!(o.mac_a, h::<8>(&v, "f1"), "{id} f1");
            assert_eq!(o.mac_s, h::<8>(&v, "f1_star"), "{id} f1*");
            assert_eq!(o.res, h::<8>(&v, "f2"), "{id} f2");
            assert_eq!(o.ck, h::<16>(&v, "f3"), "{id} f3");
            assert_eq!(o.ik, h::<16>(&v, "f4"), "{id} f4");
            assert_eq!(o.ak, h::<6>(&v, "f5"), "{id} f5");
            assert_eq!(o.ak_star, h::<6>(&v, "f5_star"), "{id} f5*");
            assert_eq!(m.ak_star(&h(&v, "RAND")), o.ak_star);
            assert_eq!(
                autn(&h(&v, "SQN"), &h(&v, "AMF"), &o),
                h::<16>(&v["derived"], "AUTN"),
                "{id} AUTN"
            );
        }
    }

    /// TS 55.205: SRES and Kc from the Milenage outputs.
    #[test]
    fn ts55_205_gsm_milenage_every_set() {
        let sets = cases(include_str!("../../tests/vectors/gsm_milenage.json"));
        assert!(sets.len() >= 19);
        for v in sets {
            let k = h::<16>(&v, "K");
            let opc = match v.get("OPc").and_then(Value::as_str) {
                Some(_) => h::<16>(&v, "OPc"),
                None => opc_from_op(&k, &h::<16>(&v, "OP")),
            };
            let o = Milenage::new(&k, &opc).compute(&h(&v, "RAND"), &[0; 6], &[0; 2]);
            assert_eq!(o.res, h::<8>(&v, "RES"), "{}", v["id"]);
            assert_eq!(sres(&o.res), h::<4>(&v, "SRES1"), "{}", v["id"]);
            assert_eq!(kc(&o.ck, &o.ik), h::<8>(&v, "Kc"), "{}", v["id"]);
        }
    }

    /// TS 33.102 §6.3.3: every AUTS verifies, yields SQN_MS, and a MAC-S
    /// computed with the subscriber's AMF instead of 0000 does not.
    #[test]
    fn ts33_102_auts_resync() {
        let sets = cases(include_str!("../../tests/vectors/auts_resync.json"));
        for v in sets {
            let m = Milenage::new(&h(&v, "K"), &h(&v, "OPc"));
            let rand = h::<16>(&v, "RAND");
            let auts = h::<14>(&v, "AUTS");
            let sqn_ms =
                verify_auts(&m, &rand, &auts).unwrap_or_else(|e| panic!("{}: {e}", v["id"]));
            assert_eq!(sqn_ms, v["SQN_MS_int"].as_u64().unwrap(), "{}", v["id"]);
            assert_eq!(make_auts(&m, &rand, sqn_ms), auts);
            if v.get("MAC_S_if_AMF_8000_used_wrongly").is_some() {
                let mut forged = auts;
                forged[6..].copy_from_slice(&h::<8>(&v, "MAC_S_if_AMF_8000_used_wrongly"));
                assert_eq!(verify_auts(&m, &rand, &forged), Err(AutsError::BadMac));
            }
            for bit in 0..14 * 8 {
                let mut flipped = auts;
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    verify_auts(&m, &rand, &flipped).is_err(),
                    "{}: bit {bit} flipped still verifies",
                    v["id"]
                );
            }
        }
    }
}
