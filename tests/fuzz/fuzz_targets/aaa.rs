//! The AAA's decoders and its money arithmetic: Cisco times, call-id legs,
//! decimal amounts, addresses and networks, SMS part counts (each decoded
//! value re-encodes to itself), and rating: whatever the rate and the
//! balance, the credit time granted never costs more than the balance.
#![no_main]

use authplane::domain::money::{self, Rating};
use authplane::domain::tcxc::{self, Cidr};
use libfuzzer_sys::fuzz_target;

fn u32_at(d: &[u8], i: usize) -> u32 {
    let mut b = [0u8; 4];
    for (k, x) in b.iter_mut().enumerate() {
        *x = d.get(i + k).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = tcxc::parse_time(text) {
            assert_eq!(tcxc::parse_time(&tcxc::format_time(t)), Ok(t), "{text:?}");
        }
        if let Some((base, n)) = tcxc::call_leg(text) {
            assert!(n >= 1 && text.starts_with(base) && text.ends_with(&n.to_string()));
        }
        if let Ok(m) = money::parse(text) {
            assert_eq!(money::parse(&money::format6(m)), Ok(m));
            assert_eq!(money::parse(&money::format_short(m)), Ok(m));
        }
        if let Ok(c) = Cidr::parse(text) {
            assert_eq!(Cidr::parse(&c.to_string()), Ok(c));
        }
        let (_, parts) = tcxc::sms_parts(text);
        assert!(parts >= 1);
        let _ = tcxc::route_safe(text);
    }
    // Rating with arbitrary prices, intervals and balance.
    if data.len() >= 32 {
        let r = Rating {
            price_1: i64::from(u32_at(data, 0)),
            price_n: i64::from(u32_at(data, 4)),
            interval_1: u32_at(data, 8) % 3600 + 1,
            interval_n: u32_at(data, 12) % 3600 + 1,
            connect_fee: i64::from(u32_at(data, 16)),
            free_seconds: u32_at(data, 20) % 600,
            grace_seconds: u32_at(data, 24) % 60,
        };
        let available = i64::from(u32_at(data, 28)) * 1000;
        if let Some(ct) = r.credit_time(available, 86_400) {
            assert!(ct >= 1);
            assert!(r.cost(u64::from(ct)) <= available, "{r:?} {available} {ct}");
        }
        let d = u64::from(u32_at(data, 0) % 100_000);
        assert!(r.billed_seconds(d) >= d.saturating_sub(u64::from(r.free_seconds)));
        assert!(r.cost(d) >= 0);
    }
});
