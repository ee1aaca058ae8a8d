//! What each webhook has been given of its channel, per author, so that a message the node
//! holds but never queued for a webhook is found in the author's log and sent. Deliveries
//! are queued from the node's events, which can miss one: the node killed after a message
//! reached its disk but before its delivery reached the queue file, the event log overrun
//! by a burst, a message that could be read only after a restart (its key came late).
//!
//! Per (webhook, author): every seq up to `upto` was queued or needs nothing (gone, or a
//! seq the author skipped), and the seqs in `above` were queued too. The author logs are
//! walked above `upto` (at start, every 30 s, and when the event log was overrun), and what
//! is held there and not queued is queued.

use std::collections::{BTreeSet, HashMap};

use majlis_core::sync::Heads;
use majlis_core::DeviceId;
use serde::{Deserialize, Serialize};

/// Seqs queued above one that cannot be read yet before the walk stops waiting for it (its
/// key may never come); bounds what a mark keeps.
const MAX_ABOVE: usize = 100_000;

/// One (webhook, author) as the queue file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkLine {
    pub hook: String,
    /// The author's device id (hex).
    pub author: String,
    pub upto: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub above: Vec<u64>,
}

/// What a webhook has been given of one author's log.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mark {
    /// Every seq up to here was queued or needs nothing (or was history when the webhook
    /// was first seen: a walk does not send it, though its own event, if it comes, does).
    /// Not counted for events: a message queued and then lost in a crash (a node shows one
    /// before its write is durable) comes back by catch-up, and its new event sends it.
    upto: u64,
    /// Queued, above `upto`.
    above: BTreeSet<u64>,
}

/// What the store holds at a seq of an author's log, as a webhook sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Held {
    /// Its delivery was queued.
    Queued,
    /// Removed since (its removal is an event of its own), or nothing a webhook sends.
    Gone,
    /// Not readable yet: its key has not come (or the store did not answer).
    Locked,
    /// Held, readable, never queued.
    New,
}

impl Mark {
    /// Whether a walk passes `seq` by: queued already, or history.
    pub fn has(&self, seq: u64) -> bool {
        seq <= self.upto || self.above.contains(&seq)
    }

    /// Where a walk of the author's log starts.
    pub fn from(&self) -> u64 {
        self.upto + 1
    }

    /// Take in a walk of the author's log from [`Mark::from`] (ascending; `whole`: it
    /// reached the author's highest seq), `c` being the author's contiguous prefix (every
    /// seq up to it held or skipped by the author). Returns the seqs to queue now, counted
    /// as queued, and moves `upto` over what needs nothing more.
    pub fn settle(&mut self, c: u64, walked: &[(u64, Held)], whole: bool) -> Vec<u64> {
        let mut new = Vec::new();
        let mut moving = true;
        let mut upto = self.upto;
        let mut abandoned = 0;
        for &(seq, held) in walked {
            if held == Held::New {
                new.push(seq);
                self.above.insert(seq);
            }
            if !moving {
                continue;
            }
            if seq > c {
                // Held above a seq not held yet, which may still come.
                moving = false;
                upto = upto.max(c);
            } else if held == Held::Locked && self.above.len() <= MAX_ABOVE {
                moving = false;
                upto = upto.max(seq - 1);
            } else {
                abandoned += usize::from(held == Held::Locked);
                upto = seq;
            }
        }
        if moving && whole {
            upto = upto.max(c);
        }
        if abandoned > 0 {
            tracing::warn!(
                "webhooks: {abandoned} message(s) still unreadable here after {MAX_ABOVE} later ones will not be sent when they become readable"
            );
        }
        if upto > self.upto {
            self.upto = upto;
            self.above = self.above.split_off(&(upto + 1));
        }
        new
    }

    /// A delivery of `seq` was queued.
    pub fn note(&mut self, seq: u64) {
        if seq > self.upto {
            self.above.insert(seq);
        }
    }
}

/// The marks of every webhook.
#[derive(Debug, Default)]
pub struct Marks(HashMap<String, HashMap<DeviceId, Mark>>);

impl Marks {
    /// Whether `hook` has been seen before (then its marks say what it was given).
    pub fn knows(&self, hook: &str) -> bool {
        self.0.contains_key(hook)
    }

    /// A webhook seen for the first time: what its channel holds now (`heads`) is history.
    pub fn start(&mut self, hook: &str, heads: &Heads) -> Vec<MarkLine> {
        let marks = self.0.entry(hook.to_string()).or_default();
        for (author, (_, max)) in heads {
            marks.insert(
                *author,
                Mark {
                    upto: *max,
                    above: BTreeSet::new(),
                },
            );
        }
        self.lines_of(hook)
    }

    /// `hook`'s mark of `author` (an author not seen before: nothing given yet).
    pub fn mark(&mut self, hook: &str, author: &DeviceId) -> &mut Mark {
        self.0
            .entry(hook.to_string())
            .or_default()
            .entry(*author)
            .or_default()
    }

    #[cfg(test)]
    pub fn has(&self, hook: &str, author: &DeviceId, seq: u64) -> bool {
        self.0
            .get(hook)
            .and_then(|m| m.get(author))
            .is_some_and(|m| m.has(seq))
    }

    /// Take in a line of the queue file.
    pub fn load(&mut self, line: MarkLine) {
        self.0.entry(line.hook.clone()).or_default();
        let Some(author) = super::unhex(&line.author).and_then(|a| <[u8; 32]>::try_from(a).ok())
        else {
            // A webhook whose channel was empty when first seen: known, nothing more.
            return;
        };
        *self.mark(&line.hook, &DeviceId(author)) = Mark {
            upto: line.upto,
            above: line.above.into_iter().collect(),
        };
    }

    /// Every mark, as the queue file keeps them.
    pub fn lines(&self) -> Vec<MarkLine> {
        self.0.keys().flat_map(|h| self.lines_of(h)).collect()
    }

    fn lines_of(&self, hook: &str) -> Vec<MarkLine> {
        let Some(marks) = self.0.get(hook) else {
            return Vec::new();
        };
        if marks.is_empty() {
            // Seen, though no author has written yet: a line says so.
            return vec![MarkLine {
                hook: hook.to_string(),
                author: String::new(),
                upto: 0,
                above: Vec::new(),
            }];
        }
        let mut out: Vec<MarkLine> = marks
            .iter()
            .map(|(author, m)| MarkLine {
                hook: hook.to_string(),
                author: super::hex(&author.0),
                upto: m.upto,
                above: m.above.iter().copied().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.author.cmp(&b.author));
        out
    }

    /// Drop the marks of webhooks removed.
    pub fn keep_only(&mut self, hooks: &[&str]) {
        self.0.retain(|h, _| hooks.contains(&h.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::Held::*;
    use super::*;

    #[test]
    fn a_walk_queues_what_was_missed_and_moves_over_what_needs_nothing() {
        let mut m = Mark::default();
        m.note(1);
        m.note(2);
        m.note(4);
        // 3 held and never queued (its event was lost); 5 gone; 7 held above a hole at 6.
        let new = m.settle(
            5,
            &[
                (1, Queued),
                (2, Queued),
                (3, New),
                (4, Queued),
                (5, Gone),
                (7, New),
            ],
            true,
        );
        assert_eq!(new, vec![3, 7]);
        assert_eq!(
            (m.upto, m.above.iter().copied().collect::<Vec<_>>()),
            (5, vec![7])
        );
        assert!(m.has(3) && m.has(7) && !m.has(6));
        // 6 comes (its event queues it), the author's prefix reaches 7.
        m.note(6);
        assert_eq!(
            m.settle(7, &[(6, Queued), (7, Queued)], true),
            Vec::<u64>::new()
        );
        assert_eq!((m.upto, m.above.len()), (7, 0));
    }

    #[test]
    fn a_message_not_readable_yet_is_waited_for() {
        let mut m = Mark::default();
        assert_eq!(
            m.settle(3, &[(1, New), (2, Locked), (3, New)], true),
            vec![1, 3]
        );
        assert_eq!(m.upto, 1, "waits at the locked one");
        // Its key came: the next walk finds it readable.
        assert_eq!(m.settle(3, &[(2, New), (3, Queued)], true), vec![2]);
        assert_eq!((m.upto, m.above.len()), (3, 0));
    }

    #[test]
    fn history_is_not_walked() {
        let mut marks = Marks::default();
        let a = DeviceId([7; 32]);
        let lines = marks.start("h", &Heads::from([(a, (4, 4))]));
        assert_eq!((lines.len(), lines[0].upto), (1, 4));
        assert_eq!(marks.mark("h", &a).from(), 5);
        assert!(marks.has("h", &a, 4) && !marks.has("h", &a, 5));
        marks.mark("h", &a).note(6);
        assert!(marks.has("h", &a, 6));
        // An author not seen before has nothing queued.
        assert!(!marks.has("h", &DeviceId([8; 32]), 1));
        // A webhook of an empty channel is known after a restart too.
        let lines = marks.start("empty", &Heads::new());
        assert_eq!(lines.len(), 1);
        let mut again = Marks::default();
        again.load(lines[0].clone());
        assert!(again.knows("empty"));
        // Through the queue file and back.
        let mut again = Marks::default();
        for l in marks.lines() {
            again.load(l);
        }
        assert_eq!(again.mark("h", &a), marks.mark("h", &a));
    }

    #[test]
    fn a_walk_cut_short_moves_only_as_far_as_it_read() {
        let mut m = Mark::default();
        assert_eq!(m.settle(10, &[(1, New), (2, New)], false), vec![1, 2]);
        assert_eq!(m.upto, 2);
        assert_eq!(m.settle(10, &[(3, New)], true), vec![3]);
        assert_eq!(m.upto, 10, "3 to 10: held or skipped, all taken");
    }
}
