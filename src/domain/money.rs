//! Money in integer micro-units (10^-6 of the currency), never floating
//! point: decimal text in and out, per-minute rating with first and next
//! intervals, and the credit time a balance buys.
//!
//! Rating (PortaBilling/Sippy style, as TCXC bills): prices are per
//! minute, intervals in seconds. A call of `d` seconds bills
//! `B = i1 + ceil(max(0, d - free - i1) / in) * in` seconds and costs
//! `connect_fee + (p1 * i1 + pn * (B - i1)) / 60`, rounded up to the
//! micro-unit: 7 s at 6/6 and 0.0034/min bills 12 s, 0.000680.

/// A money amount or price in micro-units.
pub type Micros = i64;

/// Micro-units in one unit of currency.
pub const UNIT: i64 = 1_000_000;

/// Largest amount accepted (10^12 units): sums of many stay far from
/// overflow.
pub const MAX: i64 = 1_000_000_000_000 * UNIT;

/// Why a money text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number such as 12.5 or 0.000680")]
    Syntax,
    #[error("has more than 6 decimal places")]
    TooPrecise,
    #[error("is out of range")]
    Range,
}

/// Parses `-?digits[.digits]` (at most 6 decimals) into micro-units.
pub fn parse(text: &str) -> Result<Micros, MoneyError> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(MoneyError::Syntax);
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || (t.contains('.') && frac.is_empty()) {
        return Err(MoneyError::Syntax);
    }
    if frac.len() > 6 {
        return Err(MoneyError::TooPrecise);
    }
    if whole.len() > 13 {
        return Err(MoneyError::Range);
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| MoneyError::Range)?
    };
    let mut f: i64 = 0;
    for i in 0..6 {
        let d = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        f = f * 10 + d;
    }
    let v = w
        .checked_mul(UNIT)
        .and_then(|w| w.checked_add(f))
        .filter(|v| *v <= MAX)
        .ok_or(MoneyError::Range)?;
    Ok(if negative { -v } else { v })
}

/// `m` with exactly six decimals (`0.000680`, `-12.500000`).
pub fn format6(m: Micros) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let a = m.unsigned_abs();
    let unit = UNIT.unsigned_abs();
    format!("{sign}{}.{:06}", a / unit, a % unit)
}

/// `m` with the decimals it needs (`0.015`, `3`, `-0.5`).
pub fn format_short(m: Micros) -> String {
    let six = format6(m);
    let trimmed = six.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_owned()
}

/// Serde for an amount stored and answered as a 6-decimal string; a body
/// may give a string or an integer (whole units), never a float.
pub mod serde_text {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format6(*m))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an amount as a decimal string such as \"12.500000\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                super::parse(v).map_err(|e| E::custom(format!("{v:?} {e}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                v.checked_mul(super::UNIT)
                    .filter(|m| m.abs() <= super::MAX)
                    .ok_or_else(|| E::custom("amount out of range"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("amount out of range"))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<i64, E> {
                Err(E::custom(
                    "amounts are decimal strings (\"0.0034\"), not JSON floats",
                ))
            }
        }
        d.deserialize_any(V)
    }
}

/// How one rate bills a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Rating {
    /// Per minute, for the first interval.
    pub price_1: Micros,
    /// Per minute, for every next interval.
    pub price_n: Micros,
    /// Seconds (≥ 1).
    pub interval_1: u32,
    /// Seconds (≥ 1).
    pub interval_n: u32,
    /// Charged once for an answered call.
    pub connect_fee: Micros,
    /// Seconds at the start that cost nothing.
    pub free_seconds: u32,
    /// A call this short or shorter costs nothing at all.
    pub grace_seconds: u32,
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return 0;
    }
    (a + b - 1).div_euclid(b)
}

impl Rating {
    /// Seconds billed for `d` seconds of conversation (0 for none).
    pub fn billed_seconds(&self, d: u64) -> u64 {
        let (i1, i_n) = (
            u64::from(self.interval_1.max(1)),
            u64::from(self.interval_n.max(1)),
        );
        let b = d.saturating_sub(u64::from(self.free_seconds));
        if d == 0 || b == 0 {
            return 0;
        }
        let rest = b.saturating_sub(i1);
        i1 + rest.div_ceil(i_n) * i_n
    }

    /// What `d` seconds cost, rounded up to the micro-unit.
    pub fn cost(&self, d: u64) -> Micros {
        if d == 0 || d <= u64::from(self.grace_seconds) {
            return 0;
        }
        let billed = self.billed_seconds(d);
        if billed == 0 {
            return self.connect_fee;
        }
        let i1 = i128::from(self.interval_1.max(1));
        let rest = i128::from(billed) - i1;
        let per_minute = i128::from(self.price_1) * i1 + i128::from(self.price_n) * rest.max(0);
        let v = i128::from(self.connect_fee) + ceil_div(per_minute, 60);
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// The longest call `available` pays for, at most `cap` seconds:
    /// `None` when it does not pay for the first interval. The cost of
    /// the answer never exceeds `available`.
    pub fn credit_time(&self, available: Micros, cap: u32) -> Option<u32> {
        let cap = cap.max(1);
        let i1 = i128::from(self.interval_1.max(1));
        let i_n = i128::from(self.interval_n.max(1));
        let budget = (i128::from(available) - i128::from(self.connect_fee)) * 60
            - i128::from(self.price_1) * i1;
        if available < 0 || budget < 0 {
            return None;
        }
        let per_next = i128::from(self.price_n) * i_n;
        let seconds = if per_next <= 0 {
            i128::from(cap)
        } else {
            i128::from(self.free_seconds) + i1 + (budget / per_next) * i_n
        };
        let ct = u32::try_from(seconds.min(i128::from(cap))).unwrap_or(cap);
        Some(ct.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_exactly() {
        assert_eq!(parse("0.0034"), Ok(3_400));
        assert_eq!(parse("0.000680"), Ok(680));
        assert_eq!(parse("12"), Ok(12_000_000));
        assert_eq!(parse("-1.5"), Ok(-1_500_000));
        assert_eq!(parse(".5"), Ok(500_000));
        assert_eq!(format6(680), "0.000680");
        assert_eq!(format6(-1_500_000), "-1.500000");
        assert_eq!(format_short(15_000), "0.015");
        assert_eq!(format_short(3_000_000), "3");
        assert_eq!(format_short(0), "0");
        for bad in ["", "-", ".", "1.", "1e3", "0x10", "1.2.3", "abc", " "] {
            assert_eq!(parse(bad), Err(MoneyError::Syntax), "{bad:?}");
        }
        assert_eq!(parse("0.0000001"), Err(MoneyError::TooPrecise));
        assert_eq!(parse("99999999999999"), Err(MoneyError::Range));
        for m in [0, 1, 999_999, 1_000_000, -7, MAX, -MAX] {
            assert_eq!(parse(&format6(m)), Ok(m));
            assert_eq!(parse(&format_short(m)), Ok(m));
        }
    }

    fn per_6s(price: Micros) -> Rating {
        Rating {
            price_1: price,
            price_n: price,
            interval_1: 6,
            interval_n: 6,
            ..Rating::default()
        }
    }

    #[test]
    fn the_tcxc_cdr_sample_bills_as_published() {
        // 7 s at 6/6 and 0.0034/min: 12 s, 0.000680; 2 s: 6 s, 0.000340.
        let r = per_6s(3_400);
        assert_eq!((r.billed_seconds(7), r.cost(7)), (12, 680));
        assert_eq!((r.billed_seconds(2), r.cost(2)), (6, 340));
        assert_eq!((r.billed_seconds(0), r.cost(0)), (0, 0));
    }

    #[test]
    fn first_interval_connect_fee_free_and_grace_seconds() {
        // 60/60 at 0.10/min with 0.20 connect fee: 61 s bills 120 s.
        let r = Rating {
            price_1: 100_000,
            price_n: 100_000,
            interval_1: 60,
            interval_n: 60,
            connect_fee: 200_000,
            ..Rating::default()
        };
        assert_eq!(r.billed_seconds(61), 120);
        assert_eq!(r.cost(61), 400_000);
        assert_eq!(r.cost(1), 300_000);
        // 30/6: 31 s bills 36 s.
        let r = Rating {
            price_1: 60_000,
            price_n: 60_000,
            interval_1: 30,
            interval_n: 6,
            ..Rating::default()
        };
        assert_eq!((r.billed_seconds(31), r.cost(31)), (36, 36_000));
        let free = Rating {
            free_seconds: 10,
            connect_fee: 5,
            ..per_6s(60_000)
        };
        assert_eq!(free.cost(10), 5);
        assert_eq!(free.cost(11), 5 + 6_000);
        let grace = Rating {
            grace_seconds: 3,
            ..per_6s(60_000)
        };
        assert_eq!((grace.cost(3), grace.cost(4)), (0, 6_000));
    }

    #[test]
    fn rounding_is_up_to_the_micro_unit() {
        // 1 s at 1/1 and 0.0001/min: 1.666… micro, billed 2.
        let r = Rating {
            price_1: 100,
            price_n: 100,
            interval_1: 1,
            interval_n: 1,
            ..Rating::default()
        };
        assert_eq!(r.cost(1), 2);
    }

    #[test]
    fn credit_time_never_buys_more_than_the_balance() {
        // A $10 balance at 0.10/min and 0.20 connect fee: 98 minutes
        // (PortaBilling's example).
        let r = Rating {
            price_1: 100_000,
            price_n: 100_000,
            interval_1: 60,
            interval_n: 60,
            connect_fee: 200_000,
            ..Rating::default()
        };
        assert_eq!(r.credit_time(10 * UNIT, 100_000), Some(98 * 60));
        assert_eq!(r.credit_time(10 * UNIT, 3600), Some(3600));
        assert_eq!(r.credit_time(299_999, 3600), None);
        assert_eq!(r.credit_time(300_000, 3600), Some(60));
        assert_eq!(r.credit_time(-1, 3600), None);
        let free_next = Rating { price_n: 0, ..r };
        assert_eq!(free_next.credit_time(UNIT, 3600), Some(3600));
        // Exhaustively: the cost of the answer fits the balance, and one
        // more interval would not.
        let r = Rating {
            price_1: 3_400,
            price_n: 1_700,
            interval_1: 30,
            interval_n: 6,
            connect_fee: 10,
            free_seconds: 2,
            grace_seconds: 0,
        };
        for a in (0..20_000).step_by(7) {
            if let Some(ct) = r.credit_time(a, 1_000_000) {
                assert!(r.cost(u64::from(ct)) <= a, "a={a} ct={ct}");
                assert!(r.cost(u64::from(ct) + 6) > a, "a={a} ct={ct}");
            } else {
                assert!(r.cost(u64::from(r.free_seconds) + 1) > a, "a={a}");
            }
        }
    }
}
