//! The device's own governance actions (exports, sweeps asked for by hand): a hash-chained
//! log, each entry signed by the device key, so an entry changed or taken out of the middle
//! shows (`verified: false` from that entry on). Roster-borne actions (retention, holds,
//! erasures) are in the roster's own signed chain; this log is for what one device does
//! alone. A device that deletes its whole log, or its tail, is not caught by this log: the
//! export's manifest hashes and the org's archive are the other witnesses.

use serde::{Deserialize, Serialize};

use super::*;
use crate::identity::DeviceKey;

const DOMAIN: &[u8] = b"majlis/action/v1\0";
const PREFIX: &str = "action/";

/// One action as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub seq: u64,
    pub at: u64,
    pub device: DeviceId,
    pub member: String,
    /// `export`, ...
    pub action: String,
    pub detail: serde_json::Value,
    /// The previous entry's hash (hex); empty for the first.
    pub prev: String,
}

#[derive(Serialize, Deserialize)]
struct Signed {
    action: Action,
    hash: String,
    signature: Vec<u8>,
}

/// An entry as read back, and whether its hash, signature and link to the one before hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedAction {
    #[serde(flatten)]
    pub action: Action,
    pub hash: String,
    pub verified: bool,
}

fn key_of(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

fn hash_of(a: &Action) -> String {
    blake3::hash(&serde_json::to_vec(a).expect("action serializes"))
        .to_hex()
        .to_string()
}

impl Store {
    /// Append an action, signed by `key`.
    pub fn record_action(
        &self,
        key: &DeviceKey,
        member: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<Action> {
        let last = self.actions()?.pop();
        let a = Action {
            seq: last.as_ref().map_or(1, |l| l.action.seq + 1),
            at: crate::now_ms(),
            device: key.id(),
            member: member.to_string(),
            action: action.to_string(),
            detail,
            prev: last.map(|l| l.hash).unwrap_or_default(),
        };
        let hash = hash_of(&a);
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(hash.as_bytes());
        let s = Signed {
            action: a.clone(),
            hash,
            signature: key.sign(&msg).to_vec(),
        };
        let v = serde_json::to_vec(&s).expect("action serializes");
        self.set_private(&key_of(a.seq), &v)?;
        self.flush()?;
        Ok(a)
    }

    /// Every recorded action, oldest first, each checked.
    pub fn actions(&self) -> Result<Vec<LoggedAction>> {
        let mut out: Vec<LoggedAction> = Vec::new();
        let mut seq = 1;
        while let Some(v) = self.get_private(&key_of(seq))? {
            let Ok(s) = serde_json::from_slice::<Signed>(&v) else {
                break;
            };
            let mut msg = DOMAIN.to_vec();
            msg.extend_from_slice(s.hash.as_bytes());
            let sig: Option<[u8; 64]> = s.signature.as_slice().try_into().ok();
            let chained = out.last().map_or(String::new(), |l| l.hash.clone()) == s.action.prev;
            let intact = out.last().is_none_or(|l| l.verified);
            let verified = intact
                && chained
                && s.action.seq == seq
                && hash_of(&s.action) == s.hash
                && sig.is_some_and(|sig| crate::identity::verify(&s.action.device.0, &msg, &sig));
            out.push(LoggedAction {
                action: s.action,
                hash: s.hash,
                verified,
            });
            seq += 1;
        }
        Ok(out)
    }
}
