//! Signing one SHAKEN PASSporT (canonical claims, base64url, ES256) with
//! each backend, and verifying one with the server's verifier (ring, the
//! key from a parsed certificate) and with p256, side by side in one run.
//!
//! `es256_batch`: what signing a batch of jobs together buys. AWS-LC and
//! ring sign one message per call and expose no part of it, so the batch
//! is built on p256's scalar and group arithmetic: the nonces inverted
//! together (one scalar inversion per batch, Montgomery's trick; p256 0.13
//! does not expose what a shared field inversion for kG would need),
//! measured per signature at batch sizes 1 to 64 next to AWS-LC's single
//! sign and p256's own.

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

/// ECDSA P-256 (SHA-256) signatures of `msgs` under `d`, with random
/// nonces, sharing the nonce inversion across the batch.
fn p256_sign_batch<const N: usize>(
    d: &p256::Scalar,
    msgs: &[&[u8]; N],
    rng: &dyn ring::rand::SecureRandom,
) -> [p256::ecdsa::Signature; N] {
    use p256::elliptic_curve::ff::BatchInverter;
    use p256::elliptic_curve::ops::Reduce;
    use p256::elliptic_curve::point::AffineCoordinates;
    use p256::elliptic_curve::Field;
    use p256::{FieldBytes, ProjectivePoint, Scalar, U256};
    use sha2::Digest;

    let reduce = |b: &FieldBytes| <Scalar as Reduce<U256>>::reduce_bytes(b);
    let nonces: [Scalar; N] = std::array::from_fn(|_| loop {
        let mut b = FieldBytes::default();
        if rng.fill(&mut b).is_err() {
            panic!("no randomness");
        }
        let k = reduce(&b);
        if !bool::from(k.is_zero()) {
            break k;
        }
    });
    let points: [ProjectivePoint; N] =
        std::array::from_fn(|i| ProjectivePoint::GENERATOR * nonces[i]);
    // p256 0.13 keeps the projective coordinates private and its field
    // element has no `Invert`, so each point is normalized on its own.
    let affine: [p256::AffinePoint; N] = std::array::from_fn(|i| points[i].to_affine());
    let mut inverses = nonces;
    let mut scratch = [Scalar::ONE; N];
    BatchInverter::invert_with_external_scratch(&mut inverses, &mut scratch);
    std::array::from_fn(|i| {
        let z = reduce(&sha2::Sha256::digest(msgs[i]));
        let r = reduce(&affine[i].x());
        let s = inverses[i] * (z + r * d);
        match p256::ecdsa::Signature::from_scalars(r, s) {
            Ok(sig) => sig,
            Err(e) => panic!("{e}"),
        }
    })
}

fn batch(c: &mut Criterion) {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::DecodePrivateKey;
    let key = match p256::ecdsa::SigningKey::from_pkcs8_pem(KEY) {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let d: p256::Scalar = **key.as_nonzero_scalar();
    let rng = ring::rand::SystemRandom::new();
    let input = b"eyJhbGciOiJFUzI1NiIsInBwdCI6InNoYWtlbiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUubmV0L3NwLnBlbSJ9.eyJhdHRlc3QiOiJBIiwiZGVzdCI6eyJ0biI6WyIxMjM1NTU1MTIxMiJdfSwiaWF0IjoxNzY3MjI1NjAwLCJvcmlnIjp7InRuIjoiMTIxNTU1NTEyMTIifSwib3JpZ2lkIjoiMTIzZTQ1NjctZTg5Yi0xMmQzLWE0NTYtNDI2NjU1NDQwMDAwIn0";
    // The batch's signatures are valid ES256 signatures of their messages.
    let msgs: Vec<Vec<u8>> = (0..8u8)
        .map(|i| [&input[..], &[b'0' + i]].concat())
        .collect();
    let refs: [&[u8]; 8] = std::array::from_fn(|i| msgs[i].as_slice());
    for (m, sig) in refs.iter().zip(p256_sign_batch(&d, &refs, &rng)) {
        assert!(key.verifying_key().verify(m, &sig).is_ok());
    }
    let aws = match load(KEY, Backend::AwsLc) {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("es256_batch");
    g.throughput(Throughput::Elements(1));
    g.bench_function("aws_lc_single", |b| {
        b.iter(|| std::hint::black_box(aws.sign(input)))
    });
    g.bench_function("p256_signing_key_single", |b| {
        use p256::ecdsa::signature::Signer;
        b.iter(|| {
            let sig: p256::ecdsa::Signature = key.sign(input);
            std::hint::black_box(sig)
        })
    });
    fn sized<const N: usize>(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        d: &p256::Scalar,
        input: &[u8],
        rng: &dyn ring::rand::SecureRandom,
    ) {
        let refs: [&[u8]; N] = [input; N];
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function(format!("p256_shared_inversions_{N}"), |b| {
            b.iter(|| std::hint::black_box(p256_sign_batch(d, &refs, rng)))
        });
    }
    sized::<1>(&mut g, &d, input, &rng);
    sized::<8>(&mut g, &d, input, &rng);
    sized::<64>(&mut g, &d, input, &rng);
    g.finish();
}

/// AWS-LC through aws-lc-rs's `EcdsaKeyPair` (an EVP context per call and a
/// DER round trip of the signature) against the server's AWS-LC backend
/// (`ECDSA_do_sign` on the digest, r and s written out directly).
fn aws_lc_layers(c: &mut Criterion) {
    let (_, der) = match pem_rfc7468::decode_vec(KEY.as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    };
    let pair = match aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    ) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ours = match load(KEY, Backend::AwsLc) {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let input = b"eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0";
    let mut g = c.benchmark_group("aws_lc_layers");
    g.bench_function("aws_lc_rs_ecdsa_key_pair", |b| {
        b.iter(|| std::hint::black_box(pair.sign(&rng, input).is_ok()))
    });
    g.bench_function("server_backend", |b| {
        b.iter(|| std::hint::black_box(ours.sign(input)))
    });
    g.finish();
}

criterion_group!(benches, bench, batch, aws_lc_layers);
criterion_main!(benches);
