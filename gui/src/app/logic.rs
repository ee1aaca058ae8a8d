//! The app's logic: background commands, and draining node events and their replies
//! each frame without blocking.

use super::*;

/// A free path for `name` in the user's Downloads folder (`name (2).ext` if taken).
fn downloads_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("XDG_DOWNLOAD_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Downloads")))
        .unwrap_or_else(std::env::temp_dir);
    let _ = std::fs::create_dir_all(&dir);
    let name = majlis_core::files::safe_name(name);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    let mut p = dir.join(&name);
    let mut n = 2;
    while p.exists() {
        p = dir.join(format!("{stem} ({n}){ext}"));
        n += 1;
    }
    p
}

impl MajlisApp {
    /// Carry out what a view asked for: the one place the views' commands start.
    pub(super) fn execute(&mut self, run: &mut Running, action: Action) {
        let lang = self.state.lang;
        match action {
            Action::Send { channel, text } => {
                let local = run.next_local;
                run.next_local += 1;
                run.pending.push(PendingSend {
                    local,
                    channel: channel.clone(),
                    text: text.clone(),
                    failed: None,
                });
                let n = run.node.clone();
                // The node acknowledges after a durable write; the UI never waits for it.
                self.spawn(async move {
                    Reply::Sent {
                        local,
                        result: n
                            .send(&channel, &text)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    }
                });
            }
            Action::ChangeRoster(c) => self.spawn_change(&run.node, c),
            Action::Search(query) => {
                let n = run.node.clone();
                self.spawn(async move {
                    let result = n
                        .search(&query, majlis_core::search::Order::Newest, 50)
                        .await
                        .map_err(|e| say_error(lang, &e));
                    Reply::Search { query, result }
                });
            }
            Action::Threads => {
                if let Some(sb) = run.search.as_mut() {
                    sb.threads_asking = true;
                    sb.threads_again = false;
                }
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Threads(n.threads(50).await.map_err(|e| say_error(lang, &e)))
                });
            }
            Action::RefreshAudit => self.spawn_audit(&run.node),
            Action::AddPeer(typed) => {
                let n = run.node.clone();
                self.spawn(async move {
                    let result = match resolve_peer(typed.clone()).await {
                        Ok(addr) => n
                            .dial(addr.clone())
                            .await
                            .map(|()| addr)
                            .map_err(|e| say_error(lang, &e)),
                        Err(e) => Err(e),
                    };
                    Reply::PeerAdded { typed, result }
                });
            }
            Action::Invite(until) => {
                let (n, lang) = (run.node.clone(), self.state.lang);
                self.spawn(async move {
                    Reply::Invited(
                        n.invite(until)
                            .await
                            .map(|()| until)
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::RefreshNetwork => {
                run.refreshed = Instant::now();
                self.spawn_peers(&run.node);
            }
            Action::ShareFile { channel, path } => {
                let n = run.node.clone();
                run.notice = Some((
                    self.tf("sharing {file}…", &[("file", &path.display().to_string())]),
                    Instant::now(),
                ));
                self.spawn(async move {
                    Reply::Shared(
                        n.share_file(&channel, &path, "")
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::ShareImage { channel, name, png } => {
                let n = run.node.clone();
                run.notice = Some((
                    self.tf("sharing {file}…", &[("file", &name)]),
                    Instant::now(),
                ));
                self.spawn(async move {
                    Reply::Shared(
                        n.share_bytes(&channel, &name, png, "")
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::SendLater { channel, text, at } => {
                let n = run.node.clone();
                let when = format_time(at, true);
                let done = self.tf("Kept; it is sent at {time}", &[("time", &when)]);
                self.spawn(async move {
                    Reply::Scheduled {
                        result: n
                            .send_later(&channel, &text, at)
                            .await
                            .map(|_| done)
                            .map_err(|e| say_error(lang, &e)),
                        channel: Some(channel),
                    }
                });
            }
            Action::CancelScheduled(id) => {
                let n = run.node.clone();
                let done = self.t("Taken off the schedule, unsent");
                self.spawn(async move {
                    Reply::Scheduled {
                        channel: None,
                        result: n
                            .cancel_scheduled(id)
                            .await
                            .map(|_| done)
                            .map_err(|e| say_error(lang, &e)),
                    }
                });
            }
            Action::SaveForLater { message, on } => {
                let n = run.node.clone();
                let said = self.t(match on {
                    true => "Saved for later",
                    false => "Taken off the saved messages",
                });
                self.spawn(async move {
                    Reply::Bookmarked {
                        result: n
                            .save_for_later(&message, on)
                            .await
                            .map(|_| said)
                            .map_err(|e| say_error(lang, &e)),
                    }
                });
            }
            Action::Forward { message, to } => {
                let n = run.node.clone();
                // Said where the forward went, since it is not in the open conversation.
                let shown = match run.dm_title(&to) {
                    Some(group) => format!("@{group}"),
                    None if to.starts_with('@') => to.clone(),
                    None => format!("#{}", run.shown(&to)),
                };
                let done = self.tf("Forwarded to {to}", &[("to", &shown)]);
                self.spawn(async move {
                    Reply::Said(
                        n.forward(&message, &to)
                            .await
                            .map(|_| done)
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::Remind { message, at } => {
                let n = run.node.clone();
                let done = self.tf(
                    "You will be reminded at {time}",
                    &[("time", &format_time(at, true))],
                );
                self.spawn(async move {
                    Reply::Said(
                        n.remind(&message, at)
                            .await
                            .map(|_| done)
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::React { message, emoji, on } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.react(&message, &emoji, on)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::Poll {
                channel,
                question,
                options,
                multi,
            } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.poll(&channel, &question, &options, multi)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::Vote { message, choices } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.vote(&message, &choices)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::ClosePoll(message) => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.close_poll(&message)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::MarkUnread(id) => {
                let Ok(Some(m)) = run.node.store().message(&id) else {
                    return;
                };
                self.mark_unread(&run.node, &m.channel, m.sent_at);
                run.recount.insert(m.channel.clone());
                if let Some(c) = run.conv.as_mut().filter(|c| c.channel == m.channel) {
                    c.first_new = Some(id);
                }
            }
            Action::OpenThread(root) => {
                run.details_open = false;
                let rows = run.node.thread(&root).unwrap_or_default();
                self.seen_thread(&run.node, &run.my_name(), &rows);
                run.thread = Some(ThreadView {
                    root,
                    rows,
                    draft: String::new(),
                    also: false,
                });
            }
            Action::OpenMessage(id) => {
                use majlis_core::conversation::Act;
                // Only where this member reads now (the roster's rule, for a channel, a DM or
                // their notes alike); else nothing is said of it.
                let reads = |channel: &str| {
                    run.roster.as_ref().is_some_and(|r| {
                        r.member_of_device(&run.me)
                            .is_some_and(|me| r.roster.may_read(me, channel))
                    })
                };
                let m = run
                    .node
                    .store()
                    .message(&id)
                    .ok()
                    .flatten()
                    .filter(|m| !m.locked && reads(&m.channel));
                let Some(m) = m else {
                    let no = self.t("That message is not on this device, or you may not read it.");
                    run.notice = Some((no, Instant::now()));
                    return;
                };
                let (at, thread) = match m.act {
                    Some(Act::Reply {
                        to,
                        also_channel: false,
                    }) => (to, Some(to)),
                    Some(Act::Reply { to, .. }) => (m.id, Some(to)),
                    _ => (m.id, None),
                };
                run.search = None;
                self.open_at(run, &m.channel, at);
                match thread {
                    Some(root) => run.actions.push(Action::OpenThread(root)),
                    None => run.thread = None,
                }
            }
            Action::Reply { to, text, also } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.reply(&to, &text, also)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::StartEdit(message, text) => run.editing = Some((message, text)),
            Action::Edit { message, text } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.edit(&message, &text)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::Pin { message, on } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(n.pin(&message, on).await.map_err(|e| say_error(lang, &e)))
                });
            }
            Action::SetTopic {
                channel,
                topic,
                description,
            } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(
                        n.set_topic(&channel, &topic, &description)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::Join { channel, on } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(n.join(&channel, on).await.map_err(|e| say_error(lang, &e)))
                });
            }
            Action::Delete(message) => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::Acted(n.delete(&message).await.map_err(|e| say_error(lang, &e)))
                });
            }
            Action::Preview { message, blob } => {
                // Textures are kept for the pictures seen (up to ~1 MB a frame); a long
                // session's are let go now and then (made again when shown).
                let frames: usize = run.thumbs.values().map(|t| t.frames()).sum();
                if run.thumbs.len() > 48 || frames > 400 {
                    run.thumbs.clear();
                }
                run.thumbs.insert(blob, super::preview::Thumb::Loading);
                let n = run.node.clone();
                self.spawn(async move {
                    let decoded = picture(&n, message, super::preview::THUMB).await;
                    Reply::Preview(blob, decoded)
                });
            }
            Action::ViewPicture { message, name } => {
                run.viewer = Some(super::preview::Viewer {
                    message,
                    name,
                    shown: super::preview::Thumb::Loading,
                });
                let n = run.node.clone();
                self.spawn(async move {
                    let decoded = picture(&n, message, super::preview::LARGE).await;
                    Reply::Viewed(message, decoded)
                });
            }
            Action::FetchFile(blob) => {
                let n = run.node.clone();
                self.spawn(async move {
                    let _ = n.fetch_file(blob).await;
                    Reply::Files(n.files().await.unwrap_or_default())
                });
            }
            Action::ExportMine => {
                let n = run.node.clone();
                let me = run.my_name();
                run.notice = Some((self.t("exporting your data…"), Instant::now()));
                self.spawn(async move {
                    let out = downloads_path(&format!("majlis-export-{me}"));
                    let spec = majlis_core::export::Spec {
                        scope: majlis_core::export::Scope::Member(me),
                        from: None,
                        to: None,
                        format: majlis_core::export::Format::Json,
                        out: out.clone(),
                    };
                    Reply::Saved(
                        n.export(spec)
                            .await
                            .map(|_| out)
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::SetStatus { text, until } => {
                let n = run.node.clone();
                self.spawn(async move {
                    Reply::StatusSet(
                        n.set_status(&text, until)
                            .await
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
            Action::SaveFile { message, name } => {
                let n = run.node.clone();
                self.spawn(async move {
                    let dest = downloads_path(&name);
                    Reply::Saved(
                        n.save_file(&message, &dest)
                            .await
                            .map(|()| dest)
                            .map_err(|e| say_error(lang, &e)),
                    )
                });
            }
        }
    }

    /// A decoded picture as a texture, or why there is none (logged).
    fn texture(
        &self,
        name: String,
        decoded: Result<super::preview::Frames, String>,
    ) -> super::preview::Thumb {
        match decoded {
            Ok(frames) => super::preview::Thumb::Ready(super::preview::Shown {
                frames: frames
                    .into_iter()
                    .enumerate()
                    .map(|(i, (img, ms))| {
                        let name = format!("{name} {i}");
                        let tex = self
                            .ctx
                            .load_texture(name, img, egui::TextureOptions::LINEAR);
                        (tex, ms)
                    })
                    .collect(),
            }),
            Err(e) => {
                tracing::info!("no {name}: {e}");
                super::preview::Thumb::Failed
            }
        }
    }

    pub(super) fn spawn_files(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move { Reply::Files(n.files().await.unwrap_or_default()) });
    }

    // ---- background commands ----------------------------------------------------------

    pub(super) fn spawn<F>(&self, fut: F)
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

    /// Open `channel` in the chat view, scrolled to message `id` (a search result, a thread,
    /// a message link).
    pub(super) fn open_at(&mut self, run: &mut Running, channel: &str, id: MessageId) {
        self.state.selected = Some(channel.to_string());
        run.view = View::Chat;
        run.conv = Some(Conversation::open_at(&run.node, channel, id));
    }

    /// The replies of a thread (`rows`: its first message, then its replies) were shown in
    /// its panel here: none of them is new in the Threads view any more, here or (told
    /// through the member's notes) on their other devices.
    fn seen_thread(&mut self, node: &Node, me: &str, rows: &[StoredMessage]) {
        if let ([root, .., last], true) = (rows, rows.len() > 1) {
            // Told only for a colleague's reply: one's own are new on no device, and a
            // member writing in a thread would otherwise post a note per reply.
            let before = self.state.threads_seen.get(&root.id.to_string()).copied();
            let news = rows[1..]
                .iter()
                .any(|r| r.sent_at > before.unwrap_or(0) && r.sender != me);
            if self.saw_thread(&root.id, last.sent_at) && news {
                let (n, thread, upto) = (node.clone(), root.id, last.sent_at);
                let what = format!("thread {} seen", thread.short());
                self.tell_my_devices(what, async move { n.set_thread_seen(&thread, upto).await });
            }
        }
    }

    /// The thread hanging from `thread` was seen up to its reply sent at `upto`, here or on
    /// another of the member's devices. Returns whether that is more than was seen.
    fn saw_thread(&mut self, thread: &MessageId, upto: u64) -> bool {
        let seen = self
            .state
            .threads_seen
            .entry(thread.to_string())
            .or_default();
        let more = upto > *seen;
        *seen = (*seen).max(upto);
        forget_oldest(&mut self.state.threads_seen, THREADS_SEEN_MAX);
        more
    }

    /// Tell the member's other devices, through their notes, what `tell` says (`what` it is,
    /// for the log if it cannot be told: this device keeps it all the same).
    pub(super) fn tell_my_devices<F>(&self, what: String, tell: F)
    where
        F: std::future::Future<Output = majlis_core::Result<()>> + Send + 'static,
    {
        self.rt.spawn(async move {
            if let Err(e) = tell.await {
                tracing::info!("{what} was not told to other devices: {e}");
            }
        });
    }

    /// Count `channel` unread from the message sent at `from`, or (0) read again, here and
    /// on the member's other devices.
    pub(super) fn mark_unread(&mut self, node: &Node, channel: &str, from: u64) {
        self.set_unread(channel, from, now_ms());
        let (n, c) = (node.clone(), channel.to_string());
        let what = format!("{channel} marked unread from {from}");
        self.tell_my_devices(what, async move { n.set_unread_from(&c, from).await });
    }

    pub(super) fn spawn_peers(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move {
            let contested = n.stats().await.ok().and_then(|s| s.roster_contested);
            Reply::Peers(n.peers().await.unwrap_or_default(), contested)
        });
        let n = node.clone();
        self.spawn(async move {
            match n.diagnose().await {
                Ok(r) => Reply::Diagnosis(Box::new(r)),
                Err(_) => Reply::Listen(Vec::new()),
            }
        });
    }

    pub(super) fn spawn_audit(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move {
            Reply::Audit(
                n.audit().await.unwrap_or_default(),
                n.actions().unwrap_or_default(),
            )
        });
    }

    pub(super) fn spawn_listen(&self, node: &Node) {
        let n = node.clone();
        self.spawn(async move { Reply::Listen(n.listen_addrs().await.unwrap_or_default()) });
    }

    pub(super) fn spawn_change(&self, node: &Node, changes: Vec<RosterChange>) {
        let lang = self.state.lang;
        let n = node.clone();
        self.spawn(async move {
            Reply::RosterChanged(
                n.change_roster_all(changes)
                    .await
                    .map_err(|e| say_error(lang, &e)),
            )
        });
    }

    // ---- logic: drain, never block ----------------------------------------------------

    /// Apply node events and command results. Cheap when nothing happened.
    pub fn logic(&mut self, ctx: &egui::Context) {
        self.focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        let Some(mut run) = self.take_running() else {
            return;
        };
        // Away after a while without input; back at the first input.
        let input = ctx.input(|i| !i.events.is_empty() || i.pointer.is_moving());
        if input {
            run.last_input = Instant::now();
        }
        let idle = run.last_input.elapsed() >= AWAY_AFTER;
        if !idle {
            // Wake once to notice the user went away (nothing else may repaint until then).
            ctx.request_repaint_after(AWAY_AFTER);
        }
        if idle != run.idle {
            run.idle = idle;
            let n = run.node.clone();
            self.rt.spawn(async move {
                let _ = n.set_away(idle).await;
            });
        }
        let mut roster_changed = false;
        let mut peers_changed = false;
        while let Ok(fed) = run.events.try_recv() {
            let ev = match fed {
                Fed::Event(ev) => ev,
                Fed::Missed => {
                    self.read_again(&mut run);
                    roster_changed = true;
                    continue;
                }
            };
            match ev {
                Event::Message(m) => {
                    // One of ours kept for later has gone: it is no longer waiting.
                    if m.device == run.me && !run.scheduled.is_empty() {
                        run.scheduled = run.node.scheduled();
                    }
                    self.on_message(&mut run, *m)
                }
                Event::ScheduledFailed { channel, why, .. } => {
                    run.scheduled = run.node.scheduled();
                    let said = self.tf(
                        "A message kept for later in {channel} was not sent: {why}",
                        &[("channel", run.shown(&channel)), ("why", &why)],
                    );
                    run.notice = Some((said, Instant::now()));
                }
                Event::Reminder { message, .. } => {
                    let place = match run.dm_title(&message.channel) {
                        Some(title) => format!("@{title}"),
                        None => format!("#{}", run.shown(&message.channel)),
                    };
                    let said = self.tf(
                        "Reminder: {sender} in {place}: {text}",
                        &[
                            ("sender", run.person(&message.sender)),
                            ("place", &place),
                            ("text", &message.text),
                        ],
                    );
                    let opens = self.on_click(Some(message.channel.clone()));
                    crate::notify::show(&self.t("Majlis: reminder"), &said, opens);
                    run.notice = Some((said, Instant::now()));
                }
                Event::RosterChanged { .. } => roster_changed = true,
                // Messages shown locked in the open conversation may open now.
                Event::KeysReceived { channel }
                    if run.conv.as_ref().is_some_and(|c| c.channel == channel) =>
                {
                    run.conv = Some(Conversation::open(&run.node, &channel));
                }
                // Online: connected to this device or to one of its neighbours (above the mesh
                // limit a device connects to only some of the org).
                Event::Presence { device, online } => {
                    match online {
                        true => run.online.insert(device),
                        false => run.online.remove(&device),
                    };
                    self.state.last_seen.insert(device.to_string(), now_ms());
                    peers_changed = true;
                }
                Event::FileReady { .. } => self.spawn_files(&run.node),
                Event::Delivered { channel } => {
                    if let Some(c) = run.conv.as_mut().filter(|c| c.channel == channel) {
                        c.delivered = run.node.delivered_marks(&channel).unwrap_or_default();
                    }
                }
                // Retention or an erasure removed messages: nothing shown may keep them.
                Event::Swept { ids, .. } => {
                    if let Some(c) = &run.conv {
                        let channel = c.channel.clone();
                        run.conv = Some(Conversation::open(&run.node, &channel));
                    }
                    if run.thread.as_ref().is_some_and(|t| ids.contains(&t.root)) {
                        run.thread = None;
                    }
                    if let Some(sb) = &mut run.search {
                        sb.hits.retain(|h| !ids.contains(&h.message.id));
                    }
                    self.spawn_files(&run.node);
                }
                Event::Typing { channel, member } => {
                    run.typing.insert((channel, member), Instant::now());
                    ctx.request_repaint_after(TYPING_SHOWN);
                }
                Event::Status(st) => {
                    run.statuses.insert(st.member.clone(), st);
                }
                Event::Away { device, away, .. } => {
                    match away {
                        true => run.away.insert(device),
                        false => run.away.remove(&device),
                    };
                }
                Event::StoreFailed { error } => {
                    self.phase = Phase::Failed(Failure::Disk(error));
                    return;
                }
                Event::Wiped { erased, .. } => {
                    self.phase = Phase::Failed(Failure::Wiped(erased));
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
                Reply::Audit(a, actions) => {
                    run.audit = a;
                    run.actions_log = actions;
                }
                // Answers to a query typed over since are dropped.
                Reply::Search { query, result } => {
                    if let Some(sb) = run.search.as_mut().filter(|sb| sb.asked == query) {
                        match result {
                            Ok(hits) => {
                                sb.hits = hits;
                                sb.error = None;
                            }
                            Err(e) => {
                                sb.hits.clear();
                                sb.error = Some(e);
                            }
                        }
                    }
                }
                // Shown only while the Threads view is still open; asked again if replies
                // arrived while it was on its way.
                Reply::Threads(result) => {
                    if let Some(sb) = run.search.as_mut() {
                        sb.threads_asking = false;
                        if sb.threads.is_some() {
                            if std::mem::take(&mut sb.threads_again) {
                                run.actions.push(Action::Threads);
                            }
                            match result {
                                Ok(threads) => {
                                    sb.threads = Some(threads);
                                    sb.error = None;
                                }
                                Err(e) => sb.error = Some(e),
                            }
                        }
                    }
                }
                Reply::Diagnosis(d) => {
                    run.diagnosis = Some(*d);
                    self.tell_of_requests(&mut run);
                    let d = run.diagnosis.take().expect("just set");
                    run.problems = d
                        .findings()
                        .into_iter()
                        .filter(|f| f.level == majlis_core::diagnose::Level::Problem)
                        .collect();
                    run.diagnosis = Some(d);
                }
                Reply::Listen(l) => run.listen = l,
                Reply::Shared(r) => {
                    run.notice = r.err().map(|e| {
                        (
                            self.tf("not shared: {error}", &[("error", &e)]),
                            Instant::now(),
                        )
                    });
                }
                Reply::PeerAdded { typed, result } => match result {
                    Ok(addr) => {
                        if run.peer_input.trim() == typed {
                            run.peer_input.clear();
                        }
                        if !self.state.peers.contains(&typed) {
                            self.state.peers.push(typed);
                        }
                        run.peer_error = None;
                        run.notice = Some((
                            self.tf(
                                "connecting to {address}…",
                                &[("address", &addr.to_string())],
                            ),
                            Instant::now(),
                        ));
                    }
                    Err(e) => run.peer_error = Some(e),
                },
                Reply::Acted(r) => {
                    run.notice = r.err().map(|e| (e, Instant::now()));
                }
                Reply::Scheduled { channel, result } => {
                    if let (Some(c), Ok(_)) = (&channel, &result) {
                        self.state.drafts.remove(c);
                    }
                    run.scheduled = run.node.scheduled();
                    run.notice = Some((result.unwrap_or_else(|e| e), Instant::now()));
                }
                Reply::Said(r) => {
                    run.notice = Some((r.unwrap_or_else(|e| e), Instant::now()));
                }
                Reply::Bookmarked { result } => {
                    run.reload_saved();
                    run.notice = Some((result.unwrap_or_else(|e| e), Instant::now()));
                }
                Reply::Files(f) => run.files = f.into_iter().map(|f| (f.blob, f)).collect(),
                Reply::Opened(channel) => {
                    if let Some(channel) = channel.filter(|c| run.sidebar.contains(c)) {
                        self.state.selected = Some(channel);
                        run.conv = None;
                        run.view = View::Chat;
                    }
                    self.ctx
                        .send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                    self.ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                }
                Reply::Preview(blob, decoded) => {
                    let thumb = self.texture(format!("preview {blob}"), decoded);
                    run.thumbs.insert(blob, thumb);
                }
                Reply::Viewed(message, decoded) => {
                    let shown = self.texture(format!("picture {message}"), decoded);
                    if let Some(v) = run.viewer.as_mut().filter(|v| v.message == message) {
                        v.shown = shown;
                    }
                }
                Reply::Statuses(all) => {
                    for st in all {
                        run.statuses.entry(st.member.clone()).or_insert(st);
                    }
                }
                Reply::StatusSet(Err(e)) => run.notice = Some((e, Instant::now())),
                Reply::StatusSet(Ok(())) => run.status_draft.clear(),
                Reply::Saved(r) => {
                    let text = match r {
                        Ok(p) => self.tf("saved to {path}", &[("path", &p.display().to_string())]),
                        Err(e) => self.tf("not saved: {error}", &[("error", &e)]),
                    };
                    run.notice = Some((text, Instant::now()));
                }
                Reply::Invited(r) => {
                    let text = match r {
                        Ok(Some(until)) => self.tf(
                            "Newcomers on this network can pick this organization until {time}.",
                            &[("time", &super::format::format_time(until, true))],
                        ),
                        Ok(None) => self.t("No longer inviting."),
                        Err(e) => e,
                    };
                    run.notice = Some((text, Instant::now()));
                    self.spawn_peers(&run.node);
                }
                Reply::RosterChanged(r) => {
                    let text = match r {
                        Ok(v) => self.tf(
                            "roster is now at version {version}",
                            &[("version", &v.to_string())],
                        ),
                        Err(e) => e,
                    };
                    run.notice = Some((text, Instant::now()));
                    roster_changed = true;
                }
            }
        }
        for channel in std::mem::take(&mut run.recount) {
            let after = self.read_upto(&run, &channel);
            if let Ok(n) = run.node.unread(&channel, after, 100) {
                run.unread.insert(channel, n);
            }
        }
        if roster_changed {
            self.on_roster(&mut run);
            self.spawn_audit(&run.node);
        }
        if peers_changed || roster_changed {
            self.spawn_peers(&run.node);
        }
        // Downloads in progress: their bars move once a second.
        if run.files.values().any(|f| f.wanted && !f.complete)
            && run.files_asked.elapsed() >= Duration::from_secs(1)
        {
            run.files_asked = Instant::now();
            self.spawn_files(&run.node);
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        self.put_running(run);
    }

    /// Borrow the running state out for a frame (so drawing can use `&mut self` too).
    pub(super) fn take_running(&mut self) -> Option<Box<Running>> {
        match std::mem::replace(&mut self.phase, Phase::Busy) {
            Phase::Running(run) => Some(run),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// Put it back, unless the frame moved to another phase (e.g. this device was wiped).
    pub(super) fn put_running(&mut self, run: Box<Running>) {
        if matches!(self.phase, Phase::Busy) {
            self.phase = Phase::Running(run);
        }
    }

    pub(super) fn on_roster(&mut self, run: &mut Running) {
        let before = std::mem::replace(&mut run.roster, run.node.roster_now());
        let Some(r) = run.roster.clone() else {
            return;
        };
        // A channel renamed while open: the header changes under the reader, so the app
        // says from what (the rest of the list just shows the new names).
        if let (Some(b), Some(ch)) = (&before, &self.state.selected) {
            let (was, now) = (b.roster.shown(ch), r.roster.shown(ch));
            if was != now && !is_dm(ch) {
                run.notice = Some((
                    self.tf("#{was} is now called #{now}", &[("was", was), ("now", now)]),
                    Instant::now(),
                ));
            }
        }
        if r.member_of_device(&run.me).is_none() {
            return;
        }
        if self.state.selected.is_none() {
            self.state.selected = Some("general".into());
        }
        // Open channels this member left (their latest join act says so): read once here,
        // then kept up to date as join acts arrive.
        let me = run.my_name();
        run.left = r
            .roster
            .channels
            .iter()
            .filter(|c| c.members.is_none())
            .filter(|c| {
                run.node
                    .details(&c.name)
                    .is_ok_and(|d| d.left.contains(&me))
            })
            .map(|c| c.name.clone())
            .collect();
        self.refresh_sidebar(run);
        // An admin took this member off the open channel: it closes, and the app says why
        // (its messages stay on this device, but nothing said there from now on arrives).
        if let Some(ch) = self.state.selected.clone() {
            let off = !is_dm(&ch)
                && r.member_of_device(&run.me)
                    .is_some_and(|m| !r.roster.may_read(m, &ch));
            if off {
                self.state.selected = run.sidebar.first().cloned();
                run.conv = None;
                run.thread = None;
                run.details_open = false;
                run.notice = Some((
                    self.tf(
                        "You are no longer on #{channel}: an admin changed who is on it",
                        &[("channel", r.roster.shown(&ch))],
                    ),
                    Instant::now(),
                ));
            }
        }
        if let Some(c) = &mut run.conv {
            c.readers = super::chat::readers_of(&run.node, &c.channel);
        }
        for ch in run.sidebar.clone() {
            if !run.unread.contains_key(&ch) {
                let after = self.read_upto(run, &ch);
                let n = run.node.unread(&ch, after, 100).unwrap_or(0);
                run.unread.insert(ch, n);
            }
        }
    }

    /// Mark `channel` read without opening it: nothing in it counts as unread, and where
    /// read receipts go its newest message is said read, as opening it would (the member's
    /// other devices, and in a DM or a small channel its posters, learn it).
    pub(super) fn mark_read_unopened(&mut self, run: &mut Running, channel: String) {
        if self.state.unread_from.contains_key(&channel) {
            self.mark_unread(&run.node, &channel, 0);
        }
        run.unread.insert(channel.clone(), 0);
        let rows = run.node.history(&channel, 20).unwrap_or_default();
        if let Some(last) = rows.last() {
            let lr = self.state.last_read.entry(channel.clone()).or_default();
            *lr = (*lr).max(last.sent_at);
        }
        let newest = rows
            .iter()
            .rev()
            .find(|m| m.device != run.me && !m.locked)
            .map(|m| m.id);
        if let Some(id) = newest {
            self.say_read(&run.node, &mut run.read_sent, &channel, id);
        }
    }

    /// Say `channel` is read up to `id` (its member's other devices learn it, and where
    /// receipts go, its posters; the node decides), once per message.
    /// `sent` is the running app's `read_sent` (a field, so that a frame holding other
    /// parts of it may call this).
    pub(super) fn say_read(
        &self,
        node: &Node,
        sent: &mut HashMap<String, MessageId>,
        channel: &str,
        id: MessageId,
    ) {
        if sent.get(channel) == Some(&id) {
            return;
        }
        sent.insert(channel.to_string(), id);
        let (n, c) = (node.clone(), channel.to_string());
        self.rt.spawn(async move {
            let _ = n.mark_read(&c, &id).await;
        });
    }

    /// Where this member has read `channel` up to: on this device, or on another of theirs,
    /// whichever is later (what was read on the laptop is not unread on the desktop).
    /// 0: never read.
    pub(super) fn read_upto(&mut self, run: &Running, channel: &str) -> u64 {
        // Marked unread: from that message on, whatever was read.
        if let Some(from) = self.state.unread_from.get(channel) {
            return from.saturating_sub(1);
        }
        let here = self.state.last_read.get(channel).copied().unwrap_or(0);
        let read = here.max(run.read_elsewhere(channel));
        if read > here {
            self.state.last_read.insert(channel.to_string(), read);
        }
        read
    }

    /// Everything shown that events keep up to date, read again from the store (events
    /// were dropped); the sidebar and unread counts of channels not seen yet follow from
    /// [`Self::on_roster`].
    fn read_again(&mut self, run: &mut Running) {
        run.recount.extend(run.unread.keys().cloned());
        if let Some(c) = &run.conv {
            let channel = c.channel.clone();
            run.conv = Some(Conversation::open(&run.node, &channel));
        }
        if let Some(t) = &mut run.thread {
            t.rows = run.node.thread(&t.root).unwrap_or_default();
        }
        run.scheduled = run.node.scheduled();
        run.reload_saved();
        self.spawn_files(&run.node);
    }

    /// Make the sidebar's list again (the roster, the DMs held or the selection changed).
    pub(super) fn refresh_sidebar(&self, run: &mut Running) {
        let Some(r) = run.roster.clone() else {
            return;
        };
        let held = run.node.dm_channels().unwrap_or_default();
        // Archived channels are listed apart, under their own heading (also those this
        // member left: there is nothing to join in them).
        (run.archived, run.sidebar) =
            sidebar_keys(&r, run.me, &held, self.state.selected.as_deref())
                .into_iter()
                .partition(|k| r.roster.is_archived(k));
        run.sidebar.retain(|k| !run.left.contains(k));
        run.forward_to = self.forward_targets(run).into();
    }

    pub(super) fn on_message(&mut self, run: &mut Running, m: StoredMessage) {
        use majlis_core::conversation::{Act, CHANNEL};
        // This member joined or left an open channel (from here or another of its devices).
        if let (Some(Act::Join { on }), true) = (&m.act, m.sender == run.my_name()) {
            if *on {
                run.left.remove(&m.channel);
            } else {
                run.left.insert(m.channel.clone());
            }
            self.refresh_sidebar(run);
        }
        if !run.sidebar.contains(&m.channel) && !run.left.contains(&m.channel) {
            self.refresh_sidebar(run);
        }
        // A topic, a pin or a member leaving changes the open conversation's details; a pinned
        // message that changes (an edit) shows so in its list.
        if let Some(c) = &mut run.conv {
            let target = m.act.as_ref().map(|a| a.target());
            if c.channel == m.channel
                && (target == Some(CHANNEL) || c.pinned.iter().any(|p| Some(p.id) == target))
            {
                c.reload_details(&run.node);
            }
        }
        // A reply, edit, deletion or reaction changes how its target shows; only a reply
        // sent to the channel too is a row of its own.
        let target = m.act.as_ref().map(|a| a.target());
        let in_thread = run
            .thread
            .as_ref()
            .is_some_and(|t| target == Some(t.root) || t.rows.iter().any(|r| Some(r.id) == target));
        if in_thread {
            let me = run.my_name();
            if let Some(t) = &mut run.thread {
                t.rows = run.node.thread(&t.root).unwrap_or_default();
                self.seen_thread(&run.node, &me, &t.rows);
            }
        }
        if let Some(act) = &m.act {
            use majlis_core::conversation::Act as A;
            // What this member set on another of their devices, in their own notes (the
            // only place their devices read it from), holds here too if it is the latest
            // word on it.
            let noted = m.device != run.me && notes_of(&m.channel) == Some(run.my_name().as_str());
            match act {
                A::Pause { until } if noted && m.sent_at > self.state.paused_at => {
                    self.state.paused_until = (*until != 0).then_some(*until);
                    self.state.paused_at = m.sent_at;
                }
                A::Notify { channel, notify }
                    if noted
                        && m.sent_at > self.state.notify_at.get(channel).copied().unwrap_or(0) =>
                {
                    self.set_notify(channel, *notify, m.sent_at);
                }
                A::Hours { hours } if noted && m.sent_at > self.state.hours_at => {
                    self.state.hours = *hours;
                    self.state.hours_at = m.sent_at;
                }
                A::Save { .. } if noted => run.reload_saved(),
                A::Star { channel, on }
                    if noted
                        && m.sent_at > self.state.starred_at.get(channel).copied().unwrap_or(0) =>
                {
                    self.set_starred(channel, *on, m.sent_at);
                }
                A::Unread { channel, from }
                    if noted
                        && m.sent_at > self.state.unread_at.get(channel).copied().unwrap_or(0) =>
                {
                    self.set_unread(channel, *from, m.sent_at);
                    run.recount.insert(channel.clone());
                }
                A::Seen { thread, upto } if noted => {
                    self.saw_thread(thread, *upto);
                }
                _ => {}
            }
            // Read on another device of this member: not unread here either.
            if matches!(act, majlis_core::conversation::Act::Read { .. })
                && m.device != run.me
                && m.sender == run.my_name()
            {
                run.recount.insert(m.channel.clone());
            }
            if let Some(c) = &mut run.conv {
                c.refresh(&run.node, &act.target());
                if matches!(act, majlis_core::conversation::Act::Read { .. })
                    && c.channel == m.channel
                {
                    c.read = run.node.read_marks(&m.channel).unwrap_or_default();
                }
            }
            // The Threads view lists the latest reply of each thread.
            if matches!(act, Act::Reply { .. })
                && run.search.as_mut().is_some_and(|sb| sb.threads_stale())
            {
                run.actions.push(Action::Threads);
            }
            if !majlis_core::conversation::Act::in_channel(Some(act)) {
                // A reply in a thread only is no row of the channel, but one that mentions
                // this member, or answers their message, is news to them all the same.
                if matches!(act, Act::Reply { .. })
                    && m.sender != run.my_name()
                    && !run.left.contains(&m.channel)
                {
                    self.tell_of(run, &m, false);
                }
                return;
            }
        }
        let mine = m.device == run.me;
        let own = m.sender == run.my_name();
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
        let marked = self.state.unread_from.contains_key(&m.channel);
        if open {
            if let Some(c) = &mut run.conv {
                c.insert(m.clone());
            }
            let lr = self.state.last_read.entry(m.channel.clone()).or_default();
            *lr = (*lr).max(m.sent_at);
        }
        if (!open || marked) && !mine && !own && !run.left.contains(&m.channel) {
            run.recount.insert(m.channel.clone());
        }
        // What this member wrote, on this device or another of theirs, is neither unread
        // nor news to them.
        if mine || own {
            return;
        }
        // A channel this member left raises nothing, not even for @channel.
        if run.left.contains(&m.channel) {
            return;
        }
        self.tell_of(run, &m, open);
    }

    /// Count a mention of this member in `m` and raise the desktop notification `m` is
    /// worth to them (`open`: its conversation is open here).
    fn tell_of(&mut self, run: &mut Running, m: &StoredMessage, open: bool) {
        let dm = is_dm(&m.channel);
        let addressed = run.addressed_as();
        if mentions(&m.text, &addressed) {
            // Counted until the mentions view is opened, unless it is read as it arrives.
            if !(open && self.focused) {
                run.mentions += 1;
            }
        }
        // A muted conversation raises no notification (its mentions are still counted); one
        // the member asked every message of raises one for each; a reply in a thread this
        // member started or replied in is news to them, as a mention is.
        let to_me = |root: &MessageId| {
            let me = run.my_name();
            let thread = run.node.thread(root).unwrap_or_default();
            thread.iter().any(|t| t.sender == me && t.id != m.id)
        };
        let wanted = match self.notify_of(&m.channel) {
            Notify::Usual => {
                dm || mentions(&m.text, &addressed)
                    || matches!(&m.act, Some(majlis_core::conversation::Act::Reply { to, .. }) if to_me(to))
            }
            Notify::Everything => true,
            Notify::Nothing => false,
        };
        if wanted && !self.focused && !self.paused() && !self.outside_hours() {
            match self.burst.next(Instant::now()) {
                Say::Show => {
                    self.notified += 1;
                    let title = notification_title(
                        self.state.lang,
                        run.person(&m.sender),
                        (!dm).then(|| run.shown(&m.channel)),
                    );
                    let opens = self.on_click(Some(m.channel.clone()));
                    crate::notify::show(&title, &crate::text::without_markers(&m.text), opens);
                }
                Say::More => {
                    self.notified += 1;
                    let more = self.t("More new messages: open Majlis to read them.");
                    let opens = self.on_click(None);
                    crate::notify::show("Majlis", &more, opens);
                }
                Say::Nothing => {}
            }
        }
    }
}

impl MajlisApp {
    /// What a click on a notification of `channel` (`None`: of several) does: bring the
    /// window forward and open the conversation. Kept as the last notice, for tests.
    /// An admin is told, once per device, of a device newly asking to join (with the name
    /// it asks for and its code), through the same burst limit as messages: a LAN host
    /// announcing dozens of requests raises a few notifications, not dozens.
    fn tell_of_requests(&mut self, run: &mut Running) {
        let admin = run.me_member().is_some_and(|m| m.role == Role::Admin);
        let waiting = super::admin::waiting_to_join(run);
        if !admin || waiting.is_empty() {
            return;
        }
        if run.asked_seen.len() > 256 {
            run.asked_seen.clear();
        }
        let org = run
            .roster
            .as_ref()
            .map(|r| r.roster.name.clone())
            .unwrap_or_default();
        for s in waiting {
            if !run.asked_seen.insert(s.device.clone()) {
                continue;
            }
            if self.focused || self.paused() || self.outside_hours() {
                continue;
            }
            let who = s.asks.clone().unwrap_or_else(|| self.t("A device"));
            let said = self.tf(
                "{who} asks to join {org} (join code {code}): compare the code with theirs, then add it under Admin.",
                &[("who", &who), ("org", &org), ("code", &s.code)],
            );
            let said = match self.burst.next(Instant::now()) {
                Say::Show => said,
                Say::More => self.t("More devices ask to join: see Admin."),
                Say::Nothing => continue,
            };
            self.notified += 1;
            let opens = self.on_click(None);
            crate::notify::show(&self.t("Majlis: asking to join"), &said, opens);
        }
    }

    fn on_click(&mut self, channel: Option<String>) -> impl FnOnce() + Send + 'static {
        self.last_notice = Some(channel.clone());
        let (tx, ctx) = (self.replies_tx.clone(), self.ctx.clone());
        move || {
            let _ = tx.send(Reply::Opened(channel));
            ctx.request_repaint();
        }
    }
}

/// How many threads the app remembers having seen (saved with its state).
const THREADS_SEEN_MAX: usize = 2000;

/// Keep `seen` (thread → the latest reply seen in it) to at most `max` threads: past it, the
/// half seen longest ago is forgotten at once, so this sorts rarely. A forgotten thread
/// with a new reply is shown New once more, which is the safe side.
fn forget_oldest(seen: &mut HashMap<String, u64>, max: usize) {
    if seen.len() > max {
        let mut at: Vec<u64> = seen.values().copied().collect();
        at.sort_unstable();
        let keep_from = at[at.len() - max / 2];
        seen.retain(|_, t| *t >= keep_from);
    }
}

/// How many notifications a burst raises one by one (within [`BURST_WINDOW`]) before one
/// says more are waiting.
const BURST: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(10);

/// Desktop notifications in a burst: a laptop waking to a night of an alerts channel that
/// notifies of every message, a catch-up of a week's direct messages, or a colleague's
/// modified client flooding a DM would otherwise raise one each (hundreds of pop-ups). The
/// first few show as they come; then one says more are waiting, at most once a window;
/// the rest are the app's unread counts.
#[derive(Default)]
pub(super) struct Burst {
    shown: std::collections::VecDeque<Instant>,
    more_at: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Say {
    Show,
    More,
    Nothing,
}

impl Burst {
    pub(super) fn next(&mut self, now: Instant) -> Say {
        while self
            .shown
            .front()
            .is_some_and(|t| now.duration_since(*t) >= BURST_WINDOW)
        {
            self.shown.pop_front();
        }
        if self.shown.len() < BURST {
            self.shown.push_back(now);
            return Say::Show;
        }
        match self.more_at {
            Some(t) if now.duration_since(t) < BURST_WINDOW => Say::Nothing,
            _ => {
                self.more_at = Some(now);
                Say::More
            }
        }
    }
}

/// A desktop notification's title: who wrote, and, for a mention in a channel, where (the
/// channel's shown name), so the reader knows which conversation to open.
fn notification_title(lang: Lang, sender: &str, channel: Option<&str>) -> String {
    match channel {
        Some(c) => tr_with(
            lang,
            "Majlis: {sender} in #{channel}",
            &[("sender", sender), ("channel", c)],
        ),
        None => tr_with(lang, "Majlis: {sender}", &[("sender", sender)]),
    }
}

/// Whether `text` mentions the member `addressed` names ([`Running::addressed_as`]: their
/// name, then their groups'): by one of those, `@channel` or `@here` (names compared as
/// search compares them: Arabic forms and case folded).
pub(super) fn mentions(text: &str, addressed: &[String]) -> bool {
    use majlis_core::search::text::{mentions, normalize};
    let names: Vec<String> = addressed.iter().map(|n| normalize(n)).collect();
    !names.is_empty()
        && mentions(text)
            .iter()
            .any(|n| names.contains(n) || n == "channel" || n == "here")
}

/// The picture `message` shares, read and decoded (off the UI thread) to at most `size`.
async fn picture(
    node: &Node,
    message: MessageId,
    size: (u32, u32),
) -> Result<super::preview::Frames, String> {
    let bytes = node
        .file_bytes(&message, super::preview::MAX)
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || super::preview::decode_frames(&bytes, size))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst raises three notifications, then one saying more wait, then nothing until
    /// the window has passed; a quiet spell starts over.
    #[test]
    fn a_burst_of_notifications_raises_a_few_and_says_more_wait() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut b = Burst::default();
        let said: Vec<Say> = (0..8).map(|i| b.next(at(i * 100))).collect();
        use Say::*;
        assert_eq!(
            said,
            [Show, Show, Show, More, Nothing, Nothing, Nothing, Nothing]
        );
        // 10 s after the first: one slot is free again, the summary not yet.
        assert_eq!(b.next(at(10_000)), Show);
        assert_eq!(b.next(at(10_050)), Nothing);
        // The other two slots free; full again, and 10 s since the summary: another.
        assert_eq!(b.next(at(10_310)), Show);
        assert_eq!(b.next(at(10_320)), Show);
        assert_eq!(b.next(at(10_330)), More);
        // A quiet minute: as new.
        assert_eq!(b.next(at(70_000)), Show);
        assert_eq!(b.next(at(70_001)), Show);
    }

    /// The threads seen longest ago are forgotten first, and only past the bound.
    #[test]
    fn the_threads_seen_are_bounded_forgetting_the_oldest() {
        let mut seen: HashMap<String, u64> = (0..10).map(|i| (format!("t{i}"), i)).collect();
        forget_oldest(&mut seen, 10);
        assert_eq!(seen.len(), 10, "at the bound, nothing is forgotten");
        seen.insert("t10".into(), 10);
        forget_oldest(&mut seen, 10);
        let mut kept: Vec<u64> = seen.values().copied().collect();
        kept.sort_unstable();
        assert_eq!(kept, [6, 7, 8, 9, 10], "the newest half is kept");
    }

    /// A mention in a channel says where; a direct message needs no place.
    #[test]
    fn a_notification_says_who_and_where() {
        assert_eq!(
            notification_title(Lang::En, "amina", Some("release")),
            "Majlis: amina in #release"
        );
        assert_eq!(notification_title(Lang::En, "amina", None), "Majlis: amina");
        let ar = notification_title(Lang::Ar, "amina", Some("release"));
        assert!(ar.starts_with("مجلس") && ar.contains("release"), "{ar}");
    }
}
