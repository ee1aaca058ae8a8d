//! Members' statuses on the wire (see [`crate::status`] for the rules): this node's own,
//! signed and sent to every connected device; each one received kept if it is newer,
//! passed on to the other connected devices, and all of them handed to each device that
//! connects, so a status reaches colleagues its member never meets.

use libp2p::PeerId;

use super::runner::Runner;
use super::Event;
use crate::identity::DeviceId;
use crate::net::{Signal, SignedSignal};
use crate::status::{MemberStatus, Status, KEPT_AS};

impl Runner {
    /// Sign this member's new `status`, keep it and send it to every connected device.
    pub(super) fn set_status(&mut self, status: Status) -> crate::Result<()> {
        let now = crate::now_ms();
        crate::status::check(&status, now).map_err(crate::Error::Invalid)?;
        let head = self.chain.head().ok_or(crate::Error::NotOnRoster)?;
        let me = head
            .member_of_device(&self.me)
            .ok_or(crate::Error::NotOnRoster)?;
        // Later than the one held, even with a clock set back since.
        let at = now.max(self.statuses.set_at(&me.name).map_or(0, |t| t + 1));
        let s = SignedSignal::sign(self.profile.key(), at, Signal::Status(status));
        match self.statuses.take(head, &s, at) {
            Ok(Some(shown)) => self.status_taken(None, s, shown),
            Ok(None) => {}
            Err(e) => return Err(crate::Error::Invalid(e.to_string())),
        }
        // This member's own is on disk before the call returns.
        self.keep_statuses();
        Ok(())
    }

    /// Write the statuses if they changed since last written: at most once a tick (see
    /// `status_taken`), and at once for this member's own.
    pub(super) fn keep_statuses(&mut self) {
        if !std::mem::take(&mut self.statuses_dirty) {
            return;
        }
        if let Err(e) = self.store.set_private(KEPT_AS, &self.statuses.encode()) {
            tracing::warn!("statuses not kept on disk: {e}");
            self.statuses_dirty = true;
        }
    }

    /// The statuses to show now.
    pub(super) fn statuses_shown(&self) -> Vec<MemberStatus> {
        self.chain
            .head()
            .map_or(Vec::new(), |h| self.statuses.shown(h, crate::now_ms()))
    }

    /// A signed status `via` handed this node: kept, shown and passed on if it is new.
    pub(super) fn take_status(&mut self, via: PeerId, s: SignedSignal) {
        let Some(head) = self.chain.head() else {
            return;
        };
        // A new one of a device past its pace (a burst, then one a second) is dropped: a
        // modified client signing a thousand a second would otherwise push a thousand events
        // a second at the app and the API's event log. (Copies of one already held cost no
        // pace: every device that connects hands them all.)
        let newer = head.member_of_device(&s.device).is_some_and(|m| {
            self.statuses
                .set_at(&m.name)
                .is_none_or(|held| held < s.sent_at)
        });
        if newer
            && s.verified().is_some()
            && !self.status_pace.allow(s.device, std::time::Instant::now())
        {
            self.tally.count("signal");
            return;
        }
        match self.statuses.take(head, &s, crate::now_ms()) {
            Ok(Some(shown)) => self.status_taken(Some(via), s, shown),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(%via, "status refused: {e}");
                self.tally.count("signal");
            }
        }
    }

    /// Say the new status, mark the statuses to be written (at the next tick: a modified
    /// client signing a thousand a second costs one write per tick, not a thousand), and
    /// hand it to every connected device of the org but `via` and its signer (a flooder's
    /// are passed on at the pace of [`super::signals::PassOn`]; what is held back still
    /// goes to each device that connects).
    fn status_taken(&mut self, via: Option<PeerId>, s: SignedSignal, shown: MemberStatus) {
        self.statuses_dirty = true;
        self.emit(Event::Status(shown));
        if via.is_some() && !self.pass_on.allow(s.device, std::time::Instant::now()) {
            return;
        }
        let Some(head) = self.chain.head() else {
            return;
        };
        let to: Vec<PeerId> = self
            .connections
            .keys()
            .copied()
            .filter(|p| Some(*p) != via)
            .filter(|p| {
                DeviceId::from_peer_id(p)
                    .filter(|d| *d != s.device)
                    .is_some_and(|d| head.member_of_device(&d).is_some())
            })
            .collect();
        for p in to {
            self.signal_to(p, Signal::Signed(s.clone()));
        }
    }

    /// Drop the statuses the roster no longer allows (see `Statuses::forget`).
    pub(super) fn forget_statuses(&mut self) {
        let Some(head) = self.chain.head() else {
            return;
        };
        if self.statuses.forget(head) {
            self.statuses_dirty = true;
            self.keep_statuses();
        }
    }

    /// Hand every status held to `peer`, which just connected.
    pub(super) fn statuses_on_connect(&mut self, peer: PeerId) {
        let on_roster = DeviceId::from_peer_id(&peer)
            .zip(self.chain.head())
            .is_some_and(|(d, h)| h.member_of_device(&d).is_some());
        if !on_roster {
            return;
        }
        let all: Vec<SignedSignal> = self.statuses.signed(crate::now_ms()).cloned().collect();
        for s in all {
            self.signal_to(peer, Signal::Signed(s));
        }
    }
}
