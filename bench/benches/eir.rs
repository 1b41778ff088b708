//! The EIR check S13 calls, against 10,000 rules (half exact, half
//! regex): an exact hit, a regex hit late in id order, and no match (every
//! regex rule tried).

// A bench fails loudly on bad set-up.
#![allow(clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use authplane::hss::eir::{check, EirRule};
use authplane::runtime::CatalogView;
use authplane::table::{insert_ops, Row, Tables};

fn rules(n: u64) -> CatalogView {
    let mut t = Tables::default();
    t.declare::<EirRule>().expect("declare");
    let mut view = CatalogView::default().with_deriver(t.deriver());
    for id in 1..=n {
        let body = if id % 2 == 0 {
            serde_json::json!({"eir_id": id, "imei": format!("35{:012}", id), "imsi": "",
                               "regex_mode": 0, "match_response_code": 1})
        } else {
            serde_json::json!({"eir_id": id, "imei": format!("^86{:06}.*", id), "imsi": "",
                               "regex_mode": 1, "match_response_code": 2})
        };
        let rule = EirRule::decode(body.to_string().as_bytes()).expect("rule");
        let ops = insert_ops(&view, &rule).expect("ops");
        view = view.with(&ops);
    }
    view
}

fn bench(c: &mut Criterion) {
    let view = rules(10_000);
    let mut g = c.benchmark_group("eir_check_10k_rules");
    g.throughput(Throughput::Elements(1));
    g.bench_function("exact_hit", |b| {
        b.iter(|| check(&view, "001010000000001", "35000000005000", 0))
    });
    g.bench_function("regex_hit_late", |b| {
        b.iter(|| check(&view, "001010000000001", "86009999000000", 0))
    });
    g.bench_function("no_match", |b| {
        b.iter(|| check(&view, "001010000000001", "99000000000000", 0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
