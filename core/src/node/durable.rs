//! Group commit: writes made while a flush is in flight wait for the next flush, and every
//! waiter is acknowledged when its flush completes. A `send` therefore returns only once its
//! message is on disk. Neither side's fsync is on the delivery path: a received message is
//! shown as soon as it is verified and written, before its flush (if the process dies first,
//! catch-up fetches it again from the peers that hold it), and our own message is published
//! before it is written and flushed, under a seq reserved on disk beforehand (see
//! [`Runner::send_composed`], [`Runner::queue_own`] and `Store::next_own`).

use tokio::sync::oneshot;

use super::runner::Runner;
use super::Event;
use crate::error::{Error, Result};
use crate::message::{Envelope, MessageId};
use crate::store::StoredMessage;

/// How long received messages alone wait before their flush.
///
/// Why: they are shown before their flush anyway (see above), so the flush only bounds what
/// a crash makes catch-up fetch again. Flushed one by one, a message arriving every few
/// milliseconds costs its own fsync and a handful of thread wake-ups in sled, which on a
/// small machine shared by several nodes is CPU the next message's delivery waits for
/// (measured: docs/benchmarks.md, session 16). Our own messages never wait for it: a
/// `send` returns when its flush is done, and it takes the received ones along.
pub(super) const RECEIVED_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_millis(25);

/// Whether pending writes are flushed now: at once when any are ours (a `send` waits for
/// it), else once [`RECEIVED_FLUSH_GRACE`] has passed since the first of them waited
/// (`due`, set here).
fn flush_due(
    ours: bool,
    due: &mut Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> bool {
    ours || now >= *due.get_or_insert(now + RECEIVED_FLUSH_GRACE)
}

/// Work waiting for the next flush.
pub(super) enum Pending {
    /// Our own messages: key grants first, then (when a user sent something) the text,
    /// which is the last envelope and whose id the reply carries. `published`: already
    /// published and shown (see [`Runner::queue_own`]); only the reply waits.
    Sent {
        envs: Vec<Envelope>,
        reply: Option<(oneshot::Sender<Result<MessageId>>, Box<StoredMessage>)>,
        published: bool,
    },
    /// A received message, already shown: only its flush is waited for.
    Received,
}

impl Runner {
    /// Queue our just-signed (and stored) messages for the next flush. They are published,
    /// and the user is shown the message, at once when they may be
    /// ([`Runner::publish_now`]); otherwise (a channel's first message, or a burst that
    /// outran its reservation's flush) they wait for the flush that makes their reservation
    /// durable. The reply (a `send`
    /// returning) always waits for the flush: it promises the message is on this disk.
    pub(super) fn queue_own(
        &mut self,
        envs: Vec<Envelope>,
        reply: Option<(oneshot::Sender<Result<MessageId>>, Box<StoredMessage>)>,
    ) {
        let early = self.publish_now(&envs);
        self.queue_published(envs, reply, early);
    }

    /// A `send` whose text's message is signed but not stored yet
    /// (`Profile::compose_unsaved`; the key grants before it are stored). When it may be
    /// published at once it is, and stored right after: the readers do not wait for the
    /// writes (about a tenth of a delivery on a LAN, measured: docs/benchmarks.md). Its seq
    /// is reserved on disk, so a crash in between is the crash after publishing that
    /// reservations already cover. Otherwise it is stored first and waits, as in
    /// [`Runner::queue_own`].
    ///
    /// A full disk is checked before anything leaves, so it refuses the message cleanly. A
    /// write that fails after publishing leaves a seq out that this store does not hold: a
    /// next message would sign it again. The node stops instead (as on a failed flush); the
    /// restart skips the reserved seqs.
    pub(super) fn send_composed(
        &mut self,
        envs: Vec<Envelope>,
        sender: &str,
        reply: oneshot::Sender<Result<MessageId>>,
        shown: Box<StoredMessage>,
    ) {
        let last = envs.last().expect("a send makes a message");
        if let Err(e) = self.store.ensure_space(last.wire.len() as u64 * 4) {
            let _ = reply.send(Err(e));
            return;
        }
        let early = self.publish_now(&envs);
        if let Err(e) = self.store.insert_own(last, sender) {
            let e = match early {
                true => {
                    self.failed = Some(format!("storing a message just published: {e}"));
                    Error::Invalid(format!("message sent, but not saved on this device: {e}"))
                }
                false => e,
            };
            let _ = reply.send(Err(e));
            return;
        }
        self.queue_published(envs, Some((reply, shown)), early);
    }

    /// Publish our just-signed `envs` now if they may be ([`Runner::may_publish_now`]);
    /// returns whether they were.
    fn publish_now(&mut self, envs: &[Envelope]) -> bool {
        let early = self.may_publish_now(envs);
        if early {
            for env in envs {
                self.publish(env, false);
            }
        }
        early
    }

    /// Whether our just-signed `envs` may be published before their flush: every seq they
    /// use was reserved on disk before (`Store::next_own`: a crash can then lose them but
    /// never sign their seqs again), and nothing of ours still waits to be published (peers
    /// get them in send order).
    fn may_publish_now(&self, envs: &[Envelope]) -> bool {
        let waiting = |p: &Pending| {
            matches!(
                p,
                Pending::Sent {
                    published: false,
                    ..
                }
            )
        };
        !self.pending.iter().any(waiting)
            && !self
                .flushing
                .as_ref()
                .is_some_and(|(_, b)| b.iter().any(waiting))
            && envs.iter().all(|e| self.seq_on_disk(e))
    }

    /// Whether `env`'s seq is covered by a reservation a completed flush made durable.
    fn seq_on_disk(&self, env: &Envelope) -> bool {
        self.reserved_on_disk
            .get(&env.unsigned.channel)
            .is_some_and(|r| env.unsigned.seq <= *r)
    }

    /// Our stored messages wait for the next flush, `published` already or not.
    fn queue_published(
        &mut self,
        envs: Vec<Envelope>,
        reply: Option<(oneshot::Sender<Result<MessageId>>, Box<StoredMessage>)>,
        published: bool,
    ) {
        if published {
            if let Some((_, shown)) = &reply {
                self.emit(Event::Message(shown.clone()));
            }
        } else {
            // Published only after its flush: the outbox keeps it should the process stop
            // in between, and the restart publishes it.
            for env in &envs {
                if let Err(e) = self.store.outbox_add(&env.id) {
                    tracing::warn!("outbox: {e}");
                }
            }
        }
        self.pending.push(Pending::Sent {
            envs,
            reply,
            published,
        });
        self.start_flush();
    }

    /// Start a flush of what is pending, unless one is in flight (its completion starts the
    /// next) or only received messages wait and their short grace has not passed.
    pub(super) fn start_flush(&mut self) {
        if self.flushing.is_some() || self.pending.is_empty() {
            return;
        }
        let ours = self
            .pending
            .iter()
            .any(|p| matches!(p, Pending::Sent { .. }));
        if flush_due(ours, &mut self.flush_at, tokio::time::Instant::now()) {
            self.flush_pending();
        }
    }

    /// Start a flush of everything pending now (a node stopping).
    pub(super) fn flush_pending(&mut self) {
        if self.flushing.is_some() || self.pending.is_empty() {
            return;
        }
        self.flush_at = None;
        let store = self.store.clone();
        let batch = std::mem::take(&mut self.pending);
        // What is reserved now for the channels of this batch is on disk once it is flushed.
        self.reserving = batch
            .iter()
            .filter_map(|p| match p {
                Pending::Sent { envs, .. } => Some(envs),
                Pending::Received => None,
            })
            .flatten()
            .map(|e| e.unsigned.channel.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter_map(|c| Some((c.clone(), self.store.reservation(&c).ok()?.0)))
            .collect();
        self.flushes += 1;
        self.flushed_writes += batch.len() as u64;
        let handle = tokio::task::spawn_blocking(move || store.flush());
        self.flushing = Some((handle, batch));
    }

    pub(super) async fn finish_flush(&mut self) {
        if let Some((h, done)) = self.flushing.take() {
            let res = h
                .await
                .unwrap_or_else(|e| Err(Error::Net(format!("flush task: {e}"))));
            self.complete(done, res);
        }
    }

    pub(super) fn complete(&mut self, done: Vec<Pending>, res: Result<()>) {
        if let Err(e) = &res {
            tracing::error!("flush failed: {e}");
            // A full disk is caught before writing (`Store::ensure_space`) and leaves the
            // database working; anything else the database reports is the disk failing.
            if matches!(e, Error::Db(_) | Error::Io { .. }) {
                self.failed = Some(e.to_string());
            }
        }
        if res.is_ok() {
            for (channel, reserved) in std::mem::take(&mut self.reserving) {
                let r = self.reserved_on_disk.entry(channel).or_default();
                *r = (*r).max(reserved);
            }
        }
        for p in done {
            match p {
                Pending::Sent {
                    envs,
                    reply,
                    published,
                } => {
                    if let Err(e) = &res {
                        // Published already, it lives on at the peers (and comes back by
                        // catch-up); the promise that it is on this disk failed all the same.
                        if let Some((reply, _)) = reply {
                            let said = match published {
                                true => format!("message sent, but not saved on this device: {e}"),
                                false => format!("message not saved: {e}"),
                            };
                            let _ = reply.send(Err(Error::Invalid(said)));
                        }
                        continue;
                    }
                    if !published {
                        for env in &envs {
                            self.publish(env, true);
                        }
                    }
                    if let Some((reply, shown)) = reply {
                        let _ = reply.send(Ok(shown.id));
                        if !published {
                            self.emit(Event::Message(shown));
                        }
                    }
                }
                Pending::Received => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn received_writes_wait_for_their_grace_ours_do_not() {
        let t = Instant::now();
        let mut due = None;
        assert!(
            !flush_due(false, &mut due, t),
            "the first received one waits"
        );
        assert_eq!(due, Some(t + RECEIVED_FLUSH_GRACE));
        let later = t + RECEIVED_FLUSH_GRACE / 2;
        assert!(
            !flush_due(false, &mut due, later),
            "more received ones don't move it"
        );
        assert_eq!(due, Some(t + RECEIVED_FLUSH_GRACE));
        assert!(
            flush_due(true, &mut due, later),
            "ours go at once, taking them along"
        );
        assert!(flush_due(false, &mut due, t + RECEIVED_FLUSH_GRACE), "due");
        let mut fresh = None;
        assert!(flush_due(true, &mut fresh, t));
    }
}
