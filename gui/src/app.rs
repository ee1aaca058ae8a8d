//! The app: `logic` drains node events and command replies without blocking; `draw` only
//! draws and emits commands, which run on the tokio runtime and report back through a
//! channel. Background events wake the UI with `request_repaint`, so an idle window costs
//! nothing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use eframe::egui::{self, Align, Color32, Layout, RichText};
use majlis_core::roster::{dm_channel, dm_parties, AuditEntry, DmPolicy, Policy, VerifiedRoster};
use majlis_core::{
    Config, DeviceId, Event, MessageId, Node, OrgId, PeerInfo, Profile, Role, RosterChange,
    StoredMessage,
};
use serde::{Deserialize, Serialize};

use crate::i18n::{tr, Lang};
use crate::text;

/// How the app was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub data: PathBuf,
    pub config: Config,
    /// Open this view at start: `#CHANNEL`, `@NAME`, `people`, `network` or `admin`.
    pub open: Option<String>,
    pub lang: Option<Lang>,
}

/// What the app remembers between runs (persisted by eframe next to the data directory).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub lang: Lang,
    /// Unsent text per channel.
    pub drafts: HashMap<String, String>,
    /// Per channel, the `sent_at` of the newest message the user has seen.
    pub last_read: HashMap<String, u64>,
    /// Per device id, when it was last connected (ms since the epoch).
    pub last_seen: HashMap<String, u64>,
    pub selected: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Chat,
    People,
    Network,
    Admin,
}

/// Results of commands that ran in the background.
enum Reply {
    Sent {
        local: u64,
        result: Result<MessageId, String>,
    },
    /// Connected peers, and the version from which the roster is contested, if it is.
    Peers(Vec<PeerInfo>, Option<u64>),
    Audit(Vec<AuditEntry>),
    RosterChanged(Result<u64, String>),
    Listen(Vec<majlis_core::Multiaddr>),
}

#[derive(Default)]
struct Onboarding {
    has_profile: bool,
    name: String,
    org_name: String,
    org_id: String,
    error: Option<String>,
}

/// A message typed here and not yet acknowledged by the node (durably stored).
struct PendingSend {
    local: u64,
    channel: String,
    text: String,
    failed: Option<String>,
}

/// The loaded window of one channel's history: newest pages first, older pages on demand.
struct Conversation {
    channel: String,
    rows: Vec<StoredMessage>,
    ids: HashSet<MessageId>,
    heights: Vec<Option<f32>>,
    width: f32,
    has_older: bool,
    scroll_fix: Option<f32>,
}

const PAGE: usize = 200;

#[derive(Default)]
struct AdminForm {
    name: String,
    device: String,
    role: Option<Role>,
    dev_member: String,
    dev_id: String,
    channel: String,
    channel_members: HashSet<String>,
    confirm: Option<(String, RosterChange)>,
}

struct Running {
    node: Node,
    me: DeviceId,
    events: mpsc::Receiver<Event>,
    roster: Option<Arc<VerifiedRoster>>,
    view: View,
    conv: Option<Conversation>,
    unread: HashMap<String, usize>,
    pending: Vec<PendingSend>,
    next_local: u64,
    peers: Vec<PeerInfo>,
    contested: Option<u64>,
    online: HashSet<DeviceId>,
    audit: Vec<AuditEntry>,
    listen: Vec<majlis_core::Multiaddr>,
    admin: AdminForm,
    notice: Option<(String, Instant)>,
    copied: Option<Instant>,
}

impl Running {
    /// This device's member entry in the head roster.
    fn me_member(&self) -> Option<&majlis_core::roster::Member> {
        self.roster.as_ref()?.member_of_device(&self.me)
    }

    fn my_name(&self) -> String {
        self.me_member().map(|m| m.name.clone()).unwrap_or_default()
    }
}

enum Phase {
    Onboarding(Onboarding),
    Running(Box<Running>),
    Failed(String),
    /// The running state is borrowed out for the current frame (see `take_running`).
    Busy,
}

pub struct MajlisApp {
    pub state: State,
    opts: Options,
    phase: Phase,
    rt: tokio::runtime::Runtime,
    ctx: egui::Context,
    replies_tx: mpsc::Sender<Reply>,
    replies: mpsc::Receiver<Reply>,
    /// The system font used for Arabic and Hebrew, if one was found.
    pub rtl_font: Option<PathBuf>,
    focused: bool,
    /// When the app was created, for the cold-start figure.
    pub started: Instant,
}

fn now_ms() -> u64 {
    majlis_core::now_ms()
}

impl MajlisApp {
    /// Build the app; `state` is what eframe restored (or the default).
    pub fn new(ctx: &egui::Context, opts: Options, mut state: State) -> MajlisApp {
        let started = Instant::now();
        let rtl_font = crate::fonts::install(ctx);
        if let Some(l) = opts.lang {
            state.lang = l;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (replies_tx, replies) = mpsc::channel();
        let mut app = MajlisApp {
            state,
            phase: Phase::Onboarding(Onboarding::default()),
            rt,
            ctx: ctx.clone(),
            replies_tx,
            replies,
            rtl_font,
            focused: true,
            started,
            opts,
        };
        app.phase = match Profile::open(&app.opts.data) {
            Ok(p) if p.org().ok().flatten().is_some() => app.start_node(p),
            Ok(_) => Phase::Onboarding(Onboarding {
                has_profile: true,
                ..Default::default()
            }),
            Err(_) => Phase::Onboarding(Onboarding::default()),
        };
        app
    }

    fn start_node(&mut self, profile: Profile) -> Phase {
        let node = match self
            .rt
            .block_on(Node::start(profile, self.opts.config.clone()))
        {
            Ok(n) => n,
            Err(e) => {
                return Phase::Failed(format!(
                    "could not start the node for {}: {e}",
                    self.opts.data.display()
                ))
            }
        };
        self.load_private_state(&node);
        let (tx, events) = mpsc::channel();
        let mut sub = node.subscribe();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            loop {
                match sub.recv().await {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            break;
                        }
                        ctx.request_repaint();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                }
            }
        });
        let me = node.device_id();
        let mut run = Running {
            node,
            me,
            events,
            roster: None,
            view: View::Chat,
            conv: None,
            unread: HashMap::new(),
            pending: Vec::new(),
            next_local: 0,
            peers: Vec::new(),
            contested: None,
            online: HashSet::new(),
            audit: Vec::new(),
            listen: Vec::new(),
            admin: AdminForm::default(),
            notice: None,
            copied: None,
        };
        self.spawn_listen(&run.node);
        self.spawn_peers(&run.node);
        self.on_roster(&mut run);
        match self.opts.open.clone().as_deref() {
            Some("people") => run.view = View::People,
            Some("network") => run.view = View::Network,
            Some("admin") => run.view = View::Admin,
            Some(ch) => {
                let ch = ch.trim_start_matches('#');
                if let Ok(c) = run.node.resolve(ch) {
                    self.state.selected = Some(c);
                }
            }
            None => {}
        }
        if run.view == View::Admin {
            self.spawn_audit(&run.node);
        }
        Phase::Running(Box::new(run))
    }

    // ---- background commands ----------------------------------------------------------

    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = Reply> + Send + 'static,
    {
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
            ctx.request_repaint();
        });
    }

    fn spawn_peers(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move {
            let contested = n.stats().await.ok().and_then(|s| s.roster_contested);
            Reply::Peers(n.peers().await.unwrap_or_default(), contested)
        });
    }

    fn spawn_audit(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move { Reply::Audit(n.audit().await.unwrap_or_default()) });
    }

    fn spawn_listen(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move { Reply::Listen(n.listen_addrs().await.unwrap_or_default()) });
    }

    fn spawn_change(&self, node: &Node, change: RosterChange) {
        let n = node.clone();
        self.spawn(async move {
            Reply::RosterChanged(n.change_roster(change).await.map_err(|e| e.to_string()))
        });
    }

    // ---- logic: drain, never block ----------------------------------------------------

    /// Apply node events and command results. Cheap when nothing happened.
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        let Some(mut run) = self.take_running() else {
            return;
        };
        let mut roster_changed = false;
        let mut peers_changed = false;
        while let Ok(ev) = run.events.try_recv() {
            match ev {
                Event::Message(m) => self.on_message(&mut run, m),
                Event::RosterChanged { .. } => roster_changed = true,
                // Messages shown locked in the open conversation may open now.
                Event::KeysReceived { channel }
                    if run.conv.as_ref().is_some_and(|c| c.channel == channel) =>
                {
                    run.conv = Some(Conversation::open(&run.node, &channel));
                }
                Event::PeerConnected { device, .. } => {
                    run.online.insert(device);
                    self.state.last_seen.insert(device.to_string(), now_ms());
                    peers_changed = true;
                }
                Event::PeerDisconnected { device } => {
                    run.online.remove(&device);
                    self.state.last_seen.insert(device.to_string(), now_ms());
                    peers_changed = true;
                }
                Event::Wiped { .. } => {
                    self.phase = Phase::Failed(
                        "This device was removed from the organization; its keys and history have been erased.".into(),
                    );
                    return;
                }
                _ => {}
            }
        }
        while let Ok(r) = self.replies.try_recv() {
            match r {
                Reply::Sent { local, result } => match result {
                    Ok(_) => run.pending.retain(|p| p.local != local),
                    Err(e) => {
                        if let Some(p) = run.pending.iter_mut().find(|p| p.local == local) {
                            p.failed = Some(e);
                        }
                    }
                },
                Reply::Peers(p, contested) => {
                    run.contested = contested;
                    run.online = p.iter().map(|p| p.device).collect();
                    for p in &p {
                        self.state.last_seen.insert(p.device.to_string(), now_ms());
                    }
                    run.peers = p;
                }
                Reply::Audit(a) => run.audit = a,
                Reply::Listen(l) => run.listen = l,
                Reply::RosterChanged(r) => {
                    let text = match r {
                        Ok(v) => format!("roster is now at version {v}"),
                        Err(e) => e,
                    };
                    run.notice = Some((text, Instant::now()));
                    roster_changed = true;
                }
            }
        }
        if roster_changed {
            self.on_roster(&mut run);
            self.spawn_audit(&run.node);
        }
        if peers_changed || roster_changed {
            self.spawn_peers(&run.node);
        }
        self.put_running(run);
    }

    /// Borrow the running state out for a frame (so drawing can use `&mut self` too).
    fn take_running(&mut self) -> Option<Box<Running>> {
        match std::mem::replace(&mut self.phase, Phase::Busy) {
            Phase::Running(run) => Some(run),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// Put it back, unless the frame moved to another phase (e.g. this device was wiped).
    fn put_running(&mut self, run: Box<Running>) {
        if matches!(self.phase, Phase::Busy) {
            self.phase = Phase::Running(run);
        }
    }

    fn on_roster(&mut self, run: &mut Running) {
        run.roster = run.node.roster_now();
        let Some(r) = run.roster.clone() else {
            return;
        };
        if r.member_of_device(&run.me).is_none() {
            return;
        }
        if self.state.selected.is_none() {
            self.state.selected = Some("general".into());
        }
        for ch in channel_keys(&r, run.me) {
            let after = self.state.last_read.get(&ch).copied().unwrap_or(0);
            if !run.unread.contains_key(&ch) {
                let n = run
                    .node
                    .store()
                    .count_after(&ch, after, &run.me, 100)
                    .unwrap_or(0);
                run.unread.insert(ch, n);
            }
        }
    }

    fn on_message(&mut self, run: &mut Running, m: StoredMessage) {
        let mine = m.device == run.me;
        if mine {
            if let Some(i) = run
                .pending
                .iter()
                .position(|p| p.channel == m.channel && p.text == m.text)
            {
                run.pending.remove(i);
            }
        }
        let open =
            self.state.selected.as_deref() == Some(m.channel.as_str()) && run.view == View::Chat;
        if open {
            if let Some(c) = &mut run.conv {
                c.insert(m.clone());
            }
            let lr = self.state.last_read.entry(m.channel.clone()).or_default();
            *lr = (*lr).max(m.sent_at);
        } else if !mine {
            *run.unread.entry(m.channel.clone()).or_default() += 1;
        }
        if !mine && !self.focused {
            let my_name = run.my_name();
            let dm = dm_parties(&m.channel).is_some();
            let mention = !my_name.is_empty() && m.text.contains(&format!("@{my_name}"));
            if dm || mention {
                crate::notify::show(&format!("Majlis: {}", m.sender), &m.text);
            }
        }
    }

    /// The embedded node, once this device belongs to an organization.
    pub fn node(&self) -> Option<&Node> {
        match &self.phase {
            Phase::Running(r) => Some(&r.node),
            _ => None,
        }
    }

    /// How many messages of the open conversation are loaded (history is paged in lazily).
    pub fn loaded_rows(&self) -> usize {
        match &self.phase {
            Phase::Running(r) => r.conv.as_ref().map_or(0, |c| c.rows.len()),
            _ => 0,
        }
    }

    /// Persist the remembered state (eframe calls this periodically and on exit). Drafts,
    /// read marks and the like are sealed in the node's store; eframe's own file (plain
    /// text) gets only the language.
    pub fn save_state(&self) -> State {
        if let Phase::Running(run) = &self.phase {
            let private = serde_json::to_vec(&self.state).expect("state serializes");
            let store = run.node.store();
            if let Err(e) = store
                .set_private("gui-state", &private)
                .and_then(|_| store.flush())
            {
                tracing::warn!("saving the app state: {e}");
            }
        }
        State {
            lang: self.state.lang,
            ..State::default()
        }
    }

    /// Take the state sealed in the store (what an earlier `save_state` kept there); what
    /// eframe's file still holds from a release before sealing is kept and sealed next save.
    fn load_private_state(&mut self, node: &Node) {
        let Ok(Some(bytes)) = node.store().get_private("gui-state") else {
            return;
        };
        let Ok(saved) = serde_json::from_slice::<State>(&bytes) else {
            return;
        };
        let s = &mut self.state;
        for (k, v) in saved.drafts {
            s.drafts.entry(k).or_insert(v);
        }
        for (k, v) in saved.last_read {
            s.last_read.entry(k).or_insert(v);
        }
        for (k, v) in saved.last_seen {
            s.last_seen.entry(k).or_insert(v);
        }
        if s.selected.is_none() {
            s.selected = saved.selected;
        }
    }

    // ---- draw --------------------------------------------------------------------------

    fn t(&self, en: &'static str) -> String {
        text::for_egui(tr(self.state.lang, en)).into_owned()
    }

    /// One frame: logic, then drawing.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        self.logic(&ui.ctx().clone());
        self.draw(ui);
    }

    pub fn draw(&mut self, ui: &mut egui::Ui) {
        match &self.phase {
            Phase::Onboarding(_) => self.draw_onboarding(ui),
            Phase::Failed(msg) => {
                let msg = msg.clone();
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading("Majlis");
                    ui.label(msg);
                });
            }
            Phase::Running(_) => self.draw_running(ui),
            Phase::Busy => {}
        }
    }

    fn draw_onboarding(&mut self, ui: &mut egui::Ui) {
        let lang = self.state.lang;
        let t = |en| text::for_egui(tr(lang, en)).into_owned();
        let mut action: Option<bool> = None; // Some(true): create, Some(false): join
        let mut switch_lang = false;
        egui::CentralPanel::default().show(ui, |ui| {
            let Phase::Onboarding(ob) = &mut self.phase else {
                return;
            };
            let layout = if lang.rtl() {
                Layout::top_down(Align::Max)
            } else {
                Layout::top_down(Align::Min)
            };
            ui.with_layout(layout, |ui| {
                ui.heading(t("Welcome to Majlis"));
                if ui
                    .button(
                        if lang.rtl() {
                            "English"
                        } else {
                            "العربية"
                        }
                        .to_string(),
                    )
                    .clicked()
                {
                    switch_lang = true;
                }
                ui.add_space(12.0);
                if !ob.has_profile {
                    labelled_field(ui, &t("Your name"), &mut ob.name);
                    ui.add_space(8.0);
                }
                ui.separator();
                ui.label(RichText::new(t("Create an organization")).strong());
                labelled_field(ui, &t("Organization name"), &mut ob.org_name);
                if ui.button(t("Create")).clicked() {
                    action = Some(true);
                }
                ui.separator();
                ui.label(RichText::new(t("Join an organization")).strong());
                labelled_field(ui, &t("Organization id"), &mut ob.org_id);
                if ui.button(t("Join")).clicked() {
                    action = Some(false);
                }
                if let Some(e) = &ob.error {
                    ui.colored_label(Color32::from_rgb(200, 60, 60), e.as_str());
                }
            });
        });
        if switch_lang {
            self.toggle_lang();
        }
        if let Some(create) = action {
            if let Err(e) = self.finish_onboarding(create) {
                if let Phase::Onboarding(ob) = &mut self.phase {
                    ob.error = Some(e);
                }
            }
        }
    }

    fn toggle_lang(&mut self) {
        self.state.lang = if self.state.lang.rtl() {
            Lang::En
        } else {
            Lang::Ar
        };
    }

    fn finish_onboarding(&mut self, create: bool) -> Result<(), String> {
        let Phase::Onboarding(ob) = &self.phase else {
            return Ok(());
        };
        let (name, org_name, org_id, has_profile) = (
            ob.name.trim().to_string(),
            ob.org_name.trim().to_string(),
            ob.org_id.trim().to_string(),
            ob.has_profile,
        );
        let dir = self.opts.data.clone();
        let profile = if has_profile {
            Profile::open(&dir).map_err(|e| e.to_string())?
        } else {
            if name.is_empty() {
                return Err("Enter your name first.".into());
            }
            Profile::init(&dir, &name).map_err(|e| e.to_string())?
        };
        if create {
            if org_name.is_empty() {
                return Err("Enter the organization's name.".into());
            }
            profile.org_create(&org_name).map_err(|e| e.to_string())?;
        } else {
            let org: OrgId = org_id
                .parse()
                .map_err(|e: majlis_core::Error| e.to_string())?;
            profile.org_join(org).map_err(|e| e.to_string())?;
        }
        self.phase = self.start_node(profile);
        Ok(())
    }

    fn draw_running(&mut self, ui: &mut egui::Ui) {
        let Some(mut run) = self.take_running() else {
            return;
        };
        let listed = run
            .roster
            .as_ref()
            .is_some_and(|r| r.member_of_device(&run.me).is_some());
        if listed {
            self.draw_top_bar(ui, &mut run);
            if run.view == View::Chat {
                self.draw_sidebar(ui, &mut run);
            }
            // The chat view lays out its own panels (composer at the bottom, then the rest).
            if run.view == View::Chat {
                self.draw_chat(ui, &mut run);
            } else {
                egui::CentralPanel::default().show(ui, |ui| match run.view {
                    View::People => self.draw_people(ui, &run),
                    View::Network => self.draw_network(ui, &run),
                    _ => self.draw_admin(ui, &mut run),
                });
            }
        } else {
            self.draw_waiting(ui, &mut run);
        }
        self.put_running(run);
    }

    fn draw_waiting(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let id = run.me.to_string();
        let rtl = self.state.lang.rtl();
        let (label, copy, copied, wait) = (
            self.t("This device's id"),
            self.t("Copy"),
            self.t("Copied"),
            self.t(
                "Waiting for an admin to add this device to the roster. Give them the id above.",
            ),
        );
        egui::CentralPanel::default().show(ui, |ui| {
            let layout = if rtl {
                Layout::top_down(Align::Max)
            } else {
                Layout::top_down(Align::Min)
            };
            ui.with_layout(layout, |ui| {
                ui.heading("Majlis");
                ui.label(label);
                ui.monospace(&id);
                let shown = run
                    .copied
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(2));
                if ui.button(if shown { copied } else { copy }).clicked() {
                    ui.ctx().copy_text(id.clone());
                    run.copied = Some(Instant::now());
                }
                ui.add_space(12.0);
                ui.spinner();
                ui.label(wait);
            });
        });
    }

    fn draw_top_bar(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let rtl = self.state.lang.rtl();
        let is_admin = run.me_member().is_some_and(|m| m.role == Role::Admin);
        let org = run
            .roster
            .as_ref()
            .map(|r| r.roster.name.clone())
            .unwrap_or_default();
        let me = run.my_name();
        let mut tabs = vec![
            (View::Chat, self.t("Conversations")),
            (View::People, self.t("People")),
            (View::Network, self.t("Network")),
        ];
        if is_admin {
            tabs.push((View::Admin, self.t("Admin")));
        }
        let mut switch_lang = false;
        let mut open_admin = false;
        egui::Panel::top("top").show(ui, |ui| {
            let layout = if rtl {
                Layout::right_to_left(Align::Center)
            } else {
                Layout::left_to_right(Align::Center)
            };
            ui.with_layout(layout, |ui| {
                ui.strong(text::for_egui(&org).into_owned());
                ui.label(format!("· {}", text::for_egui(&me)));
                ui.separator();
                for (v, label) in &tabs {
                    if ui
                        .selectable_label(run.view == *v, label.as_str())
                        .clicked()
                    {
                        if *v == View::Admin {
                            open_admin = true;
                        }
                        run.view = *v;
                        if *v == View::Chat {
                            run.conv = None;
                        }
                    }
                }
                ui.separator();
                if ui
                    .button(if rtl { "English" } else { "العربية" }.to_string())
                    .clicked()
                {
                    switch_lang = true;
                }
            });
        });
        if open_admin {
            self.spawn_audit(&run.node);
        }
        if switch_lang {
            self.toggle_lang();
        }
    }

    fn channel_label(&self, run: &Running, key: &str) -> String {
        match dm_parties(key) {
            Some((a, b)) => {
                let me = run.my_name();
                let other = if a == me { b } else { a };
                format!("@ {}", text::for_egui(other))
            }
            None => format!("# {}", text::for_egui(key)),
        }
    }

    fn draw_sidebar(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let keys = channel_keys(&r, run.me);
        let (chans, dms): (Vec<String>, Vec<String>) =
            keys.into_iter().partition(|k| dm_parties(k).is_none());
        let rtl = self.state.lang.rtl();
        let panel = if rtl {
            egui::Panel::right("channels")
        } else {
            egui::Panel::left("channels")
        };
        let (h_chan, h_dm) = (self.t("Channels"), self.t("Direct messages"));
        let mut clicked = None;
        panel.default_size(200.0).show(ui, |ui| {
            let layout = if rtl {
                Layout::top_down_justified(Align::Max)
            } else {
                Layout::top_down_justified(Align::Min)
            };
            ui.with_layout(layout, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for (heading, list) in [(h_chan, &chans), (h_dm, &dms)] {
                        ui.add_space(6.0);
                        ui.label(RichText::new(heading).strong());
                        for k in list {
                            let n = run.unread.get(k).copied().unwrap_or(0);
                            let mut label = self.channel_label(run, k);
                            if n > 0 {
                                label = format!(
                                    "{label} ({})",
                                    if n >= 100 {
                                        "99+".into()
                                    } else {
                                        n.to_string()
                                    }
                                );
                            }
                            let sel = self.state.selected.as_deref() == Some(k.as_str());
                            let text = if n > 0 {
                                RichText::new(label).strong()
                            } else {
                                RichText::new(label)
                            };
                            if ui.selectable_label(sel, text).clicked() {
                                clicked = Some(k.clone());
                            }
                        }
                    }
                });
            });
        });
        if let Some(k) = clicked {
            self.state.selected = Some(k);
            run.conv = None;
        }
    }

    fn draw_chat(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(channel) = self.state.selected.clone() else {
            return;
        };
        if run.conv.as_ref().is_none_or(|c| c.channel != channel) {
            run.conv = Some(Conversation::open(&run.node, &channel));
        }
        // Opening a channel reads it.
        run.unread.insert(channel.clone(), 0);
        if let Some(last) = run.conv.as_ref().and_then(|c| c.rows.last()) {
            let lr = self.state.last_read.entry(channel.clone()).or_default();
            *lr = (*lr).max(last.sent_at);
        }
        let rtl_ui = self.state.lang.rtl();
        let title = self.channel_label(run, &channel);
        let hint = format!("{} {}", self.t("Message"), title);
        let send_label = self.t("Send");
        let strings = RowStrings {
            you: self.t("You"),
            sending: self.t("sending…"),
            sent: self.t("sent"),
            today: self.t("Today"),
            yesterday: self.t("Yesterday"),
            empty: self.t("No messages yet."),
            locked: self.t(majlis_core::store::LOCKED_TEXT),
        };
        // Composer at the bottom.
        let draft = self.state.drafts.entry(channel.clone()).or_default();
        let mut send = false;
        // A fixed height: a centred row would otherwise take all the height the panel had last
        // frame, and the panel would grow a little every frame.
        egui::Panel::bottom("composer")
            .exact_size(64.0)
            .show(ui, |ui| {
                ui.add_space(4.0);
                let id = ui.make_persistent_id(("composer", &channel));
                let focused = ui.memory(|m| m.has_focus(id));
                // Enter sends; Shift+Enter is left to the editor (a new line).
                if focused
                    && ui.input_mut(|i| {
                        !i.modifiers.shift && i.consume_key(egui::Modifiers::NONE, egui::Key::Enter)
                    })
                {
                    send = true;
                }
                let layout = if rtl_ui {
                    Layout::right_to_left(Align::Center)
                } else {
                    Layout::left_to_right(Align::Center)
                };
                ui.with_layout(layout, |ui| {
                    if ui.button(send_label.as_str()).clicked() {
                        send = true;
                    }
                    let mut layouter = |ui: &egui::Ui, buf: &dyn egui::TextBuffer, wrap: f32| {
                        let shown = text::for_egui(buf.as_str()).into_owned();
                        let mut job = egui::text::LayoutJob::simple(
                            shown,
                            egui::TextStyle::Body.resolve(ui.style()),
                            ui.visuals().text_color(),
                            wrap,
                        );
                        if text::is_rtl_paragraph(buf.as_str()) {
                            job.halign = Align::RIGHT;
                        }
                        ui.fonts_mut(|f| f.layout_job(job))
                    };
                    let te = egui::TextEdit::multiline(draft)
                        .id(id)
                        .hint_text(hint.as_str())
                        .desired_rows(2)
                        .desired_width(f32::INFINITY)
                        .layouter(&mut layouter);
                    let resp = ui.add(te);
                    resp.widget_info(|| {
                        egui::WidgetInfo::labeled(egui::Role::TextInput, true, "Message")
                    });
                    if send {
                        resp.request_focus();
                    }
                });
                ui.add_space(4.0);
            });
        if send && !draft.trim().is_empty() {
            let text = std::mem::take(draft).trim_end().to_string();
            let local = run.next_local;
            run.next_local += 1;
            run.pending.push(PendingSend {
                local,
                channel: channel.clone(),
                text: text.clone(),
                failed: None,
            });
            let (n, ch) = (run.node.clone(), channel.clone());
            // The node acknowledges after a durable write; the UI never waits for it.
            self.spawn(async move {
                Reply::Sent {
                    local,
                    result: n.send(&ch, &text).await.map_err(|e| e.to_string()),
                }
            });
        }
        let me = run.me;
        let pending: Vec<&PendingSend> = run
            .pending
            .iter()
            .filter(|p| p.channel == channel)
            .collect();
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading(title);
            ui.separator();
            if let Some(conv) = &mut run.conv {
                conv.show(ui, &run.node, me, &pending, &strings);
            }
        });
    }

    fn draw_people(&mut self, ui: &mut egui::Ui, run: &Running) {
        let Some(r) = &run.roster else {
            return;
        };
        let rtl = self.state.lang.rtl();
        let (online, offline, last, never, devices) = (
            self.t("online"),
            self.t("offline"),
            self.t("last seen"),
            self.t("never seen"),
            self.t("devices"),
        );
        ui.heading(self.t("People"));
        if !run.node.sealing().is_sealed() {
            ui.colored_label(
                egui::Color32::from_rgb(230, 160, 60),
                self.t("This device's data is NOT sealed: no OS keyring was found, so its data key is in a file beside the data."),
            );
        }
        let archives: Vec<&str> = r.roster.archives().map(|m| m.name.as_str()).collect();
        if archives.is_empty() {
            ui.label(self.t(
                "Messages are end-to-end encrypted: only the members of a channel or conversation can read them.",
            ));
        } else {
            ui.colored_label(
                egui::Color32::from_rgb(230, 160, 60),
                format!(
                    "{} {}",
                    self.t("This organization archives all messages. Archive devices that can read every channel and conversation:"),
                    archives.join(", ")
                ),
            );
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("people")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    for m in &r.roster.members {
                        let cells = {
                            let on = m
                                .devices
                                .iter()
                                .any(|d| run.online.contains(d) || *d == run.me);
                            let seen = m
                                .devices
                                .iter()
                                .filter_map(|d| self.state.last_seen.get(&d.to_string()))
                                .max()
                                .copied();
                            let status = if on {
                                online.clone()
                            } else if let Some(t) = seen {
                                format!("{offline}, {last} {}", format_time(t, true))
                            } else {
                                never.clone()
                            };
                            [
                                text::for_egui(&m.name).into_owned(),
                                m.role.to_string(),
                                format!("{} {devices}", m.devices.len()),
                                status,
                            ]
                        };
                        let cells: Vec<_> = if rtl {
                            cells.into_iter().rev().collect()
                        } else {
                            cells.to_vec()
                        };
                        for c in cells {
                            ui.label(c);
                        }
                        ui.end_row();
                    }
                });
        });
    }

    fn draw_network(&mut self, ui: &mut egui::Ui, run: &Running) {
        let cfg = &self.opts.config;
        ui.heading(self.t("Diagnostics"));
        if run.contested.is_some() {
            ui.colored_label(
                egui::Color32::from_rgb(230, 90, 60),
                self.t("The roster is contested: two admins removed each other. This device keeps the version it saw first until the org root key settles it."),
            );
        }
        let version = run.roster.as_ref().map_or(0, |r| r.version());
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.label(format!("this device: {}", run.me));
            ui.label(format!("data directory: {}", self.opts.data.display()));
            ui.label(format!(
                "mDNS discovery: {}",
                if cfg.mdns {
                    "on (_majlis._tcp.local.)"
                } else {
                    "off"
                }
            ));
            ui.label("listening on (interfaces and addresses):");
            for a in &run.listen {
                ui.monospace(format!("  {a}"));
            }
            ui.label(format!("static peers: {}", cfg.peers.len()));
            for p in &cfg.peers {
                ui.monospace(format!("  {p}"));
            }
            ui.label(format!("{}: {version}", self.t("Roster version")));
            ui.separator();
            ui.label(format!(
                "{} ({}):",
                self.t("Connected peers"),
                run.peers.len()
            ));
            for p in &run.peers {
                ui.monospace(format!(
                    "  {} {} at {} — roster version {}",
                    p.name,
                    short(&p.device.to_string()),
                    p.addr,
                    p.roster_version.map_or("?".into(), |v| v.to_string())
                ));
            }
            ui.separator();
            ui.label(RichText::new("Why can't I see …?").strong());
            for hint in diagnose(run, cfg, self.rtl_font.is_some()) {
                ui.label(format!("• {hint}"));
            }
        });
    }

    fn draw_admin(&mut self, ui: &mut egui::Ui, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let is_admin = r
            .member_of_device(&run.me)
            .is_some_and(|m| m.role == Role::Admin);
        if !is_admin {
            run.view = View::Chat;
            return;
        }
        let lang = self.state.lang;
        let t = |en| text::for_egui(tr(lang, en)).into_owned();
        let mut change: Option<RosterChange> = None;
        let f = &mut run.admin;
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading(t("Admin"));
            if let Some((n, at)) = &run.notice {
                if at.elapsed() < Duration::from_secs(8) {
                    ui.label(RichText::new(n.as_str()).italics());
                }
            }
            ui.collapsing(t("Add a member"), |ui| {
                labelled_field(ui, &t("Name"), &mut f.name);
                labelled_field(ui, &t("Device id"), &mut f.device);
                ui.horizontal(|ui| {
                    ui.label(t("Role"));
                    for (role, label) in [
                        (None, "member"),
                        (Some(Role::Admin), "admin"),
                        (Some(Role::Guest), "guest"),
                        (Some(Role::Relay), "relay"),
                    ] {
                        ui.radio_value(&mut f.role, role, label);
                    }
                });
                if ui.button(t("Add")).clicked() {
                    match f.device.trim().parse::<DeviceId>() {
                        Ok(device) => {
                            change = Some(RosterChange::AddMember {
                                name: f.name.trim().to_string(),
                                device,
                                role: f.role,
                            });
                            f.name.clear();
                            f.device.clear();
                        }
                        Err(e) => run.notice = Some((e.to_string(), Instant::now())),
                    }
                }
            });
            ui.collapsing(t("Add a device"), |ui| {
                labelled_field(ui, &t("Member"), &mut f.dev_member);
                labelled_field(ui, &t("Device id"), &mut f.dev_id);
                if ui.button(t("Add")).clicked() {
                    match f.dev_id.trim().parse::<DeviceId>() {
                        Ok(device) => {
                            change = Some(RosterChange::AddMember {
                                name: f.dev_member.trim().to_string(),
                                device,
                                role: None,
                            })
                        }
                        Err(e) => run.notice = Some((e.to_string(), Instant::now())),
                    }
                }
            });
            ui.separator();
            ui.label(RichText::new(t("Members")).strong());
            egui::Grid::new("members").striped(true).show(ui, |ui| {
                for m in &r.roster.members {
                    ui.label(text::for_egui(&m.name).into_owned());
                    ui.label(m.role.to_string());
                    ui.vertical(|ui| {
                        for d in &m.devices {
                            ui.horizontal(|ui| {
                                ui.monospace(short(&d.to_string()));
                                if *d != run.me
                                    && ui
                                        .button(format!(
                                            "{} {}",
                                            t("Revoke"),
                                            short(&d.to_string())
                                        ))
                                        .clicked()
                                {
                                    f.confirm = Some((
                                        format!("Revoke device {d} of {}?", m.name),
                                        RosterChange::RevokeDevice { device: *d },
                                    ));
                                }
                            });
                        }
                    });
                    if !m.devices.contains(&run.me)
                        && ui
                            .button(
                                text::for_egui(&format!("{} {}", tr(lang, "Remove"), m.name))
                                    .into_owned(),
                            )
                            .clicked()
                    {
                        f.confirm = Some((
                            format!("Remove {} and all their devices?", m.name),
                            RosterChange::RemoveMember {
                                name: m.name.clone(),
                            },
                        ));
                    }
                    ui.end_row();
                }
            });
            ui.separator();
            ui.collapsing(t("Create a channel"), |ui| {
                labelled_field(ui, &t("Channel name"), &mut f.channel);
                ui.label(t("Members"));
                for m in &r.roster.members {
                    let mut on = f.channel_members.contains(&m.name);
                    if ui.checkbox(&mut on, m.name.as_str()).changed() {
                        if on {
                            f.channel_members.insert(m.name.clone());
                        } else {
                            f.channel_members.remove(&m.name);
                        }
                    }
                }
                ui.label(format!("({}: {})", t("Everyone"), "none ticked"));
                if ui.button(t("Create")).clicked() {
                    let members = (!f.channel_members.is_empty()).then(|| {
                        let mut v: Vec<String> = f.channel_members.iter().cloned().collect();
                        v.sort();
                        v
                    });
                    change = Some(RosterChange::CreateChannel {
                        name: f.channel.trim().to_string(),
                        members,
                    });
                    f.channel.clear();
                    f.channel_members.clear();
                }
            });
            ui.collapsing(t("Policy"), |ui| {
                let mut p = r.roster.policy;
                let before = p;
                ui.checkbox(
                    &mut p.members_create_channels,
                    t("Members may create channels"),
                );
                ui.horizontal(|ui| {
                    ui.label(t("Direct messages:"));
                    ui.radio_value(&mut p.dms, DmPolicy::Off, "off");
                    ui.radio_value(&mut p.dms, DmPolicy::Members, "members");
                    ui.radio_value(&mut p.dms, DmPolicy::All, "all");
                });
                if p != before {
                    change = Some(RosterChange::SetPolicy {
                        policy: Policy { ..p },
                    });
                }
            });
            ui.separator();
            ui.label(RichText::new(t("Audit log")).strong());
            for e in run.audit.iter().rev() {
                let changes: Vec<String> = e.changes.iter().map(audit_text).collect();
                let line = format!(
                    "v{} · {} · {} · {}",
                    e.version,
                    format_time(e.issued_at, true),
                    e.signed_by,
                    changes.join("; ")
                );
                ui.label(text::for_egui(&line).into_owned());
            }
        });
        // Confirmation for destructive changes.
        if let Some((question, ch)) = f.confirm.clone() {
            let modal = egui::Modal::new(egui::Id::unique("majlis-confirm")).show(ui.ctx(), |ui| {
                ui.label(question);
                ui.horizontal(|ui| {
                    if ui.button(t("Confirm")).clicked() {
                        change = Some(ch.clone());
                        f.confirm = None;
                    }
                    if ui.button(t("Cancel")).clicked() {
                        f.confirm = None;
                    }
                });
            });
            if modal.should_close() {
                f.confirm = None;
            }
        }
        if let Some(c) = change {
            self.spawn_change(&run.node, c);
        }
    }
}

/// A label and a one-line text field named by it (screen readers and tests find it by name).
fn labelled_field(ui: &mut egui::Ui, label: &str, value: &mut String) {
    let l = ui.label(label);
    ui.text_edit_singleline(value).labelled_by(l.id);
}

/// Channels and DM channels device `me` may read, in display order.
fn channel_keys(r: &VerifiedRoster, me: DeviceId) -> Vec<String> {
    let Some(me) = r.member_of_device(&me) else {
        return vec![];
    };
    let mut out: Vec<String> = r
        .roster
        .channels
        .iter()
        .filter(|c| r.roster.may_read(me, &c.name))
        .map(|c| c.name.clone())
        .collect();
    out.extend(
        r.roster
            .members
            .iter()
            .filter(|o| r.roster.dm_allowed(me, o))
            .map(|o| dm_channel(&me.name, &o.name)),
    );
    out
}

fn audit_text(c: &majlis_core::roster::AuditChange) -> String {
    use majlis_core::roster::AuditChange as A;
    match c {
        A::OrgCreated { name } => format!("org '{name}' created"),
        A::MemberAdded { name, role } => format!("added {name} ({role})"),
        A::MemberRemoved { name } => format!("removed {name}"),
        A::RoleChanged { name, from, to } => format!("{name}: {from} → {to}"),
        A::DeviceAdded { name, device } => {
            format!("device {} for {name}", short(&device.to_string()))
        }
        A::DeviceRevoked { name, device } => {
            format!("revoked device {} of {name}", short(&device.to_string()))
        }
        A::ChannelCreated { name, members } => match members {
            None => format!("channel #{name} for everyone"),
            Some(m) => format!("channel #{name} for {}", m.join(", ")),
        },
        A::ChannelChanged { name, .. } => format!("channel #{name} changed"),
        A::ChannelRemoved { name } => format!("channel #{name} removed"),
        A::PolicyChanged { policy } => format!(
            "policy: channels by {}, DMs {:?}",
            if policy.members_create_channels {
                "members"
            } else {
                "admins"
            },
            policy.dms
        ),
    }
}

/// Answers to "why can't I see X?", from what this node knows.
fn diagnose(run: &Running, cfg: &Config, rtl_font: bool) -> Vec<String> {
    let mut out = Vec::new();
    if run.peers.is_empty() {
        out.push(if cfg.mdns {
            "No peer is connected. Devices of this organization on the same network appear within a second over mDNS; if none do, multicast may be blocked there: start with --peer /ip4/ADDRESS/tcp/PORT.".to_string()
        } else {
            "No peer is connected and mDNS is off: give peers with --peer /ip4/ADDRESS/tcp/PORT.".to_string()
        });
    }
    if let Some(r) = &run.roster {
        if let Some(me) = r.member_of_device(&run.me) {
            for c in &r.roster.channels {
                if !r.roster.may_read(me, &c.name) {
                    out.push(format!(
                        "#{} is private and does not list you; ask an admin to add you.",
                        c.name
                    ));
                }
            }
            if r.roster.policy.dms == DmPolicy::Off {
                out.push("Direct messages are turned off by the organization's policy.".into());
            }
        }
        for p in &run.peers {
            if p.roster_version.is_some_and(|v| v < r.version()) {
                out.push(format!(
                    "{} holds an older roster (version {} < {}); it updates on its own while connected.",
                    p.name,
                    p.roster_version.unwrap_or(0),
                    r.version()
                ));
            }
        }
    }
    if !rtl_font {
        out.push("No system font with Arabic or Hebrew was found: install one (e.g. fonts-dejavu-core or fonts-noto-core).".into());
    }
    if out.is_empty() {
        out.push("Nothing looks wrong: connected, on the roster, up to date.".into());
    }
    out
}

fn short(id: &str) -> String {
    let n = id.len();
    if n > 12 {
        format!("…{}", &id[n - 8..])
    } else {
        id.to_string()
    }
}

fn local(ms: u64) -> chrono::DateTime<chrono::Local> {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap_or_default()
        .with_timezone(&chrono::Local)
}

fn format_time(ms: u64, with_date: bool) -> String {
    let t = local(ms);
    if with_date {
        t.format("%Y-%m-%d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

struct RowStrings {
    you: String,
    sending: String,
    sent: String,
    today: String,
    yesterday: String,
    empty: String,
    /// Shown for a message whose key has not arrived.
    locked: String,
}

impl Conversation {
    fn open(node: &Node, channel: &str) -> Conversation {
        let rows = node
            .store()
            .history_before(channel, None, PAGE)
            .unwrap_or_default();
        Conversation {
            channel: channel.to_string(),
            ids: rows.iter().map(|m| m.id).collect(),
            heights: vec![None; rows.len()],
            has_older: rows.len() == PAGE,
            rows,
            width: 0.0,
            scroll_fix: None,
        }
    }

    /// A live message: placed in (sent_at, id) order, once.
    fn insert(&mut self, m: StoredMessage) {
        if self.ids.contains(&m.id) {
            return;
        }
        let key = (m.sent_at, m.id);
        if self.has_older && self.rows.first().is_some_and(|f| key < (f.sent_at, f.id)) {
            return; // older than the loaded window: it comes with its page
        }
        let at = self.rows.partition_point(|x| (x.sent_at, x.id) < key);
        self.ids.insert(m.id);
        self.rows.insert(at, m);
        self.heights.insert(at, None);
    }

    fn load_older(&mut self, node: &Node) -> usize {
        let Some(first) = self.rows.first() else {
            self.has_older = false;
            return 0;
        };
        let older = node
            .store()
            .history_before(&self.channel, Some((first.sent_at, first.id)), PAGE)
            .unwrap_or_default();
        self.has_older = older.len() == PAGE;
        let n = older.len();
        for m in &older {
            self.ids.insert(m.id);
        }
        self.heights.splice(0..0, std::iter::repeat_n(None, n));
        self.rows.splice(0..0, older);
        n
    }

    fn day_break(&self, i: usize) -> bool {
        i == 0
            || local(self.rows[i - 1].sent_at).date_naive()
                != local(self.rows[i].sent_at).date_naive()
    }

    fn body_lines(ui: &egui::Ui, text_: &str, width: f32) -> Vec<String> {
        let font = egui::TextStyle::Body.resolve(ui.style());
        if text::has_rtl(text_) {
            ui.fonts_mut(|f| {
                text::wrap_visual(text_, width, |s| {
                    f.layout_no_wrap(s.to_string(), font.clone(), Color32::WHITE)
                        .size()
                        .x
                })
            })
        } else {
            vec![text_.to_string()]
        }
    }

    fn body_galley(ui: &egui::Ui, m: &str, width: f32, color: Color32) -> Arc<egui::Galley> {
        let font = egui::TextStyle::Body.resolve(ui.style());
        let lines = Self::body_lines(ui, m, width).join("\n");
        let mut job = egui::text::LayoutJob::simple(lines, font, color, width);
        if text::is_rtl_paragraph(m) {
            job.halign = Align::RIGHT;
        }
        ui.fonts_mut(|f| f.layout_job(job))
    }

    fn row_height(&self, ui: &egui::Ui, i: usize, width: f32) -> f32 {
        let head = ui.text_style_height(&egui::TextStyle::Small) + 2.0;
        let day = if self.day_break(i) { head + 10.0 } else { 0.0 };
        let body = Self::body_galley(ui, &self.rows[i].text, width, Color32::WHITE)
            .size()
            .y;
        day + head + body + 12.0
    }

    fn show(
        &mut self,
        ui: &mut egui::Ui,
        node: &Node,
        me: DeviceId,
        pending: &[&PendingSend],
        s: &RowStrings,
    ) {
        let width = ui.available_width() - 16.0;
        if (width - self.width).abs() > 0.5 {
            self.width = width;
            self.heights.iter_mut().for_each(|h| *h = None);
        }
        if self.rows.is_empty() && pending.is_empty() {
            ui.label(s.empty.as_str());
            return;
        }
        let mut area = egui::ScrollArea::vertical()
            .stick_to_bottom(true)
            .auto_shrink([false, false]);
        if let Some(y) = self.scroll_fix.take() {
            area = area.vertical_scroll_offset(y);
        }
        let mut load_older = false;
        let out = area.show_viewport(ui, |ui, viewport| {
            // Heights of rows not yet measured (a page at a time: only what is loaded).
            for i in 0..self.rows.len() {
                if self.heights[i].is_none() {
                    self.heights[i] = Some(self.row_height(ui, i, width));
                }
            }
            let pend_h = ui.text_style_height(&egui::TextStyle::Body) + 28.0;
            let total: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum::<f32>()
                + pend_h * pending.len() as f32;
            let top = ui.max_rect().top();
            ui.set_height(total);
            let mut y = 0.0;
            for i in 0..self.rows.len() {
                let h = self.heights[i].unwrap_or(0.0);
                if y + h >= viewport.min.y && y <= viewport.max.y {
                    let rect = egui::Rect::from_min_size(
                        egui::pos2(ui.max_rect().left(), top + y),
                        egui::vec2(width, h),
                    );
                    self.draw_row(ui, i, rect, me, s);
                }
                y += h;
            }
            for p in pending {
                let rect = egui::Rect::from_min_size(
                    egui::pos2(ui.max_rect().left(), top + y),
                    egui::vec2(width, pend_h),
                );
                ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
                    ui.label(
                        RichText::new(format!(
                            "{} · {}",
                            s.you,
                            p.failed.as_deref().unwrap_or(s.sending.as_str())
                        ))
                        .small()
                        .weak(),
                    );
                    ui.label(text::for_egui(&p.text).into_owned());
                });
                y += pend_h;
            }
            if viewport.min.y < 200.0 && self.has_older {
                load_older = true;
            }
        });
        if load_older {
            let before: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum();
            if self.load_older(node) > 0 {
                for i in 0..self.rows.len() {
                    if self.heights[i].is_none() {
                        self.heights[i] = Some(self.row_height(ui, i, width));
                    }
                }
                let after: f32 = self.heights.iter().map(|h| h.unwrap_or(0.0)).sum();
                // Keep what the user looks at in place.
                self.scroll_fix = Some(out.state.clamped_offset().y + (after - before));
                ui.ctx().request_repaint();
            }
        }
    }

    fn draw_row(
        &self,
        ui: &mut egui::Ui,
        i: usize,
        rect: egui::Rect,
        me: DeviceId,
        s: &RowStrings,
    ) {
        let m = &self.rows[i];
        let mine = m.device == me;
        let day = self.day_break(i);
        ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
            if day {
                let d = local(m.sent_at).date_naive();
                let today = chrono::Local::now().date_naive();
                let label = if d == today {
                    s.today.clone()
                } else if Some(d) == today.pred_opt() {
                    s.yesterday.clone()
                } else {
                    d.format("%A %Y-%m-%d").to_string()
                };
                ui.vertical_centered(|ui| ui.label(RichText::new(label).small().strong()));
                ui.add_space(4.0);
            }
            let rtl = text::is_rtl_paragraph(&m.text);
            let frame = egui::Frame::new()
                .inner_margin(egui::Margin::symmetric(6, 3))
                .corner_radius(6.0)
                .fill(if mine {
                    ui.visuals().selection.bg_fill.gamma_multiply(0.35)
                } else {
                    Color32::TRANSPARENT
                });
            frame.show(ui, |ui| {
                ui.set_width(rect.width() - 12.0);
                let layout = if rtl {
                    Layout::top_down(Align::Max)
                } else {
                    Layout::top_down(Align::Min)
                };
                ui.with_layout(layout, |ui| {
                    let who = if mine {
                        s.you.clone()
                    } else {
                        text::for_egui(&m.sender).into_owned()
                    };
                    let status = if mine {
                        format!(" · ✓ {}", s.sent)
                    } else {
                        String::new()
                    };
                    ui.label(
                        RichText::new(format!("{who} · {}{status}", format_time(m.sent_at, false)))
                            .small()
                            .weak(),
                    );
                    let (body, color) = if m.locked {
                        (&s.locked, ui.visuals().weak_text_color())
                    } else {
                        (&m.text, ui.visuals().text_color())
                    };
                    let g = Self::body_galley(ui, body, rect.width() - 12.0, color);
                    ui.add(egui::Label::new(g));
                });
            });
        });
    }
}
