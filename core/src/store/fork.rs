//! A device restored from an older copy of its data directory: what it signed since the
//! restore took seqs its colleagues already hold other messages of its at (the ones the
//! original device signed after the copy was made). Every peer refuses such a fork, so
//! those lines reached nobody. The store's half of the repair (`Runner::heal_fork` is the
//! node's): the refused messages are taken back out of the store, their content kept
//! sealed as [`Redo`]s, so that the colleagues' copies of the device's own log can be
//! stored in their place and the content sent again, under new seqs, once catch-up has
//! brought that log back.
//!
//! Why not keep our branch: the colleagues hold theirs, every one of them, and the original
//! device may have sent more on it than the restored one. Why not sign the refused messages
//! again at once: their new seqs would have to lie past the colleagues' copies, which only
//! catch-up tells.

use super::*;
use crate::files::{BlobRef, FileInfo};

/// Content taken back from a refused message, to be sealed and signed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redo {
    /// A sealed body (text, reply, edit, reaction, ...), opened.
    Sealed(Plain),
    /// A shared file: the same blob, its description sealed again.
    File { blob: BlobRef, info: FileInfo },
    /// A format-1 (plaintext) body: only benchmarks write these.
    Plain(String),
    /// A forwarded file: the same blob, its description and origin sealed again.
    ForwardedFile {
        blob: BlobRef,
        info: FileInfo,
        from: crate::conversation::Forwarded,
    },
}

/// Per channel: the ids of this device's messages taken back (never taken as a fork to
/// repair again: a peer that accepted one holds a branch we gave up), and what waits to be
/// sent again, oldest first, by the id it had.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Refused {
    pub abandoned: Vec<MessageId>,
    pub redo: Vec<Waiting>,
}

/// One message's content waiting to be sent again, with what retention and erasure
/// requests judge a stored message by, so that they reach it as they reach the rest.
#[derive(Debug, Serialize, Deserialize)]
pub struct Waiting {
    /// The id it had.
    pub id: MessageId,
    pub author: DeviceId,
    pub member: String,
    pub sent_at: u64,
    pub redo: Redo,
}

fn refused_name(channel: &str) -> String {
    format!("refused/{channel}")
}

impl Store {
    /// What this device gave up in `channel` and has yet to send again.
    pub fn refused(&self, channel: &str) -> Result<Refused> {
        Ok(self
            .get_private(&refused_name(channel))?
            .and_then(|v| postcard::from_bytes(&v).ok())
            .unwrap_or_default())
    }

    fn set_refused(&self, channel: &str, r: &Refused) -> Result<()> {
        let v = postcard::to_stdvec(r).expect("refused serializes");
        self.set_private(&refused_name(channel), &v)
    }

    /// Take what waits to be sent again in `channel` (the ids stay abandoned). Cleared in
    /// the same flush as the messages that send it again.
    pub fn take_redo(&self, channel: &str) -> Result<Vec<(MessageId, Redo)>> {
        let mut r = self.refused(channel)?;
        let redo = std::mem::take(&mut r.redo);
        if !redo.is_empty() {
            self.set_refused(channel, &r)?;
        }
        Ok(redo.into_iter().map(|w| (w.id, w.redo)).collect())
    }

    /// Drop what waits to be sent again in `channel` that retention or an erasure request
    /// would have removed had it been stored (a legal hold keeps it, as it keeps the rest).
    /// Returns how many were dropped.
    pub(super) fn sweep_refused(
        &self,
        g: &crate::roster::Governance,
        channel: &str,
        now: u64,
    ) -> Result<usize> {
        let mut r = self.refused(channel)?;
        let before = r.redo.len();
        r.redo.retain(|w| {
            let facts = crate::governance::Facts {
                channel,
                author: &w.author,
                member: &w.member,
                sent_at: w.sent_at,
                keys: false,
            };
            crate::governance::fate(g, facts, now) == crate::governance::Fate::Keep
        });
        let gone = before - r.redo.len();
        if gone > 0 {
            self.set_refused(channel, &r)?;
        }
        Ok(gone)
    }

    /// Take `me`'s messages in `channel` from seq `from` on out of the store (record, id,
    /// log entry, what they act on), keep their content to send again, and move the head
    /// back below `from`. This device's next seq there comes after `resume_after` (the
    /// highest of ours a peer showed us) and after every seq taken: none is signed twice.
    /// Returns the ids taken, oldest first, and whether any handed out keys (then peers may
    /// lack a key of ours: see `Profile::regrant`).
    ///
    /// The content is written first: a crash before the removals finds the same fork again
    /// at the next catch-up, and what is kept is merged by id.
    pub fn take_own_from(
        &self,
        channel: &str,
        me: &DeviceId,
        from: u64,
        resume_after: u64,
    ) -> Result<(Vec<MessageId>, bool)> {
        let from = from.max(1);
        let mut taken = Vec::new();
        let mut grants = false;
        let mut refused = self.refused(channel)?;
        let entries = self
            .messages
            .range(log_key(channel, me, from)..=log_key(channel, me, u64::MAX))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let last_seq = entries.last().map_or(0, |(k, _)| seq_of(k));
        for (_, v) in &entries {
            let Ok(id) = <[u8; 32]>::try_from(v.as_ref()).map(MessageId) else {
                continue;
            };
            taken.push(id);
            if refused.abandoned.contains(&id) {
                continue;
            }
            refused.abandoned.push(id);
            let Some(env) = self
                .message_wire(&id)?
                .and_then(|w| Envelope::decode_unverified(&w).ok())
            else {
                continue;
            };
            grants |= env.is_keys();
            if let Some(redo) = self.redo_of(&env) {
                refused.redo.push(Waiting {
                    id,
                    author: env.unsigned.author,
                    member: self.message(&id)?.map(|m| m.sender).unwrap_or_default(),
                    sent_at: env.unsigned.sent_at,
                    redo,
                });
            }
        }
        if taken.is_empty() {
            return Ok((taken, false));
        }
        self.set_refused(channel, &refused)?;
        self.journal_removal(channel, &taken)?;

        for id in &taken {
            self.unfile(channel, id)?;
        }
        for (k, _) in &entries {
            self.messages.remove(skip_key(channel, me, seq_of(k)))?;
            self.messages.remove(k)?;
        }

        // The head, on disk and in memory, back to the last entry below `from`.
        let key = head_key(channel, me);
        let (c, _) = self.head(channel, me)?;
        let below = self
            .messages
            .range(log_key(channel, me, 0)..log_key(channel, me, from))
            .next_back()
            .transpose()?
            .map_or(0, |(k, _)| seq_of(&k));
        {
            let mut h = self.heads.lock().unwrap_or_else(|p| p.into_inner());
            h.known.remove(&key);
            h.tips.remove(&key);
            h.dirty.remove(&key);
        }
        self.messages
            .insert(&key, encode_head(c.min(below), below))?;

        let (reserved, resume) = self.reservation(channel)?;
        let resume = resume.max(resume_after).max(last_seq);
        self.messages.insert(
            reserved_key(channel),
            encode_reservation(reserved.max(resume), resume),
        )?;
        Ok((taken, grants))
    }

    /// Remove one stored message entirely (its record, id lookup, what it acts on, its
    /// place in the outbox); its log entry is the caller's.
    fn unfile(&self, channel: &str, id: &MessageId) -> Result<()> {
        let Some(idx) = self.messages.get(msg_key(id))? else {
            return Ok(());
        };
        if let Some(v) = self.messages.get(&idx)? {
            if let Ok((rec, env)) = self.decode_record(&idx, *id, &v) {
                if let Some(act) = self.render(&env, rec.sender).and_then(|m| m.act) {
                    self.messages
                        .remove(annex_key(channel, &act.target(), id))?;
                    self.messages.remove(act_key(id))?;
                }
            }
            self.messages.remove(&idx)?;
        }
        self.messages.remove(msg_key(id))?;
        self.outbox_remove(id)?;
        Ok(())
    }

    /// The content of one of our messages, to send again; `None` for key grants (keys are
    /// granted again as needed) and bodies that do not open.
    fn redo_of(&self, env: &Envelope) -> Option<Redo> {
        let u = &env.unsigned;
        if u.format == PLAINTEXT_FORMAT {
            return Some(Redo::Plain(String::from_utf8_lossy(&u.body).into_owned()));
        }
        let open = |key: &KeyId, nonce: &[u8; 24], ct: &[u8]| {
            let k = self.key(&u.channel, key).ok().flatten()?;
            e2e::open(&k, &u.channel, &u.author, nonce, ct)
        };
        match env.content()? {
            Content::Keys(_) => None,
            Content::Sealed {
                key,
                nonce,
                ciphertext,
            }
            | Content::Response {
                key,
                nonce,
                ciphertext,
            }
            | Content::ThreadReply {
                key,
                nonce,
                ciphertext,
            } => open(&key, &nonce, &ciphertext).map(Redo::Sealed),
            Content::File {
                blob,
                key,
                nonce,
                ciphertext,
            } => match open(&key, &nonce, &ciphertext)? {
                Plain::File(info) => Some(Redo::File { blob, info }),
                Plain::ForwardFile { file, from } => Some(Redo::ForwardedFile {
                    blob,
                    info: file,
                    from,
                }),
                _ => None,
            },
        }
    }
}

/// Point what `p` acts on at the message sent again in place of a refused one.
pub fn retarget(p: &mut Plain, sent_again: &std::collections::HashMap<MessageId, MessageId>) {
    let target = match p {
        Plain::Reply { to, .. } | Plain::React { to, .. } => to,
        Plain::Edit { of, .. }
        | Plain::Delete { of }
        | Plain::Pin { of, .. }
        | Plain::Save { of, .. }
        | Plain::Remind { of, .. }
        | Plain::ClosePoll { of } => of,
        Plain::Vote { poll, .. } => poll,
        Plain::Seen { thread, .. } => thread,
        Plain::Read { upto } => upto,
        Plain::Forward { from, .. } | Plain::ForwardFile { from, .. } => &mut from.id,
        Plain::Text(_)
        | Plain::File(_)
        | Plain::Topic { .. }
        | Plain::Join { .. }
        | Plain::Pause { .. }
        | Plain::Notify { .. }
        | Plain::Hours { .. }
        | Plain::Star { .. }
        | Plain::Unread { .. }
        | Plain::Poll { .. } => return,
    };
    if let Some(new) = sent_again.get(target) {
        *target = *new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;
    use crate::message::Unsigned;
    use crate::seal::DataKey;

    fn sign(key: &DeviceKey, seq: u64, prev: Option<MessageId>, body: &str) -> Envelope {
        Envelope::sign(
            key,
            Unsigned {
                format: PLAINTEXT_FORMAT,
                author: key.id(),
                channel: "general".into(),
                sent_at: 1_700_000_000_000 + seq,
                seq,
                prev,
                body: body.as_bytes().to_vec(),
            },
        )
    }

    /// Seqs 3 and 4 are what a restored copy signed where peers hold others (up to seq 6):
    /// taken back whole, the head moved back, the content kept once, and no seq signed
    /// again.
    #[test]
    fn a_refused_branch_is_taken_back_whole_and_kept_to_send_again() {
        let dir = tempfile::tempdir().unwrap();
        let dk = DataKey::generate();
        let store = Store::open(dir.path(), dk.clone()).unwrap();
        let key = DeviceKey::generate();
        let me = key.id();
        let mut envs: Vec<Envelope> = Vec::new();
        for (seq, body) in [(1, "one"), (2, "two"), (3, "mine 3"), (4, "mine 4")] {
            let e = sign(&key, seq, envs.last().map(|e| e.id), body);
            store.insert_own(&e, "amina").unwrap();
            envs.push(e);
        }
        let (ids, grants) = store.take_own_from("general", &me, 3, 6).unwrap();
        assert_eq!(ids, [envs[2].id, envs[3].id]);
        assert!(!grants);
        let texts = |s: &Store| -> Vec<String> {
            s.history("general", 10)
                .unwrap()
                .into_iter()
                .map(|m| m.text)
                .collect()
        };
        assert_eq!(texts(&store), ["one", "two"]);
        assert!(!store.has_message(&envs[2].id).unwrap());
        assert_eq!(store.log_entry("general", &me, 3).unwrap(), None);
        assert_eq!(store.head("general", &me).unwrap(), (2, 2));
        assert_eq!(
            store.own_head("general", &me).unwrap(),
            (2, Some(envs[1].id))
        );
        // Found again (a crash before the removals, or another peer): nothing more.
        assert_eq!(store.take_own_from("general", &me, 3, 6).unwrap().0, []);
        // As on disk after a restart.
        drop(store);
        let store = Store::open(dir.path(), dk).unwrap();
        assert_eq!(store.head("general", &me).unwrap(), (2, 2));
        // The next seq lies past every seq of ours seen (6) or taken back.
        assert_eq!(
            store.next_own("general", &me).unwrap(),
            (7, Some(envs[1].id))
        );
        let redo = store.take_redo("general").unwrap();
        assert_eq!(
            redo,
            [
                (envs[2].id, Redo::Plain("mine 3".into())),
                (envs[3].id, Redo::Plain("mine 4".into()))
            ]
        );
        assert!(store.take_redo("general").unwrap().is_empty());
        assert_eq!(
            store.refused("general").unwrap().abandoned,
            [envs[2].id, envs[3].id]
        );
    }

    /// An erasure request that reaches this device's member while content of its waits to
    /// be sent again drops that content, as it removes what is stored; under a legal hold
    /// it stays.
    #[test]
    fn an_erasure_reaches_what_waits_to_be_sent_again() {
        use crate::roster::{Erasure, Governance, Hold};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DataKey::generate()).unwrap();
        let key = DeviceKey::generate();
        let me = key.id();
        let mut prev = None;
        for (seq, body) in [(1, "one"), (2, "mine 2")] {
            let e = sign(&key, seq, prev, body);
            store.insert_own(&e, "amina").unwrap();
            prev = Some(e.id);
        }
        store.take_own_from("general", &me, 2, 3).unwrap();
        let now = 1_800_000_000_000;
        let erased = Governance {
            erasures: vec![Erasure {
                id: 7,
                member: "amina".into(),
                devices: vec![me],
                before: now,
            }],
            ..Default::default()
        };
        let mut held = erased.clone();
        held.holds.push(Hold {
            id: 8,
            members: vec!["amina".into()],
            channels: vec![],
            reason: "litigation".into(),
            placed_at: now,
        });
        // Nothing is dropped under the hold, or with no rule at all.
        store.sweep(&held, now).unwrap();
        store.sweep(&Governance::default(), now).unwrap();
        assert_eq!(store.refused("general").unwrap().redo.len(), 1);
        store.sweep(&erased, now).unwrap();
        assert!(store.take_redo("general").unwrap().is_empty());
    }
}
