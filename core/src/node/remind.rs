//! Reminders ("Remind me about this tomorrow at 9:00"): kept sealed in each device's store
//! beside the saved messages, and told as [`Event::Reminder`] at their time (the app
//! notifies, `majlisd run` prints it). The node wakes at the soonest ([`Runner::plan_due`]);
//! a node that is not running at the time tells them when it next runs. One set or
//! cancelled on a device goes to the member's other devices as an act in their notes
//! ([`Plain::Remind`], which only their devices post and read), and each keeps and says it:
//! reminded on the laptop and the desktop alike, as with what they save for later.
//!
//! [`Plain::Remind`]: crate::e2e::Plain::Remind

use serde::{Deserialize, Serialize};

use super::runner::Runner;
use super::schedule::MAX_AHEAD_MS;
use super::Event;
use crate::message::MessageId;

/// Where the reminders are kept (sealed, beside the app's state).
const KEPT_AS: &str = "reminders";

/// Reminders waiting at most.
pub const MAX_REMINDERS: usize = 1000;

/// A message to be reminded of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// This device's number for it (`majlisd reminders --cancel ID`).
    pub id: u64,
    pub message: MessageId,
    /// The message's channel (a DM's channel, `@amina,bilal`), to list it without opening it.
    pub channel: String,
    /// When (ms since the epoch).
    pub at: u64,
}

/// The reminders waiting in `store`, soonest first.
pub fn reminders(store: &crate::store::Store) -> Vec<Reminder> {
    let mut all: Vec<Reminder> = super::schedule::kept(store, KEPT_AS);
    all.sort_by_key(|r| (r.at, r.id));
    all
}

fn keep(store: &crate::store::Store, all: &[Reminder]) -> crate::Result<()> {
    super::schedule::keep_as(store, KEPT_AS, all)
}

impl Runner {
    /// Keep the reminders, and wake at the soonest.
    fn keep_reminders(&mut self, all: &[Reminder]) -> crate::Result<()> {
        keep(&self.store, all)?;
        self.plan_due();
        Ok(())
    }

    /// Remind this device's member of `message` at `at`: a message it holds and may read now.
    pub(super) fn remind(&mut self, message: MessageId, at: u64) -> crate::Result<Reminder> {
        let now = crate::now_ms();
        if at <= now {
            return Err(crate::Error::Invalid(
                "that time has passed: give a time ahead".into(),
            ));
        }
        if at > now + MAX_AHEAD_MS {
            return Err(crate::Error::Invalid(
                "a reminder is at most a year ahead".into(),
            ));
        }
        let m = self
            .store
            .message(&message)?
            .ok_or_else(|| crate::Error::Invalid(format!("no message {message} on this device")))?;
        let head = self.chain.head().ok_or(crate::Error::NotOnRoster)?;
        head.readable_channel(&self.me, &m.channel)?;
        let mut all = reminders(&self.store);
        if all.len() >= MAX_REMINDERS {
            return Err(crate::Error::Conflict(format!(
                "{MAX_REMINDERS} reminders are waiting already; cancel some first"
            )));
        }
        let item = Reminder {
            id: all.iter().map(|r| r.id).max().unwrap_or(0) + 1,
            message,
            channel: m.channel,
            at,
        };
        all.push(item.clone());
        self.keep_reminders(&all)?;
        Ok(item)
    }

    /// Take reminder `id` off the list.
    pub(super) fn unremind(&mut self, id: u64) -> crate::Result<Reminder> {
        let mut all = reminders(&self.store);
        let Some(i) = all.iter().position(|r| r.id == id) else {
            return Err(crate::Error::Invalid(format!(
                "no reminder {id} is waiting (`majlisd reminders` lists them)"
            )));
        };
        let gone = all.remove(i);
        self.keep_reminders(&all)?;
        Ok(gone)
    }

    /// Tell what is due, once each, with the message as it shows now; one whose message is
    /// gone (retention, an erasure) or no longer readable (taken off the channel) is dropped
    /// unsaid, since saying it would show what this member may no longer read.
    pub(super) fn remind_due(&mut self) {
        let now = crate::now_ms();
        let mut all = reminders(&self.store);
        if all.first().is_none_or(|r| r.at > now) {
            return;
        }
        let due: Vec<Reminder> = all.iter().filter(|r| r.at <= now).cloned().collect();
        all.retain(|r| r.at > now);
        if let Err(e) = self.keep_reminders(&all) {
            // Not told now, so told again at the next tick rather than lost.
            tracing::warn!("reminders were not kept: {e}");
            return;
        }
        let readable = |channel: &str| {
            self.chain
                .head()
                .is_some_and(|h| h.readable_channel(&self.me, channel).is_ok())
        };
        for r in due {
            match self.store.message(&r.message) {
                Ok(Some(message)) if readable(&message.channel) => self.emit(Event::Reminder {
                    reminder: r,
                    message: Box::new(message),
                }),
                _ => tracing::info!(
                    "reminder {} dropped: its message is gone or unreadable",
                    r.id
                ),
            }
        }
    }

    /// A reminder set (or cancelled) on another device of this member, as its act in their
    /// notes says: kept (or dropped) here too. One whose time has passed is not taken: a
    /// device that was off catches up on the notes' old acts, and says only what is ahead.
    pub(super) fn take_reminder_note(&mut self, m: &crate::store::StoredMessage) {
        let Some(crate::conversation::Act::Remind { of, at, on }) = m.act else {
            return;
        };
        let me = self.my_name();
        if m.device == self.me || m.sender != me || crate::roster::notes_of(&m.channel) != Some(&me)
        {
            return;
        }
        let mut all = reminders(&self.store);
        let held = all.iter().position(|r| r.message == of && r.at == at);
        match (on, held) {
            (true, None) if at > crate::now_ms() && all.len() < MAX_REMINDERS => {
                let channel = match self.store.message(&of) {
                    Ok(Some(target)) => target.channel,
                    // Not here yet: catch-up brings it; it is looked up again when due.
                    _ => String::new(),
                };
                all.push(Reminder {
                    id: all.iter().map(|r| r.id).max().unwrap_or(0) + 1,
                    message: of,
                    channel,
                    at,
                });
            }
            (false, Some(i)) => {
                all.remove(i);
            }
            _ => return,
        }
        if let Err(e) = self.keep_reminders(&all) {
            tracing::warn!("a reminder from another device of {me} was not kept: {e}");
        }
    }
}
