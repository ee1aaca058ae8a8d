//! The Majlis desktop app (egui/eframe). It embeds the same `core` node as `majlisd` and
//! stays thin: [`app::MajlisApp`] turns node events into what the user sees and clicks into
//! node commands; right-to-left text and fonts live in [`text`] and [`fonts`].

pub mod app;
pub mod fonts;
pub mod i18n;
pub mod notify;
pub mod text;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use eframe::egui;

pub use app::{MajlisApp, Options, State};
pub use i18n::Lang;

/// Command line of `majlis` (the desktop app).
#[derive(Parser, Debug)]
#[command(name = "majlis", version, about = "Majlis desktop app")]
pub struct Cli {
    /// Data directory of this device [default: the platform's data dir]
    #[arg(long, env = "MAJLIS_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// UI language
    #[arg(long, value_parser = ["en", "ar"])]
    pub lang: Option<String>,
    /// Open at: #CHANNEL (#CHANNEL/details with its details beside it), @NAME, people,
    /// network or admin
    #[arg(long, value_name = "VIEW")]
    pub open: Option<String>,
    /// Light or dark (remembered; the button in the top bar switches it)
    #[arg(long, value_parser = ["light", "dark"])]
    pub theme: Option<String>,
    /// Peer to dial, where multicast does not reach (repeatable): IP:PORT, HOST:PORT
    /// (resolved before each dial; one that does not resolve yet is tried again) or a
    /// multiaddr
    #[arg(long, value_name = "ADDR", value_parser = majlis_core::net::parse_peer_addr)]
    pub peer: Vec<majlis_core::Multiaddr>,
    /// Do not use mDNS discovery
    #[arg(long)]
    pub no_mdns: bool,
    /// Print the time from start to the first frame, then keep running
    #[arg(long, hide = true)]
    pub report_startup: bool,
}

struct EframeApp {
    app: MajlisApp,
    report_startup: bool,
}

impl eframe::App for EframeApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.app.logic(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app.draw(ui);
        if std::mem::take(&mut self.report_startup) {
            eprintln!(
                "first frame after {} ms",
                self.app.started.elapsed().as_millis()
            );
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.app.save_state());
    }

    /// egui's memory holds text-edit state (undo history included): drafts in plain text.
    /// It is not worth persisting that in eframe's unsealed file.
    fn persist_egui_memory(&self) -> bool {
        false
    }
}

/// Run the desktop app until its window closes.
pub fn run(cli: Cli) -> Result<()> {
    let data = match cli.data {
        Some(d) => d,
        None => majlis_core::profile::default_data_dir()
            .ok_or_else(|| anyhow::anyhow!("cannot find a home directory; pass --data DIR"))?,
    };
    std::fs::create_dir_all(&data)?;
    let opts = Options {
        config: majlis_core::Config {
            peers: cli.peer,
            mdns: !cli.no_mdns,
            ..majlis_core::Config::default()
        },
        open: cli.open,
        lang: cli.lang.as_deref().and_then(Lang::parse),
        theme: match cli.theme.as_deref() {
            Some("light") => Some(app::Theme::Light),
            Some("dark") => Some(app::Theme::Dark),
            _ => None,
        },
        data: data.clone(),
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Majlis")
            .with_inner_size([1000.0, 680.0]),
        // Per data directory, like the node: two devices on one machine keep their own drafts.
        persistence_path: Some(data.join(majlis_core::profile::GUI_STATE)),
        ..Default::default()
    };
    let report_startup = cli.report_startup;
    eframe::run_native(
        "Majlis",
        native,
        Box::new(move |cc| {
            let state: State = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            Ok(Box::new(EframeApp {
                app: MajlisApp::new(&cc.egui_ctx, opts, state),
                report_startup,
            }))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open a window: {e}"))
}
