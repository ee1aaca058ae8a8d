//! Forks: an author that signed two different messages at one seq of its log, so that
//! peers hold two branches of it. Catch-up shows it: an answer that breaks the author's
//! chain with messages that carry the author's valid signature. The peer that relayed
//! them did not lie (it cannot sign for the author), so it is not disconnected for it.
//!
//! - **Ours**: this device is restored from an older copy of its data directory and signed
//!   seqs its colleagues already hold other messages of its at. The node repairs it: what
//!   it signed since the restore is taken back out of the store (`Store::take_own_from`),
//!   the colleagues' copies of its log come in by catch-up, and the content taken back is
//!   sent again under new seqs once that round is done.
//! - **Another author's**: a modified client (or a device restored from a copy whose fork
//!   reached some peers first). Its messages in that channel are no longer asked of the
//!   peer holding the other branch; everything else still comes, and the fork is counted
//!   and reported (`fork`). Before, the peer was disconnected at every round: one insider
//!   could cut honest colleagues off from each other by showing each a different branch.

use std::collections::HashMap;

use libp2p::PeerId;

use super::runner::Runner;
use super::Event;
use crate::e2e::Plain;
use crate::identity::DeviceId;
use crate::message::{Envelope, MessageId};
use crate::net::SyncResponse;
use crate::proto::catchup::{self, CheckError};
use crate::store::Redo;

/// How long a peer that answered with another branch of its own log is not asked for it.
pub(super) const RESPONDER_FORK_REST: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a peer's copy of this device's log in a channel parts from ours.
pub(super) struct Fork {
    /// The first seq that differs.
    seq: u64,
    /// The peer's message there (or the one that does not chain to ours).
    theirs: MessageId,
    /// The highest seq of ours the answer held: nothing we sign again may take it.
    top: u64,
}

impl Runner {
    /// This device's messages in an answer about `channel`, their signatures checked.
    pub(super) fn own_in(&self, channel: &str, resp: &SyncResponse) -> Vec<Envelope> {
        resp.messages
            .iter()
            .filter(|w| {
                Envelope::decode_unverified(w)
                    .is_ok_and(|e| e.unsigned.author == self.me && e.unsigned.channel == channel)
            })
            .filter_map(|w| Envelope::decode(w).ok())
            .collect()
    }

    /// Whether `ours` (messages this device signed, their signatures checked, from a peer's
    /// answer) differ from this device's own log in `channel`, and where. Only this
    /// device's key makes such a message, so the peer did not invent it: this data
    /// directory is an older copy of itself.
    pub(super) fn own_divergence(&self, channel: &str, ours: &[Envelope]) -> Option<Fork> {
        self.divergence(channel, &self.me, ours)
    }

    /// Whether `msgs` (`author`'s, their signatures checked) differ from our copy of
    /// `author`'s log in `channel`, and where.
    fn divergence(&self, channel: &str, author: &DeviceId, msgs: &[Envelope]) -> Option<Fork> {
        use crate::proto::Log;
        let top = msgs.iter().map(|e| e.unsigned.seq).max()?;
        let held = |s: u64| self.store.entry(channel, author, s).ok().flatten();
        msgs.iter().find_map(|env| {
            let seq = env.unsigned.seq;
            if held(seq).is_some_and(|id| id != env.id) {
                return Some(Fork {
                    seq,
                    theirs: env.id,
                    top,
                });
            }
            let pred = seq.checked_sub(1).filter(|p| *p > 0).and_then(held);
            let chained = crate::sync::chain_ok(&crate::sync::Link::of(env), pred, |p| {
                self.store
                    .earlier(channel, author, p, seq - 1)
                    .ok()
                    .flatten()
            });
            (!chained).then(|| Fork {
                seq: (seq - 1).max(1),
                theirs: env.id,
                top,
            })
        })
    }

    /// `peer` holds a branch of our log in `channel` that parts from ours. Ours is given up
    /// and its content kept to send again, unless theirs is one we gave up before (a peer
    /// that took our refused branch): then our own messages are no longer asked of that
    /// peer there, and `doctor` tells the user to set the device up afresh.
    pub(super) fn on_own_fork(&mut self, peer: PeerId, channel: &str, fork: Fork) {
        let gave_up = self
            .store
            .refused(channel)
            .map_or(true, |r| r.abandoned.contains(&fork.theirs));
        let taken = match gave_up {
            true => None,
            false => self
                .store
                .take_own_from(channel, &self.me, fork.seq, fork.top)
                .inspect_err(|e| tracing::error!("taking back a refused fork in '{channel}': {e}"))
                .ok()
                .filter(|(ids, _)| !ids.is_empty()),
        };
        let Some((ids, grants)) = taken else {
            self.catchup.leave_out_from(peer, self.me, channel);
            if self.facts.diverged(channel, fork.seq) {
                tracing::error!(
                    "{peer} holds messages this device signed in '{channel}' from seq {} on that differ from its own: this data directory is an older copy (restored from a backup, or copied), and what it sends there is refused as a fork; set this device up afresh (`majlisd doctor` says how)",
                    fork.seq
                );
            }
            return;
        };
        if grants {
            if let Err(e) = self.profile.regrant(channel) {
                tracing::warn!("granting our keys for '{channel}' again: {e}");
            }
        }
        tracing::warn!(
            "{peer} holds other messages this device signed in '{channel}' from seq {} on: this data directory is an older copy (restored from a backup, or copied). The {} message(s) this device signed there since were refused by everyone as a fork; they are taken back and sent again once catch-up has brought this device's own messages back",
            fork.seq,
            ids.len()
        );
        self.emit(Event::Swept {
            channels: vec![channel.to_string(); ids.len()].into(),
            ids: ids.into(),
            expired: 0,
            erased: 0,
        });
        self.start_flush();
    }

    /// After a whole catch-up round in `channel`: send again what a fork refused there (see
    /// [`Runner::on_own_fork`]), in order, each act pointed at the message sent again in
    /// place of its target.
    pub(super) fn send_refused_again(&mut self, channel: &str) {
        let redo = match self.store.take_redo(channel) {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => return,
            Err(e) => return tracing::warn!("reading what to send again in '{channel}': {e}"),
        };
        let n = redo.len();
        let mut sent_again: HashMap<MessageId, MessageId> = HashMap::new();
        for (old, what) in redo {
            let composed = match what {
                Redo::Sealed(mut plain) => {
                    crate::store::retarget(&mut plain, &sent_again);
                    self.profile.compose_act(&self.chain, channel, plain)
                }
                Redo::File { blob, info } => {
                    self.profile
                        .compose_file(&self.chain, channel, blob, Plain::File(info))
                }
                Redo::ForwardedFile { blob, info, from } => {
                    let mut described = Plain::ForwardFile { file: info, from };
                    crate::store::retarget(&mut described, &sent_again);
                    self.profile
                        .compose_file(&self.chain, channel, blob, described)
                }
                Redo::Plain(text) => self.profile.compose_as(&self.chain, channel, &text, false),
            };
            let envs = match composed {
                Ok(envs) => envs,
                Err(e) => {
                    tracing::warn!("sending a refused message again in '{channel}': {e}");
                    continue;
                }
            };
            let last = envs.last().expect("a message is composed");
            sent_again.insert(old, last.id);
            let shown = self.store.render(last, self.my_name());
            self.queue_own(envs, None);
            if let Some(m) = shown {
                self.emit(Event::Message(Box::new(m)));
            }
        }
        tracing::info!("sent {n} refused message(s) again in '{channel}'");
    }

    /// Whether `peer`'s answer about `channel` holds a branch of `peer`'s own log that parts
    /// from our copy of it: every message of its own there carries its valid signature and
    /// they chain among themselves, but not to what we hold. The peer signed two branches,
    /// which an honest device does when it was restored from an older copy and wrote before
    /// it caught up (it repairs its side by itself, see [`Runner::on_own_fork`]). An answer
    /// whose own messages do not even chain among themselves is a lie, as before.
    pub(super) fn responders_fork(
        &self,
        peer: PeerId,
        channel: &str,
        resp: &SyncResponse,
    ) -> Option<Fork> {
        let author = DeviceId::from_peer_id(&peer).filter(|a| *a != self.me)?;
        let theirs = catchup::signed_by(resp, &author, channel)?;
        let chained = theirs.windows(2).all(|p| {
            let (a, b) = (&p[0].unsigned, &p[1].unsigned);
            b.seq > a.seq && (b.seq != a.seq + 1 || b.prev == Some(p[0].id))
        });
        chained.then(|| self.divergence(channel, &author, &theirs))?
    }

    /// `peer` answered with a branch of its own log in `channel` that parts from ours
    /// ([`Runner::responders_fork`]): not taken, and not called a lie (it was disconnected
    /// for it before, again at every round, while a restored device had not yet repaired
    /// itself). Its own log there is left out of our requests to it for
    /// [`RESPONDER_FORK_REST`] (so that it does not send that branch again at every round),
    /// then asked again (or as soon as a message of its own there is accepted, which shows
    /// it has repaired its side). Counted once
    /// per peer and channel.
    pub(super) fn on_responders_fork(&mut self, peer: PeerId, channel: &str, fork: Fork) {
        if let Some(author) = DeviceId::from_peer_id(&peer) {
            self.catchup.leave_out_from(peer, author, channel);
            let until = std::time::Instant::now() + RESPONDER_FORK_REST;
            self.resting.push((until, peer, channel.to_string()));
        }
        if !self.facts.responder_forked(peer, channel) {
            return;
        }
        self.reject(
            "fork",
            format!(
                "from {peer}: its answer holds a branch of its own log in '{channel}' that parts from ours at seq {} (a device restored from an older copy that wrote before catching up; it repairs this itself); not taken",
                fork.seq
            ),
        );
    }

    /// Ask peers for their own logs again where they rested long enough
    /// ([`Runner::on_responders_fork`]).
    pub(super) fn end_rests(&mut self) {
        let now = std::time::Instant::now();
        self.end_rests_where(|until, _, _| *until <= now);
    }

    /// End the rests `done` picks: their peers' own logs are asked of them again.
    fn end_rests_where(&mut self, done: impl Fn(&std::time::Instant, &PeerId, &str) -> bool) {
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resting)
            .into_iter()
            .partition(|(until, peer, channel)| done(until, peer, channel));
        self.resting = rest;
        for (_, peer, channel) in due {
            if let Some(author) = DeviceId::from_peer_id(&peer) {
                self.catchup.take_in_again(peer, author, &channel);
            }
        }
    }

    /// `author`'s message in `channel` was accepted, so chained to our copy of its log: if
    /// that device rested there after answering with another branch, it has repaired its
    /// side, and its log is asked of it again at once (a gap its messages show is filled
    /// from it, not a minute later).
    pub(super) fn end_rest_of(&mut self, author: &DeviceId, channel: &str) {
        let peer = author.peer_id();
        self.end_rests_where(|_, p, c| *p == peer && c == channel);
    }

    /// The author whose chain an answer from `peer` broke, if that is the author's doing
    /// ([`catchup::forked_author`]).
    pub(super) fn others_fork(
        &self,
        peer: PeerId,
        e: &CheckError,
        channel: &str,
        resp: &SyncResponse,
    ) -> Option<DeviceId> {
        let responder = DeviceId::from_peer_id(&peer)?;
        catchup::forked_author(e, &self.me, &responder, channel, resp)
    }

    /// `peer` holds a branch of `author`'s log in `channel` that does not chain to ours:
    /// that author's messages there are no longer asked of it (gossip and other peers still
    /// bring what chains), and the fork is reported once per peer.
    pub(super) fn on_others_fork(&mut self, peer: PeerId, author: DeviceId, channel: &str) {
        self.catchup.leave_out_from(peer, author, channel);
        let name = self
            .chain
            .head()
            .and_then(|h| h.member_of_device(&author))
            .map_or_else(
                || "a device".to_string(),
                |m| format!("{}'s device", m.name),
            );
        self.facts.forked(channel, format!("{name} ({author})"));
        self.reject(
            "fork",
            format!(
                "from {peer}: {name} ({author}) signed two different branches of its log in '{channel}' (a modified client, or a device restored from an older copy); its messages there are no longer taken from this peer. An admin should check that device, and revoke it if it is not a restored copy"
            ),
        );
    }
}
