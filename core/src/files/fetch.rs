//! Planning a multi-source download, without I/O: which peer to ask for which chunks, what
//! to make of an answer. Time is passed in (milliseconds) so the rules are testable.
//!
//! Every peer that may have the blob is asked for different ranges at once, up to
//! [`WINDOW`] requests each, so a download runs at the speed of all sources together and
//! keeps going when one leaves (its ranges are asked of the others). A peer that answers
//! with a chunk that does not match its hash is never asked for this blob again; a peer that
//! lacks what was asked is left alone for [`LACK_RETRY_MS`] (it may be downloading too).
//!
//! How much is asked of a source at once follows its link ([`Pace`]): on a LAN a source gets
//! up to [`MAX_IN_FLIGHT`] bytes of requests at once; on a field radio a chunk comes in
//! slices of a few KiB, so no answer (and no ping behind it) waits long on the link.
//!
//! A request unanswered for [`HEDGE_MS`] is asked of another source too, once nothing else
//! is left to ask (and the hash list at once): a source that takes requests and never
//! answers (an insider's modified client, or a peer gone silent) would otherwise hold its
//! ranges until the request timeout, and again after every retry. A chunk coming in slices
//! is not hedged (its slices must all come from one source): it starts over with another
//! source instead.

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
/// A source whose request failed at once (it reset the stream) is asked nothing for this
/// long (ms): a peer that fails every request would otherwise be asked again in a loop, as
/// fast as it can fail them.
pub const FAIL_RETRY_MS: u64 = 1_000;
/// A request unanswered this long (ms) may be asked of another source too (see the module
/// doc). A LAN answers 1 MiB in milliseconds.
pub const HEDGE_MS: u64 = 5_000;

/// Bytes of requests in flight to one source at most (over all its downloads): a LAN link's
/// worth while one answer is being written.
pub const MAX_IN_FLIGHT: u64 = 12 * REQUEST_BYTES;
/// What a source gets in flight: what its link carries in this long (ms), measured. Every
/// other frame to that peer (a ping, a message) waits behind what is in flight on the same
/// connection, and a ping unanswered for 5 s closes it (see `net::PING_TIMEOUT`).
pub const AIM_MS: u64 = 2_000;
/// The window before the link is measured, and its floor: 2 s at 64 kbit/s.
pub const MIN_WINDOW: u64 = 16 * 1024;
/// An answer smaller than this says more about the round trip than about the link: it does
/// not count towards the measured rate.
const SAMPLE_BYTES: u64 = 4 * 1024;

/// One source's link as its answers show it, over all downloads: how many bytes may be in
/// flight to it.
///
/// Why: answers in flight share the link, and every other frame to that peer (a ping, a
/// message) waits behind them on the same connection. Six 1 MiB requests at once over a
/// 64 kbit/s radio take 13 minutes to arrive; every one timed out, and pings waiting behind
/// them closed the connection: a file never crossed that link. A source starts with
/// [`MIN_WINDOW`] in flight; the rate its answers arrive at (bytes over the time the link
/// has been busy with them: answers on several streams arrive interleaved, so one answer's
/// own time says little) sets what it gets next, what that rate carries in [`AIM_MS`], at
/// most doubling each time (a wrong, high estimate costs little) and between
/// [`MIN_WINDOW`] and [`MAX_IN_FLIGHT`]. On a LAN the window opens fully within a dozen
/// round trips of a millisecond.
#[derive(Debug, Clone)]
pub struct Pace {
    window: u64,
    /// Requests and bytes asked of it and not answered yet.
    requests: u32,
    bytes: u64,
    /// Since when requests have been in flight (ms), and the bytes answered since.
    busy_since: u64,
    landed: u64,
    /// Whether it answers slices: a node from before them cannot read the request (see
    /// [`Pace::slice_failed`]). Unknown (`None`) until it answers or refuses one.
    slices: Option<bool>,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            window: MIN_WINDOW,
            requests: 0,
            bytes: 0,
            busy_since: 0,
            landed: 0,
            slices: None,
        }
    }
}

/// What a source may be asked now: bytes `left` in its window, the window, and whether it
/// may be asked for slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub left: u64,
    pub window: u64,
    pub slices: bool,
}

/// A busy period longer than this (ms) is measured and started afresh, so the rate follows a
/// link that changes.
const PERIOD_MS: u64 = 10_000;

impl Pace {
    /// What may be in flight to this source (see [`Pace`]).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// What may be asked of this source now, or `None` when its window is full (or nearly:
    /// no request smaller than a quarter of the smallest window). `max_requests` caps the
    /// count.
    pub fn room(&self, max_requests: u32) -> Option<Room> {
        let left = self.window.saturating_sub(self.bytes);
        (self.requests < max_requests && left >= MIN_WINDOW / 4).then_some(Room {
            left,
            window: self.window,
            slices: self.slices != Some(false),
        })
    }

    /// It answered a slice: it speaks them.
    pub fn slice_answered(&mut self) {
        self.slices = Some(true);
    }

    /// A slice request's answer ended before a byte of it (not a timeout, a reset stream or
    /// a closed connection, which a failing link gives): that is how a node from before
    /// slices fails it, as it cannot decode the request. Unless it answered a slice before, it is asked for whole chunks from now
    /// on, one at a time while its window is smaller than a chunk. Returns whether that
    /// is news. Forgotten when the connection closes ([`Pace::reconnected`]): an upgrade
    /// restarts the node.
    pub fn slice_failed(&mut self) -> bool {
        let news = self.slices.is_none();
        if news {
            self.slices = Some(false);
        }
        news
    }

    /// Whether it answers slices, if known.
    pub fn slices(&self) -> Option<bool> {
        self.slices
    }

    /// The last connection to it closed: what it speaks is asked again.
    pub fn reconnected(&mut self) {
        self.slices = None;
    }

    pub fn asked(&mut self, bytes: u64, now: u64) {
        if self.requests == 0 {
            self.busy_since = now;
            self.landed = 0;
        }
        self.requests += 1;
        self.bytes += bytes;
    }

    /// An answer of `got` bytes to a request of `asked` bytes.
    pub fn answered(&mut self, asked: u64, got: u64, now: u64) {
        self.settle(asked);
        self.landed += got;
        let span = now.saturating_sub(self.busy_since).max(1);
        if self.landed >= SAMPLE_BYTES {
            let carries = self.landed.saturating_mul(AIM_MS) / span;
            self.window = carries
                .min(self.window.saturating_mul(2))
                .clamp(MIN_WINDOW, MAX_IN_FLIGHT);
            if span >= PERIOD_MS {
                self.busy_since = now;
                self.landed = 0;
            }
        }
    }

    /// A request of `asked` bytes failed; one that timed out halves the window (the link is
    /// slower than measured, or busier).
    pub fn failed(&mut self, asked: u64, timed_out: bool) {
        self.settle(asked);
        if timed_out {
            self.window = (self.window / 2).max(MIN_WINDOW);
        }
    }

    fn settle(&mut self, asked: u64) {
        self.requests = self.requests.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(asked);
    }
}

/// What a blob request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Part {
    Hashes,
    Chunks {
        first: u32,
        count: u32,
    },
    /// `len` bytes of chunk `chunk` (as stored: encrypted, with its tag) from `offset`: for
    /// a link too slow to carry a whole chunk in the time [`Pace`] gives it (a chunk is
    /// checked once all its slices are in, so they all come from one source).
    Slice {
        chunk: u32,
        offset: u32,
        len: u32,
    },
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

/// A chunk being fetched in slices from `source`.
#[derive(Debug)]
struct Partial<P> {
    source: P,
    data: Vec<u8>,
    /// Bytes in, and the next offset not asked yet.
    got: u32,
    next: u32,
    /// Slices whose requests failed, to ask again: (offset, len).
    again: Vec<(u32, u32)>,
    /// When a slice was last asked or answered (ms).
    touched: u64,
}

impl<P> Partial<P> {
    fn new(source: P, len: usize, now: u64) -> Partial<P> {
        Partial {
            source,
            data: vec![0; len],
            got: 0,
            next: 0,
            again: Vec::new(),
            touched: now,
        }
    }
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
    /// Chunks being fetched in slices, each from one source.
    partial: HashMap<u32, Partial<P>>,
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
            partial: HashMap::new(),
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

    /// The bytes an answer to `part` carries (chunks with their tags, or the hash list).
    pub fn bytes_of(&self, part: Part) -> u64 {
        match part {
            Part::Hashes => self.blob.chunks() as u64 * 32,
            Part::Slice { len, .. } => len as u64,
            Part::Chunks { first, count } => (first..first.saturating_add(count))
                .map(|i| self.blob.cipher_len(i) as u64)
                .sum(),
        }
    }

    /// The next thing to ask `peer`, if anything, that fits `room` (see [`Pace::room`]); it
    /// is counted as in flight.
    pub fn next(&mut self, peer: P, now: u64, room: Room) -> Option<Part> {
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
        if room.slices {
            if let Some(part) = self.next_slice(peer, now, room.left) {
                return Some(part);
            }
        } else {
            // A chunk a stale source was sending in slices is asked of this one whole.
            self.drop_partials(|f, p| p.source != peer && f.stale(p, now));
        }
        let n = self.blob.chunks();
        // The first chunk neither held nor asked, from the cursor on (wrapping once).
        let Some(first) = (0..n)
            .map(|k| (self.cursor + k) % n)
            .find(|&i| !self.have.get(i) && !self.asked.get(i))
        else {
            return self.hedge(peer, now);
        };
        let whole = self.blob.cipher_len(first) as u64;
        if room.left < whole && (room.window >= whole || (!room.slices && flights > 0)) {
            return None; // a whole chunk once answers in flight make room
        }
        // A source without slices gets one whole chunk at a time, however slow its link.
        if room.left < whole && room.slices {
            // A link too slow for a whole chunk in its window: this one comes in slices.
            self.asked.set(first);
            self.cursor = (first + 1) % n;
            self.partial
                .insert(first, Partial::new(peer, whole as usize, now));
            return self.next_slice(peer, now, room.left);
        }
        let most = self
            .per_request()
            .min((room.left / self.blob.chunk as u64).clamp(1, u32::MAX as u64) as u32);
        let mut count = 0;
        while count < most
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

    /// The next slice of a chunk `peer` is sending in slices, of at most `room` bytes (about
    /// half of it, so that two are in flight and the link does not idle between them). A
    /// chunk whose source is bad, or has neither been asked nor answered for [`HEDGE_MS`]
    /// (it went silent, failed or left), starts over with `peer`.
    fn next_slice(&mut self, peer: P, now: u64, room: u64) -> Option<Part> {
        let open = |p: &Partial<P>| !p.again.is_empty() || (p.next as usize) < p.data.len();
        let chunk = self
            .partial
            .iter()
            .filter(|(_, p)| p.source == peer && open(p))
            .map(|(c, _)| *c)
            .min()
            .or_else(|| {
                self.partial
                    .iter()
                    .filter(|(_, p)| p.source != peer && self.stale(p, now))
                    .map(|(c, _)| *c)
                    .min()
            })?;
        let p = self.partial.get_mut(&chunk)?;
        if p.source != peer {
            *p = Partial::new(peer, p.data.len(), now);
        }
        p.touched = now;
        let most = room
            .min((room / 2).max(MIN_WINDOW / 2))
            .clamp(1, u32::MAX as u64) as u32;
        let (offset, len) = match p.again.pop() {
            Some((o, l)) if l > most => {
                p.again.push((o + most, l - most));
                (o, most)
            }
            Some(slice) => slice,
            None => {
                let len = most.min(p.data.len() as u32 - p.next);
                p.next += len;
                (p.next - len, len)
            }
        };
        Some(self.ask(peer, Part::Slice { chunk, offset, len }, now))
    }

    /// Whether a chunk in slices should start over with another source: its source is bad,
    /// or has neither been asked nor answered for [`HEDGE_MS`].
    fn stale(&self, p: &Partial<P>, now: u64) -> bool {
        self.bad.contains(&p.source) || now.saturating_sub(p.touched) >= HEDGE_MS
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
            Part::Slice { .. } => false,
        };
        let part = self
            .asked_at
            .iter()
            .filter(|((p, part), at)| {
                *p != peer
                    && !matches!(part, Part::Slice { .. })
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
                        self.asked.clear(i);
                    }
                }
                self.cursor = self.cursor.min(first);
            }
            // A chunk in slices stays asked until it is whole or given up on.
            Part::Slice { .. } => {}
        }
    }

    /// A chunk fetched in slices is given up (a bad or lacking source): asked afresh later.
    fn drop_partial(&mut self, chunk: u32) {
        self.partial.remove(&chunk);
        if !self.have.get(chunk) {
            self.unhave(chunk);
        }
    }

    /// [`Fetch::drop_partial`] for every chunk in slices that `which` picks.
    fn drop_partials(&mut self, which: impl Fn(&Self, &Partial<P>) -> bool) {
        let picked: Vec<u32> = (self.partial.iter())
            .filter(|(_, p)| which(self, p))
            .map(|(c, _)| *c)
            .collect();
        for chunk in picked {
            self.drop_partial(chunk);
        }
    }

    /// The answer to a slice request (`data` empty: not held there). Returns the chunk once
    /// all its slices are in and it matches its hash, to be written.
    pub fn on_slice(
        &mut self,
        peer: P,
        part: Part,
        data: Vec<u8>,
        now: u64,
    ) -> (Option<(u32, Vec<u8>)>, Option<Fault>) {
        self.land(peer, part);
        let Part::Slice { chunk, offset, len } = part else {
            return (None, Some(Fault::Shape));
        };
        let Some(p) = self.partial.get_mut(&chunk).filter(|p| p.source == peer) else {
            return (None, None); // given up on, or taken over by another source
        };
        if data.is_empty() {
            self.drop_partial(chunk);
            self.lacking.insert(peer, now + LACK_RETRY_MS);
            return (None, None);
        }
        let (at, end) = (offset as usize, offset as usize + len as usize);
        if data.len() != len as usize || end > p.data.len() {
            self.drop_partial(chunk);
            self.bad.insert(peer);
            return (None, Some(Fault::Shape));
        }
        p.data[at..end].copy_from_slice(&data);
        p.got += len;
        p.touched = now;
        if (p.got as usize) < p.data.len() {
            return (None, None);
        }
        let data = std::mem::take(&mut p.data);
        let ok = self
            .hashes
            .as_ref()
            .is_some_and(|h| chunk_hash(&data) == h[chunk as usize]);
        if !ok {
            self.drop_partial(chunk);
            self.bad.insert(peer);
            return (None, Some(Fault::BadChunk(chunk)));
        }
        self.partial.remove(&chunk);
        self.have.set(chunk);
        self.received += data.len() as u64;
        (Some((chunk, data)), None)
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
        if let Part::Slice { chunk, .. } = part {
            if self.partial.get(&chunk).is_some_and(|p| p.source == peer) {
                self.drop_partial(chunk);
            }
        }
    }

    /// The request failed (timeout, connection closed, stream reset): ask again, maybe
    /// elsewhere (a slice: of the same source, or the whole chunk of another once the source
    /// has been silent for [`HEDGE_MS`]).
    pub fn on_failed(&mut self, peer: P, part: Part) {
        self.land(peer, part);
        if let Part::Slice { chunk, offset, len } = part {
            if let Some(p) = self.partial.get_mut(&chunk).filter(|p| p.source == peer) {
                p.again.push((offset, len));
            }
        }
    }

    /// `peer` failed a request at once for no known reason: it is asked nothing for
    /// [`FAIL_RETRY_MS`] (see there).
    pub fn rest(&mut self, peer: P, now: u64) {
        let until = self.lacking.entry(peer).or_default();
        *until = (*until).max(now + FAIL_RETRY_MS);
    }

    /// `peer` answered `part` with something else: it is not asked for this blob again.
    pub fn on_wrong(&mut self, peer: P, part: Part) {
        self.land(peer, part);
        self.bad.insert(peer);
        if let Part::Slice { chunk, .. } = part {
            if self.partial.get(&chunk).is_some_and(|p| p.source == peer) {
                self.drop_partial(chunk);
            }
        }
    }

    /// `peer` turned out not to answer slices (see [`Pace::slice_failed`]): the chunks it
    /// was sending in slices are asked afresh, whole, and it need not rest.
    pub fn no_slices(&mut self, peer: P) {
        self.drop_partials(|_, p| p.source == peer);
        self.lacking.remove(&peer);
    }

    /// A chunk that was verified but could not be written: fetch it again.
    pub fn unhave(&mut self, i: u32) {
        self.have.clear(i);
        self.asked.clear(i);
        self.cursor = self.cursor.min(i);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BlobId, MIN_CHUNK};
    use super::*;

    /// Room for anything (the pace is tested on its own).
    const ALL: Room = Room {
        left: u64::MAX,
        window: u64::MAX,
        slices: true,
    };

    /// `left` bytes of a window that cannot hold a whole chunk.
    fn slow(left: u64) -> Room {
        Room {
            left,
            window: MIN_WINDOW,
            slices: true,
        }
    }

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
        assert_eq!(f.next(1, 0, ALL), Some(Part::Hashes));
        assert_eq!(f.next(2, 0, ALL), None, "the list is asked of one peer");
        let mut wrong = hashes.clone();
        wrong[3][0] ^= 1;
        assert_eq!(f.on_hashes(1, wrong), Err(Fault::BadHashes));
        assert!(f.is_bad(&1));
        assert_eq!(f.next(1, 0, ALL), None);
        assert_eq!(f.next(2, 0, ALL), Some(Part::Hashes));
        f.on_hashes(2, hashes.clone()).unwrap();
        f.bad.clear();
        let a = f.next(1, 0, ALL).unwrap();
        let b = f.next(2, 0, ALL).unwrap();
        assert_eq!(a, Part::Chunks { first: 0, count: 4 });
        assert_eq!(b, Part::Chunks { first: 4, count: 4 });
        // Peer 2 lies about chunk 5: the good ones are kept, peer 2 is dropped.
        let mut answer: Vec<Vec<u8>> = chunks[4..8].to_vec();
        answer[1][0] ^= 1;
        let (ok, fault) = f.on_chunks(2, b, answer, 0);
        assert_eq!(fault, Some(Fault::BadChunk(5)));
        assert_eq!(ok.iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 6, 7]);
        assert_eq!(f.next(2, 0, ALL), None);
        let (ok, fault) = f.on_chunks(1, a, chunks[0..4].to_vec(), 0);
        assert!(fault.is_none() && ok.len() == 4);
        // Peer 1 is asked for the rest, chunk 5 included.
        let mut asked = Vec::new();
        while let Some(p) = f.next(1, 0, ALL) {
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
        assert_eq!(f.next(1, 0, ALL), Some(Part::Hashes));
        assert_eq!(f.next(2, HEDGE_MS - 1, ALL), None);
        assert_eq!(
            f.next(2, HEDGE_MS, ALL),
            Some(Part::Hashes),
            "peer 1 is silent"
        );
        assert_eq!(
            f.next(3, HEDGE_MS, ALL),
            None,
            "asked of one more source, not all"
        );
        f.on_hashes(2, hashes).unwrap();
        assert_eq!(f.next(1, HEDGE_MS, ALL), None, "silent: nothing new for it");
        f.on_failed(1, Part::Hashes);
        let t = HEDGE_MS;
        let silent = f.next(1, t, ALL).unwrap();
        let mut theirs = Vec::new();
        while let Some(p) = f.next(2, t, ALL) {
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
        assert_eq!(
            f.next(2, t + HEDGE_MS - 1, ALL),
            None,
            "peer 1 may still answer"
        );
        assert_eq!(f.next(2, t + HEDGE_MS, ALL), Some(silent));
        assert_eq!(f.next(3, t + HEDGE_MS, ALL), None);
        let (ok, fault) = f.on_chunks(2, silent, chunks[0..4].to_vec(), t + HEDGE_MS);
        assert!(fault.is_none() && ok.len() == 4);
        assert!(f.done());
        // Peer 1's request times out at last: nothing is asked again.
        f.on_failed(1, silent);
        assert_eq!(f.in_flight(), 0);
        assert_eq!(f.next(2, t + 10 * HEDGE_MS, ALL), None);
    }

    #[test]
    fn a_failed_request_is_asked_again_and_a_lacking_peer_waits() {
        let chunks = data(3);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, Some(hashes), Bitmap::new(3));
        let a = f.next(1, 0, ALL).unwrap();
        assert_eq!(f.next(1, 0, ALL), None, "everything is asked");
        f.on_failed(1, a);
        f.rest(1, 0);
        assert_eq!(f.next(2, 0, ALL), Some(a), "asked again, elsewhere");
        assert_eq!(
            f.next(1, FAIL_RETRY_MS - 1, ALL),
            None,
            "a failing source rests"
        );
        f.on_lacking(2, a, 100);
        assert_eq!(f.next(2, 200, ALL), None);
        assert_eq!(f.next(2, 100 + LACK_RETRY_MS, ALL), Some(a));
        // A partial holder answers what it has.
        let mut part = chunks.clone();
        part[1].clear();
        let (ok, fault) = f.on_chunks(2, a, part, 0);
        assert!(fault.is_none());
        assert_eq!(ok.len(), 2);
        assert_eq!(f.next(3, 0, ALL), Some(Part::Chunks { first: 1, count: 1 }));
    }

    /// A source's window follows its link: [`MIN_WINDOW`] before anything is measured; a
    /// LAN link opens it fully with its first answer; a 64 kbit/s radio keeps it at the
    /// floor (2 s of that link: a ping waits behind no more than that).
    #[test]
    fn a_sources_window_follows_its_link() {
        let mut lan = Pace::default();
        assert_eq!(lan.room(12).map(|r| r.left), Some(MIN_WINDOW));
        lan.asked(MIN_WINDOW / 2, 0);
        lan.asked(MIN_WINDOW / 2, 0);
        assert_eq!(lan.room(12), None, "full before the link is measured");
        // Answers a millisecond apart: the window doubles with each, up to the cap.
        let mut t = 0;
        while lan.window() < MAX_IN_FLIGHT {
            let before = lan.window();
            t += 1;
            lan.answered(MIN_WINDOW / 2, MIN_WINDOW / 2, t);
            lan.asked(MIN_WINDOW / 2, t);
            assert!(lan.window() <= 2 * before);
            assert!(t < 40, "the window opens within a few dozen answers");
        }
        for _ in 0..12 {
            lan.asked(REQUEST_BYTES, t);
        }
        assert_eq!(lan.room(12), None, "full");

        // 64 kbit/s = 8 bytes a millisecond; two slices asked together arrive together,
        // after both took the link's time (answers on two streams interleave).
        let mut radio = Pace::default();
        radio.asked(MIN_WINDOW / 2, 0);
        radio.asked(MIN_WINDOW / 2, 0);
        radio.answered(MIN_WINDOW / 2, MIN_WINDOW / 2, MIN_WINDOW / 8);
        radio.answered(MIN_WINDOW / 2, MIN_WINDOW / 2, MIN_WINDOW / 8 + 5);
        assert_eq!(radio.window(), MIN_WINDOW);
        radio.failed(0, true);
        assert_eq!(radio.window(), MIN_WINDOW, "never below the floor");
        // 10 Mbit/s: 2.5 MB in the window, reached by doubling.
        let mut wifi = Pace::default();
        let mut t = 0;
        for _ in 0..20 {
            let w = wifi.window();
            wifi.asked(w, t);
            t += w / 1250;
            wifi.answered(w, w, t);
        }
        assert!(
            (2_400_000..2_600_000).contains(&wifi.window()),
            "{}",
            wifi.window()
        );
    }

    /// A node from before slices cannot read a slice request and cuts the stream. Its
    /// source is then asked for whole chunks, one at a time however small its window, the
    /// chunk it was sending in slices starts over whole, and a chunk another (silent) source
    /// was slicing is taken over whole too; a pace learns it once and forgets it when the
    /// connection closes.
    #[test]
    fn a_source_that_cannot_read_slices_gets_whole_chunks() {
        let chunks = data(3);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, Some(hashes), Bitmap::new(3));
        let mut old = Pace::default();
        let room = old.room(12).unwrap();
        assert!(room.slices, "unknown: slices are tried");
        let a = f.next(1, 0, room).unwrap();
        assert!(matches!(a, Part::Slice { chunk: 0, .. }), "{a:?}");
        let b = f.next(1, 0, slow(MIN_WINDOW / 2)).unwrap();
        // Peer 2 starts chunk 1 in slices, then goes silent.
        let c = f.next(2, 0, slow(MIN_WINDOW)).unwrap();
        assert!(matches!(c, Part::Slice { chunk: 1, .. }), "{c:?}");
        f.on_failed(1, a);
        assert!(old.slice_failed(), "news the first time");
        assert!(!old.slice_failed(), "not the second");
        f.no_slices(1);
        f.on_failed(1, b);
        let room = old.room(12).unwrap();
        assert!(!room.slices);
        assert_eq!(
            f.next(1, 10, room),
            Some(Part::Chunks { first: 0, count: 1 }),
            "chunk 0 starts over whole, at once"
        );
        assert_eq!(
            f.next(1, 10, room),
            Some(Part::Chunks { first: 2, count: 1 }),
            "the last chunk (26 bytes) fits the window"
        );
        assert_eq!(
            f.next(1, 10, room),
            None,
            "nothing else is free: chunk 1 is still peer 2's"
        );
        let (got, fault) = f.on_chunks(
            1,
            Part::Chunks { first: 0, count: 1 },
            vec![chunks[0].clone()],
            20,
        );
        assert_eq!((got.len(), fault), (1, None));
        let (got, _) = f.on_chunks(
            1,
            Part::Chunks { first: 2, count: 1 },
            vec![chunks[2].clone()],
            30,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(
            f.next(1, HEDGE_MS - 1, room),
            None,
            "peer 2 may still answer"
        );
        let d = f.next(1, HEDGE_MS, room);
        assert_eq!(
            d,
            Some(Part::Chunks { first: 1, count: 1 }),
            "peer 2's chunk, whole"
        );
        let (got, _) = f.on_chunks(1, d.unwrap(), vec![chunks[1].clone()], HEDGE_MS);
        assert_eq!(got.len(), 1);
        assert!(f.done());
        // Peer 2 answers late: its slice is for a chunk no longer being sliced.
        assert_eq!(f.on_slice(2, c, vec![0; 8], HEDGE_MS), (None, None));
        // A source that answered a slice speaks them: a later cut stream is something else.
        let mut new = Pace::default();
        new.slice_answered();
        assert!(!new.slice_failed());
        assert!(new.room(12).unwrap().slices);
        old.reconnected();
        assert!(
            old.room(12).unwrap().slices,
            "asked again after a reconnect"
        );
    }

    /// Over a link too slow for a whole chunk in its window, a chunk comes in slices from one
    /// source, two in flight, and is checked once whole. A source that lies is caught when
    /// the chunk is whole; one that goes silent hands its chunk to another after
    /// [`HEDGE_MS`], which starts it afresh (slices of two sources are never mixed).
    #[test]
    fn a_slow_source_sends_a_chunk_in_slices() {
        let chunks = data(2);
        let (blob, hashes) = blob_of(&chunks);
        let mut f: Fetch<u8> = Fetch::new(blob, Some(hashes), Bitmap::new(2));
        let len = chunks[0].len() as u32;
        let half = (MIN_WINDOW / 2) as u32;
        let roomy = Room {
            left: MIN_WINDOW,
            window: MAX_IN_FLIGHT,
            slices: true,
        };
        assert_eq!(
            f.next(1, 0, roomy),
            None,
            "a window that holds a whole chunk waits for room rather than slicing"
        );
        let a = f.next(1, 0, slow(MIN_WINDOW)).unwrap();
        assert_eq!(
            a,
            Part::Slice {
                chunk: 0,
                offset: 0,
                len: half
            }
        );
        let b = f.next(1, 0, slow(MIN_WINDOW / 2)).unwrap();
        assert_eq!(
            b,
            Part::Slice {
                chunk: 0,
                offset: half,
                len: half
            }
        );
        // Peer 2 is not given chunk 0, which is peer 1's; chunk 1 (26 bytes) fits whole.
        let whole = Part::Chunks { first: 1, count: 1 };
        assert_eq!(f.next(2, 0, slow(MIN_WINDOW)), Some(whole));
        let slice = |p: Part| match p {
            Part::Slice { chunk, offset, len } => {
                chunks[chunk as usize][offset as usize..(offset + len) as usize].to_vec()
            }
            _ => unreachable!(),
        };
        assert_eq!(f.on_slice(1, a, slice(a), 1), (None, None));
        assert_eq!(f.on_slice(1, b, slice(b), 2), (None, None));
        // The rest of chunk 0, slice by slice; a lie in the last one.
        let mut last = None;
        let mut t = 3;
        while let Some(p) = f.next(1, t, slow(MIN_WINDOW / 2)) {
            let Part::Slice { offset, len: n, .. } = p else {
                unreachable!()
            };
            if offset + n == len {
                last = Some(p);
                break;
            }
            assert_eq!(f.on_slice(1, p, slice(p), t), (None, None));
            t += 1;
        }
        let last = last.unwrap();
        let mut wrong = slice(last);
        wrong[0] ^= 1;
        assert_eq!(
            f.on_slice(1, last, wrong, t),
            (None, Some(Fault::BadChunk(0)))
        );
        assert!(f.is_bad(&1));
        // Peer 2 finishes its chunk, goes silent on chunk 0, and peer 3 takes it over.
        let p = f.next(2, t, slow(MIN_WINDOW)).unwrap();
        assert_eq!(
            p,
            Part::Slice {
                chunk: 0,
                offset: 0,
                len: half
            }
        );
        let (got, fault) = f.on_chunks(2, whole, vec![chunks[1].clone()], t);
        assert_eq!((got.len(), fault), (1, None));
        // (Its request stays unanswered: no failure comes for 120 s.)
        assert_eq!(
            f.next(3, t + HEDGE_MS - 1, slow(MIN_WINDOW)),
            None,
            "peer 2 may still answer"
        );
        let mut t = t + HEDGE_MS;
        let mut done = None;
        while let Some(p) = f.next(3, t, slow(2 * len as u64)) {
            let (got, fault) = f.on_slice(3, p, slice(p), t);
            assert_eq!(fault, None);
            done = got.or(done);
            t += 1;
        }
        assert_eq!(done, Some((0, chunks[0].clone())));
        assert!(f.done());
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
        while let Some(p) = f.next(1, 0, ALL) {
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
