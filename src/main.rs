//! The `authplane` command: `serve`, `config print`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use authplane::config::{Config, Layers, LogFormat};
use authplane::runtime::{data, DataDir, Storage};
use authplane::server::{Extensions, Server};
use authplane::services;
use authplane::storage::StoreOptions;

#[derive(Parser, Debug)]
#[command(
    name = "authplane",
    version,
    about = "Thread-per-core HSS/AuC, SIM auth, carrier AAA and STIR/SHAKEN server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct Overrides {
    /// TOML configuration file (over the embedded defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Cores to run on (0: all).
    #[arg(long, value_name = "N")]
    cores: Option<u16>,
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server until SIGTERM or SIGINT.
    Serve(Overrides),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// HSS commands.
    Hss {
        #[command(subcommand)]
        command: HssCommand,
    },
    /// AAA commands.
    Aaa {
        #[command(subcommand)]
        command: AaaCommand,
    },
    /// A virtual USIM for vsmartcard's vpcd: a card in a PC/SC reader
    /// without hardware (demos, tests, load tests). Runs until killed.
    Vcard(VcardArgs),
    /// Offline data directory commands (refused while a server holds it).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(clap::Args, Debug)]
struct VcardArgs {
    /// vpcd's port: 35963 is the first reader of Debian's vpcd, 35964 the
    /// second.
    #[arg(long, default_value_t = 35963)]
    port: u16,
    /// vpcd's host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The card's K (32 hex digits).
    #[arg(long)]
    ki: String,
    /// The card's OPc (32 hex digits).
    #[arg(long)]
    opc: String,
    /// The highest SQN the card has accepted (default: a new card, which
    /// accepts any fresh SQN, 0 included).
    #[arg(long)]
    sqn: Option<u64>,
    /// AMF the card expects (4 hex digits); informational: any AMF whose
    /// MAC verifies is accepted, as a USIM does.
    #[arg(long, default_value = "8000")]
    amf: String,
    /// Answer the T=1 protocol's ATR instead of T=0.
    #[arg(long)]
    t1: bool,
    /// Answer every AUTHENTICATE with this status word (e.g. 9862, 6982).
    #[arg(long, value_name = "HEX")]
    auth_sw: Option<String>,
    /// Simulated card time per AUTHENTICATE, in milliseconds.
    #[arg(long, default_value_t = 0)]
    auth_delay_ms: u64,
    /// Exit when vpcd closes the connection instead of reconnecting.
    #[arg(long)]
    once: bool,
}

fn hex_arg<const N: usize>(name: &str, v: &str) -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(v, &mut out)
        .map_err(|_| anyhow::anyhow!("--{name}: expected {} hex digits", 2 * N))?;
    Ok(out)
}

fn vcard(a: &VcardArgs) -> anyhow::Result<()> {
    use authplane::domain::{apdu::Protocol, usim::CardSpec};
    let _amf: [u8; 2] = hex_arg("amf", &a.amf)?;
    let forced_sw = match &a.auth_sw {
        Some(sw) => Some(u16::from_be_bytes(hex_arg("auth-sw", sw)?)),
        None => None,
    };
    let spec = CardSpec {
        k: hex_arg("ki", &a.ki)?,
        opc: hex_arg("opc", &a.opc)?,
        sqn: a.sqn,
        protocol: if a.t1 { Protocol::T1 } else { Protocol::T0 },
        forced_sw,
    };
    authplane::sim::vcard::run(
        &spec,
        &authplane::sim::vcard::Options {
            addr: format!("{}:{}", a.host, a.port),
            auth_delay: std::time::Duration::from_millis(a.auth_delay_ms),
            once: a.once,
        },
    )?;
    Ok(())
}

#[derive(Subcommand, Debug)]
enum HssCommand {
    /// Import a SIM vendor CSV file (columns by header: imsi, ki, opc or op,
    /// iccid, amf, sqn) into the data directory, offline. Re-running a
    /// file changes nothing. Exits 2 when some lines were refused.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Lines sorted in memory before a sorted run goes to disk (about
        /// 90 bytes each): the import's memory bound.
        #[arg(long, default_value_t = authplane::hss::import::SEGMENT_ROWS)]
        sort_lines: usize,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand, Debug)]
enum AaaCommand {
    /// Import a rate deck (CSV; columns by header: i_tariff, prefix,
    /// price_1, and optionally price_n, interval_1, interval_n,
    /// connect_fee, free_seconds, grace_seconds, forbidden) into the data
    /// directory, offline. Re-running a file changes nothing. Exits 2 when
    /// some lines were refused.
    ImportRates {
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Verify every snapshot and log; print counts and the last good offset
    /// of each log. Exits 1 if anything is damaged.
    Check {
        /// The data directory.
        dir: PathBuf,
    },
    /// Write a fresh snapshot of every shard and drop the replayed logs.
    Compact {
        /// The data directory.
        dir: PathBuf,
    },
    /// Create a data directory with N synthetic subscribers (AuC records
    /// with IMSI index entries), for load and startup tests.
    Generate {
        /// The data directory (must not exist yet).
        dir: PathBuf,
        /// Number of subscribers.
        #[arg(long)]
        subscribers: u64,
        /// Shards (the --cores the server will run with).
        #[arg(long)]
        cores: u16,
        /// First IMSI (15 digits); the rest follow it.
        #[arg(long, default_value = "001010000000000")]
        first_imsi: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Print(Overrides),
}

fn layers(o: &Overrides) -> anyhow::Result<Layers> {
    let mut l = Layers::new();
    if let Some(path) = &o.config {
        l = l.with_file(path)?;
    }
    l = l.with_env(std::env::vars());
    if let Some(listen) = &o.listen {
        l = l.with_flag(
            "server.listen",
            toml::Value::String(listen.clone()),
            "--listen",
        );
    }
    if let Some(cores) = o.cores {
        l = l.with_flag(
            "server.cores",
            toml::Value::Integer(i64::from(cores)),
            "--cores",
        );
    }
    if let Some(dir) = &o.data_dir {
        l = l.with_flag(
            "storage.data_dir",
            toml::Value::String(dir.to_string_lossy().into_owned()),
            "--data-dir",
        );
    }
    Ok(l)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_thread_names(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(o: &Overrides) -> anyhow::Result<()> {
    let loaded = layers(o)?;
    let config = loaded.build()?;
    init_logging(&config);
    let routes = Arc::new(services::routes(&config).context("building the routing table")?);
    let tables = Arc::new(services::tables(&config).context("declaring the tables")?);
    tracing::info!(
        listen = %config.server.listen,
        cores = config.server.cores,
        driver = ?config.server.io_driver,
        data_dir = %config.storage.data_dir.display(),
        "starting"
    );
    let n_routes = routes.len();
    let data = DataDir::open(&config.storage.data_dir, config.server.cores)?;
    let stir = if config.services.stir {
        let state =
            authplane::stir::Stir::load(&config).map_err(|e| loaded.key_error(e.key, e.message))?;
        Some(Arc::new(state))
    } else {
        None
    };
    let shared_config = Arc::new(config.clone());
    let tls = Arc::new(authplane::runtime::TlsListeners::load(
        &config.server.listeners,
    )?);
    let catalog = data::load_catalog(&data.catalog_dir())?.with_deriver(tables.deriver());
    let storage = Storage {
        data,
        options: StoreOptions {
            durability: config.storage.durability,
            compact_wal_bytes: config.storage.compact_wal_bytes,
            background_write_bytes_per_s: match config.storage.snapshot_write_mib_s {
                0 => None,
                mib => Some(mib << 20),
            },
            ..StoreOptions::default()
        },
        catalog: Arc::new(catalog),
    };
    if config.services.hss && config.hss.kek.is_none() {
        let warning = "hss.key_encryption_key is not set: Ki and OPc are stored UNENCRYPTED in the \
                       data directory. Set AUTHPLANE_HSS__KEY_ENCRYPTION_KEY to 32 or 64 hex digits.";
        tracing::warn!("{warning}");
        eprintln!("WARNING: {warning}");
    }
    if config.storage.durability == authplane::storage::Durability::None {
        tracing::warn!("storage.durability = \"none\": acknowledged writes can be lost in a crash");
    }
    let sim = if config.services.sim {
        Some(
            authplane::sim::Readers::start(config.sim.clone())
                .context("starting the PC/SC supervisor")?,
        )
    } else {
        None
    };
    let mut extensions = Extensions::default();
    if let Some(readers) = &sim {
        extensions.insert(readers.clone());
    }
    if let Some(state) = &stir {
        extensions.insert(state.clone());
    }
    if config.services.hss {
        authplane::hss::start(&config.hss, &mut extensions)
            .map_err(|(key, message)| loaded.key_error(key, message))?;
    }
    let diameter = if config.services.diameter && config.services.hss {
        let d = authplane::diameter::Diameter::start(
            &config.diameter,
            config.server.cores,
            &config.storage.data_dir,
            services::diameter_apps(&config),
        )
        .context("starting the Diameter listener")?;
        let d = Arc::new(d);
        extensions.insert(d.clone());
        Some(d)
    } else {
        None
    };
    let diameter_bound = diameter.as_ref().map(|d| d.bound);
    extensions.insert(tls.clone());
    let extensions = Arc::new(extensions);
    let reload_overrides = o.clone();
    let reload_tls = tls.clone();
    let result = authplane::runtime::run(
        &config.server,
        &tls,
        storage,
        n_routes,
        move |core| {
            let server = Server::new(
                core,
                routes.clone(),
                shared_config.clone(),
                tables.clone(),
                extensions.clone(),
            );
            if let Some(d) = &diameter {
                d.serve_on_core(server.ctx().clone());
                authplane::hss::on_core(server.ctx());
            }
            server
        },
        |bound| {
            // One write, so a reader waiting for the last line sees all.
            let mut lines = String::new();
            if let Some(d) = diameter_bound {
                lines.push_str(&format!("diameter listening on {d}\n"));
            }
            // One line per listener, then the first one's address alone.
            for b in bound {
                let scheme = if b.tls { "https" } else { "http" };
                lines.push_str(&format!(
                    "listener {} listening on {} ({scheme}; {})\n",
                    b.name,
                    b.addr,
                    b.apis.names()
                ));
            }
            if let Some(first) = bound.first() {
                lines.push_str(&format!("listening on {}\n", first.addr));
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(lines.as_bytes());
            let _ = stdout.flush();
        },
        move || {
            reload_tls.reload();
            if let Some(state) = &stir {
                reload_credentials(&reload_overrides, state);
            }
        },
    );
    if let Some(sim) = sim {
        sim.stop();
    }
    result?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: reads the configuration again and replaces the STIR signing
/// credentials (keys, x5u, prefixes). A configuration that does not load
/// changes nothing; other settings need a restart.
fn reload_credentials(o: &Overrides, stir: &authplane::stir::Stir) {
    let reloaded = layers(o).and_then(|l| {
        let c = l.build()?;
        stir.reload(&c)
            .map_err(|e| anyhow::Error::from(l.key_error(e.key, e.message)))
    });
    match reloaded {
        Ok(n) => tracing::info!(credentials = n, "STIR signing credentials reloaded"),
        Err(e) => {
            tracing::error!(error = %e, "reload refused: the credentials in use are kept");
        }
    }
}

/// The shard count a data directory was written with (its FORMAT file).
fn shards_of(dir: &std::path::Path) -> anyhow::Result<u16> {
    let format = std::fs::read_to_string(dir.join("FORMAT")).with_context(|| {
        format!(
            "{} is not an authplane data directory (no FORMAT)",
            dir.display()
        )
    })?;
    format
        .lines()
        .find_map(|l| l.strip_prefix("shards "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("{}/FORMAT names no shard count", dir.display()))
}

fn data_command(command: &DataCommand) -> anyhow::Result<std::process::ExitCode> {
    use authplane::domain::shard::ShardId;
    use authplane::storage::store::{compact_recovered, recover};
    let dir = match command {
        DataCommand::Check { dir } | DataCommand::Compact { dir } => dir,
        DataCommand::Generate {
            dir,
            subscribers,
            cores,
            first_imsi,
        } => {
            authplane::hss::generate::generate(
                dir,
                *subscribers,
                *cores,
                *first_imsi,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
    };
    let shards = shards_of(dir)?;
    // Takes the lock: refused while a server runs on the directory.
    let data = DataDir::open(dir, shards)?;
    let mut parts: Vec<(String, std::path::PathBuf, authplane::storage::Identity)> = (0..shards)
        .map(|k| {
            (
                format!("shard {k}"),
                data.shard_dir(ShardId(k)),
                data.shard_identity(ShardId(k)),
            )
        })
        .collect();
    parts.push(("catalog".into(), data.catalog_dir(), data::CATALOG_IDENTITY));
    let mut damaged = false;
    for (name, path, identity) in parts {
        if !path.exists() {
            println!("{name}: empty");
            continue;
        }
        let repair = matches!(command, DataCommand::Compact { .. });
        let rec = match recover(&path, identity, repair) {
            Ok(r) => r,
            Err(e) => {
                println!("{name}: DAMAGED: {e}");
                damaged = true;
                continue;
            }
        };
        let snap = match (rec.report.snapshot_generation, &rec.snapshot) {
            (Some(g), Some(s)) => {
                // Every block and index page, against its checksum.
                let check = s.check(0, |_| true);
                for e in &check.damaged {
                    println!("{name}: DAMAGED snapshot generation {g}: {e}");
                    damaged = true;
                }
                if check.entries != s.header.entries && check.damaged.is_empty() {
                    println!(
                        "{name}: DAMAGED snapshot generation {g}: {} entries read, the header says {}",
                        check.entries, s.header.entries
                    );
                    damaged = true;
                }
                format!(
                    "snapshot generation {g} with {} entries in {} blocks ({} bytes)",
                    rec.report.snapshot_entries,
                    s.header.blocks,
                    s.file_len()
                )
            }
            _ => "no snapshot".into(),
        };
        println!(
            "{name}: {snap}, {} keys changed in the logs",
            rec.overlay.len()
        );
        for log in &rec.report.logs {
            let state = match log.damage {
                Some(reason) => {
                    damaged |= !repair;
                    format!("torn tail ({reason}) after offset {}", log.good_end)
                }
                None => format!("clean to offset {}", log.good_end),
            };
            println!("  {}: {} records, {state}", log.path.display(), log.records);
        }
        if repair {
            if let Some(snap) = compact_recovered(&path, identity, &rec)? {
                println!(
                    "  compacted into generation {}: {} entries",
                    snap.header.generation,
                    snap.len()
                );
            }
        }
    }
    Ok(if damaged {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(o) => serve(&o).map(|()| std::process::ExitCode::SUCCESS),
        Command::Config {
            command: ConfigCommand::Print(o),
        } => {
            let l = layers(&o)?;
            l.build()?;
            print!("{}", l.to_toml());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Data { command } => data_command(&command),
        Command::Vcard(a) => vcard(&a).map(|()| std::process::ExitCode::SUCCESS),
        Command::Aaa {
            command: AaaCommand::ImportRates { file, overrides },
        } => {
            let config = layers(&overrides)?.build()?;
            let started = authplane::runtime::clock::now();
            let report = authplane::aaa::import::import_rates(
                &file,
                &config.storage.data_dir,
                config.server.cores,
                authplane::runtime::clock::unix_seconds(),
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            report.print(&file, "rates", started.elapsed().as_secs_f64());
            Ok(if report.errors.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            })
        }
        Command::Hss {
            command:
                HssCommand::Import {
                    file,
                    sort_lines,
                    overrides,
                },
        } => {
            let config = layers(&overrides)?.build()?;
            let started = authplane::runtime::clock::now();
            let report = authplane::hss::import::import(
                &file,
                &config.storage.data_dir,
                config.server.cores,
                config.hss.kek.as_deref(),
                authplane::runtime::clock::unix_seconds(),
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                sort_lines,
            )?;
            report.print(&file, "lines", started.elapsed().as_secs_f64());
            if config.hss.kek.is_none() {
                eprintln!("WARNING: hss.key_encryption_key is not set: Ki and OPc were stored UNENCRYPTED.");
            }
            Ok(if report.errors.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(2)
            })
        }
    }
}
