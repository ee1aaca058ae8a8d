//! The search index's own thread: built from the store when the node starts, fed every
//! message the node shows (and channels whose keys just arrived), asked over a channel. It
//! owns the index, so nothing is shared; indexing never stalls the swarm's event loop.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot, watch};

use super::Event;
use crate::conversation::Act;
use crate::error::{Error, Result};
use crate::identity::DeviceId;
use crate::roster::VerifiedRoster;
use crate::search::{self, Hit, Order, SearchIndex};
use crate::store::Store;

pub(super) enum Job {
    Event(Event),
    Query {
        text: String,
        order: Order,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<Hit>>>,
    },
    /// Its size, for metrics.
    Stats {
        reply: oneshot::Sender<IndexStats>,
    },
}

/// What the search index holds, in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Messages indexed (a message indexed again counts again).
    pub messages: u64,
    /// Bytes of the index's segments.
    pub bytes: u64,
}

/// How long after the first addition since the last commit the index is committed. A
/// query commits first, so this does not delay search results; it only bounds how long
/// added messages sit in tantivy's writer. Each commit closes a segment (and starts a new one with a fresh
/// arena), which at 200 ms cost a receiver more CPU than indexing its messages did.
const COMMIT_EVERY: Duration = Duration::from_secs(2);

/// How long the thread waits, after a message, for the ones right behind it.
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// Start the thread; it ends when the node's event stream does.
pub(super) fn spawn(
    store: Store,
    roster: watch::Receiver<Option<Arc<VerifiedRoster>>>,
    me: DeviceId,
    mut events: broadcast::Receiver<Event>,
) -> std_mpsc::Sender<Job> {
    let (tx, rx) = std_mpsc::channel();
    let fwd = tx.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev @ (Event::Message(_) | Event::KeysReceived { .. } | Event::Swept { .. })) => {
                    if fwd.send(Job::Event(ev)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Missed events: a reindex from the store catches up.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = fwd.send(Job::Event(Event::KeysReceived {
                        channel: String::new(),
                    }));
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let _ = std::thread::Builder::new()
        .name("majlis-search".into())
        .spawn(move || {
            background_priority();
            run(store, roster, me, rx)
        });
    tx
}

/// Indexing is background work: on a busy machine (a catch-up of thousands of messages, a
/// burst, several nodes sharing two cores) it must not take the CPU from verifying, storing
/// and showing messages; it catches up when the machine is idle (a query takes what is
/// queued first, so results stay complete). tantivy's indexing and merge threads, started
/// from this one, inherit the lower priority.
fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
        // Linux takes a thread id for PRIO_PROCESS (threads have their own nice value).
        let res =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        if res != 0 {
            tracing::debug!(
                "search thread keeps normal priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn run(
    store: Store,
    roster: watch::Receiver<Option<Arc<VerifiedRoster>>>,
    me: DeviceId,
    rx: std_mpsc::Receiver<Job>,
) {
    let mut ix = match SearchIndex::new() {
        Ok(ix) => ix,
        Err(e) => {
            tracing::error!("search is off: {e}");
            // Answer every query with the reason.
            while let Ok(job) = rx.recv() {
                match job {
                    Job::Query { reply, .. } => {
                        let _ = reply.send(Err(Error::Invalid(format!("search is off: {e}"))));
                    }
                    Job::Stats { reply } => {
                        let _ = reply.send(IndexStats::default());
                    }
                    Job::Event(_) => {}
                }
            }
            return;
        }
    };
    let t = Instant::now();
    match search::index_store(&mut ix, &store, "").and_then(|n| ix.commit().map(|_| n)) {
        Ok(n) => tracing::info!(
            "search index built: {n} messages in {:.2} s",
            t.elapsed().as_secs_f64()
        ),
        Err(e) => tracing::error!("building the search index: {e}"),
    }
    // Whether something was added since the last commit, and when it is committed at the
    // latest. An idle node's search thread sleeps until the next job instead of waking on
    // a timer (laptops on battery).
    let mut dirty = false;
    let mut due: Option<Instant> = None;
    loop {
        let next = match due {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx
                .recv()
                .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected),
        };
        let job = match next {
            Ok(job) => job,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = ix.commit() {
                    tracing::error!("search index: {e}");
                }
                (dirty, due) = (false, None);
                continue;
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let event = matches!(job, Job::Event(_));
        handle(job, &mut ix, &store, &roster, &me, &mut dirty);
        if event {
            // Messages arriving close together are indexed together: what comes in the
            // next moment is taken in one go (one wake-up of this thread and one of
            // tantivy's indexing thread, instead of one each per message).
            std::thread::sleep(BATCH_WAIT);
            while let Ok(job) = rx.try_recv() {
                handle(job, &mut ix, &store, &roster, &me, &mut dirty);
            }
            if let Err(e) = ix.send_queued() {
                tracing::error!("search index: {e}");
            }
        }
        due = match dirty {
            true => due.or(Some(Instant::now() + COMMIT_EVERY)),
            false => None,
        };
    }
}

/// Carry out one job.
fn handle(
    job: Job,
    ix: &mut SearchIndex,
    store: &Store,
    roster: &watch::Receiver<Option<Arc<VerifiedRoster>>>,
    me: &DeviceId,
    dirty: &mut bool,
) {
    *dirty |= matches!(
        job,
        Job::Event(Event::Message(_))
            | Job::Event(Event::KeysReceived { .. })
            | Job::Event(Event::Swept { .. })
    );
    let res = match job {
        Job::Event(Event::Message(m)) => match &m.act {
            // An edit or deletion changes what its target shows: index that again.
            Some(Act::Edit { of } | Act::Delete { of }) => match store.message(of) {
                Ok(Some(target)) => ix.add(&target),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            // A message shown for the first time: nothing to replace (deleting an
            // earlier copy at every add took 40 % of live indexing). A rare second copy,
            // from a channel re-read racing the event, is dropped from results.
            _ => ix.add_new(&m),
        },
        Job::Event(Event::Swept { ids, .. }) => ix.remove(&ids),
        Job::Event(Event::KeysReceived { channel }) => {
            search::index_store(ix, store, &channel).map(|_| ())
        }
        Job::Event(_) => Ok(()),
        Job::Stats { reply } => {
            let _ = reply.send(IndexStats {
                messages: ix.added(),
                bytes: ix.size_bytes(),
            });
            Ok(())
        }
        Job::Query {
            text,
            order,
            limit,
            reply,
        } => {
            *dirty = false;
            let answer = ix.commit().and_then(|_| {
                let head = roster.borrow().clone();
                search::query(ix, store, &text, head.as_deref(), me, order, limit)
            });
            let _ = reply.send(answer);
            Ok(())
        }
    };
    if let Err(e) = res {
        tracing::error!("search index: {e}");
    }
}
