//! A journal of removals: what left the store (a retention sweep, an erasure, this device's
//! own messages taken back after a fork), by channel, written before the removal itself.
//!
//! Why: integrations keep copies (a webhook's receiver, an archive reading the API), and a
//! removal must reach them even when the node stopped in between (killed just after a sweep,
//! or the sweep ran with no node at all: `majlisd retention sweep`). An event is gone with
//! the process; this journal is on the same disk as the removal and written first, so any
//! removal a crash leaves on disk has its entry (sled recovers a prefix of its writes). A
//! reader keeps how far it has read (a webhook's queue file does) and reads on from there.
//! An entry whose removal a crash then lost is read too: the sweep runs again at the next
//! start and removes it (announced twice at worst: readers take removals at least once).
//!
//! It holds message ids and channel names only, never content; entries older than
//! [`KEEP_MS`] go, and at most [`KEEP`] entries are kept. Entries count from 1: a reader
//! that has read nothing is at 0.

use super::*;

const TREE: &str = "removals";
/// How long an entry is kept: a reader that was off longer starts from what is left.
pub const KEEP_MS: u64 = 30 * 24 * 3600 * 1000;
/// At most this many entries (a sweep writes one per channel and 20 000 messages).
pub const KEEP: usize = if cfg!(test) { 64 } else { 4096 };

/// Messages removed from one channel together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// When (ms since the epoch).
    pub at: u64,
    pub channel: String,
    pub ids: Vec<[u8; 32]>,
}

impl Removal {
    pub fn ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.ids.iter().copied().map(MessageId)
    }
}

impl Store {
    /// Note that `ids` of `channel` are about to be removed. Called before the removal:
    /// written after, a crash in between would leave a removal no reader hears of.
    pub(super) fn journal_removal(&self, channel: &str, ids: &[MessageId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let tree = self.db.open_tree(TREE)?;
        let now = crate::now_ms();
        // Unique and increasing for the life of the database, across crashes too (sled
        // reserves ahead durably), so that a reader's position stays meaningful; from 1, as
        // 0 stands for "none yet".
        let key = self.db.generate_id()? + 1;
        let entry = Removal {
            at: now,
            channel: channel.to_string(),
            ids: ids.iter().map(|id| id.0).collect(),
        };
        let value = postcard::to_stdvec(&entry).expect("a removal serializes");
        tree.insert(key.to_be_bytes(), value)?;
        // The oldest go: past their age, or beyond the count.
        let mut over = tree.len().saturating_sub(KEEP);
        for kv in tree.iter() {
            let (k, v) = kv?;
            let old = postcard::from_bytes::<Removal>(&v)
                .map_or(true, |r| r.at.saturating_add(KEEP_MS) < now);
            if over == 0 && !old {
                break;
            }
            over = over.saturating_sub(1);
            tree.remove(k)?;
        }
        Ok(())
    }

    /// Up to `max` removals after position `after` (0: from the oldest kept), with their
    /// positions, oldest first. An entry that does not decode (a damaged disk) is dropped,
    /// logged: kept, every reader would stop at it.
    fn removals_after(&self, after: u64, max: usize) -> Result<Vec<(u64, Removal)>> {
        let tree = self.db.open_tree(TREE)?;
        let mut out = Vec::new();
        for kv in tree.range(after.saturating_add(1).to_be_bytes()..) {
            let (k, v) = kv?;
            let Ok(at) = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes) else {
                continue;
            };
            match postcard::from_bytes::<Removal>(&v) {
                Ok(r) => out.push((at, r)),
                Err(e) => {
                    tracing::warn!("removal journal entry {at} unreadable ({e}); dropped");
                    tree.remove(k)?;
                }
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Up to `max` removals from `channel` after position `after`, oldest first, and the
    /// position to read on from: the last entry read, of any channel (what lies between
    /// was another channel's). A reader that gets fewer than `max` has read to the end.
    pub fn removals_of(
        &self,
        channel: &str,
        after: u64,
        max: usize,
    ) -> Result<(Vec<Removal>, u64)> {
        const PAGE: usize = if cfg!(test) { 8 } else { 64 };
        let (mut out, mut next) = (Vec::new(), after);
        loop {
            let page = self.removals_after(next, PAGE)?;
            let more = page.len() == PAGE;
            for (at, r) in page {
                if r.channel == channel {
                    if out.len() == max {
                        return Ok((out, next));
                    }
                    out.push(r);
                }
                next = at;
            }
            if !more {
                return Ok((out, next));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db"), DataKey::generate()).unwrap();
        (dir, s)
    }

    #[test]
    fn a_reader_reads_on_from_where_it_stopped() {
        let (_d, s) = store();
        assert!(s.removals_after(0, 10).unwrap().is_empty());
        s.journal_removal("general", &[MessageId([1; 32]), MessageId([2; 32])])
            .unwrap();
        s.journal_removal("ops", &[MessageId([3; 32])]).unwrap();
        s.journal_removal("ops", &[]).unwrap();
        let all = s.removals_after(0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1.channel, "general");
        assert_eq!(
            all[0].1.ids().collect::<Vec<_>>(),
            [MessageId([1; 32]), MessageId([2; 32])]
        );
        let rest = s.removals_after(all[0].0, 10).unwrap();
        assert_eq!(rest, all[1..]);
        assert_eq!(s.removals_after(0, 1).unwrap(), all[..1]);
        assert!(s.removals_after(all[1].0, 10).unwrap().is_empty());
        // A damaged entry is dropped, not stopped at.
        let tree = s.db.open_tree(TREE).unwrap();
        tree.insert((all[1].0 + 1).to_be_bytes(), &b"\xff\xff"[..])
            .unwrap();
        s.journal_removal("ops", &[MessageId([4; 32])]).unwrap();
        let after = s.removals_after(all[1].0, 10).unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].1.ids, vec![[4; 32]]);
        assert_eq!(tree.len(), 3);
    }

    #[test]
    fn old_entries_and_entries_beyond_the_count_go() {
        let (_d, s) = store();
        let tree = s.db.open_tree(TREE).unwrap();
        let old = Removal {
            at: crate::now_ms() - KEEP_MS - 1,
            channel: "general".into(),
            ids: vec![[9; 32]],
        };
        tree.insert(1u64.to_be_bytes(), postcard::to_stdvec(&old).unwrap())
            .unwrap();
        s.journal_removal("general", &[MessageId([1; 32])]).unwrap();
        let left = s.removals_after(0, 10).unwrap();
        assert_eq!(left.len(), 1, "the month-old entry is gone");
        assert_eq!(left[0].1.ids, vec![[1; 32]]);
        for i in 0..KEEP + 5 {
            s.journal_removal("general", &[MessageId([i as u8; 32])])
                .unwrap();
        }
        let kept = s.removals_after(0, usize::MAX).unwrap();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept.last().unwrap().1.ids, vec![[(KEEP + 4) as u8; 32]]);
    }

    #[test]
    fn a_channels_removals_are_read_past_other_channels_pages() {
        let (_d, s) = store();
        // More of another channel's entries than a page holds, between two of ours.
        s.journal_removal("general", &[MessageId([1; 32])]).unwrap();
        for i in 0..20 {
            s.journal_removal("ops", &[MessageId([100 + i; 32])])
                .unwrap();
        }
        s.journal_removal("general", &[MessageId([2; 32])]).unwrap();
        for i in 0..10 {
            s.journal_removal("ops", &[MessageId([200 + i; 32])])
                .unwrap();
        }
        let ids = |rs: &[Removal]| rs.iter().map(|r| r.ids[0][0]).collect::<Vec<_>>();
        let (first, next) = s.removals_of("general", 0, 1).unwrap();
        assert_eq!(ids(&first), [1]);
        let (rest, end) = s.removals_of("general", next, 10).unwrap();
        assert_eq!(ids(&rest), [2], "read on from the first, past 20 of ops");
        let (none, same) = s.removals_of("general", end, 10).unwrap();
        assert!(none.is_empty());
        assert_eq!(
            same, end,
            "read to the end: nothing more, and the same place"
        );
        let all = s.removals_after(0, usize::MAX).unwrap();
        assert_eq!(
            end,
            all.last().unwrap().0,
            "the place is past ops' last entries too"
        );
        assert_eq!(ids(&s.removals_of("general", 0, 10).unwrap().0), [1, 2]);
        assert!(s.removals_of("sales", 0, 10).unwrap().0.is_empty());
    }
}
