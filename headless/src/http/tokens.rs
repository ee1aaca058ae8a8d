//! Per-integration API tokens: `majlisd api token create|list|revoke`.
//!
//! A token is `mjt_<id>_<secret>` (the id names it in lists and logs; the secret is 32 random
//! bytes in base58). Only its BLAKE3 hash is kept, in `api-tokens.json` in the data
//! directory (mode 0600): a copy of the directory does not give anyone a usable token, and
//! the file holds nothing the sealed store would have to protect. A 256-bit random secret
//! needs no slow password hash: there is nothing to guess. The daemon reads the file again
//! whenever it changes, so `create` and `revoke` work while it runs, without a restart.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "api-tokens.json";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read messages, search, channels, the roster and the event stream.
    Read,
    /// Post messages.
    Send,
    /// An incoming webhook: post into its one channel through `POST /v1/hooks/{token}`.
    Hook,
}

impl std::str::FromStr for Scope {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Scope> {
        match s {
            "read" => Ok(Scope::Read),
            "send" => Ok(Scope::Send),
            other => bail!("unknown scope {other:?}: the scopes are read and send (`api hook create` makes webhook tokens)"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Hook => "hook",
        })
    }
}

/// One token as stored (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The one channel an incoming-webhook token posts into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Hex BLAKE3 of the whole token.
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenInfo>,
}

/// A file's modification time and length: when either moves, read it again.
type FileVersion = (SystemTime, u64);

/// The token file of one data directory.
pub struct Tokens {
    path: PathBuf,
    /// What was read, and the file's version then.
    cache: Option<(Option<FileVersion>, Vec<TokenInfo>)>,
}

impl Tokens {
    pub fn new(dir: &Path) -> Tokens {
        Tokens {
            path: dir.join(FILE),
            cache: None,
        }
    }

    pub fn list(&self) -> Result<Vec<TokenInfo>> {
        Ok(self.read()?.tokens)
    }

    /// Create a token named `name` with `scopes`; returns it (shown once, never stored).
    pub fn create(&self, name: &str, scopes: &[Scope]) -> Result<(TokenInfo, String)> {
        if scopes.contains(&Scope::Hook) {
            bail!("webhook tokens come from `majlisd api hook create --name N --channel C`");
        }
        self.create_with(name, scopes, None)
    }

    /// Create an incoming webhook for `channel`: a token that can only post there.
    pub fn create_hook(&self, name: &str, channel: &str) -> Result<(TokenInfo, String)> {
        if channel.is_empty() {
            bail!("give the channel the webhook posts into: --channel NAME");
        }
        self.create_with(name, &[Scope::Hook], Some(channel.to_string()))
    }

    fn create_with(
        &self,
        name: &str,
        scopes: &[Scope],
        channel: Option<String>,
    ) -> Result<(TokenInfo, String)> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            bail!("a token name is 1 to 64 printable characters");
        }
        if scopes.is_empty() {
            bail!("give at least one scope: --scopes read,send");
        }
        let mut file = self.read()?;
        if file.tokens.iter().any(|t| t.name == name) {
            bail!("a token named {name:?} exists; revoke it first or pick another name");
        }
        let mut secret = [0u8; 32];
        let mut id = [0u8; 4];
        getrandom::getrandom(&mut secret).context("no randomness from the OS")?;
        getrandom::getrandom(&mut id).context("no randomness from the OS")?;
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("mjt_{id}_{}", bs58::encode(secret).into_string());
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let info = TokenInfo {
            id,
            name: name.to_string(),
            scopes,
            channel,
            created_at: majlis_core::now_ms(),
            hash: blake3::hash(token.as_bytes()).to_hex().to_string(),
        };
        file.tokens.push(info.clone());
        self.write(&file)?;
        Ok((info, token))
    }

    /// Revoke the token with this name or id; returns it.
    pub fn revoke(&self, name_or_id: &str) -> Result<TokenInfo> {
        let mut file = self.read()?;
        let Some(i) = file
            .tokens
            .iter()
            .position(|t| t.name == name_or_id || t.id == name_or_id)
        else {
            bail!("no token named {name_or_id:?}; `majlisd api token list` shows them");
        };
        let gone = file.tokens.remove(i);
        self.write(&file)?;
        Ok(gone)
    }

    /// The token `presented` belongs to, if it is a live one. Reads the file again when it
    /// changed since the last call.
    pub fn check(&mut self, presented: &str) -> Option<TokenInfo> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok();
        if self.cache.as_ref().is_none_or(|(t, _)| *t != mtime) {
            let tokens = self.read().map(|f| f.tokens).unwrap_or_else(|e| {
                tracing::error!("API tokens unreadable, refusing every token: {e:#}");
                Vec::new()
            });
            self.cache = Some((mtime, tokens));
        }
        let (_, tokens) = self.cache.as_ref()?;
        let id = presented.strip_prefix("mjt_")?.split('_').next()?;
        let hash = blake3::hash(presented.as_bytes());
        tokens
            .iter()
            .find(|t| t.id == id)
            .filter(|t| {
                blake3::Hash::from_hex(&t.hash).is_ok_and(|h| h == hash) // constant-time eq
            })
            .cloned()
    }

    fn read(&self) -> Result<TokenFile> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a token file", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn write(&self, file: &TokenFile) -> Result<()> {
        super::write_private(&self.path, &serde_json::to_vec_pretty(file)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_and_revocation_takes_effect() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tokens::new(dir.path());
        let (info, token) = t.create("ci-bot", &[Scope::Send, Scope::Read]).unwrap();
        assert_eq!(info.scopes, [Scope::Read, Scope::Send]);
        assert!(token.starts_with(&format!("mjt_{}_", info.id)));
        let stored = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(!stored.contains(&token[9..]), "the secret is not stored");
        assert_eq!(t.check(&token).unwrap().name, "ci-bot");
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(t.check(&forged).is_none());
        assert!(t.check("Bearer nonsense").is_none());
        assert!(
            t.create("ci-bot", &[Scope::Read]).is_err(),
            "names are unique"
        );
        assert!(t.create("x", &[]).is_err());
        // The mtime may not move within the file system's resolution: wait a moment.
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.revoke("ci-bot").unwrap();
        assert!(t.check(&token).is_none(), "revoked at once");
        assert!(t.revoke("ci-bot").is_err());
    }
}
