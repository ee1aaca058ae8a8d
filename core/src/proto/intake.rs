//! The one intake pipeline: every envelope from the network, by gossip or by catch-up, is
//! accepted or refused here, in this order:
//!
//! 1. **dedupe**: already stored, or the same frame twice in the batch →
//!    [`Verdict::Duplicate`];
//! 2. **signature**: one batch verification for the whole batch;
//! 3. **roster rules** ([`message::check_rules`]): the author's device is on the head roster,
//!    the channel exists, the member may post there, the clock is plausible;
//! 4. **chain rules** ([`check_chain`]): no second message at a held (author, seq), `prev`
//!    names the held predecessor or, for a skip, an earlier held message of its author
//!    ([`sync::chain_ok`]), not more than [`sync::MAX_GAP`] past the held prefix;
//! 5. **store**.
//!
//! "Why was my message rejected?" is answered by the [`Verdict`] and its [`Reject::kind`],
//! which [`Tally`] counts by reason. What a verdict means for the peer that sent it (gossip
//! acceptance, dropping a catch-up peer) is the caller's, by [`Origin`].

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::log::{Inserted, Known, Log};
use crate::governance;
use crate::message::{self, Envelope, Reject};
use crate::roster::VerifiedRoster;
use crate::sync::{self, Link};

/// How a batch reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Forwarded by gossip: each envelope stands alone.
    Gossip,
    /// A catch-up answer: one unit, already checked against the request
    /// ([`super::catchup::check`]). One forged signature and nothing of it is
    /// stored.
    Sync,
}

/// What became of one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored. `sender`: the author's member name. `gap`: a predecessor is still missing
    /// (ask the sender's peer at once rather than at the next round).
    Accepted {
        sender: String,
        gap: bool,
        /// The message as the user sees it (none: nothing to show, such as a key grant).
        shown: Option<Box<crate::store::StoredMessage>>,
    },
    /// Already held.
    Duplicate,
    Rejected(Reject),
    /// The disk refused it: neither kept nor forwarded; catch-up retries it later.
    NotStored(String),
}

impl Verdict {
    /// Whether the refusal is worth a warning and an [`crate::Event::Rejected`]: input no
    /// honest peer sends. An author the roster no longer admits is normal in a catch-up
    /// answer from a peer whose roster is behind, and a message past a gap is not the
    /// forwarder's fault; those are only counted.
    pub fn is_loud(&self, origin: Origin) -> bool {
        match self {
            Verdict::Rejected(Reject::Gap { .. } | Reject::Expired(_) | Reject::Erased(_)) => false,
            // Counted and reported, but a forwarder that lacked the neighbour could not tell.
            Verdict::Rejected(Reject::Backdated { .. }) => true,
            Verdict::Rejected(Reject::Chain(_) | Reject::BadSignature) => true,
            Verdict::Rejected(_) => origin == Origin::Gossip,
            _ => false,
        }
    }
}

/// What intake decided, counted by reason: the one place reject accounting happens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub accepted: u64,
    pub duplicates: u64,
    /// Accepted from catch-up answers (included in `accepted`).
    pub synced: u64,
    /// Refusals by [`Reject::kind`], and other refused input by its own label
    /// (`"sync"`, `"roster"`, `"subscription"`).
    pub rejected: HashMap<String, u64>,
}

impl Tally {
    pub fn record(&mut self, verdict: &Verdict, origin: Origin) {
        match verdict {
            Verdict::Accepted { .. } => {
                self.accepted += 1;
                if origin == Origin::Sync {
                    self.synced += 1;
                }
            }
            Verdict::Duplicate => self.duplicates += 1,
            Verdict::Rejected(r) => self.count(r.kind()),
            Verdict::NotStored(_) => self.count("storage"),
        }
    }

    pub fn count(&mut self, kind: &str) {
        *self.rejected.entry(kind.to_string()).or_default() += 1;
    }
}

/// Run `batch` through the pipeline against the head roster `head` and the clock `now_ms`.
/// Returns one verdict per envelope, in order. Envelopes are stored in order, so a batch
/// may carry an author's consecutive messages.
pub fn accept<L: Log>(
    log: &mut L,
    head: Option<&VerifiedRoster>,
    batch: &[Envelope],
    origin: Origin,
    now_ms: u64,
) -> Vec<Verdict> {
    let dup = duplicates(log, batch);
    let sig_ok = signatures(batch, &dup);
    decide(log, head, batch, &dup, &sig_ok, origin, now_ms)
}

/// Step 1, per envelope: already stored, or an exact copy of an earlier frame of the batch.
/// Only exact copies: a frame with a valid message's id and a broken signature must not
/// shadow the valid one.
///
/// A message's id fixes its (channel, author, seq), and nothing is held above an author's
/// highest seq (the head in memory is exact): a message past it is not held, with no read.
/// That is every message of a catch-up answer and of in-order gossip. Only a head already
/// in memory counts: these frames are not verified yet, and a peer could name a new author
/// in each to fill memory with heads.
pub fn duplicates<L: Log>(log: &L, batch: &[Envelope]) -> Vec<bool> {
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(batch.len());
    batch
        .iter()
        .map(|env| {
            if !seen.insert(&env.wire) {
                return true;
            }
            let u = &env.unsigned;
            let past_head = log
                .known_top(&u.channel, &u.author)
                .is_some_and(|top| u.seq > top);
            !past_head && log.has(&env.id).unwrap_or(false)
        })
        .collect()
}

/// Step 2, per envelope: whether its signature holds, checked as one batch over those that
/// are not duplicates (a duplicate reads `true`, unchecked). Touches nothing but the
/// envelopes, so a node may run it on another thread while its event loop goes on.
pub fn signatures(batch: &[Envelope], dup: &[bool]) -> Vec<bool> {
    let fresh: Vec<&Envelope> = batch
        .iter()
        .zip(dup)
        .filter(|(_, d)| !**d)
        .map(|(e, _)| e)
        .collect();
    let mut checked = message::verify_batch_of(fresh.into_iter()).into_iter();
    dup.iter()
        .map(|d| *d || checked.next().unwrap_or(false))
        .collect()
}

/// Steps 3 to 5, given steps 1 and 2 ([`duplicates`], [`signatures`]).
pub fn decide<L: Log>(
    log: &mut L,
    head: Option<&VerifiedRoster>,
    batch: &[Envelope],
    dup: &[bool],
    sig_ok: &[bool],
    origin: Origin,
    now_ms: u64,
) -> Vec<Verdict> {
    let forged = origin == Origin::Sync && sig_ok.contains(&false);
    batch
        .iter()
        .zip(dup.iter().zip(sig_ok))
        .map(|(env, (&dup, &ok))| match (dup, ok && !forged) {
            (true, _) => Verdict::Duplicate,
            (false, true) => admit(log, head, env, now_ms),
            (false, false) => Verdict::Rejected(Reject::BadSignature),
        })
        .collect()
}

/// Steps 3 to 5 for one envelope whose signature holds.
fn admit<L: Log>(
    log: &mut L,
    head: Option<&VerifiedRoster>,
    env: &Envelope,
    now_ms: u64,
) -> Verdict {
    let rules = match head {
        Some(head) => message::check_rules(env, head, now_ms).map(str::to_string),
        None => Err(Reject::UnknownDevice(env.unsigned.author)),
    };
    let rules = rules.and_then(|s| {
        let g = &head.expect("rules passed").roster.governance;
        let facts = governance::Facts {
            channel: &env.unsigned.channel,
            author: &env.unsigned.author,
            member: &s,
            sent_at: env.unsigned.sent_at,
            keys: env.is_keys(),
        };
        match governance::fate(g, facts, now_ms) {
            governance::Fate::Keep => Ok(s),
            governance::Fate::Expired => Err(Reject::Expired(env.unsigned.channel.clone())),
            governance::Fate::Erased => Err(Reject::Erased(
                g.erasures
                    .iter()
                    .find(|e| e.devices.contains(&env.unsigned.author))
                    .map_or(0, |e| e.id),
            )),
        }
    });
    // Where retention or an erasure swept an author's early messages, a device that never
    // held them starts that author's log past a gap of any size.
    let lenient = head.is_some_and(|h| {
        governance::gaps_allowed(
            &h.roster.governance,
            &env.unsigned.channel,
            &env.unsigned.author,
        )
    });
    let (sender, known) = match rules.and_then(|s| Ok((s, check_chain(log, env, lenient)?))) {
        Ok(x) => x,
        Err(r) => return Verdict::Rejected(r),
    };
    let held = known.head.0;
    match log.insert(env, &sender, &known) {
        Ok(Inserted::New(shown)) => Verdict::Accepted {
            sender,
            shown,
            // A skip moves the prefix past its hole: no gap then.
            gap: held + 1 < env.unsigned.seq
                && log
                    .head(&env.unsigned.channel, &env.unsigned.author)
                    .map_or(true, |h| h.0 < env.unsigned.seq),
        },
        Ok(Inserted::Held) => Verdict::Duplicate,
        Err(e) => Verdict::NotStored(e.to_string()),
    }
}

/// Per-author chain rules against what is stored: no second message at a held
/// (author, seq), `prev` matches a held predecessor, and not too far past the held prefix.
/// Returns what it read of the author's log (its head before this message, the
/// predecessor held), for [`Log::insert`].
/// Called after the batch's dedupe check ([`duplicates`]), which `Known::fresh` relies on.
pub fn check_chain<L: Log>(log: &L, env: &Envelope, lenient: bool) -> Result<Known, Reject> {
    let u = &env.unsigned;
    let head = log.head(&u.channel, &u.author);
    let (held, top) = *head.as_ref().unwrap_or(&(0, 0));
    // Nothing is held above the author's highest seq: a message past it cannot be a second
    // one at its seq (the common case, in order, reads nothing here).
    let fresh = head.is_ok() && u.seq > top;
    if !fresh {
        if let Ok(Some(other)) = log.entry(&u.channel, &u.author, u.seq) {
            if other != env.id {
                return Err(Reject::Chain(format!(
                    "{} signed two different messages with seq {} in '{}'",
                    u.author, u.seq, u.channel
                )));
            }
        }
    }
    if u.seq > held.saturating_add(sync::MAX_GAP) && !lenient {
        return Err(Reject::Gap { seq: u.seq, held });
    }
    let (pred, before) = match u.seq {
        0 | 1 => (None, None),
        s => match log.entry_sent(&u.channel, &u.author, s - 1).ok().flatten() {
            Some((id, at)) => (Some(id), at),
            None => (None, None),
        },
    };
    let earlier = |p: &message::MessageId| {
        log.earlier(&u.channel, &u.author, p, u.seq - 1)
            .ok()
            .flatten()
    };
    if !sync::chain_ok(&Link::of(env), pred, earlier) {
        return Err(Reject::Chain(format!(
            "seq {} of {} does not follow its predecessor",
            u.seq, u.author
        )));
    }
    // An author's clock runs forward within a channel (honest senders never date a message
    // before their previous one: `Profile` clamps), so a message cannot be slipped into the
    // past of a conversation. Checked against whichever neighbour is held.
    let skew = crate::message::MAX_FUTURE_SKEW_MS;
    if let Some(t) = before.filter(|t| u.sent_at.saturating_add(skew) < *t) {
        return Err(Reject::Backdated {
            sent_at: u.sent_at,
            neighbour: t,
        });
    }
    // Nothing is held above the head's highest seq: a message arriving in order has no
    // later neighbour to read.
    let next = (u.seq < top)
        .then(|| log.entry(&u.channel, &u.author, u.seq + 1).ok().flatten())
        .flatten()
        .and_then(|n| log.sent_at(&n).ok().flatten());
    if let Some(t) = next.filter(|t| t.saturating_add(skew) < u.sent_at) {
        return Err(Reject::Backdated {
            sent_at: u.sent_at,
            neighbour: t,
        });
    }
    Ok(Known {
        head: (held, top),
        pred,
        fresh,
    })
}
