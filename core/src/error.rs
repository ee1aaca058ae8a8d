//! The one error type of `majlis-core`.
//!
//! Variants say *what* went wrong, with the facts a front end needs; they do not quote
//! command-line flags or buttons. Each front end writes its own advice from the variant
//! (`majlisd` names its flags, the app its screens); [`Error::hint`] is the advice that
//! holds for every front end.

use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input from a user or a caller: a wrong id, an unknown channel, a missing argument.
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit what it names as it is now: a message already pinned or
    /// deleted, a reaction where a message was meant.
    #[error("{0}")]
    Conflict(String),
    /// The operation is not allowed for this device by the current roster.
    #[error("{0}")]
    Denied(String),
    /// The data directory is not set up for this operation yet.
    #[error("{0}")]
    NotReady(String),
    /// Data on disk is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// The data directory was written by a newer release, whose layout this one cannot
    /// read right. Nothing is damaged: restoring a backup would be the wrong advice.
    #[error("{0}")]
    TooNew(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Another process (a running node, or the app) has the data directory open.
    #[error("{path} is in use by another Majlis process")]
    Busy { path: String },
    /// The disk is (nearly) full: nothing was written. Majlis keeps a margin free so that the
    /// database itself never runs out mid-write, and carries on by itself once there is room.
    #[error("the disk holding {path} is full ({free} bytes free; Majlis keeps {margin} free): nothing was written")]
    DiskFull {
        path: String,
        free: u64,
        margin: u64,
    },
    /// The database refused an operation (a full disk, an I/O error, damage).
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// No device identity has been made in this data directory.
    #[error("no device identity in {dir}")]
    NoIdentity { dir: String },
    /// The device that lived in this data directory was removed from its org and wiped
    /// itself (see `Profile::wipe`); `note` is what it wrote then, `at` when (Unix ms; none
    /// in notes of older releases).
    #[error("{dir}: {note}")]
    Removed {
        dir: String,
        note: String,
        at: Option<u64>,
    },
    /// The data directory already holds a device identity.
    #[error("{dir} already has a device identity")]
    HasIdentity { dir: String },
    /// The device belongs to no organization yet.
    #[error("this device is in no organization yet")]
    NoOrg,
    /// The device already belongs to organization `org`.
    #[error("this device already belongs to org {org}")]
    InOrg { org: String },
    /// The head roster does not list this device.
    #[error("this device is not on the org roster")]
    NotOnRoster,
    /// The data directory is sealed by a passphrase and none was given.
    #[error("{dir} is sealed by a passphrase and none was given")]
    NeedPassphrase { dir: String },
    /// Sealing at rest is required, and neither a passphrase nor an OS keyring is available.
    #[error(
        "{dir} would not be sealed (no passphrase and no OS keyring), and sealing is required"
    )]
    SealingUnavailable { dir: String },
    /// The node could not listen on an address.
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    /// Multicast DNS could not start (no multicast-capable interface, or not permitted).
    #[error("mDNS could not start: {0}")]
    Mdns(String),
    #[error("roster rejected: {0}")]
    Roster(#[from] crate::roster::RosterError),
    #[error("message rejected: {0}")]
    Message(#[from] crate::message::Reject),
    #[error("network: {0}")]
    Net(String),
    /// The node task has stopped (shut down or crashed).
    #[error("the node has stopped")]
    Stopped,
    /// The node stopped because the disk failed under its store.
    #[error("not saved: the node stopped because the disk failed ({0}); every acknowledged message is on disk")]
    DiskFailed(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// What to do next, where it is the same for every front end.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::Busy { .. } => {
                "stop the other process, or let the running node carry out the command"
            }
            Error::Db(_) => "if the disk is full free space and retry; if the database is damaged, restore it from a backup on a relay, or set this device up afresh in a new data directory (its history comes back by catch-up)",
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => "check the path: nothing is there",
                std::io::ErrorKind::PermissionDenied => "check the permissions of the file and of the directories above it (a service runs as its own user)",
                std::io::ErrorKind::IsADirectory => "give a file, not a folder",
                _ => "check that the disk has space and the directory is writable",
            },
            Error::DiskFull { .. } => "free space on that disk; Majlis carries on by itself once there is room (no restart needed), and what peers sent meanwhile comes back by catch-up",
            Error::Corrupt(_) => "on a relay, restore the data directory from a backup; on a member's device, set it up afresh in a new data directory (init, join the org, an admin adds it and removes this one): the history comes back by catch-up from a relay or colleagues",
            Error::TooNew(_) => "upgrade Majlis to the release that wrote it or a later one; nothing was changed",
            Error::NotOnRoster => "give this device's id to an admin, who adds it to the roster",
            Error::NoOrg => "found an organization, or join one with the org id an admin gives you",
            Error::Stopped => "restart the node",
            Error::DiskFailed(_) => "check the disk (dmesg, smartctl), then start the node again",
            _ => return None,
        })
    }
}
