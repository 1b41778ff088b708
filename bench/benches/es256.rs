//! Signing one SHAKEN PASSporT (canonical claims, base64url, ES256) with
//! each backend, side by side in one run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use authplane::domain::passport::{header_b64, sign, Attest, Claims};
use authplane::stir::keys::{load, Backend};

const KEY: &str = include_str!("../../tests/fixtures/stir/keys/sp-key.pem");

fn bench(c: &mut Criterion) {
    let claims = Claims {
        attest: Attest::A,
        dest_tns: vec!["12355551212".into()],
        iat: 1_767_225_600,
        orig_tn: "12155551212".into(),
        origid: "123e4567-e89b-12d3-a456-426655440000".into(),
    };
    let header = header_b64("https://cert.example.net/sp.pem");
    let mut g = c.benchmark_group("passport_sign");
    g.throughput(Throughput::Elements(1));
    for (name, backend) in [("ring", Backend::Ring), ("p256", Backend::P256)] {
        let key = match load(KEY, backend) {
            Ok(k) => k,
            Err(e) => panic!("{name}: {e}"),
        };
        g.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(sign(&*key, &header, &claims)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
