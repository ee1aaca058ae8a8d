//! Retention and erasure on a running node: sweeps off the event loop, when the roster's
//! governance changes, when the node starts, and every [`SWEEP_EVERY`] (time alone expires
//! messages). See [`crate::governance`] for the rules and `store::sweep` for the disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::runner::Runner;
use super::Event;
use crate::error::Result;
use crate::message::MessageId;

/// How often a node sweeps when nothing else asks it to.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What one sweep removed, as the node reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepReport {
    pub expired: usize,
    pub erased: usize,
    pub files: usize,
    pub scanned: u64,
    pub millis: u64,
}

/// Whether a sweep is running, and whether another was asked for meanwhile (it runs
/// right after, with the roster as it is then).
#[derive(Clone, Default)]
pub(super) struct Sweeping {
    busy: Arc<AtomicBool>,
    again: Arc<AtomicBool>,
}

impl Runner {
    /// Sweep now, off the event loop, under the newest roster. `reply`: say what was
    /// removed (it waits for a running sweep to end).
    pub(super) fn sweep(&mut self, reply: Option<oneshot::Sender<Result<SweepReport>>>) {
        let Sweeping { busy, again } = self.sweeping.clone();
        if reply.is_none() && busy.swap(true, Ordering::AcqRel) {
            again.store(true, Ordering::Release);
            return;
        }
        let roster = self.roster_tx.subscribe();
        let (store, blobs, events) = (self.store.clone(), self.blobs.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            if reply.is_some() {
                while busy.swap(true, Ordering::AcqRel) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let mut res;
            loop {
                let g = roster
                    .borrow()
                    .as_ref()
                    .map(|h| h.roster.governance.clone());
                res = match g {
                    Some(g) => sweep_once(&store, &blobs, &events, &g),
                    None => Ok(SweepReport::default()),
                };
                if !again.swap(false, Ordering::AcqRel) {
                    break;
                }
            }
            busy.store(false, Ordering::Release);
            if let Err(e) = &res {
                tracing::error!("retention sweep: {e}");
            }
            if let Some(r) = reply {
                let _ = r.send(res);
            }
        });
    }
}

fn sweep_once(
    store: &crate::store::Store,
    blobs: &crate::files::blobs::Blobs,
    events: &tokio::sync::broadcast::Sender<Event>,
    g: &crate::roster::Governance,
) -> Result<SweepReport> {
    let t0 = std::time::Instant::now();
    let s = store.sweep(g, crate::now_ms())?;
    for b in &s.files {
        if let Err(e) = blobs.remove(b) {
            tracing::warn!("removing expired file {b}: {e}");
        }
    }
    let ids: Arc<[MessageId]> = s.removed().copied().collect();
    let channels: Arc<[String]> = ids
        .iter()
        .map(|id| s.channel_of.get(id).cloned().unwrap_or_default())
        .collect();
    let report = SweepReport {
        expired: s.expired.len(),
        erased: s.erased.len(),
        files: s.files.len(),
        scanned: s.scanned,
        millis: t0.elapsed().as_millis() as u64,
    };
    if !ids.is_empty() || !s.files.is_empty() {
        tracing::info!(
            "retention: {} messages expired, {} erased, {} files removed ({} looked at, {} ms)",
            report.expired,
            report.erased,
            report.files,
            report.scanned,
            report.millis
        );
        store.flush()?;
        let _ = events.send(Event::Swept {
            ids,
            channels,
            expired: report.expired,
            erased: report.erased,
        });
    }
    Ok(report)
}
