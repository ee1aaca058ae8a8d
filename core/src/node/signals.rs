//! Ephemeral signals (`/majlis/signal/1`): "typing in this channel" and "away". Sent straight
//! to each connected device that may see them, shown for a few seconds, never stored or
//! relayed. A modified client cannot use them to learn or claim anything: a typing signal
//! goes only to readers of the channel, and one received is shown only if its sender may
//! post there and this member may read it; each peer is limited to one per channel a second.

use std::time::{Duration, Instant};

use libp2p::request_response;
use libp2p::PeerId;

use super::runner::Runner;
use super::Event;
use crate::identity::DeviceId;
use crate::net::{Ack, Signal};

/// At most one signal per (peer, channel) shown per this long; the rest are dropped.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Rate-limit entries kept before old ones are dropped.
const MAX_TRACKED: usize = 4096;

impl Runner {
    /// Send `signal` to every connected device that may see it (`checked`; else to every
    /// connected device, as a modified client would: for tests).
    pub(super) fn send_signal(&mut self, signal: Signal, checked: bool) {
        if let Signal::Away(a) = signal {
            self.away = a;
        }
        let Some(head) = self.chain.head() else {
            return;
        };
        let Some(me) = head.member_of_device(&self.me) else {
            return;
        };
        if let Signal::Typing { channel } = &signal {
            if checked && !head.roster.may_post(me, channel) {
                return;
            }
        }
        let to: Vec<PeerId> = self
            .connections
            .keys()
            .copied()
            .filter(|p| {
                let Some(m) = DeviceId::from_peer_id(p).and_then(|d| head.member_of_device(&d))
                else {
                    return false;
                };
                m.name != me.name
                    && (!checked
                        || match &signal {
                            Signal::Typing { channel } => head.roster.may_read(m, channel),
                            Signal::Away(_) => true,
                        })
            })
            .collect();
        for p in to {
            self.swarm
                .behaviour_mut()
                .signal
                .send_request(&p, signal.clone());
        }
    }

    /// A device just connected: tell it this member is away, if it is.
    pub(super) fn signal_on_connect(&mut self, peer: PeerId) {
        if self.away {
            self.swarm
                .behaviour_mut()
                .signal
                .send_request(&peer, Signal::Away(true));
        }
    }

    pub(super) fn on_signal_event(&mut self, ev: request_response::Event<Signal, Ack>) {
        let request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } = ev
        else {
            return;
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .signal
            .send_response(channel, Ack);
        let Some(head) = self.chain.head() else {
            return;
        };
        let (Some(me), Some(device)) = (
            head.member_of_device(&self.me),
            DeviceId::from_peer_id(&peer),
        ) else {
            return;
        };
        let Some(from) = head.member_of_device(&device) else {
            return;
        };
        let key = match &request {
            Signal::Typing { channel } => channel.clone(),
            Signal::Away(_) => String::new(),
        };
        if let Signal::Typing { channel } = &request {
            if !head.roster.may_post(from, channel) || !head.roster.may_read(me, channel) {
                self.tally.count("signal");
                return;
            }
        }
        let now = Instant::now();
        if self
            .signal_seen
            .get(&(peer, key.clone()))
            .is_some_and(|t| now.duration_since(*t) < MIN_GAP)
            && matches!(request, Signal::Typing { .. })
        {
            return;
        }
        if self.signal_seen.len() >= MAX_TRACKED {
            self.signal_seen
                .retain(|_, t| now.duration_since(*t) < MIN_GAP);
        }
        self.signal_seen.insert((peer, key), now);
        let member = from.name.clone();
        self.emit(match request {
            Signal::Typing { channel } => Event::Typing { channel, member },
            Signal::Away(away) => Event::Away {
                member,
                device,
                away,
            },
        });
    }
}
