//! `majlis`: the desktop app. This is the placeholder window of the foundation release: it
//! runs an embedded node on the same data directory `majlisd` uses and shows `general`.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use eframe::egui;
use majlis_core::{Config, Event, Node, Profile, StoredMessage};

fn data_dir() -> Result<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--data" {
            return args
                .next()
                .map(PathBuf::from)
                .context("--data needs a directory");
        }
    }
    if let Ok(d) = std::env::var("MAJLIS_DATA") {
        return Ok(PathBuf::from(d));
    }
    majlis_headless::default_data_dir()
}

enum State {
    NotSetUp(String),
    Running {
        node: Node,
        rt: tokio::runtime::Handle,
        messages: Vec<StoredMessage>,
        events: mpsc::Receiver<Event>,
        draft: String,
    },
}

struct App {
    state: State,
    _rt: tokio::runtime::Runtime,
}

impl App {
    fn new(cc: &eframe::CreationContext<'_>) -> App {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = match data_dir().and_then(|d| Ok((d.clone(), Profile::open(&d)?))) {
            Ok((dir, p)) if p.org().ok().flatten().is_some() => {
                match rt.block_on(Node::start(p, Config::default())) {
                    Ok(node) => {
                        let (tx, rx) = mpsc::channel();
                        let mut sub = node.subscribe();
                        let ctx = cc.egui_ctx.clone();
                        rt.spawn(async move {
                            while let Ok(ev) = sub.recv().await {
                                if tx.send(ev).is_err() {
                                    break;
                                }
                                ctx.request_repaint();
                            }
                        });
                        let messages = node.history("general", 500).unwrap_or_default();
                        State::Running { node, rt: rt.handle().clone(), messages, events: rx, draft: String::new() }
                    }
                    Err(e) => State::NotSetUp(format!("could not start the node for {}: {e}", dir.display())),
                }
            }
            Ok((dir, _)) => State::NotSetUp(format!(
                "This device is in no organization yet. Run `majlisd --data {} org create --name ORG` or `org join ORG_ID`.",
                dir.display()
            )),
            Err(e) => State::NotSetUp(format!("{e}\n\nSet up this device with `majlisd init --name NAME` first.")),
        };
        App { state, _rt: rt }
    }
}

impl eframe::App for App {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        if let State::Running {
            events, messages, ..
        } = &mut self.state
        {
            while let Ok(ev) = events.try_recv() {
                if let Event::Message(m) = ev {
                    if m.channel == "general" && !messages.iter().any(|x| x.id == m.id) {
                        let pos =
                            messages.partition_point(|x| (x.sent_at, x.id) < (m.sent_at, m.id));
                        messages.insert(pos, m);
                    }
                }
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        match &mut self.state {
            State::NotSetUp(text) => {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading("Majlis");
                    ui.label(text.as_str());
                });
            }
            State::Running {
                node,
                rt,
                messages,
                draft,
                ..
            } => {
                egui::Panel::bottom("composer").show(ui, |ui| {
                    ui.horizontal(|ui| {
                        let r = ui.add(
                            egui::TextEdit::singleline(draft)
                                .hint_text("Message #general")
                                .desired_width(f32::INFINITY),
                        );
                        if r.lost_focus()
                            && ui.input(|i| i.key_pressed(egui::Key::Enter))
                            && !draft.trim().is_empty()
                        {
                            let n = node.clone();
                            let text = std::mem::take(draft);
                            // The node acknowledges after a durable write; the UI never waits.
                            rt.spawn(async move {
                                if let Err(e) = n.send("general", &text).await {
                                    tracing::warn!("send failed: {e}");
                                }
                            });
                            r.request_focus();
                        }
                    });
                });
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading(format!("#general — device {}", node.device_id()));
                    egui::ScrollArea::vertical()
                        .stick_to_bottom(true)
                        .show(ui, |ui| {
                            for m in messages.iter() {
                                ui.label(majlis_headless::format_message(m));
                            }
                        });
                });
            }
        }
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn,majlis_core=info"))
        .init();
    eframe::run_native(
        "Majlis",
        eframe::NativeOptions::default(),
        Box::new(|cc| Ok(Box::new(App::new(cc)))),
    )
    .map_err(|e| anyhow::anyhow!("could not open a window: {e}"))
}
