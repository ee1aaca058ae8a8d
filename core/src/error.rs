//! The one error type of `majlis-core`. Every message says what to do next.

use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from a user or a caller: a wrong id, an unknown channel, a missing argument.
    #[error("{0}")]
    Invalid(String),
    /// The operation is not allowed for this device by the current roster.
    #[error("{0}")]
    Denied(String),
    /// The data directory is not set up for this operation yet.
    #[error("{0}")]
    NotReady(String),
    /// Data on disk is damaged.
    #[error("{0}")]
    Corrupt(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}; if the disk is full free space and retry, if it is corrupt restore the data directory from a backup or re-sync from a relay")]
    Db(#[from] sled::Error),
    #[error("roster rejected: {0}")]
    Roster(#[from] crate::roster::RosterError),
    #[error("message rejected: {0}")]
    Message(#[from] crate::message::Reject),
    #[error("network: {0}")]
    Net(String),
    /// The node task has stopped (shut down or crashed); restart the node.
    #[error("the node has stopped; restart it")]
    Stopped,
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
