//! The TCXC AAA API's wire pieces: Cisco `h323-*-time` strings, call-ids
//! with their `-b2b_N` leg suffix, sippy b2bua `Routing:` strings, the
//! SMS route strings, SMS part counts (GSM-7 and UCS-2), and address
//! allow lists (addresses or CIDRs).

use core::net::IpAddr;
use std::fmt;

/// Why a time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must look like \"12:35:26.032119 GMT Fri Oct 21 2022\" (UTC/GMT): {0}")]
pub struct TimeError(&'static str);

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a Cisco time (`HH:MM:SS[.f] GMT Www Mmm D YYYY`, 1 to 6
/// fraction digits, the day padded or not, an optional leading `*` or
/// `.` clock mark) into microseconds since the Unix epoch. The weekday
/// must be the date's.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let t = text.trim();
    let t = t
        .strip_prefix('*')
        .or_else(|| t.strip_prefix('.'))
        .unwrap_or(t);
    let mut parts = t.split_ascii_whitespace();
    let mut next = |what| parts.next().ok_or(TimeError(what));
    let (clock, zone, wday, mon, day, year) = (
        next("no time")?,
        next("no time zone")?,
        next("no weekday")?,
        next("no month")?,
        next("no day")?,
        next("no year")?,
    );
    if parts.next().is_some() {
        return Err(TimeError("text after the year"));
    }
    if zone != "GMT" && zone != "UTC" {
        return Err(TimeError("the zone must be GMT or UTC"));
    }
    let num = |s: &str, lo: i64, hi: i64, what| {
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TimeError(what));
        }
        s.parse::<i64>()
            .ok()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or(TimeError(what))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':');
    let h = num(hms.next().unwrap_or(""), 0, 23, "bad hour")?;
    let mi = num(hms.next().unwrap_or(""), 0, 59, "bad minute")?;
    let s = num(hms.next().unwrap_or(""), 0, 60, "bad second")?;
    if hms.next().is_some() {
        return Err(TimeError("bad time"));
    }
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) || clock.ends_with('.') {
        return Err(TimeError("bad fraction of a second"));
    }
    let mut micros = 0i64;
    for i in 0..6 {
        micros = micros * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    let m = MONTHS
        .iter()
        .position(|x| *x == mon)
        .ok_or(TimeError("bad month"))? as i64
        + 1;
    let y = num(year, 1970, 9999, "bad year")?;
    let d = num(day, 1, 31, "bad day")?;
    if d > month_days(y, m) {
        return Err(TimeError("no such day in that month"));
    }
    let days = days_from_civil(y, m, d);
    let weekday = DAYS
        .iter()
        .position(|x| *x == wday)
        .ok_or(TimeError("bad weekday"))?;
    if (days + 4).rem_euclid(7) != weekday as i64 {
        return Err(TimeError("the weekday is not the date's"));
    }
    Ok(((days * 24 + h) * 3600 + mi * 60 + s) * 1_000_000 + micros)
}

/// Writes microseconds since the epoch as a Cisco time with six decimals
/// (`12:35:26.032119 GMT Fri Oct 21 2022`).
pub fn format_time(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wday = DAYS
        .get((days + 4).rem_euclid(7) as usize)
        .copied()
        .unwrap_or("Sun");
    let mon = MONTHS.get((m - 1) as usize).copied().unwrap_or("Jan");
    format!(
        "{:02}:{:02}:{:02}.{frac:06} GMT {wday} {mon} {d} {y}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// A call-id's base and its leg number: `abc-b2b_2` is leg 2 of `abc`
/// (only the last suffix counts: `abc-b2b_1-b2b_3` is leg 3 of
/// `abc-b2b_1`). `None` without a suffix or with a leg that is not a
/// number from 1.
pub fn call_leg(call_id: &str) -> Option<(&str, u32)> {
    let at = call_id.rfind("-b2b_")?;
    let (base, n) = (call_id.get(..at)?, call_id.get(at + 5..)?);
    if base.is_empty() || n.is_empty() || n.len() > 4 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n >= 1).map(|n| (base, n))
}

/// One sippy b2bua route (`Routing:cld@host[:port];key=value…`), in the
/// order of the spec's examples. Every value is checked to hold no `;`
/// (sippy has no escaping) when it is provisioned or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipRoute<'a> {
    pub cld: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub cli: &'a str,
    pub credit_time: u32,
    pub rid: i64,
    /// Credentials the b2bua answers the vendor's challenge with.
    pub auth: Option<(&'a str, &'a str)>,
    pub expires: u32,
    pub np_expires: u32,
}

impl fmt::Display for SipRoute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Routing:{}@", self.cld)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(
            f,
            ";cli={};credit-time={};rid={}",
            self.cli, self.credit_time, self.rid
        )?;
        if let Some((u, p)) = self.auth {
            write!(f, ";auth={u}:{p}")?;
        }
        write!(
            f,
            ";expires={};np_expires={}",
            self.expires, self.np_expires
        )
    }
}

/// Characters a route value may hold: none that sippy's parser splits on.
pub fn route_safe(s: &str) -> bool {
    !s.bytes()
        .any(|b| matches!(b, b';' | b'@' | b'=' | b'\r' | b'\n') || b.is_ascii_whitespace())
}

/// The outgoing number: `number` less `strip` leading characters, after
/// `prefix` (a vendor's tech prefix may end in `#`: `10578#`).
pub fn vendor_cld(number: &str, strip: u32, prefix: &str) -> String {
    let rest = number.get(strip as usize..).unwrap_or("");
    format!("{prefix}{rest}")
}

/// The GSM 03.38 default alphabet (one septet each).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (an escape and the character: two septets).
const GSM7_EXT: &str = "\u{c}^{}\\[~]|€";

/// How a short message is encoded and how many parts it bills: GSM-7
/// (160 septets in one part, 153 per part of a concatenated message)
/// when every character has a GSM-7 form, otherwise UCS-2 (70 UTF-16
/// units, 67 per part).
pub fn sms_parts(text: &str) -> (SmsCoding, u32) {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7.contains(c) {
            septets += 1;
        } else if GSM7_EXT.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (coding, units, single, multi) = if gsm {
        (SmsCoding::Gsm7, septets, 160, 153)
    } else {
        (SmsCoding::Ucs2, text.encode_utf16().count(), 70, 67)
    };
    let parts = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    (coding, u32::try_from(parts).unwrap_or(u32::MAX))
}

/// A short message's data coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsCoding {
    Gsm7,
    Ucs2,
}

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

/// Why an address or network was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network (a.b.c.d, a.b.c.d/n, or IPv6)")]
pub struct CidrError(pub String);

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (addr, len) = text.split_once('/').unwrap_or((text, ""));
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = if len.is_empty() {
            max
        } else {
            len.parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(bad)?
        };
        Ok(Cidr { net, len })
    }

    fn bits(ip: IpAddr) -> (bool, u128) {
        match ip {
            IpAddr::V4(a) => (true, u128::from(u32::from(a)) << 96),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => (true, u128::from(u32::from(v4)) << 96),
                None => (false, u128::from(a)),
            },
        }
    }

    /// Whether `ip` is this address or inside this network (an IPv4
    /// address mapped into IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, net) = Cidr::bits(self.net);
        let (ip_v4, ip) = Cidr::bits(ip);
        if v4 != ip_v4 {
            return false;
        }
        let len = u32::from(self.len);
        if len == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - len.min(128));
        (net & mask) == (ip & mask)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.net.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.net)
        } else {
            write!(f, "{}/{}", self.net, self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_the_spec_and_sippy_write_them() {
        let seed = parse_time("12:35:26.032119 GMT Fri Oct 21 2022").unwrap();
        assert_eq!(seed, 1_666_355_726_032_119);
        assert_eq!(format_time(seed), "12:35:26.032119 GMT Fri Oct 21 2022");
        // sippy: milliseconds, unpadded day; a clock mark; UTC.
        assert_eq!(
            parse_time("*14:30:25.429 GMT Wed Jan 23 2002").unwrap(),
            1_011_796_225_429_000
        );
        assert_eq!(
            parse_time("14:30:25 UTC Wed Jan 23 2002").unwrap(),
            1_011_796_225_000_000
        );
        assert!(parse_time("00:00:00 GMT Thu Feb 29 2024").is_ok());
        for bad in [
            "",
            "12:35:26.032119 GMT Mon Oct 21 2022",
            "12:35:26.032119 EET Fri Oct 21 2022",
            "12:35:26.0321190 GMT Fri Oct 21 2022",
            "12:35:26. GMT Fri Oct 21 2022",
            "24:00:00 GMT Fri Oct 21 2022",
            "12:35 GMT Fri Oct 21 2022",
            "12:35:26 GMT Fri Okt 21 2022",
            "12:35:26 GMT Thu Feb 29 2023",
            "12:35:26 GMT Fri Oct 21 2022 extra",
            "12:35:26 GMT Fri Oct 21",
            "+1:35:26 GMT Fri Oct 21 2022",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
        for t in [0i64, 1, 951_782_400_000_000, 4_102_444_799_999_999] {
            assert_eq!(parse_time(&format_time(t)), Ok(t), "{t}");
        }
    }

    #[test]
    fn legs_are_the_last_suffix() {
        assert_eq!(call_leg("11122233-b2b_2"), Some(("11122233", 2)));
        assert_eq!(call_leg("abc-b2b_1-b2b_3"), Some(("abc-b2b_1", 3)));
        for bad in [
            "abc",
            "abc-b2b_",
            "abc-b2b_0",
            "abc-b2b_x",
            "-b2b_1",
            "a-b2b_99999",
        ] {
            assert_eq!(call_leg(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_as_the_spec_shows_them() {
        let r = SipRoute {
            cld: "666618661234567",
            host: "1.2.3.4",
            port: Some(5060),
            cli: "1234567",
            credit_time: 3600,
            rid: -1,
            auth: None,
            expires: 60,
            np_expires: 10,
        };
        assert_eq!(
            r.to_string(),
            "Routing:666618661234567@1.2.3.4:5060;cli=1234567;credit-time=3600;rid=-1;expires=60;np_expires=10"
        );
        let r2 = SipRoute {
            cld: "10578#18661234567",
            host: "12.23.56.78",
            port: None,
            auth: Some(("VLOGIN", "VPASSWORD")),
            expires: 59,
            np_expires: 9,
            ..r
        };
        assert_eq!(
            r2.to_string(),
            "Routing:10578#18661234567@12.23.56.78;cli=1234567;credit-time=3600;rid=-1;auth=VLOGIN:VPASSWORD;expires=59;np_expires=9"
        );
        let v6 = SipRoute {
            host: "2001:db8::1",
            port: Some(5070),
            ..r
        };
        assert!(v6.to_string().contains("@[2001:db8::1]:5070;"));
        assert_eq!(vendor_cld("18661234567", 0, "6666"), "666618661234567");
        assert_eq!(vendor_cld("18661234567", 1, ""), "8661234567");
        assert_eq!(vendor_cld("1", 5, "x"), "x");
        assert!(route_safe("VLOGIN") && !route_safe("a;b") && !route_safe("a b"));
    }

    #[test]
    fn sms_parts_by_coding() {
        assert_eq!(sms_parts("aaa"), (SmsCoding::Gsm7, 1));
        assert_eq!(sms_parts(""), (SmsCoding::Gsm7, 1));
        assert_eq!(sms_parts(&"a".repeat(160)), (SmsCoding::Gsm7, 1));
        assert_eq!(sms_parts(&"a".repeat(161)), (SmsCoding::Gsm7, 2));
        assert_eq!(sms_parts(&"a".repeat(306)), (SmsCoding::Gsm7, 2));
        assert_eq!(sms_parts(&"a".repeat(307)), (SmsCoding::Gsm7, 3));
        // An extension character takes two septets.
        assert_eq!(sms_parts(&"€".repeat(80)), (SmsCoding::Gsm7, 1));
        assert_eq!(sms_parts(&"€".repeat(81)), (SmsCoding::Gsm7, 2));
        assert_eq!(sms_parts(&"я".repeat(70)), (SmsCoding::Ucs2, 1));
        assert_eq!(sms_parts(&"я".repeat(71)), (SmsCoding::Ucs2, 2));
        assert_eq!(sms_parts(&"я".repeat(134)), (SmsCoding::Ucs2, 2));
        // Outside the BMP: two UTF-16 units each.
        assert_eq!(sms_parts(&"😀".repeat(35)), (SmsCoding::Ucs2, 1));
        assert_eq!(sms_parts(&"😀".repeat(36)), (SmsCoding::Ucs2, 2));
    }

    #[test]
    fn allow_lists_by_address_and_network() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let one = Cidr::parse("12.34.56.78").unwrap();
        assert!(one.contains(ip("12.34.56.78")) && !one.contains(ip("12.34.56.79")));
        assert!(one.contains(ip("::ffff:12.34.56.78")));
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.1.1")) && !net.contains(ip("11.0.0.1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in ["", "1.2.3", "1.2.3.4/33", "10.0.0.0/x", "host.example"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(net.to_string(), "10.0.0.0/8");
    }
}
