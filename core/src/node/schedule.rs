//! Messages written now and sent later ("Send tomorrow at 9:00"): kept sealed in the store
//! until their time, then signed and sent as if written then (the roster is checked at that
//! moment, so a member taken off the channel meanwhile sends nothing there). The node wakes
//! at the soonest ([`Runner::plan_due`]; checked every [`super::SYNC_INTERVAL`] too); a node
//! that is not running at the time sends them when it next runs. Nothing of them is on the
//! wire before they are sent.

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::runner::Runner;
use super::Event;

/// Where the schedule is kept (sealed, beside the app's state).
const KEPT_AS: &str = "scheduled";

/// Messages waiting at most, and how far ahead one may be set.
pub const MAX_SCHEDULED: usize = 1000;
pub const MAX_AHEAD_MS: u64 = 366 * 24 * 3_600_000;

/// A message waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// This device's number for it (`majlisd scheduled --cancel ID`).
    pub id: u64,
    /// The channel's wire name (a DM's channel, `@amina,bilal`).
    pub channel: String,
    pub text: String,
    /// When to send it (ms since the epoch).
    pub at: u64,
}

/// What is waiting in `store`, soonest first.
pub fn scheduled(store: &crate::store::Store) -> Vec<Scheduled> {
    let mut all: Vec<Scheduled> = kept(store, KEPT_AS);
    all.sort_by_key(|s| (s.at, s.id));
    all
}

fn keep(store: &crate::store::Store, all: &[Scheduled]) -> crate::Result<()> {
    keep_as(store, KEPT_AS, all)
}

/// A list this device keeps for itself under `key` (sealed, beside the app's state); empty
/// if none, or if what is there does not read (a list from a later release).
pub(super) fn kept<T: serde::de::DeserializeOwned>(
    store: &crate::store::Store,
    key: &str,
) -> Vec<T> {
    store
        .get_private(key)
        .ok()
        .flatten()
        .and_then(|v| postcard::from_bytes(&v).ok())
        .unwrap_or_default()
}

/// Keep `all` under `key`, on disk before this returns.
pub(super) fn keep_as<T: Serialize>(
    store: &crate::store::Store,
    key: &str,
    all: &[T],
) -> crate::Result<()> {
    store.set_private(key, &postcard::to_stdvec(all).expect("a list serializes"))?;
    store.flush()
}

impl Runner {
    /// Keep the schedule, and wake at its soonest.
    fn keep_schedule(&mut self, all: &[Scheduled]) -> crate::Result<()> {
        keep(&self.store, all)?;
        self.plan_due();
        Ok(())
    }

    /// Wake when the soonest message kept for later or reminder is due, so that each goes
    /// at its time rather than at the next tick (every [`super::SYNC_INTERVAL`], which
    /// stays as a backstop, for a wall clock that jumps).
    pub(super) fn plan_due(&mut self) {
        let now = crate::now_ms();
        let soonest = scheduled(&self.store)
            .first()
            .map(|s| s.at)
            .into_iter()
            .chain(super::remind::reminders(&self.store).first().map(|r| r.at))
            .min();
        // One already due waits a moment: it is one a failing disk kept from being sent
        // (no busy loop on that disk), or one that fell due while the node was off.
        self.due_at = soonest.map(|at| {
            let wait = std::time::Duration::from_millis(at.saturating_sub(now));
            tokio::time::Instant::now() + wait.max(std::time::Duration::from_millis(250))
        });
    }

    /// Keep `text` to send in `channel` at `at`.
    pub(super) fn schedule(
        &mut self,
        channel: String,
        text: String,
        at: u64,
    ) -> crate::Result<Scheduled> {
        let now = crate::now_ms();
        if text.trim().is_empty() {
            return Err(crate::Error::Invalid("a message needs some text".into()));
        }
        if at <= now {
            return Err(crate::Error::Invalid(
                "that time has passed: send the message now".into(),
            ));
        }
        if at > now + MAX_AHEAD_MS {
            return Err(crate::Error::Invalid(
                "a message is sent at most a year ahead".into(),
            ));
        }
        let head = self.chain.head().ok_or(crate::Error::NotOnRoster)?;
        let me = head
            .member_of_device(&self.me)
            .ok_or(crate::Error::NotOnRoster)?;
        let channel = head.resolve_channel(&self.me, &channel)?;
        if !head.roster.may_post(me, &channel) {
            return Err(crate::Error::Denied(head.roster.why_not_post(me, &channel)));
        }
        let mut all = scheduled(&self.store);
        if all.len() >= MAX_SCHEDULED {
            return Err(crate::Error::Conflict(format!(
                "{MAX_SCHEDULED} messages are waiting already; send or cancel some first"
            )));
        }
        let item = Scheduled {
            id: all.iter().map(|s| s.id).max().unwrap_or(0) + 1,
            channel,
            text,
            at,
        };
        all.push(item.clone());
        self.keep_schedule(&all)?;
        Ok(item)
    }

    /// Take message `id` off the schedule.
    pub(super) fn unschedule(&mut self, id: u64) -> crate::Result<Scheduled> {
        let mut all = scheduled(&self.store);
        let Some(i) = all.iter().position(|s| s.id == id) else {
            return Err(crate::Error::Invalid(format!(
                "no message {id} is waiting (`majlisd scheduled` lists them)"
            )));
        };
        let gone = all.remove(i);
        self.keep_schedule(&all)?;
        Ok(gone)
    }

    /// Send what is due: each as a message written now; one the roster no longer allows is
    /// dropped and said (`Event::ScheduledFailed`).
    pub(super) fn send_due(&mut self) {
        let now = crate::now_ms();
        let mut all = scheduled(&self.store);
        if all.first().is_none_or(|s| s.at > now) {
            return;
        }
        let due: Vec<Scheduled> = all.iter().filter(|s| s.at <= now).cloned().collect();
        all.retain(|s| s.at > now);
        let mut failed = Vec::new();
        for s in due {
            match self
                .profile
                .compose_unsaved(&self.chain, &s.channel, &s.text, true)
            {
                Ok((envs, sender)) => {
                    let shown = self.shown_own(&envs, s.text.clone(), None);
                    let (reply, _) = oneshot::channel();
                    self.send_composed(envs, &sender, reply, shown);
                }
                Err(e) => failed.push(Event::ScheduledFailed {
                    channel: s.channel,
                    text: s.text,
                    why: e.to_string(),
                }),
            }
        }
        // Sent first, then taken off (a crash between sends one twice, never loses it); and
        // failures are told only once the schedule no longer holds them, so an app that
        // reads it again when told does not find them still waiting.
        if let Err(e) = self.keep_schedule(&all) {
            tracing::warn!("the schedule was not kept: {e}");
        }
        for ev in failed {
            self.emit(ev);
        }
    }
}
