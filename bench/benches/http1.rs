//! The HTTP/1.1 codec: parse a request, write a response.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use authplane::domain::http1::{begin_response, finish, parse, Limits, Progress};

const PING: &[u8] =
    b"GET /oam/ping HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n";
const PUT_AUC: &[u8] = b"PUT /auc/ HTTP/1.1\r\nHost: hss\r\nContent-Type: application/json\r\nProvisioning-Key: secret\r\nContent-Length: 91\r\n\r\n{\"ki\":\"465B5CE8B199B49FAA5F0A2EE238A6BC\",\"opc\":\"E8ED289DEBA952E4283B54E88E6183CA\",\"amf\":\"8000\"}";
const CHUNKED: &[u8] = b"POST /aaa_authorize.php HTTP/1.1\r\nHost: aaa\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nuser_name=alice&\r\n9\r\ncld=49301\r\n0\r\n\r\n";

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("http1_parse");
    for (name, raw) in [
        ("ping", PING),
        ("put_auc_json", PUT_AUC),
        ("chunked_form", CHUNKED),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || raw.to_vec(),
                |buf| match parse(buf, &limits) {
                    Ok(Progress::Complete(p)) => std::hint::black_box(p.consumed),
                    other => panic!("{other:?}"),
                },
                BatchSize::SmallInput,
            )
        });
    }
    // Sixteen pipelined requests in one buffer, as the server walks them.
    let pipelined: Vec<u8> = PING.repeat(16);
    g.throughput(Throughput::Elements(16));
    g.bench_function("ping_pipelined_x16", |b| {
        b.iter_batched_ref(
            || pipelined.clone(),
            |buf| {
                let mut at = 0;
                while at < buf.len() {
                    match parse(&mut buf[at..], &limits) {
                        Ok(Progress::Complete(p)) => at += p.consumed,
                        other => panic!("{other:?}"),
                    }
                }
                at
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_response(c: &mut Criterion) {
    let mut out = Vec::with_capacity(4096);
    c.bench_function("http1_write_ping_response", |b| {
        b.iter(|| {
            out.clear();
            let start = begin_response(&mut out, 200, "application/json", true, &[]);
            out.extend_from_slice(br#"{"result":"OK"}"#);
            finish(&mut out, start, true);
            std::hint::black_box(out.len())
        })
    });
}

criterion_group!(benches, bench_parse, bench_response);
criterion_main!(benches);
