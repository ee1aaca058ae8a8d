//! Messages in and out of the swarm: publishing our own, and feeding gossip frames and
//! catch-up answers into the one intake pipeline ([`crate::proto::intake`]). What differs by
//! origin is only the framing check before it (the gossip topic; the catch-up request) and
//! what a verdict means for the peer after it.

use std::collections::{HashMap, HashSet};

use libp2p::{gossipsub, request_response, PeerId};

use super::durable::Pending;
use super::runner::Runner;
use super::Event;
use crate::identity::DeviceId;
use crate::message::{Envelope, Reject};
use crate::net::{SyncRequest, SyncResponse, DM_LIST};
use crate::proto::catchup::{self, Asked};
use crate::proto::{intake, Origin, Verdict};
use crate::roster::dm_members;
use crate::sync::Vector;

/// How long a peer's word on which devices it is connected to counts for sparing forwards
/// (peer exchanges run every 5 s while anything happens).
const LINKS_FRESH: std::time::Duration = std::time::Duration::from_secs(12);

/// Whether `env` counts towards its author's pace (see `Facts::message_from`): what
/// gossip brings, and from catch-up only what was written in the last few minutes. History
/// a node catches up on (a restored relay, a laptop back after a week) is not a flood, and
/// naming its busiest authors as one would have an admin revoke a colleague.
fn live(env: &Envelope, origin: Origin) -> bool {
    const RECENT_MS: u64 = 10 * 60 * 1000;
    origin == Origin::Gossip || crate::now_ms().saturating_sub(env.unsigned.sent_at) < RECENT_MS
}

/// A catch-up answer whose signatures are being checked (see [`Runner::on_verified`]).
pub(super) struct Verifying {
    peer: PeerId,
    asked: Asked,
    /// The last answer of its session.
    last: bool,
    /// Intake's step 1, done when it arrived.
    dup: Vec<bool>,
    /// Step 2 on a blocking thread: the envelopes back, and per envelope whether it holds.
    pub(super) sigs: tokio::task::JoinHandle<(Vec<Envelope>, Vec<bool>)>,
}

impl Runner {
    // ---- out ---------------------------------------------------------------------------

    /// Hand one of our messages to gossipsub. What no peer can take yet (nobody subscribed)
    /// is written to the outbox and goes out when a peer subscribes; `queued`: it came from
    /// the outbox (or was put there before its flush), which it leaves once handed over.
    /// A message published at once never touches the outbox: two writes per message saved,
    /// and a crash before the publish loses nothing that catch-up does not bring back.
    pub(super) fn publish(&mut self, env: &Envelope, queued: bool) {
        // What waits in the outbox for these topics goes first: a key grant held there
        // (published before anyone had subscribed) must not arrive after the message it
        // opens, which would be shown locked. Only when someone subscribes now: otherwise
        // this one waits too, behind them (and a node offline for a long time does not
        // read its whole outbox at every message).
        for name in topic_names(&env.unsigned.channel) {
            if self.held_topics.contains(&name) && self.subscribed(&name) {
                self.flush_outbox(&name);
            }
        }
        self.publish_one(env, queued);
    }

    /// Whether a connected peer subscribes to the topic named `name`.
    fn subscribed(&self, name: &str) -> bool {
        let hash = self.topic(name).hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&hash))
    }

    /// Publish without looking at the outbox; false if it stays there.
    fn publish_one(&mut self, env: &Envelope, queued: bool) -> bool {
        let names = topic_names(&env.unsigned.channel);
        let topics: Vec<_> = names.iter().map(|n| self.topic(n)).collect();
        let mut result = Err(gossipsub::PublishError::NoPeersSubscribedToTopic);
        for topic in topics {
            let r = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, env.wire.clone());
            // Nobody of this topic among our connections (a large org, a first direct
            // message to someone we have no connection to): the next redial looks for one.
            if matches!(r, Err(gossipsub::PublishError::NoPeersSubscribedToTopic)) {
                self.replan();
            }
            if result.is_err() {
                result = r;
            }
        }
        let published = matches!(result, Ok(_) | Err(gossipsub::PublishError::Duplicate));
        if published {
            self.recent.published(env, std::time::Instant::now());
        }
        if !published {
            self.held_topics.extend(names);
        }
        let kept = match result {
            Ok(_) | Err(gossipsub::PublishError::Duplicate) => match queued {
                true => self.store.outbox_remove(&env.id),
                false => Ok(()),
            },
            // Nobody reachable yet (or gossipsub refused): it waits in the outbox and goes
            // out when a peer subscribes. Already there, it is not written again.
            Err(e) => {
                if !matches!(e, gossipsub::PublishError::NoPeersSubscribedToTopic) {
                    tracing::warn!("publish {}: {e}; kept in the outbox", env.id);
                }
                match queued {
                    true => Ok(()),
                    false => self.store.outbox_add(&env.id),
                }
            }
        };
        if let Err(e) = kept {
            tracing::warn!("outbox: {e}");
        }
        published
    }

    /// Publish what waited for a subscriber of `topic` (a channel, or `@NAME`: the direct
    /// messages to or from NAME), in the order it was written (the outbox is keyed by
    /// message id, which is random): a key grant goes out before the message it unlocks. A
    /// message whose seq is not yet reserved on disk is left to its flush, which publishes it
    /// (published now, a crash could sign that seq again).
    pub(super) fn flush_outbox(&mut self, topic: &str) {
        let held = self.outbox_envelopes();
        let waiting = held
            .iter()
            .filter(|e| on_topic(topic, &e.unsigned.channel))
            .count();
        let due = due(topic, held, &self.reserved_on_disk);
        let mut left = waiting - due.len();
        for env in &due {
            if !self.publish_one(env, true) {
                left += 1;
            }
        }
        if left == 0 {
            self.held_topics.remove(topic);
        }
    }

    /// Our messages waiting in the outbox.
    fn outbox_envelopes(&mut self) -> Vec<Envelope> {
        let ids = match self.store.outbox() {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("outbox: {e}");
                return Vec::new();
            }
        };
        let mut held = Vec::new();
        for id in ids {
            match self.store.message_wire(&id) {
                Ok(Some(w)) => match Envelope::decode_unverified(&w) {
                    Ok(env) => held.push(env),
                    Err(e) => tracing::warn!("outbox entry {id} damaged: {e}"),
                },
                Ok(None) => {
                    let _ = self.store.outbox_remove(&id);
                }
                Err(e) => tracing::warn!("outbox: {e}"),
            }
        }
        held
    }

    /// Note the topics of what the outbox holds (left by the last run), so that what is
    /// published on them next waits for it (see [`Self::publish`]).
    pub(super) fn note_held_topics(&mut self) {
        for env in self.outbox_envelopes() {
            self.held_topics.extend(topic_names(&env.unsigned.channel));
        }
    }

    // ---- gossip ------------------------------------------------------------------------

    pub(super) fn on_gossip(
        &mut self,
        source: PeerId,
        id: gossipsub::MessageId,
        msg: gossipsub::Message,
    ) {
        self.to_validate.push((source, id, msg));
        if self.to_validate.len() >= 128 {
            self.validate_gossip();
        }
    }

    /// Run queued gossip frames through intake as one batch, then tell gossipsub which to
    /// forward (accepted), drop quietly (duplicates, gaps, disk trouble) or penalize.
    pub(super) fn validate_gossip(&mut self) {
        use gossipsub::MessageAcceptance as A;
        let queued = std::mem::take(&mut self.to_validate);
        let mut framing = Vec::with_capacity(queued.len());
        let mut batch = Vec::with_capacity(queued.len());
        for (source, id, msg) in queued {
            match self.frame_ok(&msg) {
                Ok(env) => {
                    batch.push(env);
                    framing.push((source, id, msg.topic, None));
                }
                Err(r) => framing.push((source, id, msg.topic, Some(r))),
            }
        }
        let verdicts = self.accept_standalone(&batch);
        let mut results = batch.into_iter().zip(verdicts);
        // (peer, channel) where a message arrived past a gap: gossip dropped something (an
        // overloaded queue, a partition); ask that peer at once instead of at the next round.
        let mut gaps: HashSet<(PeerId, String)> = HashSet::new();
        let mut acceptance = Vec::with_capacity(framing.len());
        for (source, id, topic, bad_frame) in framing {
            let (env, verdict) = match bad_frame {
                Some(r) => (None, Verdict::Rejected(r)),
                None => {
                    let (env, v) = results.next().expect("one verdict per envelope");
                    (Some(env), v)
                }
            };
            let a = match &verdict {
                Verdict::Accepted { .. }
                    if env.as_ref().is_some_and(|e| {
                        self.forward_spared(&topic, e.unsigned.author.peer_id(), source)
                    }) =>
                {
                    self.forwards_spared += 1;
                    A::Ignore
                }
                Verdict::Accepted { .. } => A::Accept,
                Verdict::Rejected(Reject::Gap { .. } | Reject::Backdated { .. })
                | Verdict::Duplicate
                | Verdict::NotStored(_) => A::Ignore,
                Verdict::Rejected(_) => A::Reject,
            };
            if let (Some(env), Verdict::Accepted { gap: true, .. }) = (&env, &verdict) {
                gaps.insert((source, env.unsigned.channel.clone()));
            }
            self.settle(source, env.as_ref(), verdict, Origin::Gossip);
            acceptance.push((source, id, a));
        }
        self.start_flush();
        for (source, id, a) in acceptance {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &source, a);
        }
        for (peer, channel) in gaps {
            // An answer from that peer for that channel still in its signature check will
            // bring what the gap lacks, or its session's next request will: asking again now
            // would only fetch the same messages twice.
            let checking = self
                .verifying
                .iter()
                .any(|v| v.peer == peer && v.asked.channel == channel);
            if self.connections.contains_key(&peer) && !checking {
                self.sync_channel(peer, channel, &Vector::new());
            }
        }
    }

    /// Whether gossipsub's forward of `author`'s message on `topic`, which came from
    /// `source`, would reach only peers that hold it already (see
    /// [`crate::proto::neighbours::forward_spared`]). A peer's word on its links counts for
    /// [`LINKS_FRESH`]: two exchange rounds while the node is active; after a quiet spell
    /// the first messages are forwarded until the next round.
    fn forward_spared(&self, topic: &gossipsub::TopicHash, author: PeerId, source: PeerId) -> bool {
        let now = std::time::Instant::now();
        crate::proto::neighbours::forward_spared(
            self.swarm.behaviour().gossipsub.mesh_peers(topic).copied(),
            &source,
            &author,
            |p, a| {
                self.links.get(p).is_some_and(|(at, linked)| {
                    now.duration_since(*at) <= LINKS_FRESH && linked.contains(a)
                })
            },
        )
    }

    /// Intake for envelopes that each stand alone (gossip frames, a push): one batch.
    pub(super) fn accept_standalone(&mut self, batch: &[Envelope]) -> Vec<Verdict> {
        let now = crate::now_ms();
        self.decide_keys_first(batch, |store, head, r| {
            intake::accept(store, head, &batch[r], Origin::Gossip, now)
        })
    }

    /// Run intake's decision over `batch` in pieces that each end at a key grant, and take
    /// the keys an accepted grant gives this device before the next piece is stored. A
    /// grant and the message it opens travel together (the grant first); decided as one
    /// piece, the message was stored before its key was taken, and anyone reading the
    /// channel in between (the app, `majlisd history`, the HTTP API) saw it "waiting for
    /// the key" (seen in CI).
    pub(super) fn decide_keys_first(
        &mut self,
        batch: &[Envelope],
        mut step: impl FnMut(
            &mut crate::store::Store,
            Option<&crate::roster::VerifiedRoster>,
            std::ops::Range<usize>,
        ) -> Vec<Verdict>,
    ) -> Vec<Verdict> {
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut start = 0;
        while start < batch.len() {
            let end = batch[start..]
                .iter()
                .position(Envelope::is_keys)
                .map_or(batch.len(), |i| start + i + 1);
            let piece = step(&mut self.store, self.chain.head(), start..end);
            for (env, v) in batch[start..end].iter().zip(&piece) {
                if env.is_keys() && matches!(v, Verdict::Accepted { .. }) {
                    let taken = self.profile.absorb(env);
                    self.keys_taken.insert(env.id, taken);
                }
            }
            verdicts.extend(piece);
            start = end;
        }
        verdicts
    }

    /// The gossip framing check: the topic must be the envelope's channel (for a direct
    /// message: the inbox of one of its members), or a private channel's message could be
    /// smuggled to non-members through a public topic.
    fn frame_ok(&self, msg: &gossipsub::Message) -> Result<Envelope, Reject> {
        let env = Envelope::decode_unverified(&msg.data)?;
        let topic = self.topics.get(&msg.topic).map(String::as_str);
        let ok = match dm_members(&env.unsigned.channel) {
            Some(names) => topic
                .and_then(|t| t.strip_prefix('@'))
                .is_some_and(|t| names.contains(&t)),
            None => topic == Some(env.unsigned.channel.as_str()),
        };
        if !ok {
            return Err(Reject::UnknownChannel(env.unsigned.channel));
        }
        Ok(env)
    }

    /// Account for one verdict (the same for every origin) and act on an accepted message:
    /// take the keys it grants us, show it once flushed if it is something to show.
    pub(super) fn settle(
        &mut self,
        peer: PeerId,
        env: Option<&Envelope>,
        verdict: Verdict,
        origin: Origin,
    ) {
        self.tally.record(&verdict, origin);
        match verdict {
            Verdict::Accepted { sender, shown, .. } => {
                self.active();
                let env = env.expect("accepted envelopes exist");
                if !self.resting.is_empty() {
                    self.end_rest_of(&env.unsigned.author, &env.unsigned.channel);
                }
                let taken = self
                    .keys_taken
                    .remove(&env.id)
                    .unwrap_or_else(|| self.profile.absorb(env));
                match taken {
                    Ok(0) => {}
                    Ok(_) => {
                        // Acts (replies, edits, reactions) that arrived before their key are
                        // filed under their targets now, then the app is told to look again.
                        let (store, events) = (self.store.clone(), self.events.clone());
                        let channel = env.unsigned.channel.clone();
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = store.annex_channel(&channel) {
                                tracing::warn!("filing the acts of {channel}: {e}");
                            }
                            match store.take_unlocked(&channel) {
                                Ok(opened) => {
                                    for m in opened {
                                        let _ = events.send(Event::Unlocked(Box::new(m)));
                                    }
                                }
                                Err(e) => tracing::warn!("reading what opens in {channel}: {e}"),
                            }
                            let _ = events.send(Event::KeysReceived { channel });
                        });
                    }
                    Err(e) => tracing::error!("storing a received key: {e}"),
                }
                // Rendered when stored; a key granted earlier in the same batch is taken only
                // now (above), so what it opens is rendered again.
                let shown = match shown {
                    Some(m) if m.locked => self.store.render(env, sender).map(Box::new),
                    shown => shown,
                };
                if let Some(m) = shown {
                    self.take_reminder_note(&m);
                    if m.locked {
                        self.note_locked(&m);
                    }
                    self.emit(Event::Message(m));
                }
                let fetching = self.on_file_message(env);
                self.facts.message_from(
                    env.unsigned.author,
                    env.wire.len() as u64 + fetching,
                    live(env, origin),
                );
                self.pending.push(Pending::Received);
            }
            ref v @ Verdict::Rejected(ref r) => {
                if v.is_loud(origin) {
                    let how = if origin == Origin::Sync {
                        " (sync)"
                    } else {
                        ""
                    };
                    self.report_rejected(r.kind(), format!("from {peer}{how}: {r}"));
                }
            }
            Verdict::NotStored(e) => tracing::error!("storing a message from {peer}: {e}"),
            Verdict::Duplicate => {}
        }
    }

    /// `m` was shown locked: remembered, to be announced as it opens ([`Event::Unlocked`]).
    /// Not on a relay that may not read the channel, which holds every message so and never
    /// gets their keys (on a member's device, one that may not read it yet is remembered:
    /// the roster letting it may be on its way).
    fn note_locked(&self, m: &crate::StoredMessage) {
        let may_open = self.chain.head().is_some_and(|h| {
            h.roster.member_of_device(&self.me).map(|m| m.role) != Some(crate::roster::Role::Relay)
                || h.roster.key_holders(&m.channel).contains(&self.me)
        });
        if may_open {
            if let Err(e) = self.store.mark_locked(&m.channel, &m.id) {
                tracing::warn!("remembering a message waiting for its key: {e}");
            }
        }
    }

    // ---- catch-up ----------------------------------------------------------------------

    /// Ask `peer` for what we lack in every channel we both may read.
    pub(super) fn start_sync(&mut self, peer: PeerId) {
        let Some(head) = self.chain.head() else {
            return;
        };
        if !self.listed {
            return;
        }
        let Some(their) = DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d))
        else {
            return;
        };
        for ch in catchup::channels_for(head, self.topics.values(), their) {
            self.sync_turn(peer, ch);
        }
    }

    /// Catch up `channel` from `peer` now, or after the session in flight with another peer
    /// ends (one peer at a time per channel).
    fn sync_turn(&mut self, peer: PeerId, channel: String) {
        if !self.catchup.queue_behind(peer, &channel, crate::now_ms()) {
            self.sync_channel(peer, channel, &Vector::new());
        }
    }

    /// A session for `channel` ended (or stalled): start the next queued peer's turn.
    fn next_turn(&mut self, channel: &str) {
        while !self.catchup.turn_taken(channel, crate::now_ms()) {
            let Some(p) = self.catchup.next_queued(channel) else {
                return;
            };
            if self.connections.contains_key(&p) {
                self.sync_channel(p, channel.to_string(), &Vector::new());
            }
        }
    }

    /// Every channel peers wait for whose turn is free (a session ended, failed or stalled)
    /// goes to the next of them.
    fn next_turns(&mut self) {
        for ch in self.catchup.waiting_channels() {
            self.next_turn(&ch);
        }
    }

    /// The periodic round: per channel one peer in turn, the DM list from all
    /// ([`catchup::round_plan`]).
    pub(super) fn resync_round(&mut self) {
        self.end_rests();
        let Some(head) = self.chain.head() else {
            return;
        };
        if !self.listed {
            return;
        }
        let peers: Vec<(PeerId, &crate::roster::Member)> = self
            .connections
            .keys()
            .filter_map(|p| {
                let m = DeviceId::from_peer_id(p).and_then(|d| head.member_of_device(&d))?;
                Some((*p, m))
            })
            .collect();
        let plan = catchup::round_plan(head, self.topics.values(), &peers, self.rounds);
        self.rounds += 1;
        for (p, ch) in plan {
            self.sync_turn(p, ch);
        }
        // A session that stalled ([`catchup::STALL_MS`]) no longer holds its channel: the
        // peers waiting behind it take their turn.
        self.next_turns();
    }

    /// `sent`: per author, the last seq this peer sent in the current session.
    pub(super) fn sync_channel(&mut self, peer: PeerId, channel: String, sent: &Vector) {
        self.sync_request(peer, channel, sent, None)
    }

    /// [`Self::sync_channel`], or with `skip` a request pipelined behind the one in flight.
    fn sync_request(&mut self, peer: PeerId, channel: String, sent: &Vector, skip: Option<u32>) {
        match self
            .catchup
            .request(&self.store, peer, &channel, sent, skip)
        {
            Ok(Some((req, mut asked))) => {
                asked.sent_ms = crate::now_ms();
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
                self.catchup.sent(id, peer, asked);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("sync: {e}"),
        }
    }

    /// How long until a pipelined catch-up request is due, or a request others wait behind
    /// stalls, if either is coming.
    pub(super) fn catchup_wait(&self) -> Option<std::time::Duration> {
        let now = crate::now_ms();
        let due = [self.catchup.next_due(), self.catchup.turn_free_at(now)]
            .into_iter()
            .flatten()
            .min()?;
        Some(std::time::Duration::from_millis(due.saturating_sub(now)))
    }

    /// Send the pipelined catch-up requests whose time has come (see
    /// `Catchup::follow_up`); a session whose peer has gone, or that stalled, passes its
    /// turn on.
    pub(super) fn send_due_syncs(&mut self) {
        for (peer, channel, sent, skip) in self.catchup.due(crate::now_ms()) {
            if self.connections.contains_key(&peer) {
                self.sync_request(peer, channel, &sent, Some(skip));
            } else {
                self.catchup.forget(peer, &channel);
                self.next_turn(&channel);
            }
        }
        self.next_turns();
    }

    pub(super) fn on_sync_event(&mut self, ev: request_response::Event<SyncRequest, SyncResponse>) {
        use request_response::{Event as E, Message as M};
        match ev {
            E::Message {
                peer,
                message: M::Request {
                    request, channel, ..
                },
                ..
            } => {
                let asked = request.channel.clone();
                if let Some(d) = DeviceId::from_peer_id(&peer) {
                    let held = request.have.iter().find(|(a, _)| *a == self.me);
                    if let Some((_, n)) = held.filter(|(_, n)| *n > 0) {
                        self.note_delivered(&d, &asked, *n);
                    }
                }
                let back = DeviceId::from_peer_id(&peer).is_some_and(|d| {
                    catchup::ask_back(&self.store, self.chain.head(), &self.me, &d, &request)
                });
                let answer = match DeviceId::from_peer_id(&peer) {
                    Some(d) => catchup::answer(&self.store, self.chain.head(), &d, request)
                        .unwrap_or_else(|e| {
                            tracing::warn!("answering sync: {e}");
                            Default::default()
                        }),
                    None => Default::default(),
                };
                if let Some(n) = answer.missing {
                    self.facts.lagging(peer, asked.clone(), n);
                }
                let resp = answer.response;
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, resp);
                if back && self.catchup.ask_back_due(peer, &asked, crate::now_ms()) {
                    self.sync_channel(peer, asked, &Vector::new());
                }
            }
            E::Message {
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((peer, asked)) = self.catchup.answered(&request_id) {
                    let bytes: usize = response.messages.iter().map(|m| m.len()).sum();
                    let now = crate::now_ms();
                    let elapsed = now.saturating_sub(asked.sent_ms);
                    self.catchup
                        .measured(peer, bytes, asked.sent_ms, now, response.more);
                    tracing::debug!(
                        "catch-up answer from {peer}: {} messages, {bytes} B in {elapsed} ms (next: {} B)",
                        response.messages.len(),
                        self.catchup.budget_for(&peer)
                    );
                    let channel = asked.channel.clone();
                    if !self.on_sync_response(peer, asked, response) {
                        self.next_turn(&channel);
                    }
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                // Typically a duplicate connection (both sides dialed) closing under the
                // request: ask again at once on the surviving one.
                tracing::debug!("sync request to {peer} failed: {error}");
                let connected = self.connections.contains_key(&peer);
                match self.catchup.failed(&request_id, connected) {
                    Some((peer, channel)) => self.sync_channel(peer, channel, &Vector::new()),
                    // The turn passes on: for every channel with nothing in flight.
                    None => self.next_turns(),
                }
            }
            _ => {}
        }
    }

    /// An answer is checked whole before anything is stored: messages that were not asked
    /// for, break an author's chain or carry a bad signature make us drop it and the peer.
    /// Signatures are checked off the event loop (a 512-message answer takes ~10 ms of a
    /// core), so the loop stores the previous answer while this one is verified; this one
    /// is stored in [`Runner::on_verified`]. Returns whether it went there.
    fn on_sync_response(&mut self, peer: PeerId, asked: Asked, resp: SyncResponse) -> bool {
        if asked.channel == DM_LIST {
            self.on_dm_list(peer, resp);
            return false;
        }
        let checked = match catchup::check(&self.store, &asked, &resp) {
            Ok(c) => c,
            Err(e) => {
                self.catchup.forget(peer, &asked.channel);
                let ours = self.own_in(&asked.channel, &resp);
                if let Some(fork) = self.own_divergence(&asked.channel, &ours) {
                    // Not the peer's lie: it holds what this device signed. Disconnecting
                    // it (as before) cut a restored device off from every colleague, over
                    // and over. The answer is not stored; ours is taken back and sent
                    // again (or, where that cannot be, our own messages are left out).
                    self.on_own_fork(peer, &asked.channel, fork);
                    self.sync_channel(peer, asked.channel.clone(), &Vector::new());
                    // That request holds the channel's turn; without it, the turn passes on.
                    return self.catchup.in_flight(&asked.channel);
                }
                if let Some(fork) = self.responders_fork(peer, &asked.channel, &resp) {
                    self.on_responders_fork(peer, &asked.channel, fork);
                    return false;
                }
                if let Some(author) = self.others_fork(peer, &e, &asked.channel, &resp) {
                    // Not the peer's lie either: the author signed both branches.
                    self.on_others_fork(peer, author, &asked.channel);
                    self.sync_channel(peer, asked.channel.clone(), &Vector::new());
                    return self.catchup.in_flight(&asked.channel);
                }
                self.bad_peer(peer, format!("sync response: {e}"));
                return false;
            }
        };
        // Ask for the next batch before storing this one, so the peer reads while we write
        // (on a slow link, two: see `Catchup::follow_up`).
        for (sent, skip) in
            self.catchup
                .follow_up(peer, &asked.channel, checked.next.as_ref(), crate::now_ms())
        {
            self.sync_request(peer, asked.channel.clone(), &sent, skip);
        }
        let dup = intake::duplicates(&self.store, &checked.envs);
        let (envs, d) = (checked.envs, dup.clone());
        let sigs = tokio::task::spawn_blocking(move || {
            let ok = intake::signatures(&envs, &d);
            (envs, ok)
        });
        self.verifying.push_back(Verifying {
            peer,
            asked,
            last: checked.next.is_none(),
            dup,
            sigs,
        });
        true
    }

    /// Steps 3 to 5 of intake for a catch-up answer whose signatures were checked: the
    /// oldest in [`Runner::verifying`].
    pub(super) fn on_verified(
        &mut self,
        batch: Verifying,
        sigs: Result<(Vec<Envelope>, Vec<bool>), tokio::task::JoinError>,
    ) {
        let Verifying {
            peer,
            asked,
            last,
            dup,
            ..
        } = batch;
        let channel = asked.channel.clone();
        let Ok((envs, sig_ok)) = sigs else {
            // The check itself panicked (it never should): ask again at the next round.
            tracing::error!("verifying a catch-up answer from {peer} failed");
            return self.next_turn(&channel);
        };
        let now = crate::now_ms();
        let verdicts = match sig_ok.contains(&false) {
            // A forged signature rejects the whole answer: decided as one.
            true => intake::decide(
                &mut self.store,
                self.chain.head(),
                &envs,
                &dup,
                &sig_ok,
                Origin::Sync,
                now,
            ),
            false => self.decide_keys_first(&envs, |store, head, r| {
                intake::decide(
                    store,
                    head,
                    &envs[r.clone()],
                    &dup[r.clone()],
                    &sig_ok[r],
                    Origin::Sync,
                    now,
                )
            }),
        };
        if verdicts.contains(&Verdict::Rejected(Reject::BadSignature)) {
            self.bad_peer(peer, "sync response: bad signature".into());
            return self.next_turn(&channel);
        }
        // Ours that do not fit our own log: the peer holds another branch of it.
        let me = self.me;
        let refused_own = move |e: &Envelope, v: &Verdict| {
            e.unsigned.author == me && matches!(v, Verdict::Rejected(Reject::Chain(_)))
        };
        let forked = envs.iter().zip(&verdicts).any(|(e, v)| refused_own(e, v));
        let ours: Vec<Envelope> = match forked {
            true => envs
                .iter()
                .filter(|e| e.unsigned.author == self.me)
                .cloned()
                .collect(),
            false => Vec::new(),
        };
        let mut inserted = 0;
        for (env, verdict) in envs.iter().zip(verdicts) {
            inserted += matches!(verdict, Verdict::Accepted { .. }) as usize;
            // Ours that do not fit are the fork handled below, not a refusal to report.
            if refused_own(env, &verdict) {
                continue;
            }
            self.settle(peer, Some(env), verdict, Origin::Sync);
        }
        if let Some(fork) = self.own_divergence(&channel, &ours) {
            // Everyone else's messages in the answer are stored; the session starts again
            // once ours is taken back (or left out).
            self.on_own_fork(peer, &channel, fork);
            self.catchup.forget(peer, &channel);
            self.sync_channel(peer, channel.clone(), &Vector::new());
            self.start_flush();
            if !self.catchup.in_flight(&channel) {
                self.next_turn(&channel);
            }
            return;
        }
        // A whole session that asked for our own log from a crash hole's start covered it;
        // and our own log is as the peers hold it, so what a fork refused goes out again.
        if last {
            self.send_refused_again(&channel);
            if let Some(have) = asked.have.get(&self.me) {
                if let Err(e) = self.store.close_holes(&channel, *have) {
                    tracing::warn!("closing recovered holes in '{channel}': {e}");
                }
            }
        }
        self.start_flush();
        tracing::debug!("sync from {peer}: {inserted} new in '{channel}'");
        self.next_turn(&channel);
    }

    /// Catch up on the direct-message channels a peer listed that both of us may read.
    fn on_dm_list(&mut self, peer: PeerId, resp: SyncResponse) {
        let Some(head) = self.chain.head() else {
            return;
        };
        let (Some(me), Some(their)) = (
            head.member_of_device(&self.me),
            DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d)),
        ) else {
            return;
        };
        match catchup::dm_wanted(head, me, their, resp) {
            Ok(wanted) => {
                for ch in wanted {
                    self.sync_turn(peer, ch);
                }
            }
            Err(e) => self.bad_peer(peer, e),
        }
    }

    fn bad_peer(&mut self, peer: PeerId, reason: String) {
        self.reject("sync", format!("from {peer}: {reason}; disconnecting"));
        let _ = self.swarm.disconnect_peer_id(peer);
    }
}

impl Runner {
    /// A device's catch-up request says it holds our first `n` messages of `channel`: the
    /// "delivered" state of what we sent, for its member (relays and the archive are not a
    /// person it was delivered to). Kept in every channel, however big: it costs no message,
    /// only a mark when it moves. A client may claim more than it holds; the claim only
    /// colours our own ticks.
    fn note_delivered(&mut self, requester: &DeviceId, channel: &str, n: u64) {
        let Some(head) = self.chain.head() else {
            return;
        };
        let Some(member) = head.member_of_device(requester) else {
            return;
        };
        let me = head.member_of_device(&self.me).map(|m| m.name.as_str());
        if member.role.stores_all() || Some(member.name.as_str()) == me {
            return;
        }
        let at = self
            .store
            .log_entry(channel, &self.me, n)
            .ok()
            .flatten()
            .and_then(|id| self.store.sent_at_of(&id).ok().flatten());
        let Some(at) = at else {
            return;
        };
        if let Ok(true) = self.store.mark_delivered(channel, &member.name, at) {
            let name = member.name.clone();
            tracing::debug!("{name} holds our messages of {channel} up to {at}");
            self.emit(Event::Delivered {
                channel: channel.to_string(),
            });
        }
    }
}

/// The gossip topics (by name) a message of `channel` is published on: a direct message
/// goes to each member's inbox (the recipients', and ours for our other devices).
fn topic_names(channel: &str) -> Vec<String> {
    match dm_members(channel) {
        Some(names) => names.iter().map(|n| format!("@{n}")).collect(),
        None => vec![channel.to_string()],
    }
}

/// Whether a message of `channel` is published on `topic` (see [`topic_names`]).
fn on_topic(topic: &str, channel: &str) -> bool {
    match (topic.strip_prefix('@'), dm_members(channel)) {
        (Some(name), Some(names)) => names.contains(&name),
        _ => channel == topic,
    }
}

/// What of the outbox goes out on a subscription to `topic`: the messages of that channel
/// (for `@NAME`: the direct messages to or from NAME) whose seq is reserved on disk, oldest
/// first. A seq not yet reserved on disk waits for its flush: published now, a crash could
/// sign that seq again.
fn due(topic: &str, held: Vec<Envelope>, reserved_on_disk: &HashMap<String, u64>) -> Vec<Envelope> {
    let mut due: Vec<Envelope> = held
        .into_iter()
        .filter(|e| {
            let u = &e.unsigned;
            on_topic(topic, &u.channel)
                && reserved_on_disk
                    .get(&u.channel)
                    .is_some_and(|r| u.seq <= *r)
        })
        .collect();
    due.sort_by_key(|e| e.unsigned.seq);
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;
    use crate::message::Unsigned;

    fn env(key: &DeviceKey, channel: &str, seq: u64) -> Envelope {
        Envelope::sign(
            key,
            Unsigned {
                format: crate::message::PLAINTEXT_FORMAT,
                author: key.id(),
                channel: channel.into(),
                sent_at: 1,
                seq,
                prev: None,
                body: b"hi".to_vec(),
            },
        )
    }

    /// The outbox's two rules: only what the new subscriber's topic carries, and never a
    /// seq whose reservation is not on disk yet; oldest first (a key grant before the
    /// message it unlocks).
    #[test]
    fn the_outbox_sends_only_the_topics_messages_with_seqs_reserved_on_disk() {
        let key = DeviceKey::generate();
        let held = vec![
            env(&key, "general", 3),
            env(&key, "general", 1),
            env(&key, "general", 300),
            env(&key, "ops", 1),
            env(&key, "@amina,bilal", 1),
            env(&key, "@bilal,chen", 1),
        ];
        let reserved: HashMap<String, u64> = [
            ("general".to_string(), 256),
            ("@amina,bilal".to_string(), 256),
            ("@bilal,chen".to_string(), 256),
        ]
        .into();
        let seqs = |topic: &str| -> Vec<(String, u64)> {
            due(topic, held.clone(), &reserved)
                .iter()
                .map(|e| (e.unsigned.channel.clone(), e.unsigned.seq))
                .collect()
        };
        // 300 is past the reservation on disk; `ops` has none on disk at all.
        assert_eq!(
            seqs("general"),
            [("general".into(), 1), ("general".into(), 3)]
        );
        assert!(seqs("ops").is_empty());
        // An inbox carries the direct messages of its member, with anyone.
        assert_eq!(seqs("@amina"), [("@amina,bilal".into(), 1)]);
        assert_eq!(seqs("@bilal").len(), 2);
        assert!(seqs("@dana").is_empty());
    }
}
