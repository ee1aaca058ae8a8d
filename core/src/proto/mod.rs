//! The protocol core, free of I/O: the decisions a node makes, as functions and state
//! machines that take events, stored state and the time, and return what to do. The swarm
//! task in [`crate::node`] only performs them; the simulator in [`crate::sim`] drives the
//! same code over a thousand nodes with no sockets.
//!
//! - [`intake`]: the one pipeline every received envelope goes through.
//! - [`catchup`]: what to ask a peer, what to answer, whether an answer holds.
//! - [`membership`]: what the roster means for connections, topics and roster exchange.
//! - [`neighbours`]: which roster devices to dial (all of a small org, a few per topic of a
//!   large one).
//! - [`log`]: the storage these need ([`crate::store::Store`] or in memory).

pub mod catchup;
pub mod intake;
pub mod log;
pub mod membership;
pub mod neighbours;

pub use intake::{accept, Origin, Tally, Verdict};
pub use log::{Inserted, Known, Log, MemLog};
