//! The `authplane` command: `serve`, `config print`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use authplane::config::{Config, Layers, LogFormat};
use authplane::server::{self, Server};

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
    let config = layers(o)?.build()?;
    init_logging(&config);
    let routes = Arc::new(server::routes(&config).context("building the routing table")?);
    tracing::info!(
        listen = %config.server.listen,
        cores = config.server.cores,
        driver = ?config.server.io_driver,
        data_dir = %config.storage.data_dir.display(),
        "starting"
    );
    let n_routes = routes.len();
    authplane::runtime::run(
        &config.server,
        n_routes,
        move |core| Server::new(core, routes.clone()),
        |addr| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "listening on {addr}");
            let _ = stdout.flush();
        },
    )?;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(o) => serve(&o),
        Command::Config {
            command: ConfigCommand::Print(o),
        } => {
            let l = layers(&o)?;
            l.build()?;
            print!("{}", l.to_toml());
            Ok(())
        }
    }
}
