//! The key derivations that follow Milenage: the generic 3GPP KDF
//! (TS 33.220 Annex B.2: HMAC-SHA-256 over FC ‖ P0 ‖ L0 ‖ P1 ‖ L1 …),
//! KASME (TS 33.401 A.2), CK'/IK' (TS 33.402 A.2), the EAP-AKA' keys
//! (RFC 9048 §3.3), and the 5G-AKA values (TS 33.501 A.2, A.4–A.7).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// KDF(key, FC ‖ P0 ‖ L0 ‖ P1 ‖ L1 ‖ …) with 2-byte big-endian lengths.
pub fn kdf(key: &[u8], fc: u8, params: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(&[fc]);
    for p in params {
        mac.update(p);
        mac.update(&(p.len() as u16).to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}

fn ck_ik(ck: &[u8; 16], ik: &[u8; 16]) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(ck);
    k[16..].copy_from_slice(ik);
    k
}

/// The 3-octet PLMN identity of MCC and MNC (TS 24.008 §10.5.1.13):
/// MCC2‖MCC1, MNC3‖MCC3 (MNC3 = F for a 2-digit MNC), MNC2‖MNC1.
/// `None` unless MCC is 3 digits and MNC 2 or 3.
pub fn plmn_id(mcc: &str, mnc: &str) -> Option<[u8; 3]> {
    let d = |s: &str| -> Option<Vec<u8>> {
        s.bytes()
            .map(|b| b.is_ascii_digit().then(|| b - b'0'))
            .collect()
    };
    let mcc = d(mcc).filter(|m| m.len() == 3)?;
    let mnc = d(mnc).filter(|m| m.len() == 2 || m.len() == 3)?;
    let mnc3 = if mnc.len() == 3 { mnc[2] } else { 0xf };
    Some([
        mcc[1] << 4 | mcc[0],
        mnc3 << 4 | mcc[2],
        mnc[1] << 4 | mnc[0],
    ])
}

/// KASME = KDF(CK ‖ IK, 0x10, SN id, SQN ⊕ AK).
pub fn kasme(ck: &[u8; 16], ik: &[u8; 16], sn_id: &[u8; 3], sqn_xor_ak: &[u8; 6]) -> [u8; 32] {
    kdf(&ck_ik(ck, ik), 0x10, &[sn_id, sqn_xor_ak])
}

/// CK' ‖ IK' = KDF(CK ‖ IK, 0x20, access network name, SQN ⊕ AK).
pub fn ck_ik_prime(
    ck: &[u8; 16],
    ik: &[u8; 16],
    network_name: &[u8],
    sqn_xor_ak: &[u8; 6],
) -> ([u8; 16], [u8; 16]) {
    let out = kdf(&ck_ik(ck, ik), 0x20, &[network_name, sqn_xor_ak]);
    let mut ckp = [0u8; 16];
    let mut ikp = [0u8; 16];
    ckp.copy_from_slice(&out[..16]);
    ikp.copy_from_slice(&out[16..]);
    (ckp, ikp)
}

/// The EAP-AKA' keys (RFC 9048 §3.3): MK = PRF'(IK' ‖ CK', "EAP-AKA'" ‖
/// Identity), split into K_encr, K_aut, K_re, MSK, EMSK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EapAkaPrimeKeys {
    pub k_encr: [u8; 16],
    pub k_aut: [u8; 32],
    pub k_re: [u8; 32],
    pub msk: [u8; 64],
    pub emsk: [u8; 64],
}

pub fn eap_aka_prime_keys(
    ck_prime: &[u8; 16],
    ik_prime: &[u8; 16],
    identity: &[u8],
) -> EapAkaPrimeKeys {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(ik_prime);
    key[16..].copy_from_slice(ck_prime);
    let mut s = b"EAP-AKA'".to_vec();
    s.extend_from_slice(identity);
    // PRF'(K, S) = T1 ‖ T2 ‖ …, Ti = HMAC(K, Ti-1 ‖ S ‖ i)
    let mut mk = Vec::with_capacity(224);
    let mut t: Vec<u8> = Vec::new();
    let mut i = 1u8;
    while mk.len() < 208 {
        let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
            break;
        };
        mac.update(&t);
        mac.update(&s);
        mac.update(&[i]);
        t = mac.finalize().into_bytes().to_vec();
        mk.extend_from_slice(&t);
        i += 1;
    }
    mk.resize(208, 0);
    let mut k = EapAkaPrimeKeys {
        k_encr: [0; 16],
        k_aut: [0; 32],
        k_re: [0; 32],
        msk: [0; 64],
        emsk: [0; 64],
    };
    k.k_encr.copy_from_slice(&mk[..16]);
    k.k_aut.copy_from_slice(&mk[16..48]);
    k.k_re.copy_from_slice(&mk[48..80]);
    k.msk.copy_from_slice(&mk[80..144]);
    k.emsk.copy_from_slice(&mk[144..208]);
    k
}

/// The 5G serving network name of a PLMN: `5G:mnc<MNC, 3 digits>.mcc<MCC>.3gppnetwork.org`.
pub fn serving_network_name(mcc: &str, mnc: &str) -> String {
    format!("5G:mnc{mnc:0>3}.mcc{mcc}.3gppnetwork.org")
}

/// KAUSF = KDF(CK ‖ IK, 0x6A, SN name, SQN ⊕ AK).
pub fn kausf(ck: &[u8; 16], ik: &[u8; 16], snn: &[u8], sqn_xor_ak: &[u8; 6]) -> [u8; 32] {
    kdf(&ck_ik(ck, ik), 0x6A, &[snn, sqn_xor_ak])
}

/// XRES* = last 128 bits of KDF(CK ‖ IK, 0x6B, SN name, RAND, RES).
pub fn xres_star(
    ck: &[u8; 16],
    ik: &[u8; 16],
    snn: &[u8],
    rand: &[u8; 16],
    res: &[u8],
) -> [u8; 16] {
    let out = kdf(&ck_ik(ck, ik), 0x6B, &[snn, rand, res]);
    let mut x = [0u8; 16];
    x.copy_from_slice(&out[16..]);
    x
}

/// HXRES* = last 128 bits of SHA-256(RAND ‖ XRES*).
pub fn hxres_star(rand: &[u8; 16], xres_star: &[u8; 16]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(rand);
    h.update(xres_star);
    let out = h.finalize();
    let mut x = [0u8; 16];
    x.copy_from_slice(&out[16..]);
    x
}

/// KSEAF = KDF(KAUSF, 0x6C, SN name).
pub fn kseaf(kausf: &[u8; 32], snn: &[u8]) -> [u8; 32] {
    kdf(kausf, 0x6C, &[snn])
}

/// KAMF = KDF(KSEAF, 0x6D, SUPI, ABBA).
pub fn kamf(kseaf: &[u8; 32], supi: &[u8], abba: &[u8]) -> [u8; 32] {
    kdf(kseaf, 0x6D, &[supi, abba])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn h<const N: usize>(v: &Value, k: &str) -> [u8; N] {
        let s = v[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} missing in {v}"));
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).unwrap_or_else(|e| panic!("{k}: {e}"));
        out
    }

    fn cases(file: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(file).unwrap();
        v["vectors"].as_array().unwrap().clone()
    }

    #[test]
    fn ts33_401_a2_kasme_every_vector() {
        let sets = cases(include_str!("../../tests/vectors/kasme.json"));
        assert!(sets.len() >= 6);
        for v in sets {
            let sqn_xor_ak: [u8; 6] = h(&v, "SQN_xor_AK");
            let got = kasme(&h(&v, "CK"), &h(&v, "IK"), &h(&v, "SN_id"), &sqn_xor_ak);
            assert_eq!(got, h::<32>(&v, "KASME"), "{}", v["id"]);
            if let (Some(mcc), Some(mnc)) = (v["MCC"].as_str(), v["MNC"].as_str()) {
                assert_eq!(
                    plmn_id(mcc, mnc),
                    Some(h::<3>(&v, "SN_id")),
                    "{} SN id",
                    v["id"]
                );
            }
        }
    }

    #[test]
    fn plmn_id_encoding() {
        assert_eq!(plmn_id("001", "01"), Some([0x00, 0xf1, 0x10]));
        assert_eq!(plmn_id("208", "34"), Some([0x02, 0xf8, 0x43]));
        assert_eq!(plmn_id("310", "410"), Some([0x13, 0x00, 0x14]));
        assert_eq!(plmn_id("31", "410"), None);
    }

    #[test]
    fn rfc9048_eap_aka_prime_every_case() {
        let sets = cases(include_str!("../../tests/vectors/eap_aka_prime.json"));
        assert_eq!(sets.len(), 4);
        for v in sets {
            let name = v["access_network_name"].as_str().unwrap().as_bytes();
            let (ckp, ikp) = ck_ik_prime(&h(&v, "CK"), &h(&v, "IK"), name, &h(&v, "SQN_xor_AK"));
            assert_eq!(ckp, h::<16>(&v, "CK_prime"), "{}", v["id"]);
            assert_eq!(ikp, h::<16>(&v, "IK_prime"), "{}", v["id"]);
            let keys = eap_aka_prime_keys(&ckp, &ikp, v["Identity"].as_str().unwrap().as_bytes());
            assert_eq!(keys.k_encr, h::<16>(&v, "K_encr"), "{}", v["id"]);
            assert_eq!(keys.k_aut, h::<32>(&v, "K_aut"), "{}", v["id"]);
            assert_eq!(keys.k_re, h::<32>(&v, "K_re"), "{}", v["id"]);
            assert_eq!(keys.msk, h::<64>(&v, "MSK"), "{}", v["id"]);
            assert_eq!(keys.emsk, h::<64>(&v, "EMSK"), "{}", v["id"]);
        }
    }

    #[test]
    fn ts33_501_5g_aka_every_vector() {
        let sets = cases(include_str!("../../tests/vectors/5g_aka.json"));
        assert!(sets.len() >= 3);
        for v in sets {
            let id = &v["id"];
            let snn = v["serving_network_name"].as_str().unwrap().as_bytes();
            let (ck, ik): ([u8; 16], [u8; 16]) = (h(&v, "CK"), h(&v, "IK"));
            let rand: [u8; 16] = h(&v, "RAND");
            let xs = xres_star(&ck, &ik, snn, &rand, &h::<8>(&v, "XRES"));
            assert_eq!(xs, h::<16>(&v, "XRES_star"), "{id} XRES*");
            assert_eq!(
                hxres_star(&rand, &xs),
                h::<16>(&v, "HXRES_star"),
                "{id} HXRES*"
            );
            let ka = kausf(&ck, &ik, snn, &h(&v, "SQN_xor_AK"));
            assert_eq!(ka, h::<32>(&v, "KAUSF"), "{id} KAUSF");
            if v.get("KSEAF").is_some_and(Value::is_string) {
                let ks = kseaf(&ka, snn);
                assert_eq!(ks, h::<32>(&v, "KSEAF"), "{id} KSEAF");
                if let (Some(supi), Some(abba)) = (v["SUPI"].as_str(), v["ABBA"].as_str()) {
                    let abba = hex::decode(abba).unwrap();
                    assert_eq!(
                        kamf(&ks, supi.as_bytes(), &abba),
                        h::<32>(&v, "KAMF"),
                        "{id} KAMF"
                    );
                }
            }
        }
    }

    #[test]
    fn serving_network_name_pads_the_mnc() {
        assert_eq!(
            serving_network_name("001", "01"),
            "5G:mnc001.mcc001.3gppnetwork.org"
        );
        assert_eq!(
            serving_network_name("310", "410"),
            "5G:mnc410.mcc310.3gppnetwork.org"
        );
    }
}
