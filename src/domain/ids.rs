//! Identifiers and keys as they come over the API, validated once.

use std::fmt;

/// Why an identifier is not valid; the text is the client's error reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidId {
    pub field: &'static str,
    pub problem: &'static str,
}

fn invalid(field: &'static str, problem: &'static str) -> InvalidId {
    InvalidId { field, problem }
}

/// An IMSI: 6 to 15 decimal digits (MCC, MNC, MSIN; ITU-T E.212).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Imsi(String);

impl Imsi {
    pub fn parse(s: &str) -> Result<Imsi, InvalidId> {
        Imsi::check(s).map(|s| Imsi(s.to_owned()))
    }

    /// `s` if it is an IMSI (what [`Imsi::parse`] accepts), without a copy.
    pub fn check(s: &str) -> Result<&str, InvalidId> {
        if !(6..=15).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("imsi", "must be 6 to 15 decimal digits"));
        }
        Ok(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Imsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ICCID: 18 to 22 characters, decimal digits with an optional
/// trailing `F` filler (ITU-T E.118).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iccid(String);

impl Iccid {
    pub fn parse(s: &str) -> Result<Iccid, InvalidId> {
        Iccid::check(s).map(|s| Iccid(s.to_ascii_uppercase()))
    }

    /// `s` if it is an ICCID (what [`Iccid::parse`] accepts, before its
    /// trailing `f` is upper-cased), without a copy.
    pub fn check(s: &str) -> Result<&str, InvalidId> {
        let digits = s.strip_suffix(['F', 'f']).unwrap_or(s);
        if !(18..=22).contains(&s.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "iccid",
                "must be 18 to 22 digits (a trailing F allowed)",
            ));
        }
        Ok(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An MSISDN: 5 to 15 decimal digits (ITU-T E.164, without `+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Msisdn(String);

impl Msisdn {
    pub fn parse(s: &str) -> Result<Msisdn, InvalidId> {
        if !(5..=15).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("msisdn", "must be 5 to 15 decimal digits"));
        }
        Ok(Msisdn(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Exactly `N` bytes given as `2N` hex digits (either case).
pub fn hex_exact<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], InvalidId> {
    let problem = match N {
        2 => "must be 4 hex digits",
        6 => "must be 12 hex digits",
        14 => "must be 28 hex digits",
        16 => "must be 32 hex digits",
        _ => "has the wrong length or a non-hex digit",
    };
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| invalid(field, problem))?;
    Ok(out)
}

/// Parses the PLMN of a path: MCC (3 digits) and MNC (2 or 3 digits).
pub fn plmn(s: &str) -> Result<(&str, &str), InvalidId> {
    if !(5..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("plmn", "must be MCC and MNC: 5 or 6 digits"));
    }
    Ok(s.split_at(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_rules() {
        assert!(Imsi::parse("001010000000001").is_ok());
        assert!(Imsi::parse("00101").is_err());
        assert!(Imsi::parse("0010100000000012").is_err());
        assert!(Imsi::parse("not-an-imsi").is_err());
    }

    #[test]
    fn iccid_rules() {
        assert!(Iccid::parse("8988211000000000001").is_ok());
        assert_eq!(
            Iccid::parse("898821100000000000f").unwrap().as_str(),
            "898821100000000000F"
        );
        assert!(Iccid::parse("89882110").is_err());
        assert!(Iccid::parse("89882110000000000X1").is_err());
    }

    #[test]
    fn hex_keys() {
        let ki = hex_exact::<16>("ki", "465B5CE8B199B49FAA5F0A2EE238A6BC").unwrap();
        assert_eq!(ki[0], 0x46);
        assert!(hex_exact::<16>("ki", "zz").is_err());
        assert!(hex_exact::<2>("amf", "80000").is_err());
        assert_eq!(hex_exact::<2>("amf", "8000").unwrap(), [0x80, 0]);
    }

    #[test]
    fn plmn_split() {
        assert_eq!(plmn("00101").unwrap(), ("001", "01"));
        assert_eq!(plmn("310410").unwrap(), ("310", "410"));
        assert!(plmn("0010").is_err());
    }
}
