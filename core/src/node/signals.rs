//! Ephemeral signals (`/majlis/signal/1`): "typing in this channel" and "away". Sent to each
//! connected device that may see them, shown for a few seconds, never stored. To relays and
//! archives they go signed by the device they are about (`Signal::Signed`), and a relay
//! passes them on to the devices connected to it (at most [`MAX_SIGNAL_HOPS`] times), so
//! members who reach each other only through relays (other subnets, sites joined by relays)
//! see them too. In an org above the mesh limit no device is connected to every other (see
//! `neighbours`), so there every device signs what it sends and passes on what it hears, as
//! a relay does: a colleague who is not a neighbour still shows typing and away.
//!
//! A modified client cannot use them to learn or claim anything: a typing signal goes only
//! to readers of the channel (a relay passes it on only to them), and one received is shown
//! only if its device's member may post there and this member may read it; a signed one
//! only if its signature is its device's and it is fresh (never shown stale) and new (a
//! replay is dropped); each device is limited to one per channel a second, and what is
//! passed on of any one device is limited by [`PassOn`], so a flooder is not amplified.

use std::time::{Duration, Instant};

use libp2p::request_response;
use libp2p::PeerId;

use super::runner::Runner;
use super::Event;
use crate::identity::DeviceId;
use crate::net::{Ack, Signal, SignedSignal, MAX_SIGNAL_HOPS};

/// At most one signal per (device, channel) shown per this long; the rest are dropped.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Rate-limit entries kept before old ones are dropped.
const MAX_TRACKED: usize = 4096;
/// A signed typing signal older (or further ahead) than this is stale: dropped. Wider than
/// the few seconds "typing…" shows, for clocks a little apart (`majlisd doctor` names
/// clocks that are off).
const FRESH_MS: u64 = 15_000;
/// Signals of one device passed on at once, then one per [`REFILL`]: a person types in one
/// channel every 3 s and goes away every few minutes, so this never holds an honest one
/// back, and a modified client that signs a thousand a second gets one a second carried.
const BURST: u32 = 6;
const REFILL: Duration = Duration::from_secs(1);

/// How many signals of each device this node may still pass on: a token bucket per
/// device ([`BURST`], one more each [`REFILL`]). Every receiver passes on what is new, so
/// without it one flooder's signals would be multiplied by every connection in the org.
#[derive(Default)]
pub(super) struct PassOn(std::collections::HashMap<DeviceId, (u32, Instant)>);

impl PassOn {
    /// Take one of `device`'s tokens, if it has one left.
    pub(super) fn allow(&mut self, device: DeviceId, now: Instant) -> bool {
        if self.0.len() >= MAX_TRACKED && !self.0.contains_key(&device) {
            // Full buckets hold nothing worth keeping.
            self.0.retain(|_, (n, at)| refill(*n, *at, now).0 < BURST);
        }
        let (n, at) = self.0.entry(device).or_insert((BURST, now));
        let (left, since) = refill(*n, *at, now);
        let ok = left > 0;
        *n = left - u32::from(ok);
        *at = since;
        ok
    }
}

/// Tokens after refilling `n` (last refilled at `at`) up to `now`, and the new refill time.
fn refill(n: u32, at: Instant, now: Instant) -> (u32, Instant) {
    let whole = (now.saturating_duration_since(at).as_millis() / REFILL.as_millis()) as u32;
    match n.saturating_add(whole) >= BURST {
        true => (BURST, now),
        false => (n + whole, at + REFILL * whole),
    }
}

impl Runner {
    /// Whether this node passes on signed signals: a relay or an archive always (it is the
    /// hub others reach each other through), any device when the org is above the mesh
    /// limit (its colleagues are not all its neighbours).
    fn carries_signals(&self, me: &crate::roster::Member) -> bool {
        me.role.stores_all() || !self.full_mesh()
    }

    /// Send `signal` to every connected device that may see it (`checked`; else to every
    /// connected device, as a modified client would: for tests). Relays and archives get it
    /// signed, to pass on.
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
        // Whom it is signed for, to pass on: relays, and everyone in an org above the mesh
        // limit.
        let everyone = !self.full_mesh();
        let to: Vec<(PeerId, bool)> = self
            .connections
            .keys()
            .copied()
            .filter_map(|p| {
                let m = DeviceId::from_peer_id(&p).and_then(|d| head.member_of_device(&d))?;
                let sees = m.name != me.name
                    && (!checked
                        || match &signal {
                            Signal::Typing { channel } => head.roster.may_read(m, channel),
                            Signal::Away(_) | Signal::Signed(_) | Signal::Status(_) => true,
                        });
                sees.then_some((p, everyone || m.role.stores_all()))
            })
            .collect();
        // Signed once, and only if someone will pass it on.
        let signed = match &signal {
            Signal::Signed(_) => None,
            s if to.iter().any(|(_, carries)| *carries) => Some(SignedSignal::sign(
                self.profile.key(),
                crate::now_ms(),
                s.clone(),
            )),
            _ => None,
        };
        for (p, carries) in to {
            let what = match (&signed, carries) {
                (Some(s), true) => Signal::Signed(s.clone()),
                _ => signal.clone(),
            };
            self.signal_to(p, what);
        }
    }

    /// A device just connected: tell it this member is away, if it is; a device that passes
    /// signals on (see [`Runner::carries_signals`]) also tells it who else is away, as they
    /// signed it.
    pub(super) fn signal_on_connect(&mut self, peer: PeerId) {
        if self.away {
            let carries = !self.full_mesh()
                || self
                    .chain
                    .head()
                    .and_then(|h| {
                        DeviceId::from_peer_id(&peer).and_then(|d| h.member_of_device(&d).cloned())
                    })
                    .is_some_and(|m| m.role.stores_all());
            let away = Signal::Away(true);
            let what = if carries {
                Signal::Signed(SignedSignal::sign(
                    self.profile.key(),
                    crate::now_ms(),
                    away,
                ))
            } else {
                away
            };
            self.signal_to(peer, what);
        }
        let held: Vec<SignedSignal> = self
            .away_heard
            .values()
            .filter_map(|(_, s)| s.clone())
            .filter(|s| DeviceId::from_peer_id(&peer) != Some(s.device))
            .collect();
        for mut s in held {
            s.hops += 1;
            self.signal_to(peer, Signal::Signed(s));
        }
        self.statuses_on_connect(peer);
    }

    /// Send a signal, and remember it until answered (see [`Runner::signals_sent`]).
    pub(super) fn signal_to(&mut self, peer: PeerId, signal: Signal) {
        let id = self
            .swarm
            .behaviour_mut()
            .signal
            .send_request(&peer, signal.clone());
        self.signals_sent.insert(id, (peer, signal));
    }

    pub(super) fn on_signal_event(&mut self, ev: request_response::Event<Signal, Ack>) {
        match &ev {
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                // What went out on a connection closed as surplus goes again on the one kept.
                if let Some((_, signal)) = self.signals_sent.remove(request_id) {
                    if self.cut_by_surplus(peer, error) {
                        self.signal_to(*peer, signal);
                    }
                }
                return;
            }
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, .. },
                ..
            } => {
                self.signals_sent.remove(request_id);
                return;
            }
            _ => {}
        }
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
        let Some(via) = DeviceId::from_peer_id(&peer) else {
            return;
        };
        match request {
            // Kept and handed on by every node: see `super::status`.
            Signal::Signed(s) if matches!(*s.signal, Signal::Status(_)) => {
                self.take_status(peer, s)
            }
            // Never unsigned: nobody could hand it on.
            Signal::Status(_) => self.tally.count("signal"),
            Signal::Signed(s) => {
                let Some(inner) = s.verified().cloned() else {
                    self.tally.count("signal");
                    return;
                };
                if s.device != self.me {
                    self.take_signal(s.device, inner, Some((peer, s)));
                }
            }
            plain => self.take_signal(via, plain, None),
        }
    }

    /// A signal about `device`'s member, straight from it or (`signed`) carried by `peer`.
    fn take_signal(
        &mut self,
        device: DeviceId,
        signal: Signal,
        signed: Option<(PeerId, SignedSignal)>,
    ) {
        let Some(head) = self.chain.head() else {
            return;
        };
        let Some(me) = head.member_of_device(&self.me).cloned() else {
            return;
        };
        let Some(from) = head.member_of_device(&device).cloned() else {
            self.tally.count("signal");
            return;
        };
        let now_ms = crate::now_ms();
        match (&signal, &signed) {
            (Signal::Typing { channel }, _)
                if !head.roster.may_post(&from, channel) || !head.roster.may_read(&me, channel) =>
            {
                self.tally.count("signal");
                return;
            }
            (Signal::Typing { .. }, Some((_, s))) if s.sent_at.abs_diff(now_ms) > FRESH_MS => {
                return;
            }
            (Signal::Away(_), Some((_, s))) => {
                // The newest word from that device stands; a replay or an older one is dropped.
                if self
                    .away_heard
                    .get(&device)
                    .is_some_and(|(at, _)| *at >= s.sent_at)
                {
                    return;
                }
                let keep = self.carries_signals(&me) && matches!(signal, Signal::Away(true));
                self.away_heard
                    .insert(device, (s.sent_at, keep.then(|| s.clone())));
            }
            (Signal::Signed(_), _) => return,
            _ => {}
        }
        let key = match &signal {
            Signal::Typing { channel } => channel.clone(),
            _ => String::new(),
        };
        let now = Instant::now();
        // A signed one carries its time: a copy that came another way, or a replay, is not
        // newer than the last one taken.
        let sent_at = signed.as_ref().map_or(0, |(_, s)| s.sent_at);
        if matches!(signal, Signal::Typing { .. })
            && self
                .signal_seen
                .get(&(device, key.clone()))
                .is_some_and(|(t, at)| {
                    now.duration_since(*t) < MIN_GAP || (sent_at > 0 && sent_at <= *at)
                })
        {
            return;
        }
        if self.signal_seen.len() >= MAX_TRACKED {
            // A signed typing signal is stale after FRESH_MS anyway.
            self.signal_seen.retain(|_, (t, at)| {
                now.duration_since(*t) < MIN_GAP || at.abs_diff(now_ms) <= FRESH_MS
            });
        }
        self.signal_seen.insert((device, key), (now, sent_at));
        // A relay (or any device above the mesh limit) passes a signed signal on to the
        // devices connected to it that may see it.
        if let Some((via, mut s)) = signed {
            if self.carries_signals(&me)
                && s.hops < MAX_SIGNAL_HOPS
                && self.pass_on.allow(device, now)
            {
                s.hops += 1;
                let to: Vec<PeerId> = self
                    .connections
                    .keys()
                    .copied()
                    .filter(|p| *p != via)
                    .filter(|p| {
                        DeviceId::from_peer_id(p)
                            .filter(|d| *d != device)
                            .and_then(|d| head.member_of_device(&d))
                            .is_some_and(|m| {
                                m.name != from.name
                                    && match &signal {
                                        Signal::Typing { channel } => {
                                            head.roster.may_read(m, channel)
                                        }
                                        _ => true,
                                    }
                            })
                    })
                    .collect();
                for p in to {
                    self.signal_to(p, Signal::Signed(s.clone()));
                }
            }
        }
        let member = from.name.clone();
        self.emit(match signal {
            Signal::Typing { channel } => Event::Typing { channel, member },
            Signal::Away(away) => Event::Away {
                member,
                device,
                away,
            },
            Signal::Signed(_) | Signal::Status(_) => return,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of six, then one a second; a device quiet for long enough has a full burst
    /// again, and each device has its own.
    #[test]
    fn pass_on_allows_a_burst_then_one_a_second_per_device() {
        let mut p = PassOn::default();
        let (a, b) = (DeviceId([1; 32]), DeviceId([2; 32]));
        let t = Instant::now();
        let taken = (0..20).filter(|_| p.allow(a, t)).count();
        assert_eq!(taken, BURST as usize);
        assert!(p.allow(b, t), "another device has its own");
        assert!(!p.allow(a, t + REFILL / 2));
        assert!(p.allow(a, t + REFILL));
        assert!(!p.allow(a, t + REFILL + REFILL / 2));
        // 2.5 refills later: two tokens, and the half carries over.
        let later = t + REFILL * 3 + REFILL / 2;
        assert_eq!((0..5).filter(|_| p.allow(a, later)).count(), 2);
        assert!(p.allow(a, t + REFILL * 4));
        let idle = t + REFILL * 60;
        assert_eq!((0..20).filter(|_| p.allow(a, idle)).count(), BURST as usize);
    }
}
