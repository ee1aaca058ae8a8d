//! Shared files in the event loop: noting blobs that accepted messages name, fetching the
//! wanted ones from every peer that may hold them (planned by [`crate::files::fetch`]),
//! serving blobs to devices that may read their channel, and making progress durable.

use std::collections::HashMap;

use libp2p::{request_response, PeerId};

use super::runner::Runner;
use super::Event;
use crate::e2e::Content;
use crate::files::blobs::{Bitmap, BlobMeta};
use crate::files::fetch::{Fetch, Pace, Part, REQUEST_BYTES};
use crate::files::{BlobId, BlobRef};
use crate::identity::DeviceId;
use crate::message::{Envelope, MESSAGE_FORMAT};
use crate::net::{BlobRequest, BlobResponse};

/// Verified progress made durable at least this often (besides every second).
pub const COMMIT_BYTES: u64 = 4 * 1024 * 1024;

/// A file's state, for the app and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStatus {
    pub blob: BlobId,
    pub size: u64,
    pub chunks: u32,
    pub have: u32,
    pub complete: bool,
    pub wanted: bool,
    pub channels: Vec<String>,
    /// Connected peers being asked for it right now.
    pub sources: usize,
    /// A message that shares it (what `get` and `GET /v1/messages/{id}/file` take), and the
    /// file's name in it where this device can open that message.
    #[serde(default)]
    pub message: Option<crate::message::MessageId>,
    #[serde(default)]
    pub name: Option<String>,
}

impl FileStatus {
    /// `m`'s state with `have` chunks held and `sources` peers being asked.
    fn of(m: &BlobMeta, have: u32, sources: usize) -> FileStatus {
        FileStatus {
            blob: m.blob.id,
            size: m.blob.size,
            chunks: m.blob.chunks(),
            have,
            complete: m.complete,
            wanted: m.wanted,
            channels: m.channels.clone(),
            sources,
            message: None,
            name: None,
        }
    }
}

/// The files a data directory holds, as [`super::Node::files`] lists them, for a directory
/// no node has open (`majlisd files` with the node stopped): nothing is being fetched.
pub fn at_rest(
    blobs: &crate::files::blobs::Blobs,
    store: &crate::store::Store,
) -> crate::Result<Vec<FileStatus>> {
    let mut out = Vec::new();
    for m in blobs.list()? {
        let have = match m.complete {
            true => m.blob.chunks(),
            false => blobs.have(&m).map(|h| h.count()).unwrap_or(0),
        };
        let mut f = FileStatus::of(&m, have, 0);
        name(&mut f, blobs, store);
        out.push(f);
    }
    Ok(out)
}

/// The file message `id` shares, if this device can open it and the org (`roster`) allows
/// its type to be opened: what the node and `majlisd get` with the node stopped both check.
pub fn openable(
    store: &crate::store::Store,
    roster: Option<&crate::roster::VerifiedRoster>,
    id: &crate::message::MessageId,
) -> crate::Result<(BlobRef, crate::files::FileInfo)> {
    let (blob, info, _) = store.file_of(id)?.ok_or_else(|| {
        crate::Error::Invalid(format!("message {id} is not a file this device can open"))
    })?;
    if let Some(r) = roster {
        if !r.roster.files.allows_type(&info.mime) {
            return Err(crate::Error::Denied(format!(
                "the org does not allow {} files (allowed: {})",
                info.mime,
                r.roster.files.types.join(", ")
            )));
        }
    }
    Ok((blob, info))
}

/// Fill in `f.message` and `f.name`: a message that still shares the file (an erased one no
/// longer does), named where this device can open it (not a relay; not before the channel's
/// key has arrived). A read and a decryption per file: done by the caller of
/// [`super::Node::files`], not on the node's event loop.
pub(super) fn name(
    f: &mut FileStatus,
    blobs: &crate::files::blobs::Blobs,
    store: &crate::store::Store,
) {
    for id in blobs.shared_by(&f.blob).unwrap_or_default() {
        match store.file_of(&id) {
            Ok(Some((_, info, _))) => {
                (f.message, f.name) = (Some(id), Some(info.name.clone()));
                return;
            }
            Ok(None) => {}
            Err(_) => f.message = f.message.or(Some(id)),
        }
    }
}

/// Fetch state the loop keeps beside the plan.
#[derive(Default)]
pub(super) struct Files {
    pub(super) fetches: HashMap<BlobId, (Fetch<PeerId>, Vec<String>)>,
    /// Requests in flight: the blob, the part and the bytes its answer carries.
    pub(super) requests: HashMap<request_response::OutboundRequestId, Asked>,
    /// Chunks counted in the last commit, per blob; blobs whose commit or finish runs.
    pub(super) committed: HashMap<BlobId, u32>,
    pub(super) busy: std::collections::HashSet<BlobId>,
    /// Those commits and finishes, running on blocking threads: waited for at shutdown, so
    /// that one still running cannot record an older bitmap over the last one.
    pub(super) jobs: Vec<tokio::task::JoinHandle<()>>,
    pub(super) served: u64,
    pub(super) received: u64,
    /// Each source's link, over all blobs (see [`Pace`]): a relay catching up on a thousand
    /// file messages must not put six thousand requests on one connection, and a radio link
    /// gets no more than it carries before the requests time out.
    pub(super) pace: HashMap<PeerId, Pace>,
    /// Chunk reads for each peer's requests: running (at most [`SERVE_WINDOW`]) and waiting.
    pub(super) serving: HashMap<PeerId, Serving>,
}

impl Files {
    /// Bytes of answers read for peers and not yet taken by them (see [`Serving`]).
    pub(super) fn untaken_bytes(&self) -> u64 {
        self.serving.values().map(Serving::untaken_bytes).sum()
    }
}

/// Chunk reads run for one peer at a time, at most this many (see [`Serving`]).
pub const SERVE_WINDOW: u32 = 4;
/// Bytes of answers read for one peer and not yet taken by it, at most (see [`Serving`]).
pub const SERVE_BYTES: u64 = 8 * 1024 * 1024;

/// One peer's chunk requests being served. Reads run on blocking threads, not on the event
/// loop (a 1 MiB read is ~0.3 ms from the page cache and far more from a cold disk), and
/// each peer gets at most [`SERVE_WINDOW`] at once: a member flooding chunk requests (its
/// connections carry up to 256 streams each) queues behind its own requests, while
/// messages, other peers' downloads and everything else on the loop go on.
///
/// An answer stays in memory until the peer has read it off its stream. A modified client
/// that asks and never reads would otherwise pin an answer on each of its streams until the
/// request times out: 256 streams × 4 connections × 1 MiB, a gigabyte of our memory. So no
/// read starts while [`SERVE_BYTES`] of its answers are still untaken; what it asked waits
/// in the queue, which holds no data.
#[derive(Default)]
pub(super) struct Serving {
    running: u32,
    /// Bytes the running reads will answer with.
    reading: u64,
    waiting: std::collections::VecDeque<ChunkRead>,
    /// Answers handed to the swarm and not yet written to the peer: their bytes.
    untaken: HashMap<request_response::InboundRequestId, u64>,
}

impl Serving {
    fn untaken_bytes(&self) -> u64 {
        self.untaken.values().sum()
    }

    /// Whether another read may start: what is being read and what is untaken together
    /// stay under [`SERVE_BYTES`] (the first read always may).
    fn may_read(&self) -> bool {
        let held = self.reading + self.untaken_bytes();
        self.running < SERVE_WINDOW && (held == 0 || held < SERVE_BYTES)
    }

    fn idle(&self) -> bool {
        self.running == 0 && self.waiting.is_empty() && self.untaken.is_empty()
    }
}

/// A chunk request checked and waiting for its read: the chunks, and whether each is held.
pub(super) struct ChunkRead {
    request: request_response::InboundRequestId,
    channel: request_response::ResponseChannel<BlobResponse>,
    meta: BlobMeta,
    chunks: Vec<(u32, bool)>,
    slice: Option<(u32, u32)>,
}

impl ChunkRead {
    /// The bytes its answer carries.
    fn bytes(&self) -> u64 {
        if let Some((_, len)) = self.slice {
            return len as u64;
        }
        self.chunks
            .iter()
            .filter(|(_, held)| *held)
            .map(|&(i, _)| self.meta.blob.cipher_len(i) as u64)
            .sum()
    }
}

/// Blob requests in flight to one peer, over all blobs.
pub const PEER_WINDOW: u32 = 12;

/// A blob request in flight.
pub(super) struct Asked {
    blob: BlobId,
    part: Part,
    bytes: u64,
}

/// What a background file task reports back to the loop.
pub(super) enum FileDone {
    Committed(BlobId, crate::Result<()>),
    Finished(BlobId, crate::Result<()>),
    /// A chunk read for `peer` is done: the answer to send.
    Served {
        peer: PeerId,
        /// What the read was counted as while it ran (see [`Serving`]).
        reading: u64,
        /// Whole chunks it completes: a slice counts once it ends its chunk, so that a chunk
        /// sent in slices is one chunk served, not one per slice.
        whole: u64,
        request: request_response::InboundRequestId,
        channel: request_response::ResponseChannel<BlobResponse>,
        response: BlobResponse,
    },
}

/// What [`Runner::serve`] decided: an answer now, or chunks to read first.
enum Answer {
    Now(BlobResponse),
    Read {
        meta: BlobMeta,
        chunks: Vec<(u32, bool)>,
        /// Only these bytes of the one chunk: (offset, len).
        slice: Option<(u32, u32)>,
    },
}

impl Runner {
    fn stores_all(&self) -> bool {
        self.chain
            .head()
            .and_then(|h| h.member_of_device(&self.me))
            .is_some_and(|m| m.role.stores_all())
    }

    /// An accepted (or sent) message: if it shares a file, note the blob and fetch it if it
    /// is small or this node stores everything. Returns the bytes this starts fetching, which
    /// count towards the author's pace: a member sharing big files fills this disk as surely
    /// as one flooding messages (see `Facts::message_from`).
    pub(super) fn on_file_message(&mut self, env: &Envelope) -> u64 {
        let u = &env.unsigned;
        // Postcard's variant tag: `Content::File` is 2. Only such bodies are decoded here.
        if u.format != MESSAGE_FORMAT || u.body.first() != Some(&2) {
            return 0;
        }
        let Some(Content::File { blob, .. }) = env.content() else {
            return 0;
        };
        let meta = match self
            .blobs
            .note(&blob, &u.channel)
            .and_then(|m| self.blobs.note_message(&blob.id, &env.id).map(|()| m))
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("noting file {}: {e}", blob.id);
                return 0;
            }
        };
        if let Some((_, channels)) = self.files.fetches.get_mut(&blob.id) {
            if !channels.contains(&u.channel) {
                channels.push(u.channel.clone());
            }
        }
        let policy = self.file_policy();
        if !policy.allows_size(blob.size) {
            return 0;
        }
        if !meta.complete
            && (meta.wanted || self.stores_all() || blob.size <= policy.auto_fetch_bytes)
        {
            if let Err(e) = self.want(&blob.id) {
                tracing::error!("fetching file {}: {e}", blob.id);
                return 0;
            }
            // Wanted already: another share of a blob being fetched adds nothing.
            return if meta.wanted { 0 } else { blob.size };
        }
        0
    }

    fn file_policy(&self) -> crate::roster::FilePolicy {
        self.chain
            .head()
            .map(|h| h.roster.files.clone())
            .unwrap_or_default()
    }

    /// Fetch `id` (known from a message) until it is complete, also after restarts.
    pub(super) fn want(&mut self, id: &BlobId) -> crate::Result<FileStatus> {
        if let Some(m) = self.blobs.meta(id)? {
            if let Some(why) = self.file_policy().refuse(m.blob.size, "") {
                return Err(crate::Error::Denied(why));
            }
        }
        let meta = self.blobs.set_wanted(id, true)?.ok_or_else(|| {
            crate::Error::Invalid(format!(
                "no message here shares file {id}; wait for catch-up or check the id"
            ))
        })?;
        if !meta.complete && !self.files.fetches.contains_key(id) {
            let hashes = self.blobs.hashes(&meta.blob)?;
            let have = self.blobs.have(&meta)?;
            self.files.committed.insert(*id, have.count());
            let fetch = Fetch::new(meta.blob, hashes, have);
            self.files
                .fetches
                .insert(*id, (fetch, meta.channels.clone()));
            self.pump(id);
        }
        Ok(self.file_status(&meta))
    }

    /// Resume every wanted, incomplete blob (at start).
    pub(super) fn resume_files(&mut self) {
        match self.blobs.list() {
            Ok(list) => {
                for m in list.into_iter().filter(|m| m.wanted && !m.complete) {
                    let _ = self.want(&m.blob.id);
                }
            }
            Err(e) => tracing::error!("reading the file index: {e}"),
        }
    }

    pub(super) fn file_status(&self, m: &BlobMeta) -> FileStatus {
        let (have, sources) = match self.files.fetches.get(&m.blob.id) {
            Some((f, channels)) => (f.have.count(), self.sources(channels).len()),
            None if m.complete => (m.blob.chunks(), 0),
            None => (self.blobs.have(m).map(|h| h.count()).unwrap_or(0), 0),
        };
        FileStatus::of(m, have, sources)
    }

    pub(super) fn file_statuses(&self) -> crate::Result<Vec<FileStatus>> {
        Ok(self
            .blobs
            .list()?
            .iter()
            .map(|m| self.file_status(m))
            .collect())
    }

    /// Connected roster devices that may read one of `channels`: who may hold the blob.
    fn sources(&self, channels: &[String]) -> Vec<PeerId> {
        let Some(head) = self.chain.head() else {
            return Vec::new();
        };
        let mut out: Vec<PeerId> = self
            .connections
            .keys()
            .filter(|p| {
                DeviceId::from_peer_id(p)
                    .and_then(|d| head.member_of_device(&d))
                    .is_some_and(|m| channels.iter().any(|c| head.roster.may_read(m, c)))
            })
            .copied()
            .collect();
        out.sort();
        out
    }

    /// Ask every source for what it can give next.
    pub(super) fn pump(&mut self, id: &BlobId) {
        let Some((_, channels)) = self.files.fetches.get(id) else {
            return;
        };
        let channels = channels.clone();
        let sources = self.sources(&channels);
        let now = crate::now_ms();
        let head = self.chain.head().cloned();
        for peer in sources {
            // Ask under a channel the peer may read (all sources read at least one).
            let Some(channel) = head.as_ref().and_then(|h| {
                let m = h.member_of_device(&DeviceId::from_peer_id(&peer)?)?;
                channels.iter().find(|c| h.roster.may_read(m, c)).cloned()
            }) else {
                continue;
            };
            loop {
                let pace = self.files.pace.entry(peer).or_default();
                let Some(room) = pace.room(PEER_WINDOW) else {
                    break;
                };
                let Some((fetch, _)) = self.files.fetches.get_mut(id) else {
                    return;
                };
                let Some(part) = fetch.next(peer, now, room) else {
                    break;
                };
                let bytes = fetch.bytes_of(part);
                pace.asked(bytes, now);
                let rid = self.swarm.behaviour_mut().blob.send_request(
                    &peer,
                    BlobRequest {
                        channel: channel.clone(),
                        blob: *id,
                        part,
                    },
                );
                let asked = Asked {
                    blob: *id,
                    part,
                    bytes,
                };
                self.files.requests.insert(rid, asked);
            }
        }
    }

    /// Pump every fetch, smallest file first (what users wait for with the file open), until
    /// the per-peer windows are full.
    pub(super) fn pump_all(&mut self) {
        let mut ids: Vec<(u64, BlobId)> = self
            .files
            .fetches
            .iter()
            .filter(|(_, (f, _))| !f.done())
            .map(|(id, (f, _))| (f.blob.size, *id))
            .collect();
        ids.sort();
        for (_, id) in ids {
            self.pump(&id);
        }
    }

    pub(super) fn on_blob_event(&mut self, ev: request_response::Event<BlobRequest, BlobResponse>) {
        use request_response::{Event as E, Message};
        match ev {
            E::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => match self.serve(peer, &request) {
                Answer::Now(resp) => {
                    let _ = self.swarm.behaviour_mut().blob.send_response(channel, resp);
                }
                Answer::Read {
                    meta,
                    chunks,
                    slice,
                } => {
                    let serving = self.files.serving.entry(peer).or_default();
                    serving.waiting.push_back(ChunkRead {
                        request: request_id,
                        channel,
                        meta,
                        chunks,
                        slice,
                    });
                    self.start_reads(peer);
                }
            },
            E::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(a) = self.files.requests.remove(&request_id) {
                    let got = match &response {
                        BlobResponse::Chunks(c) => c.iter().map(|c| c.len() as u64).sum(),
                        BlobResponse::Hashes(h) => h.len() as u64,
                        _ => 0,
                    };
                    let pace = self.files.pace.entry(peer).or_default();
                    pace.answered(a.bytes, got, crate::now_ms());
                    if matches!(
                        (a.part, &response),
                        (Part::Slice { .. }, BlobResponse::Chunks(_))
                    ) {
                        pace.slice_answered();
                    }
                    self.on_blob_response(peer, a.blob, a.part, response);
                    // The window has room again: other blobs may use it.
                    self.pump_all();
                }
            }
            E::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(Asked {
                    blob, part, bytes, ..
                }) = self.files.requests.remove(&request_id)
                {
                    use request_response::OutboundFailure as F;
                    let timed_out = matches!(error, F::Timeout);
                    tracing::debug!("file {blob:?} request {part:?} to {peer} failed: {error}");
                    if let Some((f, _)) = self.files.fetches.get_mut(&blob) {
                        f.on_failed(peer, part);
                    }
                    // Failed at once: asked again at once, a peer that fails everything
                    // would be asked in a loop. Unless the failure is explained.
                    let mut rest = !timed_out;
                    if let Some(p) = self.files.pace.get_mut(&peer) {
                        p.failed(bytes, timed_out);
                        // The answer's stream ended before a byte of it: the old decoder
                        // gave up (a link that fails resets the stream instead).
                        let ended = matches!(&error, F::Io(e)
                            if e.kind() == std::io::ErrorKind::UnexpectedEof);
                        if ended && matches!(part, Part::Slice { .. }) {
                            if p.slice_failed() {
                                tracing::info!(
                                    "{peer} does not answer slices of files (an older \
                                     Majlis): asking it for whole chunks"
                                );
                                for (f, _) in self.files.fetches.values_mut() {
                                    f.no_slices(peer);
                                }
                            }
                            rest = p.slices() != Some(false);
                        }
                    }
                    if rest {
                        if let Some((f, _)) = self.files.fetches.get_mut(&blob) {
                            f.rest(peer, crate::now_ms());
                        }
                    }
                    self.pump_all();
                }
            }
            E::ResponseSent {
                peer, request_id, ..
            }
            | E::InboundFailure {
                peer, request_id, ..
            } => {
                if let Some(s) = self.files.serving.get_mut(&peer) {
                    if s.untaken.remove(&request_id).is_some() {
                        self.start_reads(peer);
                    }
                }
            }
        }
    }

    /// Serve a blob request: only blobs a message in the named channel shares, only to a
    /// device whose member may read that channel (a modified client asking for a file of a
    /// channel it may not read gets `Denied`, whatever it knows of the blob).
    fn serve(&mut self, peer: PeerId, req: &BlobRequest) -> Answer {
        let head = self.chain.head();
        let member = DeviceId::from_peer_id(&peer).and_then(|d| head?.member_of_device(&d));
        let (Some(head), Some(member)) = (head, member) else {
            return Answer::Now(BlobResponse::Denied);
        };
        if !head.roster.may_read(member, &req.channel) {
            self.reject(
                "file_denied",
                format!(
                    "{} asked for a file of '{}', which it may not read",
                    member.name, req.channel
                ),
            );
            return Answer::Now(BlobResponse::Denied);
        }
        let meta = match self.blobs.meta(&req.blob) {
            Ok(Some(m)) if m.channels.contains(&req.channel) => m,
            Ok(Some(_)) => {
                self.reject(
                    "file_denied",
                    format!(
                        "{} asked for a file under '{}', which no message there shares",
                        member.name, req.channel
                    ),
                );
                return Answer::Now(BlobResponse::Denied);
            }
            _ => return Answer::Now(BlobResponse::Lacking),
        };
        if !head.roster.files.allows_size(meta.blob.size) {
            return Answer::Now(BlobResponse::Denied);
        }
        // The chunks asked for (checked against the blob's layout), and the slice of the one.
        let (first, count, slice) = match req.part {
            Part::Hashes => {
                return Answer::Now(match self.blobs.hashes(&meta.blob) {
                    Ok(Some(h)) => BlobResponse::Hashes(serde_bytes::ByteBuf::from(
                        h.iter().flatten().copied().collect::<Vec<u8>>(),
                    )),
                    _ => BlobResponse::Lacking,
                })
            }
            Part::Chunks { first, count } => {
                let per = (REQUEST_BYTES / meta.blob.chunk as u64).max(1) as u32;
                if count == 0 || count > per || first.saturating_add(count) > meta.blob.chunks() {
                    return Answer::Now(BlobResponse::Denied);
                }
                (first, count, None)
            }
            Part::Slice { chunk, offset, len } => {
                let fits = chunk < meta.blob.chunks()
                    && len > 0
                    && u64::from(len) <= REQUEST_BYTES
                    && offset as usize + len as usize <= meta.blob.cipher_len(chunk);
                if !fits {
                    return Answer::Now(BlobResponse::Denied);
                }
                (chunk, 1, Some((offset, len)))
            }
        };
        let live;
        let have: &Bitmap = match self.files.fetches.get(&req.blob) {
            Some((f, _)) => &f.have,
            None => {
                live = self.blobs.have(&meta).unwrap_or_default();
                &live
            }
        };
        let chunks: Vec<(u32, bool)> = (first..first + count).map(|i| (i, have.get(i))).collect();
        if chunks.iter().all(|(_, held)| !held) {
            return Answer::Now(BlobResponse::Lacking);
        }
        Answer::Read {
            meta,
            chunks,
            slice,
        }
    }

    /// Start `peer`'s waiting chunk reads, up to [`SERVE_WINDOW`] at once and while less
    /// than [`SERVE_BYTES`] of its answers are untaken (see [`Serving`]).
    fn start_reads(&mut self, peer: PeerId) {
        let connected = self.swarm.is_connected(&peer);
        let Some(serving) = self.files.serving.get_mut(&peer) else {
            return;
        };
        if !connected {
            // Nobody to answer: what waits is dropped unread (running reads finish alone).
            serving.waiting.clear();
        }
        while serving.may_read() {
            let Some(job) = serving.waiting.pop_front() else {
                break;
            };
            serving.running += 1;
            let reading = job.bytes();
            serving.reading += reading;
            let (blobs, tx) = (self.blobs.clone(), self.file_tx.clone());
            tokio::task::spawn_blocking(move || {
                let chunks = job
                    .chunks
                    .iter()
                    .map(|&(i, held)| {
                        let data = match (held, job.slice) {
                            (true, None) => blobs.read_chunk(&job.meta, i).unwrap_or_default(),
                            (true, Some((offset, len))) => blobs
                                .read_slice(&job.meta, i, offset, len)
                                .unwrap_or_default(),
                            (false, _) => Vec::new(),
                        };
                        serde_bytes::ByteBuf::from(data)
                    })
                    .collect::<Vec<_>>();
                let ends = |i: u32| match job.slice {
                    None => true,
                    Some((offset, len)) => {
                        (offset as usize + len as usize) == job.meta.blob.cipher_len(i)
                    }
                };
                let whole = (job.chunks.iter().zip(&chunks))
                    .filter(|((i, _), data)| !data.is_empty() && ends(*i))
                    .count() as u64;
                let _ = tx.send(FileDone::Served {
                    peer,
                    reading,
                    whole,
                    request: job.request,
                    channel: job.channel,
                    response: BlobResponse::Chunks(chunks),
                });
            });
        }
        if serving.idle() {
            self.files.serving.remove(&peer);
        }
    }

    /// Write verified chunks of `blob`; one that cannot be written is fetched again.
    fn write_chunks(&mut self, blob: BlobRef, chunks: impl IntoIterator<Item = (u32, Vec<u8>)>) {
        for (i, data) in chunks {
            self.files.received += 1;
            if let Err(e) = self.blobs.write_chunk(&blob, i, &data) {
                tracing::error!("writing file {:?}: {e}", blob.id);
                if let Some((f, _)) = self.files.fetches.get_mut(&blob.id) {
                    f.unhave(i);
                }
            }
        }
    }

    fn on_blob_response(&mut self, peer: PeerId, id: BlobId, part: Part, resp: BlobResponse) {
        let now = crate::now_ms();
        let Some((fetch, _)) = self.files.fetches.get_mut(&id) else {
            return;
        };
        let blob = fetch.blob;
        let fault = match (part, resp) {
            (Part::Hashes, BlobResponse::Hashes(bytes)) => {
                let list: Vec<[u8; 32]> = bytes
                    .chunks_exact(32)
                    .map(|c| c.try_into().expect("32 bytes"))
                    .collect();
                match fetch.on_hashes(peer, list) {
                    Ok(()) => {
                        let hashes = fetch.hashes.clone().unwrap_or_default();
                        if let Err(e) = self.blobs.put_hashes(&id, &hashes) {
                            tracing::error!("storing the hash list of {id:?}: {e}");
                        }
                        None
                    }
                    Err(f) => Some(f.to_string()),
                }
            }
            (part @ Part::Chunks { .. }, BlobResponse::Chunks(chunks)) => {
                let (ok, fault) = fetch.on_chunks(
                    peer,
                    part,
                    chunks.into_iter().map(|b| b.into_vec()).collect(),
                    now,
                );
                self.write_chunks(blob, ok);
                fault.map(|f| f.to_string())
            }
            (part @ Part::Slice { .. }, BlobResponse::Chunks(chunks)) => {
                let data = chunks.into_iter().flat_map(|b| b.into_vec()).collect();
                let (ok, fault) = fetch.on_slice(peer, part, data, now);
                self.write_chunks(blob, ok);
                fault.map(|f| f.to_string())
            }
            (part, r @ (BlobResponse::Lacking | BlobResponse::Denied)) => {
                tracing::debug!("file {id:?}: {peer} answered {r:?} for {part:?}");
                fetch.on_lacking(peer, part, now);
                None
            }
            (part, _) => {
                fetch.on_wrong(peer, part);
                Some("an answer of the wrong kind".into())
            }
        };
        if let Some(f) = fault {
            let who = DeviceId::from_peer_id(&peer)
                .map(|d| d.to_string())
                .unwrap_or_else(|| peer.to_string());
            self.reject(
                "bad_chunk",
                format!("device {who} sent file {id}: {f}; it is not asked for this file again"),
            );
        }
        // Asking for more is left to the caller's `pump_all` (the window has room again).
        if self.files.fetches.get(&id).is_some_and(|(f, _)| f.done()) {
            self.finish_blob(blob);
        } else {
            let every = (COMMIT_BYTES / blob.chunk as u64).max(1) as u32;
            self.commit_where(|f, last| f.blob.id == id && f.have.count() >= last + every);
        }
    }

    fn finish_blob(&mut self, blob: BlobRef) {
        if !self.files.busy.insert(blob.id) {
            return;
        }
        let blobs = self.blobs.clone();
        let tx = self.file_tx.clone();
        self.file_job(move || {
            let _ = tx.send(FileDone::Finished(blob.id, blobs.finish(&blob)));
        });
    }

    /// Make fetched chunks durable (every second, and every [`COMMIT_BYTES`] of a fetch):
    /// fsync, then the bitmap. A SIGKILL loses at most that much verified progress.
    pub(super) fn commit_files(&mut self) {
        self.commit_where(|_, _| true);
        self.pump_all();
    }

    fn commit_where(&mut self, pick: impl Fn(&Fetch<PeerId>, u32) -> bool) {
        let mut jobs = Vec::new();
        for (id, (f, _)) in &self.files.fetches {
            let n = f.have.count();
            let last = self.files.committed.get(id).copied().unwrap_or(0);
            if f.done() || self.files.busy.contains(id) || last == n || !pick(f, last) {
                continue;
            }
            jobs.push((f.blob, f.have.clone(), n));
        }
        for (blob, have, n) in jobs {
            self.files.busy.insert(blob.id);
            self.files.committed.insert(blob.id, n);
            let blobs = self.blobs.clone();
            let tx = self.file_tx.clone();
            self.file_job(move || {
                let _ = tx.send(FileDone::Committed(blob.id, blobs.commit(&blob, &have)));
            });
        }
    }

    /// Run a commit or finish on a blocking thread, kept for [`Runner::save_file_progress`].
    fn file_job(&mut self, job: impl FnOnce() + Send + 'static) {
        self.files.jobs.retain(|j| !j.is_finished());
        self.files.jobs.push(tokio::task::spawn_blocking(job));
    }

    /// At shutdown: make what was fetched durable, in this task (the runtime may be going),
    /// once the commits still running are done (one finishing after this would record the
    /// older bitmap it was given: measured, 37 of 68 chunks kept).
    pub(super) async fn save_file_progress(&mut self) {
        for job in std::mem::take(&mut self.files.jobs) {
            let _ = job.await;
        }
        for (f, _) in self.files.fetches.values() {
            if !f.done() {
                if let Err(e) = self.blobs.commit(&f.blob, &f.have) {
                    tracing::error!("saving progress of file {:?}: {e}", f.blob.id);
                }
            }
        }
    }

    pub(super) fn on_file_done(&mut self, done: FileDone) {
        match done {
            FileDone::Served {
                peer,
                reading,
                whole,
                request,
                channel,
                response,
            } => {
                let mut bytes = 0;
                self.files.served += whole;
                if let BlobResponse::Chunks(chunks) = &response {
                    bytes = chunks.iter().map(|c| c.len() as u64).sum();
                }
                // (Err: the peer's stream is gone; nothing is held for it.)
                let sent = self
                    .swarm
                    .behaviour_mut()
                    .blob
                    .send_response(channel, response)
                    .is_ok();
                if let Some(serving) = self.files.serving.get_mut(&peer) {
                    serving.running = serving.running.saturating_sub(1);
                    serving.reading = serving.reading.saturating_sub(reading);
                    if sent {
                        serving.untaken.insert(request, bytes);
                    }
                }
                self.start_reads(peer);
            }
            FileDone::Committed(id, res) => {
                self.files.busy.remove(&id);
                if let Err(e) = res {
                    tracing::error!("saving progress of file {id:?}: {e}");
                    self.files.committed.remove(&id);
                }
                if self.files.fetches.get(&id).is_some_and(|(f, _)| f.done()) {
                    if let Some(blob) = self.files.fetches.get(&id).map(|(f, _)| f.blob) {
                        self.finish_blob(blob);
                    }
                }
            }
            FileDone::Finished(id, res) => {
                self.files.busy.remove(&id);
                match res {
                    Ok(()) => {
                        self.files.fetches.remove(&id);
                        self.files.committed.remove(&id);
                        self.emit(Event::FileReady { blob: id });
                    }
                    Err(e) => {
                        tracing::error!("completing file {id:?}: {e}");
                        self.emit(Event::Rejected {
                            kind: "file_io".into(),
                            reason: format!("file {id} could not be completed: {e}"),
                        });
                    }
                }
            }
        }
    }
}
