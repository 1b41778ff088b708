//! The `authplane-load` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use authplane_load::engine::{self, Mode, Plan};
use authplane_load::report;
use authplane_load::scenario::{Kind, Population, Scenario};

#[derive(Parser, Debug)]
#[command(
    name = "authplane-load",
    version,
    about = "Load generator for authplane: open or closed loop, every answer validated"
)]
struct Cli {
    /// Server address, e.g. 127.0.0.1:8080.
    #[arg(long)]
    target: SocketAddr,
    /// What to send.
    #[arg(long, value_enum, default_value = "ping")]
    scenario: Kind,
    /// Open loop: requests per second in all, latency measured from the
    /// intended send time. Without it: closed loop at maximum throughput.
    #[arg(long)]
    rate: Option<f64>,
    /// Keep-alive connections in all.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Client threads (one executor each); default: one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Measured time, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before it, e.g. 2s.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Subscribers of the population (hss-provision creates them; aka uses them).
    #[arg(long, default_value_t = 10_000)]
    subscribers: u64,
    /// First IMSI of the population.
    #[arg(long, default_value_t = 1_010_900_000_000)]
    first_imsi: u64,
    /// Seed the population's keys derive from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Write the latency percentile distribution (HdrHistogram .hgrm) here.
    #[arg(long)]
    hgrm: Option<PathBuf>,
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let provisioning = cli.scenario == Kind::HssProvision;
    let plan = Plan {
        target: cli.target,
        mode: match cli.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        },
        connections: cli.connections.max(1),
        threads,
        warmup: if provisioning {
            Duration::ZERO
        } else {
            cli.warmup
        },
        duration: cli.duration,
        requests: provisioning.then_some(cli.subscribers),
        scenario: Scenario {
            kind: cli.scenario,
            population: Population {
                seed: cli.seed,
                first_imsi: cli.first_imsi,
                size: cli.subscribers,
            },
            host: cli.target.to_string(),
        },
    };
    let stats = engine::run(&plan)?;
    let mode = match cli.rate {
        Some(r) => format!("open loop at {r} req/s"),
        None => "closed loop".into(),
    };
    let name = serde_json::to_value(cli.scenario)?
        .as_str()
        .unwrap_or("scenario")
        .to_owned();
    let summary = report::summarize(&stats, &name, &mode);
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", report::table(&summary));
    }
    if let Some(path) = &cli.hgrm {
        std::fs::write(path, report::hgrm(&stats))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if summary.errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}
