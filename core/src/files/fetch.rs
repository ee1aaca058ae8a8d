//! Planning a multi-source download, without I/O: which peer to ask for which chunks, what
//! to make of an answer. Time is passed in (milliseconds) so the rules are testable.
//!
//! Every peer that may have the blob is asked for different ranges at once, up to
//! [`WINDOW`] requests each, so a download runs at the speed of all sources together and
//! keeps going when one leaves (its ranges are asked of the others). A peer that answers
//! with a chunk that does not match its hash is never asked for this blob again; a peer that
//! lacks what was asked is left alone for [`LACK_RETRY_MS`] (it may be downloading too).
//!
//! A request unanswered for [`HEDGE_MS`] is asked of another source too, once nothing else
//! is left to ask (and the hash list at once): a source that takes requests and never
//! answers (an insider's modified client, or a peer gone silent) would otherwise hold its
//! ranges until the request timeout, 30 s, and again after every retry.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use super::blobs::Bitmap;
use super::{chunk_hash, BlobRef};

/// Chunks per request: 1 MiB at the smallest chunk size, under the codec's 10 MiB cap even at
/// 2 MiB chunks; bigger chunks are asked one at a time.
pub const REQUEST_BYTES: u64 = 1 << 20;
/// Requests in flight per peer and blob: enough to fill a LAN link while one is answered.
pub const WINDOW: u32 = 6;
pub const LACK_RETRY_MS: u64 = 5_000;
/// A request unanswered this long (ms) may be asked of another source too (see the module
/// doc). A LAN answers 1 MiB in milliseconds.
pub const HEDGE_MS: u64 = 5_000;

/// What a blob request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Part {
    Hashes,
    Chunks { first: u32, count: u32 },
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("hash list does not match the file id")]
    BadHashes,
    #[error("chunk {0} does not match its hash")]
    BadChunk(u32),
    #[error("answer does not fit the request")]
    Shape,
}

/// One blob being fetched.
#[derive(Debug)]
pub struct Fetch<P> {
    pub blob: BlobRef,
    pub hashes: Option<Vec<[u8; 32]>>,
    /// Verified and written (not necessarily synced).
    pub have: Bitmap,
    asked: Bitmap,
    flights: HashMap<P, u32>,
    hashes_asked: Option<P>,
    /// When each request in flight was made, and the parts asked of a second source.
    asked_at: HashMap<(P, Part), u64>,
    hedged: HashSet<Part>,
    bad: HashSet<P>,
    lacking: HashMap<P, u64>,
    cursor: u32,
    /// Verified bytes received (progress and benchmarks).
    pub received: u64,
}

impl<P: Copy + Eq + Hash> Fetch<P> {
    pub fn new(blob: BlobRef, hashes: Option<Vec<[u8; 32]>>, have: Bitmap) -> Fetch<P> {
        Fetch {
            asked: Bitmap::new(blob.chunks()),
            blob,
            hashes,
            have,
            flights: HashMap::new(),
            hashes_asked: None,
            asked_at: HashMap::new(),
            hedged: HashSet::new(),
            bad: HashSet::new(),
            lacking: HashMap::new(),
            cursor: 0,
            received: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.have.count() == self.blob.chunks()
    }

    /// Requests in flight, to any peer.
    pub fn in_flight(&self) -> u32 {
        self.flights.values().sum()
    }

    pub fn is_bad(&self, peer: &P) -> bool {
        self.bad.contains(peer)
    }

    fn per_request(&self) -> u32 {
        (REQUEST_BYTES / (self.blob.chunk as u64)).max(1) as u32
    }

    /// The next thing to ask `peer`, if anything; it is counted as in flight.
    pub fn next(&mut self, peer: P, now: u64) -> Option<Part> {
        if self.done() || self.bad.contains(&peer) {
            return None;
        }
        if self.lacking.get(&peer).is_some_and(|until| *until > now) {
            return None;
        }
        let flights = self.flights.get(&peer).copied().unwrap_or(0);
        if flights >= WINDOW {
            return None;
        }
        // A source silent for HEDGE_MS gets nothing new until it answers or its requests fail.
        if self
            .asked_at
            .iter()
            .any(|((p, _), at)| *p == peer && now.saturating_sub(*at) >= HEDGE_MS)
        {
            return None;
        }
        if self.hashes.is_none() {
            if self.hashes_asked.is_some() {
                return self.hedge(peer, now);
            }
            self.hashes_asked = Some(peer);
            return Some(self.ask(peer, Part::Hashes, now));
        }
        let n = self.blob.chunks();
        // The first chunk neither held nor asked, from the cursor on (wrapping once).
        let Some(first) = (0..n)
            .map(|k| (self.cursor + k) % n)
            .find(|&i| !self.have.get(i) && !self.asked.get(i))
        else {
            return self.hedge(peer, now);
        };
        let mut count = 0;
        while count < self.per_request()
            && first + count < n
            && !self.have.get(first + count)
            && !self.asked.get(first + count)
        {
            self.asked.set(first + count);
            count += 1;
        }
        self.cursor = (first + count) % n;
        Some(self.ask(peer, Part::Chunks { first, count }, now))
    }

    /// `part` goes to `peer` now.
    fn ask(&mut self, peer: P, part: Part, now: u64) -> Part {
        *self.flights.entry(peer).or_default() += 1;
        self.asked_at.insert((peer, part), now);
        part
    }

    /// A part still needed that was asked of another source at least [`HEDGE_MS`] ago and
    /// not of a second one yet: `peer` is asked for it too. The first answer is kept; the
    /// other finds everything held.
    fn hedge(&mut self, peer: P, now: u64) -> Option<Part> {
        let wanted = |part: &Part| match *part {
            Part::Hashes => self.hashes.is_none(),
            Part::Chunks { first, count } => (first..first + count).any(|i| !self.have.get(i)),
        };
        let part = self
            .asked_at
            .iter()
            .filter(|((p, part), at)| {
                *p != peer
                    && now.saturating_sub(**at) >= HEDGE_MS
                    && !self.hedged.contains(part)
                    && wanted(part)
            })
            .min_by_key(|(_, at)| **at)
            .map(|((_, part), _)| *part)?;
        self.hedged.insert(part);
        Some(self.ask(peer, part, now))
    }

    fn land(&mut self, peer: P, part: Part) {
        if let Some(f) = self.flights.get_mut(&peer) {
            *f = f.saturating_sub(1);
        }
        self.asked_at.remove(&(peer, part));
        if !self.asked_at.keys().any(|(_, p)| *p == part) {
            self.hedged.remove(&part);
        }
        match part {
            Part::Hashes => {
                if self.hashes_asked == Some(peer) {
                    self.hashes_asked = None;
                }
            }
            Part::Chunks { first, count } => {
                for i in first..first.saturating_add(count).min(self.blob.chunks()) {
                    if !self.have.get(i) {
                        self.asked.0[i as usize / 8] &= !(1 << (i % 8));
                    }
                }
                self.cursor = self.cursor.min(first);
            }
        }
    }

    /// The answer to `Part::Hashes` from `peer`.
    pub fn on_hashes(&mut self, peer: P, list: Vec<[u8; 32]>) -> Result<(), Fault> {
        self.land(peer, Part::Hashes);
        if self.hashes.is_some() {
            return Ok(());
        }
        if !self.blob.verify_hashes(&list) {
            self.bad.insert(peer);
            return Err(Fault::BadHashes);
        }
        self.hashes = Some(list);
        Ok(())
    }

    /// The answer to a chunk request: the chunks that verified, to be written. An empty
    /// chunk means "not held here". One bad chunk condemns the peer for this blob (the good
    /// ones of the same answer are still kept: each was checked on its own).
    pub fn on_chunks(
        &mut self,
        peer: P,
        part: Part,
        chunks: Vec<Vec<u8>>,
        now: u64,
    ) -> (Vec<(u32, Vec<u8>)>, Option<Fault>) {
        let Part::Chunks { first, count } = part else {
            self.land(peer, part);
            return (Vec::new(), Some(Fault::Shape));
        };
        let mut out = Vec::new();
        let mut fault = None;
        if chunks.len() != count as usize {
            fault = Some(Fault::Shape);
        } else if let Some(hashes) = &self.hashes {
            for (k, data) in chunks.into_iter().enumerate() {
                let i = first + k as u32;
                if data.is_empty() {
                    self.lacking.insert(peer, now + LACK_RETRY_MS);
                    continue;
                }
                if self.have.get(i) {
                    continue;
                }
                if data.len() != self.blob.cipher_len(i) || chunk_hash(&data) != hashes[i as usize]
                {
                    fault = Some(Fault::BadChunk(i));
                    continue;
                }
                self.have.set(i);
                self.received += data.len() as u64;
                out.push((i, data));
            }
        }
        if fault.is_some() {
            self.bad.insert(peer);
        }
        self.land(peer, part);
        (out, fault)
    }

    /// `peer` does not have the blob (or refused): leave it alone for a while.
    pub fn on_lacking(&mut self, peer: P, part: Part, now: u64) {
        self.land(peer, part);
        self.lacking.insert(peer, now + LACK_RETRY_MS);
    }

    /// The request failed (timeout, connection closed): ask again, maybe elsewhere.
    pub fn on_failed(&mut self, peer: P, part: Part) {
        self.land(peer, part);
    }

    /// A chunk that was verified but could not be written: fetch it again.
    pub fn unhave(&mut self, i: u32) {
        if let Some(b) = self.have.0.get_mut(i as usize / 8) {
            *b &= !(1 << (i % 8));
        }
        if let Some(b) = self.asked.0.get_mut(i as usize / 8) {
            *b &= !(1 << (i % 8));
        }
        self.cursor = self.cursor.min(i);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BlobId, MIN_CHUNK};
    use super::*;

    fn blob_of(chunks: &[Vec<u8>]) -> (BlobRef, Vec<[u8; 32]>) {
        let hashes: Vec<[u8; 32]> = chunks.iter().map(|c| chunk_hash(c)).collect();
        let size = MIN_CHUNK as u64 * (chunks.len() as u64 - 1) + 10;
        (
            BlobRef {
                id: BlobRef::id_of(size, MIN_CHUNK, &hashes),
                size,
                chunk: MIN_CHUNK,
            },
            hashes,
        )
    }

    fn data(n: u32) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let len = if i == n - 1 { 10 } else { MIN_CHUNK as usize } + super::super::TAG;
                vec![i as u8; len]
            })
            .collect()
    }

    #[test]
    fn two_peers_get_different_ranges_and_a_bad_one_is_dropped() {
        let chunks = data(12);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, None, Bitmap::new(12));
        assert_eq!(f.next(1, 0), Some(Part::Hashes));
        assert_eq!(f.next(2, 0), None, "the list is asked of one peer");
        let mut wrong = hashes.clone();
        wrong[3][0] ^= 1;
        assert_eq!(f.on_hashes(1, wrong), Err(Fault::BadHashes));
        assert!(f.is_bad(&1));
        assert_eq!(f.next(1, 0), None);
        assert_eq!(f.next(2, 0), Some(Part::Hashes));
        f.on_hashes(2, hashes.clone()).unwrap();
        f.bad.clear();
        let a = f.next(1, 0).unwrap();
        let b = f.next(2, 0).unwrap();
        assert_eq!(a, Part::Chunks { first: 0, count: 4 });
        assert_eq!(b, Part::Chunks { first: 4, count: 4 });
        // Peer 2 lies about chunk 5: the good ones are kept, peer 2 is dropped.
        let mut answer: Vec<Vec<u8>> = chunks[4..8].to_vec();
        answer[1][0] ^= 1;
        let (ok, fault) = f.on_chunks(2, b, answer, 0);
        assert_eq!(fault, Some(Fault::BadChunk(5)));
        assert_eq!(ok.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 6, 7]);
        assert_eq!(f.next(2, 0), None);
        let (ok, fault) = f.on_chunks(1, a, chunks[0..4].to_vec(), 0);
        assert!(fault.is_none() && ok.len() == 4);
        // Peer 1 is asked for the rest, chunk 5 included.
        let mut asked = Vec::new();
        while let Some(p) = f.next(1, 0) {
            asked.push(p);
        }
        assert_eq!(
            asked,
            vec![
                Part::Chunks { first: 5, count: 1 },
                Part::Chunks { first: 8, count: 4 }
            ]
        );
        for p in asked {
            let Part::Chunks { first, count } = p else {
                unreachable!()
            };
            let (ok, fault) = f.on_chunks(
                1,
                p,
                chunks[first as usize..(first + count) as usize].to_vec(),
                0,
            );
            assert!(fault.is_none() && !ok.is_empty());
        }
        assert!(f.done());
        assert_eq!(f.in_flight(), 0);
    }

    /// A source that takes requests and never answers holds nothing for long: once nothing
    /// else is left to ask, what it has had for [`HEDGE_MS`] is asked of another source too.
    #[test]
    fn a_silent_source_is_hedged_once_nothing_else_is_left() {
        let chunks = data(12);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, None, Bitmap::new(12));
        assert_eq!(f.next(1, 0), Some(Part::Hashes));
        assert_eq!(f.next(2, HEDGE_MS - 1), None);
        assert_eq!(f.next(2, HEDGE_MS), Some(Part::Hashes), "peer 1 is silent");
        assert_eq!(
            f.next(3, HEDGE_MS),
            None,
            "asked of one more source, not all"
        );
        f.on_hashes(2, hashes).unwrap();
        assert_eq!(f.next(1, HEDGE_MS), None, "silent: nothing new for it");
        f.on_failed(1, Part::Hashes);
        let t = HEDGE_MS;
        let silent = f.next(1, t).unwrap();
        let mut theirs = Vec::new();
        while let Some(p) = f.next(2, t) {
            theirs.push(p);
        }
        assert_eq!(theirs.len(), 2, "the rest goes to peer 2");
        for p in theirs {
            let Part::Chunks { first, count } = p else {
                unreachable!()
            };
            let got = chunks[first as usize..(first + count) as usize].to_vec();
            assert_eq!(f.on_chunks(2, p, got, t).0.len(), count as usize);
        }
        assert_eq!(f.next(2, t + HEDGE_MS - 1), None, "peer 1 may still answer");
        assert_eq!(f.next(2, t + HEDGE_MS), Some(silent));
        assert_eq!(f.next(3, t + HEDGE_MS), None);
        let (ok, fault) = f.on_chunks(2, silent, chunks[0..4].to_vec(), t + HEDGE_MS);
        assert!(fault.is_none() && ok.len() == 4);
        assert!(f.done());
        // Peer 1's request times out at last: nothing is asked again.
        f.on_failed(1, silent);
        assert_eq!(f.in_flight(), 0);
        assert_eq!(f.next(2, t + 10 * HEDGE_MS), None);
    }

    #[test]
    fn a_failed_request_is_asked_again_and_a_lacking_peer_waits() {
        let chunks = data(3);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, Some(hashes), Bitmap::new(3));
        let a = f.next(1, 0).unwrap();
        assert_eq!(f.next(1, 0), None, "everything is asked");
        f.on_failed(1, a);
        assert_eq!(f.next(2, 0), Some(a), "asked again, elsewhere");
        f.on_lacking(2, a, 100);
        assert_eq!(f.next(2, 200), None);
        assert_eq!(f.next(2, 100 + LACK_RETRY_MS), Some(a));
        // A partial holder answers what it has.
        let mut part = chunks.clone();
        part[1].clear();
        let (ok, fault) = f.on_chunks(2, a, part, 0);
        assert!(fault.is_none());
        assert_eq!(ok.len(), 2);
        assert_eq!(f.next(3, 0), Some(Part::Chunks { first: 1, count: 1 }));
    }

    #[test]
    fn resumes_from_a_bitmap() {
        let chunks = data(5);
        let (blob, hashes) = blob_of(&chunks);
        let mut have = Bitmap::new(5);
        for i in [0, 1, 3] {
            have.set(i);
        }
        let mut f: Fetch<u8> = Fetch::new(blob, Some(hashes), have);
        let mut asked = Vec::new();
        while let Some(p) = f.next(1, 0) {
            asked.push(p);
        }
        assert_eq!(
            asked,
            vec![
                Part::Chunks { first: 2, count: 1 },
                Part::Chunks { first: 4, count: 1 }
            ]
        );
        let _ = BlobId([0; 32]);
    }
}
