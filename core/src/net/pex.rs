//! Peer-exchange records: where a device listens and that it was on the network, signed by
//! that device.
//!
//! Why the device signs and not the neighbour that passes it on: a roster device running a
//! modified client could otherwise claim that a colleague who left is online, or point every
//! node of the org at a host of its choosing (each would dial it). A record is libp2p's
//! signed peer record (RFC 0003, in the standard "interop" envelope of RFC 0002): signed
//! with the device key that is also its libp2p identity, so the format, the domain
//! separation and the verification are libp2p's (`libp2p_core::PeerRecord`), not ours.
//! Its `seq` is the signer's clock in seconds, which is what freshness is judged by.

use libp2p::core::{PeerRecord, SignedEnvelope};
use libp2p::identity::Keypair;
use libp2p::Multiaddr;

use super::{routable, MAX_PEX_ADDRS};
use crate::identity::DeviceId;

/// A record larger than this is refused unread (eight addresses and the envelope need ~400).
pub const MAX_RECORD_BYTES: usize = 1024;

/// How far a record's time may be from ours and still say "on the network now": how long
/// presence lasts ([`crate::node::PRESENCE_TTL`]) plus the clock skew messages are allowed
/// ([`crate::message::MAX_FUTURE_SKEW_MS`]). A record replayed by someone else can make its
/// device look online for at most this long after it signed it, and only to a node that had
/// not already seen that record.
pub const FRESH_SECS: u64 =
    crate::node::PRESENCE_TTL.as_secs() + crate::message::MAX_FUTURE_SKEW_MS / 1000;

/// A verified record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When its device signed it (seconds since the epoch, its clock).
    pub seq: u64,
    /// Where it listens: routable addresses only, at most [`MAX_PEX_ADDRS`].
    pub addrs: Vec<Multiaddr>,
}

/// What a record says of `addrs`: the routable ones, at most [`MAX_PEX_ADDRS`]. One rule for
/// the signer and the reader, so a node can tell whether its held record still says where it
/// listens.
pub fn advertised<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> Vec<Multiaddr> {
    addrs
        .into_iter()
        .filter(|a| routable(a))
        .take(MAX_PEX_ADDRS)
        .cloned()
        .collect()
}

/// This device's record for `addrs` (those [`advertised`]), and its encoding for the wire.
pub fn sign(key: &Keypair, addrs: &[Multiaddr]) -> Option<(Record, Vec<u8>)> {
    let addrs = advertised(addrs);
    let record = PeerRecord::new_interop(key, addrs.clone()).ok()?;
    let seq = record.seq();
    let bytes = record.into_signed_envelope().into_protobuf_encoding();
    Some((Record { seq, addrs }, bytes))
}

/// The exchange entry for `device`'s record (`bytes`: its signed encoding, passed on as
/// it came; `record`: what it says, for the text field older nodes read).
pub fn entry(device: DeviceId, record: &Record, bytes: &[u8]) -> super::PeerAddrs {
    super::PeerAddrs {
        device,
        addrs: record.addrs.iter().map(|a| a.to_string()).collect(),
        record: Some(serde_bytes::ByteBuf::from(bytes.to_vec())),
    }
}

/// The record in `bytes` if `device` signed it; `None` for anything else (malformed, too
/// large, another signer, another record type).
pub fn open(device: &DeviceId, bytes: &[u8]) -> Option<Record> {
    if bytes.len() > MAX_RECORD_BYTES {
        return None;
    }
    let envelope = SignedEnvelope::from_protobuf_encoding(bytes).ok()?;
    let record = PeerRecord::from_signed_envelope_interop(envelope).ok()?;
    if record.peer_id() != device.peer_id() {
        return None;
    }
    Some(Record {
        seq: record.seq(),
        addrs: advertised(record.addresses()),
    })
}

/// Whether a record signed at `seq` says its device is on the network now: it is newer than
/// the newest one held of that device (`held`; a replay of one already seen says nothing) and
/// its time is within [`FRESH_SECS`] of ours (`now`, seconds since the epoch).
pub fn fresh(held: Option<u64>, seq: u64, now: u64) -> bool {
    held.is_none_or(|h| seq > h) && seq.abs_diff(now) <= FRESH_SECS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_record_opens_only_as_its_signers() {
        let key = DeviceKey::generate();
        let other = DeviceKey::generate();
        let addrs = [
            addr("/ip4/10.0.0.7/tcp/4001"),
            addr("/ip4/127.0.0.1/tcp/4001"),
            addr("/ip4/0.0.0.0/tcp/4001"),
        ];
        let (signed, bytes) = sign(&key.libp2p_keypair(), &addrs).unwrap();
        let r = open(&key.id(), &bytes).expect("its own device's record opens");
        assert_eq!(r, signed);
        // Loopback and unspecified are not worth telling another host.
        assert_eq!(r.addrs, vec![addr("/ip4/10.0.0.7/tcp/4001")]);
        assert!(r.seq.abs_diff(crate::now_ms() / 1000) <= 1);
        // Passed off as another device's: refused.
        assert_eq!(open(&other.id(), &bytes), None);
        // Any byte changed: refused (signature, framing or payload).
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert_eq!(open(&key.id(), &b).map(|r| r.addrs), None, "byte {i}");
        }
        assert_eq!(open(&key.id(), &[]), None);
        assert_eq!(open(&key.id(), &vec![0u8; MAX_RECORD_BYTES + 1]), None);
    }

    #[test]
    fn a_record_is_news_only_when_newer_and_recent() {
        let now = 1_800_000_000;
        assert!(fresh(None, now, now));
        assert!(fresh(None, now - 60, now));
        assert!(fresh(Some(now - 5), now, now));
        // A clock somewhat ahead or behind still counts.
        assert!(fresh(None, now + 120, now));
        assert!(fresh(None, now - FRESH_SECS, now));
        // Replayed (already seen, or older than what is held): nothing new.
        assert!(!fresh(Some(now), now, now));
        assert!(!fresh(Some(now), now - 10, now));
        // Signed long ago: its device is not known to be here now.
        assert!(!fresh(None, now - FRESH_SECS - 1, now));
        assert!(!fresh(Some(now - 7200), now - 3600, now));
        assert!(!fresh(None, now + FRESH_SECS + 1, now));
    }
}
