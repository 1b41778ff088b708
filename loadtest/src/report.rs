//! Reporting: a table for people, JSON for scripts, and an HdrHistogram
//! percentile file (`.hgrm`, the format wrk2 and HdrHistogram's plotter
//! read).

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::Stats;

const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 100.0];

/// The summary of a run, as printed and as `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub mode: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_kind: std::collections::BTreeMap<String, u64>,
    pub throughput_per_s: f64,
    pub latency_us: Latency,
    /// Open loop: how late the generator's send clock ticked (its own
    /// hold-ups: a tick late by more than the latency target means the
    /// generator, not the server, delayed requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_late_us: Option<Late>,
}

#[derive(Debug, Serialize)]
pub struct Late {
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    /// Ticks late by more than 1 ms.
    pub over_1ms: u64,
    pub ticks: u64,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    pub mean: f64,
    pub count: u64,
}

pub fn summarize(stats: &Stats, scenario: &str, mode: &str) -> Summary {
    let h = &stats.latency_us;
    let p = |q: f64| h.value_at_percentile(q);
    Summary {
        scenario: scenario.to_owned(),
        mode: mode.to_owned(),
        requests: stats.ok + stats.error_count(),
        ok: stats.ok,
        errors: stats.error_count(),
        errors_by_kind: stats
            .errors
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        throughput_per_s: stats.throughput(),
        latency_us: Latency {
            p50: p(PERCENTILES[0]),
            p90: p(PERCENTILES[1]),
            p99: p(PERCENTILES[2]),
            p99_9: p(PERCENTILES[3]),
            max: h.max(),
            mean: h.mean(),
            count: h.len(),
        },
        generator_late_us: (!stats.clock_late_us.is_empty()).then(|| {
            let c = &stats.clock_late_us;
            Late {
                p99: c.value_at_percentile(99.0),
                p99_9: c.value_at_percentile(99.9),
                max: c.max(),
                over_1ms: c.count_between(1001, u64::MAX),
                ticks: c.len(),
            }
        }),
    }
}

fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// The table for people.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let l = &s.latency_us;
    let _ = writeln!(out, "scenario {} ({})", s.scenario, s.mode);
    let _ = writeln!(
        out,
        "  requests   {:>12}   ok {}   errors {}",
        s.requests, s.ok, s.errors
    );
    for (k, v) in &s.errors_by_kind {
        let _ = writeln!(out, "    {k:<20} {v}");
    }
    let _ = writeln!(out, "  throughput {:>12.0} req/s", s.throughput_per_s);
    let _ = writeln!(
        out,
        "  latency    p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p99_9),
        ms(l.max)
    );
    if let Some(g) = &s.generator_late_us {
        let _ = writeln!(
            out,
            "  generator  send clock late p99 {}  p99.9 {}  max {}  ({} of {} ticks over 1 ms)",
            ms(g.p99),
            ms(g.p99_9),
            ms(g.max),
            g.over_1ms,
            g.ticks
        );
    }
    out
}

/// The percentile distribution in HdrHistogram's text format (values in
/// milliseconds).
pub fn hgrm(stats: &Stats) -> String {
    let h = &stats.latency_us;
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    for v in h.iter_quantiles(2) {
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            1.0 / (1.0 - q)
        } else {
            f64::INFINITY
        };
        let _ = writeln!(
            out,
            "{:12.3} {:14.12} {:10} {:14.2}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            v.count_since_last_iteration(),
            inv
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    out
}

/// A latency-by-percentile plot (SVG), one line per named run, x on the
/// usual HdrHistogram scale (1/(1-percentile), logarithmic).
pub fn svg(runs: &[(&str, &Stats)], path: &std::path::Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut max_ms: f64 = 0.001;
    for (name, stats) in runs {
        let mut pts = Vec::new();
        for v in stats.latency_us.iter_quantiles(2) {
            let q = v.quantile_iterated_to();
            if q >= 0.99999 {
                break;
            }
            let ms = v.value_iterated_to() as f64 / 1000.0;
            max_ms = max_ms.max(ms);
            pts.push((1.0 / (1.0 - q), ms));
        }
        series.push(((*name).to_owned(), pts));
    }
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("latency by percentile", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1.0f64..100_000.0).log_scale(), 0.0..max_ms * 1.1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile: 1/(1-p)  (10 = p90, 100 = p99, 1000 = p99.9)")
        .y_desc("ms")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let colours = [BLUE, RED, GREEN, MAGENTA, BLACK];
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
