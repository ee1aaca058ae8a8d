//! Our own recent messages, sent again to a peer whose surplus connection just closed
//! (`/majlis/push/1`, see [`crate::net::PUSH_PROTOCOL`]).
//!
//! Why: gossipsub hands a peer's messages to whichever of its connections is ready. Two
//! devices that find each other at once both dial, and each end closes the same one of the
//! two connections seconds later (see `neighbours::surplus`). A message that the closing
//! connection had taken (the outbox flushed when the peer subscribed, the first thing said
//! after a restart) is lost with it, and gossipsub never sends it again. Catch-up would bring
//! it, but in order: on a slow link, after the whole backlog. So what this node published in
//! the last [`WINDOW`] goes again, straight to that peer, which takes it through the same
//! intake as gossip (a copy it already holds is a duplicate and costs nothing more).
//!
//! A modified client gains nothing here: a receiver takes only the pushing device's own
//! messages in channels the receiver reads, checked like gossip (signature, roster, chain);
//! a push is bounded in count and bytes by the codec.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libp2p::request_response;
use libp2p::PeerId;

use super::runner::Runner;
use crate::identity::DeviceId;
use crate::message::Envelope;
use crate::net::{Ack, Push, MAX_PUSH};
use crate::proto::intake::Origin;

/// How long a published message is kept to be sent again. A surplus connection closes as
/// soon as its end sees the other one established: within a few seconds even on a link with
/// a second of latency.
pub(super) const WINDOW: Duration = Duration::from_secs(10);

/// Our messages handed to gossipsub in the last [`WINDOW`], oldest first, at most
/// [`MAX_PUSH`]: when, the channel (who may have it) and the signed bytes (what goes), not
/// the decoded message, which would copy the body a second time on every publish.
#[derive(Debug, Default)]
pub(super) struct Recent(VecDeque<(Instant, String, Vec<u8>)>);

impl Recent {
    pub(super) fn published(&mut self, env: &Envelope, now: Instant) {
        self.expire(now);
        if self.0.len() == MAX_PUSH {
            self.0.pop_front();
        }
        self.0
            .push_back((now, env.unsigned.channel.clone(), env.wire.clone()));
    }

    fn expire(&mut self, now: Instant) {
        while self
            .0
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) > WINDOW)
        {
            self.0.pop_front();
        }
    }

    /// What is still recent at `now` in a channel that passes `to`, oldest first.
    pub(super) fn for_peer(&mut self, now: Instant, to: impl Fn(&str) -> bool) -> Vec<&[u8]> {
        self.expire(now);
        self.0
            .iter()
            .filter(|(_, channel, _)| to(channel))
            .map(|(.., wire)| wire.as_slice())
            .collect()
    }
}

impl Runner {
    /// One of `peer`'s connections closed and another stays: send it again what we
    /// published recently that its member may read.
    pub(super) fn push_recent(&mut self, peer: PeerId) {
        let Some(head) = self.chain.head() else {
            return;
        };
        let Some(member) = DeviceId::from_peer_id(&peer).and_then(|d| head.member_of_device(&d))
        else {
            return;
        };
        let messages: Vec<serde_bytes::ByteBuf> = self
            .recent
            .for_peer(Instant::now(), |channel| {
                head.roster.may_read(member, channel)
            })
            .into_iter()
            .map(|wire| serde_bytes::ByteBuf::from(wire.to_vec()))
            .collect();
        if messages.is_empty() {
            return;
        }
        tracing::debug!(
            "a connection to {peer} closed: {} recent messages sent again",
            messages.len()
        );
        self.swarm
            .behaviour_mut()
            .push
            .send_request(&peer, Push { messages });
    }

    pub(super) fn on_push_event(&mut self, ev: request_response::Event<Push, Ack>) {
        let request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } = ev
        else {
            return; // our own pushes: best effort, catch-up covers a failure
        };
        let _ = self.swarm.behaviour_mut().push.send_response(channel, Ack);
        self.on_push(peer, request);
    }

    /// Take a peer's push: only its own messages, only in channels we read, at most
    /// [`MAX_PUSH`]; then intake as for gossip.
    fn on_push(&mut self, peer: PeerId, push: Push) {
        let Some(sender) = DeviceId::from_peer_id(&peer) else {
            return;
        };
        if push.messages.len() > MAX_PUSH {
            let n = push.messages.len();
            return self.reject("push", format!("{n} messages from {peer}"));
        }
        let Some(head) = self.chain.head() else {
            return;
        };
        let Some(me) = head.member_of_device(&self.me) else {
            return;
        };
        if !self.listed || head.member_of_device(&sender).is_none() {
            return;
        }
        let mut batch = Vec::with_capacity(push.messages.len());
        let mut refused = Vec::new();
        for w in &push.messages {
            match Envelope::decode_unverified(w) {
                Ok(env)
                    if env.unsigned.author == sender
                        && head.roster.may_read(me, &env.unsigned.channel) =>
                {
                    batch.push(env)
                }
                Ok(env) => refused.push(format!(
                    "{peer} pushed a message of {} in '{}'",
                    env.unsigned.author, env.unsigned.channel
                )),
                Err(e) => refused.push(format!("from {peer}: {e}")),
            }
        }
        for r in refused {
            self.reject("push", r);
        }
        let verdicts = self.accept_standalone(&batch);
        for (env, verdict) in batch.iter().zip(verdicts) {
            self.settle(peer, Some(env), verdict, Origin::Gossip);
        }
        self.start_flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_window_and_at_most_a_push() {
        let key = crate::identity::DeviceKey::generate();
        let env = |seq: u64| {
            Envelope::sign(
                &key,
                crate::message::Unsigned {
                    format: crate::message::PLAINTEXT_FORMAT,
                    author: key.id(),
                    channel: if seq == 2 { "hr" } else { "general" }.into(),
                    sent_at: 1,
                    seq,
                    prev: None,
                    body: b"hi".to_vec(),
                },
            )
        };
        let mut r = Recent::default();
        let t0 = Instant::now();
        r.published(&env(1), t0);
        r.published(&env(2), t0 + Duration::from_secs(5));
        let seqs = |v: Vec<&[u8]>| {
            v.iter()
                .map(|w| Envelope::decode_unverified(w).unwrap().unsigned.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            seqs(r.for_peer(t0 + Duration::from_secs(6), |_| true)),
            [1, 2]
        );
        // The first is older than the window now; a filter leaves out what it refuses.
        assert_eq!(
            seqs(r.for_peer(t0 + Duration::from_secs(11), |_| true)),
            [2]
        );
        assert!(r
            .for_peer(t0 + Duration::from_secs(11), |channel| channel != "hr")
            .is_empty());
        for s in 0..(MAX_PUSH as u64 + 10) {
            r.published(&env(100 + s), t0 + Duration::from_secs(12));
        }
        let kept = seqs(r.for_peer(t0 + Duration::from_secs(12), |_| true));
        assert_eq!(kept.len(), MAX_PUSH);
        assert_eq!(kept[0], 110, "the oldest go first");
    }
}
