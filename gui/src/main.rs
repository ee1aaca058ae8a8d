//! `majlis`: the desktop app. All of it is in the library; see `lib.rs`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAJLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,majlis_core=info")),
        )
        .init();
    majlis_gui::run(majlis_gui::Cli::parse())
}
