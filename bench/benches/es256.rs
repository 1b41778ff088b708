//! Signing one SHAKEN PASSporT (canonical claims, base64url, ES256) with
//! each backend, and verifying one with the server's verifier (ring, the
//! key from a parsed certificate) and with p256, side by side in one run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use authplane::domain::passport::{header_b64, sign, Attest, Claims};
use authplane::stir::keys::{load, Backend};
use authplane::stir::verify::CertEntry;

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
    for (name, backend) in [
        ("aws_lc", Backend::AwsLc),
        ("ring", Backend::Ring),
        ("p256", Backend::P256),
    ] {
        let key = match load(KEY, backend) {
            Ok(k) => k,
            Err(e) => panic!("{name}: {e}"),
        };
        g.bench_function(name, |b| {
            b.iter(|| std::hint::black_box(sign(&*key, &header, &claims)))
        });
    }
    g.finish();

    // Verification: the server's cached-certificate path (ring) and p256.
    let cert = include_bytes!("../../tests/fixtures/stir/certs/sp.pem");
    let entry = match CertEntry::parse(cert) {
        Ok(e) => e,
        Err(e) => panic!("certificate: {e}"),
    };
    let ring_key = match load(KEY, Backend::Ring) {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let jws = match sign(&*ring_key, &header, &claims) {
        Ok(j) => j,
        Err(e) => panic!("{e}"),
    };
    let Some((input, sig_b64)) = jws.rsplit_once('.') else {
        panic!("not a JWS");
    };
    let sig = match URL_SAFE_NO_PAD.decode(sig_b64) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(entry.verify(input.as_bytes(), &sig));
    let p256_key = {
        use p256::pkcs8::DecodePrivateKey;
        match p256::ecdsa::SigningKey::from_pkcs8_pem(KEY) {
            Ok(k) => *k.verifying_key(),
            Err(e) => panic!("{e}"),
        }
    };
    let p256_sig = match p256::ecdsa::Signature::from_slice(&sig) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("passport_verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ring", |b| {
        b.iter(|| std::hint::black_box(entry.verify(input.as_bytes(), &sig)))
    });
    g.bench_function("p256", |b| {
        use p256::ecdsa::signature::Verifier;
        b.iter(|| std::hint::black_box(p256_key.verify(input.as_bytes(), &p256_sig).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
