//! Majlis core: everything a Majlis node is, with no user interface.
//!
//! The front door is [`Node`]: start it with a [`Config`], send it commands through its
//! methods and read what happens from its [`Event`] stream. The desktop app and `majlisd`
//! both drive this one type, so they cannot drift apart.
//!
//! The modules are split so that the rules (who may sign a roster, which envelope is valid)
//! are pure functions, testable without a disk or a network:
//!
//! - [`identity`]: device keys (which are also libp2p identities) and the org root key.
//! - [`roster`]: the admin-signed membership document and its acceptance rules.
//! - [`message`]: the signed message envelope and its validation.
//! - [`e2e`]: end-to-end encryption of bodies (sender keys sealed to reader devices).
//! - [`files`]: shared files: encrypted, chunked, verified blobs and multi-source fetch.
//! - [`store`]: sled-backed history, rosters and outbox.
//! - [`search`]: Arabic- and English-aware full-text search over what this node can read.
//! - [`seal`]: the data key that seals the data directory at rest.
//! - [`profile`]: a data directory: the operations that need a disk but no network.
//! - [`discovery`]: mDNS announce and browse.
//! - [`diagnose`]: what a node knows about its reachability, and what looks wrong.
//! - [`net`]: the libp2p behaviour, the roster gate and the roster exchange protocol.
//! - [`sync`]: catch-up over per-author logs (pure planning and checks).
//! - [`proto`]: the protocol core without I/O: intake, catch-up, membership decisions.
//! - [`node`]: the swarm event loop behind the [`Node`] handle.
//! - [`sim`]: a seeded simulator of a whole org over [`proto`], no sockets.

pub mod conversation;
pub mod diagnose;
pub mod discovery;
pub mod e2e;
pub mod error;
pub mod export;
pub mod files;
pub mod fuzz;
pub mod governance;
pub mod identity;
pub mod invite;
pub mod message;
pub mod names;
pub mod net;
pub mod node;
pub mod profile;
pub mod proto;
pub mod roster;
pub mod seal;
pub mod search;
pub mod sim;
pub mod status;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
pub use identity::{DeviceId, DeviceKey, OrgId, OrgKey};
pub use libp2p::Multiaddr;
pub use message::{Envelope, MessageId};
pub use node::{Config, Event, IndexStats, Node, PeerInfo};
pub use profile::Profile;
pub use roster::{Role, Roster, RosterChange};
pub use store::StoredMessage;

static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Milliseconds since the Unix epoch, from the local clock (moved by
/// [`set_clock_offset_ms`]).
pub fn now_ms() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    t.saturating_add_signed(CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// Move this process's clock by `ms`: the injected clock that tests and the simulator use to
/// see what a node does days from now (retention) without sleeping. Every node in the
/// process sees the same clock, as every node on one machine does.
pub fn set_clock_offset_ms(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}
