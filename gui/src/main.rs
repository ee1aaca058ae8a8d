//! `majlis`: the desktop app. All of it is in the library; see `lib.rs`.

use clap::Parser;

/// mimalloc, as every Majlis binary: sled's node copies and the per-message records made
/// glibc's malloc a quarter of the event loop's time (docs/benchmarks.md, session 61).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    // `MAJLIS_DATA=` (empty) means "not set", as for `majlisd`; clap would refuse it as a
    // `--data` given without a value. Before any thread starts.
    if std::env::var_os("MAJLIS_DATA").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("MAJLIS_DATA");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAJLIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,majlis_core=info")),
        )
        .init();
    majlis_gui::run(majlis_gui::Cli::parse())
}
