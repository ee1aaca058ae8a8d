//! Group commit: writes made while a flush is in flight wait for the next flush, and every
//! waiter is acknowledged when its flush completes. A `send` therefore returns only once its
//! message is on disk. A received message is shown as soon as it is verified and written,
//! before its flush: if the process dies before the flush, catch-up fetches it again from
//! the peers that hold it, and its fsync stays off the delivery path.

use tokio::sync::oneshot;

use super::runner::Runner;
use super::Event;
use crate::error::{Error, Result};
use crate::message::{Envelope, MessageId};
use crate::store::StoredMessage;

/// Work waiting for the next flush.
pub(super) enum Pending {
    /// Our own messages: key grants first, then (when a user sent something) the text,
    /// which is the last envelope and whose id the reply carries.
    Sent {
        envs: Vec<Envelope>,
        reply: Option<(oneshot::Sender<Result<MessageId>>, Box<StoredMessage>)>,
    },
    /// A received message, already shown: only its flush is waited for.
    Received,
}

impl Runner {
    pub(super) fn start_flush(&mut self) {
        if self.flushing.is_some() || self.pending.is_empty() {
            return;
        }
        let store = self.store.clone();
        let batch = std::mem::take(&mut self.pending);
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
        for p in done {
            match p {
                Pending::Sent { envs, reply } => {
                    if let Err(e) = &res {
                        if let Some((reply, _)) = reply {
                            let _ =
                                reply.send(Err(Error::Invalid(format!("message not saved: {e}"))));
                        }
                        continue;
                    }
                    for env in &envs {
                        self.publish(env);
                    }
                    if let Some((reply, shown)) = reply {
                        let _ = reply.send(Ok(shown.id));
                        self.emit(Event::Message(shown));
                    }
                }
                Pending::Received => {}
            }
        }
    }
}
