//! The crypto of one vector request: Milenage (one key schedule, five
//! output blocks in one call), AUTN, and KASME / 5G derivations; and a
//! batch of 10 vectors for one key.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use authplane::domain::kdf;
use authplane::domain::milenage::{autn, sqn_bytes, Milenage};

const K: [u8; 16] = [
    0x46, 0x5b, 0x5c, 0xe8, 0xb1, 0x99, 0xb4, 0x9f, 0xaa, 0x5f, 0x0a, 0x2e, 0xe2, 0x38, 0xa6, 0xbc,
];
const OPC: [u8; 16] = [
    0xcd, 0x63, 0xcb, 0x71, 0x95, 0x4a, 0x9f, 0x4e, 0x48, 0xa5, 0x99, 0x4e, 0x37, 0xa0, 0x2b, 0xaf,
];

fn bench(c: &mut Criterion) {
    let rand = [0x23u8; 16];
    let amf = [0x80, 0];
    let mut g = c.benchmark_group("aka_vector");
    g.throughput(Throughput::Elements(1));
    g.bench_function("milenage_key_schedule_and_one_vector", |b| {
        let mut sqn = 0u64;
        b.iter(|| {
            sqn += 1;
            let m = Milenage::new(&K, &OPC);
            let s = sqn_bytes(sqn);
            let o = m.compute(&rand, &s, &amf);
            std::hint::black_box(autn(&s, &amf, &o))
        })
    });
    g.bench_function("eps_vector_with_kasme", |b| {
        let m = Milenage::new(&K, &OPC);
        let sn = kdf::plmn_id("001", "01").unwrap_or_default();
        let mut sqn = 0u64;
        b.iter(|| {
            sqn += 1;
            let s = sqn_bytes(sqn);
            let o = m.compute(&rand, &s, &amf);
            let a = autn(&s, &amf, &o);
            let mut x = [0u8; 6];
            x.copy_from_slice(&a[..6]);
            std::hint::black_box(kdf::kasme(&o.ck, &o.ik, &sn, &x))
        })
    });
    g.bench_function("5g_he_av", |b| {
        let m = Milenage::new(&K, &OPC);
        let snn = kdf::serving_network_name("001", "01");
        let mut sqn = 0u64;
        b.iter(|| {
            sqn += 1;
            let s = sqn_bytes(sqn);
            let o = m.compute(&rand, &s, &amf);
            let xs = kdf::xres_star(&o.ck, &o.ik, snn.as_bytes(), &rand, &o.res);
            let a = autn(&s, &amf, &o);
            let mut x = [0u8; 6];
            x.copy_from_slice(&a[..6]);
            std::hint::black_box((
                kdf::hxres_star(&rand, &xs),
                kdf::kausf(&o.ck, &o.ik, snn.as_bytes(), &x),
            ))
        })
    });
    g.throughput(Throughput::Elements(10));
    g.bench_function("ten_vectors_one_key", |b| {
        let mut sqn = 0u64;
        b.iter(|| {
            let m = Milenage::new(&K, &OPC);
            for _ in 0..10 {
                sqn += 1;
                let s = sqn_bytes(sqn);
                std::hint::black_box(m.compute(&rand, &s, &amf));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
