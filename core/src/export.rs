//! Exports: a person's data (GDPR art. 15 and 20) or a compliance export, written as JSON,
//! CSV or one EML file per message, with the files those messages share, the roster
//! history of the period, and a `manifest.json` that counts what was written and gives the
//! BLAKE3 hash of every file, so a recipient can show that nothing was changed since.
//!
//! An export holds what this device can read. Edits, deletions and reactions are exported
//! as records of their own (the conversation's full history, not only how it shows now).
//! The JSON layout is described by `docs/export.schema.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::conversation::{Act, Notify};
use crate::error::{Error, Result};
use crate::files::blobs::Blobs;
use crate::roster::{AuditEntry, Roster};
use crate::store::{Store, StoredMessage};

/// The layout version of an export (`manifest.json` and the records). 2: records say the
/// channel's shown name (`channel_name`) beside its wire name. 3: and the author's full
/// name (`sender_name`) beside their roster name. 4: and where a forwarded message came
/// from (`forwarded`), as checked by the exporting device. 5: polls (`poll`: the options
/// offered) and votes (`choices`: which of them).
pub const EXPORT_FORMAT: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything a member wrote.
    Member(String),
    /// Everything in one channel (or DM, `@a,b`).
    Channel(String),
    /// Everything this device holds.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Eml,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "eml" => Ok(Format::Eml),
            _ => Err(Error::Invalid(format!(
                "unknown export format '{s}'; use json, csv or eml"
            ))),
        }
    }
}

/// What to export, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub scope: Scope,
    /// Messages sent at or after this time (ms), before `to`.
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub format: Format,
    pub out: PathBuf,
}

/// One message as exported (JSON object, CSV row, EML headers).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The channel's wire name (stable: what its messages are signed under).
    pub channel: String,
    /// The name people see it under when the export was made (an admin may have renamed
    /// it; else the wire name), so a reader finds the channel they know.
    pub channel_name: String,
    /// The author's roster name (what their messages carry).
    pub sender: String,
    /// The name people saw the author by when the export was made: the full name an admin
    /// gave them, else the roster name.
    pub sender_name: String,
    pub device: String,
    pub sent_at: u64,
    pub sent_at_utc: String,
    /// message, reply, edit, delete, reaction or read.
    pub kind: String,
    /// The message a reply, edit, deletion, reaction or receipt is about.
    pub target: Option<String>,
    pub text: String,
    /// This device holds no key for it: `text` is a placeholder.
    pub locked: bool,
    pub file: Option<FileRecord>,
    /// A forwarded message: whose it said it was, and whether the exporting device held the
    /// original and it said the same (`matches`, `differs`, `unseen`). A forward's author is
    /// its forwarder; this is the forwarder's claim, checked.
    pub forwarded: Option<ForwardRecord>,
    /// A poll: the options it offered (its question is `text`).
    pub poll: Option<PollRecord>,
    /// A vote: the options chosen, as indices into the poll's `options` (from 0); empty
    /// where the member took their vote back.
    pub choices: Option<Vec<u32>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PollRecord {
    pub options: Vec<String>,
    pub multi: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardRecord {
    pub id: String,
    pub author: String,
    pub channel: String,
    pub sent_at_utc: String,
    pub check: crate::conversation::ForwardCheck,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub mime: String,
    pub size: u64,
    /// Where the file was written, relative to the export directory; `None` if this device
    /// does not hold it (not downloaded, or past its retention).
    pub saved_as: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Written {
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub messages: u64,
    pub channels: u64,
    pub files: u64,
    pub roster_versions: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub export_format: u32,
    pub created_at: u64,
    pub created_at_utc: String,
    /// The device and member that made it.
    pub device: String,
    pub member: String,
    pub org: String,
    pub scope: Scope,
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub format: Format,
    pub counts: Counts,
    /// Every file written, with its BLAKE3 hash (the manifest itself excepted).
    pub files: Vec<Written>,
}

/// Who is exporting, for the manifest, and the roster they see channels' names by.
pub struct By<'a> {
    pub device: String,
    pub member: &'a str,
    /// The roster the export is made under: its org, and the names channels are shown by.
    pub names: &'a Roster,
    /// The statuses this device keeps (one per member, the newest it has seen, ended ones
    /// included): a member's status is their data too ("On sick leave until Friday").
    pub statuses: Vec<crate::status::MemberStatus>,
}

/// A member's status in `statuses.json` (member and "everything" exports).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRecord {
    pub member: String,
    /// The name people saw them by when the export was made.
    pub member_name: String,
    pub text: String,
    /// When it ends, if it does.
    pub until_utc: Option<String>,
    /// When they set it (their device's clock).
    pub set_at_utc: String,
}

fn utc(ms: u64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(p, e)
}

fn kind_of(m: &StoredMessage) -> (&'static str, Option<String>) {
    match &m.act {
        None if m.file.is_some() => ("file", None),
        None if m.poll.is_some() => ("poll", None),
        None => ("message", None),
        Some(a) => (
            match a {
                Act::Reply { .. } => "reply",
                Act::Edit { .. } => "edit",
                Act::Delete { .. } => "delete",
                Act::React { .. } => "reaction",
                Act::Read { .. } => "read",
                Act::Topic { .. } => "topic",
                Act::Pin { on: true, .. } => "pin",
                Act::Pin { on: false, .. } => "unpin",
                Act::Join { on: true } => "join",
                Act::Join { on: false } => "leave",
                Act::Vote { .. } => "vote",
                Act::ClosePoll { .. } => "close_poll",
                Act::Save { on: true, .. } => "save",
                Act::Save { on: false, .. } => "unsave",
                Act::Remind { on: true, .. } => "remind",
                Act::Remind { on: false, .. } => "unremind",
                Act::Pause { until: 0 } => "resume_notifications",
                Act::Pause { .. } => "pause_notifications",
                Act::Notify { notify, .. } => match notify {
                    Notify::Usual => "notify_usual",
                    Notify::Everything => "notify_everything",
                    Notify::Nothing => "mute",
                },
                Act::Hours { .. } => "notification_hours",
                Act::Star { on: true, .. } => "star",
                Act::Star { on: false, .. } => "unstar",
                Act::Unread { from: 0, .. } => "read_again",
                Act::Unread { .. } => "mark_unread",
                Act::Seen { .. } => "thread_seen",
            },
            match a {
                Act::Pin { of, .. } | Act::Save { of, .. } | Act::Remind { of, .. } => {
                    Some(of.to_string())
                }
                Act::Topic { .. }
                | Act::Join { .. }
                | Act::Pause { .. }
                | Act::Notify { .. }
                | Act::Hours { .. }
                | Act::Star { .. }
                | Act::Unread { .. } => None,
                Act::Seen { thread, .. } => Some(thread.to_string()),
                _ => Some(a.target().to_string()),
            },
        ),
    }
}

/// A file name that is safe in any file system, from any text.
fn safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// Write the export `spec` asks for. `audit`: the roster history (entries outside the
/// period are left out). Fails rather than overwrite: `spec.out` must not exist or be empty.
pub fn export(
    store: &Store,
    blobs: Option<&Blobs>,
    audit: &[AuditEntry],
    by: &By<'_>,
    spec: &Spec,
) -> Result<Manifest> {
    let out = &spec.out;
    // An empty period is a mistake (dates swapped), not an export of nothing.
    if let (Some(from), Some(to)) = (spec.from, spec.to) {
        if from >= to {
            return Err(Error::Invalid(format!(
                "the period is empty: it starts ({}) at or after it ends ({}); swap --from and --to?",
                utc(from),
                utc(to)
            )));
        }
    }
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(Error::Invalid(format!(
            "{} is not empty; export into a new directory",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut w = Writer::new(out, spec.format)?;
    let (from, to) = (spec.from.unwrap_or(0), spec.to.unwrap_or(u64::MAX));
    let mut channels = 0;
    for channel in store.channels_starting_with("")? {
        if let Scope::Channel(c) = &spec.scope {
            if c != &channel {
                continue;
            }
        }
        let mut any = false;
        let channel_name = by.names.shown(&channel).to_string();
        store.each_message(&channel, from, to, |m| {
            if let Scope::Member(name) = &spec.scope {
                if &m.sender != name {
                    return Ok(());
                }
            }
            any = true;
            let file = match &m.file {
                Some(f) if !m.locked => {
                    let saved_as = match blobs {
                        Some(b) => w.save_file(store, b, &m)?,
                        None => None,
                    };
                    Some(FileRecord {
                        name: f.name.clone(),
                        mime: f.mime.clone(),
                        size: f.size,
                        saved_as,
                    })
                }
                _ => None,
            };
            let (kind, target) = kind_of(&m);
            w.record(
                &Record {
                    id: m.id.to_string(),
                    channel: m.channel.clone(),
                    channel_name: channel_name.clone(),
                    sender: m.sender.clone(),
                    sender_name: by.names.person(&m.sender).to_string(),
                    device: m.device.to_string(),
                    sent_at: m.sent_at,
                    sent_at_utc: utc(m.sent_at),
                    kind: kind.into(),
                    target,
                    text: m.text.clone(),
                    locked: m.locked,
                    file,
                    forwarded: m.forwarded.as_ref().map(|f| ForwardRecord {
                        id: f.id.to_string(),
                        author: f.author.clone(),
                        channel: f.channel.clone(),
                        sent_at_utc: utc(f.sent_at),
                        check: f.check,
                    }),
                    poll: m.poll.as_ref().map(|p| PollRecord {
                        options: p.options.iter().map(|o| o.text.clone()).collect(),
                        multi: p.multi,
                    }),
                    choices: match &m.act {
                        Some(Act::Vote { choices, .. }) => {
                            Some(choices.iter().map(|c| u32::from(*c)).collect())
                        }
                        _ => None,
                    },
                },
                &m,
            )
        })?;
        channels += u64::from(any);
    }
    let roster: Vec<&AuditEntry> = audit
        .iter()
        .filter(|e| (from..to).contains(&e.issued_at))
        .collect();
    let mut counts = w.finish()?;
    counts.channels = channels;
    counts.roster_versions = roster.len() as u64;
    let mut files = w.written;
    // The member's status (or everyone's, for all this device holds); not a channel's.
    let statuses: Vec<StatusRecord> = by
        .statuses
        .iter()
        .filter(|st| match &spec.scope {
            Scope::Member(name) => &st.member == name,
            Scope::All => true,
            Scope::Channel(_) => false,
        })
        .filter(|st| (from..to).contains(&st.set_at))
        .map(|st| StatusRecord {
            member: st.member.clone(),
            member_name: by.names.person(&st.member).to_string(),
            text: st.text.clone(),
            until_utc: st.until.map(utc),
            set_at_utc: utc(st.set_at),
        })
        .collect();
    if !statuses.is_empty() {
        files.push(write_hashed(
            out,
            "statuses.json",
            &serde_json::to_vec_pretty(&statuses).expect("statuses serialize"),
        )?);
    }
    files.push(write_hashed(
        out,
        "roster.json",
        &serde_json::to_vec_pretty(&roster).expect("audit serializes"),
    )?);
    let now = crate::now_ms();
    let manifest = Manifest {
        export_format: EXPORT_FORMAT,
        created_at: now,
        created_at_utc: utc(now),
        device: by.device.clone(),
        member: by.member.to_string(),
        org: by.names.org.to_string(),
        scope: spec.scope.clone(),
        from: spec.from,
        to: spec.to,
        format: spec.format,
        counts,
        files,
    };
    let p = out.join("manifest.json");
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    std::fs::write(&p, bytes).map_err(io(&p))?;
    Ok(manifest)
}

fn write_hashed(dir: &Path, rel: &str, bytes: &[u8]) -> Result<Written> {
    let p = dir.join(rel);
    std::fs::write(&p, bytes).map_err(io(&p))?;
    Ok(Written {
        path: rel.into(),
        bytes: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// A file being written and hashed as it goes.
struct Hashed {
    rel: String,
    file: std::io::BufWriter<std::fs::File>,
    hash: blake3::Hasher,
    bytes: u64,
    path: PathBuf,
}

impl Hashed {
    fn create(dir: &Path, rel: &str) -> Result<Hashed> {
        let path = dir.join(rel);
        let f = std::fs::File::create(&path).map_err(io(&path))?;
        Ok(Hashed {
            rel: rel.into(),
            file: std::io::BufWriter::with_capacity(1 << 20, f),
            hash: blake3::Hasher::new(),
            bytes: 0,
            path,
        })
    }

    fn finish(mut self) -> Result<Written> {
        self.file.flush().map_err(io(&self.path))?;
        self.file.get_ref().sync_all().map_err(io(&self.path))?;
        Ok(Written {
            path: self.rel,
            bytes: self.bytes,
            blake3: self.hash.finalize().to_hex().to_string(),
        })
    }
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

struct Writer<'a> {
    dir: &'a Path,
    format: Format,
    json: Option<Hashed>,
    csv: Option<csv::Writer<Hashed>>,
    written: Vec<Written>,
    messages: u64,
    files: u64,
}

impl<'a> Writer<'a> {
    fn new(dir: &'a Path, format: Format) -> Result<Writer<'a>> {
        let mut w = Writer {
            dir,
            format,
            json: None,
            csv: None,
            written: Vec::new(),
            messages: 0,
            files: 0,
        };
        match format {
            Format::Json => {
                let mut h = Hashed::create(dir, "messages.json")?;
                write!(h, "{{\"export_format\":{EXPORT_FORMAT},\"messages\":[").map_err(io(dir))?;
                w.json = Some(h);
            }
            Format::Csv => {
                let mut c = csv::Writer::from_writer(Hashed::create(dir, "messages.csv")?);
                c.write_record([
                    "id",
                    "channel",
                    "channel_name",
                    "sender",
                    "sender_name",
                    "device",
                    "sent_at_utc",
                    "sent_at_ms",
                    "kind",
                    "target",
                    "text",
                    "locked",
                    "file_name",
                    "file_size",
                    "file_saved_as",
                    "forwarded_from",
                    "forwarded_channel",
                    "forwarded_check",
                    "poll_options",
                    "choices",
                ])
                .map_err(|e| Error::Invalid(e.to_string()))?;
                w.csv = Some(c);
            }
            Format::Eml => {}
        }
        Ok(w)
    }

    fn record(&mut self, r: &Record, m: &StoredMessage) -> Result<()> {
        let dir = self.dir;
        match self.format {
            Format::Json => {
                let h = self.json.as_mut().expect("json export");
                if self.messages > 0 {
                    h.write_all(b",").map_err(io(dir))?;
                }
                h.write_all(b"\n").map_err(io(dir))?;
                serde_json::to_writer(&mut *h, r).map_err(|e| Error::Invalid(e.to_string()))?;
            }
            Format::Csv => {
                let c = self.csv.as_mut().expect("csv export");
                let f = r.file.as_ref();
                c.write_record([
                    r.id.as_str(),
                    &r.channel,
                    &cell(&r.channel_name),
                    &r.sender,
                    &cell(&r.sender_name),
                    &r.device,
                    &r.sent_at_utc,
                    &r.sent_at.to_string(),
                    &r.kind,
                    r.target.as_deref().unwrap_or(""),
                    &cell(&r.text),
                    if r.locked { "true" } else { "false" },
                    &cell(f.map_or("", |f| f.name.as_str())),
                    &f.map_or(String::new(), |f| f.size.to_string()),
                    f.and_then(|f| f.saved_as.as_deref()).unwrap_or(""),
                    r.forwarded.as_ref().map_or("", |f| f.author.as_str()),
                    r.forwarded.as_ref().map_or("", |f| f.channel.as_str()),
                    r.forwarded.as_ref().map_or("", |f| check_word(f.check)),
                    // One cell each: options joined by newlines (an option is one line),
                    // choices as indices into them.
                    &cell(
                        &r.poll
                            .as_ref()
                            .map_or(String::new(), |p| p.options.join("\n")),
                    ),
                    &r.choices.as_ref().map_or(String::new(), |c| {
                        c.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
                    }),
                ])
                .map_err(|e| Error::Invalid(e.to_string()))?;
            }
            Format::Eml => {
                // Flat, in time order within a channel: any mail tool opens the folder.
                let rel = format!("{}-{}-{}.eml", safe(&r.channel), r.sent_at, &r.id[..16]);
                let mut h = Hashed::create(dir, &rel)?;
                eml(r, m).write_to(&mut h).map_err(io(dir))?;
                self.written.push(h.finish()?);
            }
        }
        self.messages += 1;
        Ok(())
    }

    /// Decrypt the file `m` shares into `files/`, if this device holds it whole.
    fn save_file(
        &mut self,
        store: &Store,
        blobs: &Blobs,
        m: &StoredMessage,
    ) -> Result<Option<String>> {
        let Ok(Some((blob, info, _))) = store.file_of(&m.id) else {
            return Ok(None);
        };
        if !blobs.meta(&blob.id)?.is_some_and(|b| b.complete) {
            return Ok(None);
        }
        let d = self.dir.join("files");
        std::fs::create_dir_all(&d).map_err(io(&d))?;
        let rel = format!(
            "files/{}-{}",
            &m.id.to_string()[..16],
            crate::files::safe_name(&info.name)
        );
        let p = self.dir.join(&rel);
        blobs.export(&blob, &info, &p)?;
        let mut hash = blake3::Hasher::new();
        let mut f = std::fs::File::open(&p).map_err(io(&p))?;
        std::io::copy(&mut f, &mut hash).map_err(io(&p))?;
        let bytes = std::fs::metadata(&p).map_err(io(&p))?.len();
        self.written.push(Written {
            path: rel.clone(),
            bytes,
            blake3: hash.finalize().to_hex().to_string(),
        });
        self.files += 1;
        Ok(Some(rel))
    }

    fn finish(&mut self) -> Result<Counts> {
        if let Some(mut h) = self.json.take() {
            h.write_all(b"\n]}\n").map_err(io(self.dir))?;
            self.written.insert(0, h.finish()?);
        }
        if let Some(c) = self.csv.take() {
            let h = c.into_inner().map_err(|e| Error::Invalid(e.to_string()))?;
            self.written.insert(0, h.finish()?);
        }
        Ok(Counts {
            messages: self.messages,
            files: self.files,
            ..Counts::default()
        })
    }
}

/// One message as an RFC 5322 e-mail: the sender as From (named as people saw them, the
/// device as the address, in
/// the reserved `.invalid` domain), the channel as people see it as the subject (its wire
/// name in `X-Majlis-Channel`), replies threaded.
fn eml<'x>(r: &'x Record, m: &'x StoredMessage) -> mail_builder::MessageBuilder<'x> {
    let mut b = mail_builder::MessageBuilder::new()
        .from((
            r.sender_name.clone(),
            format!("{}@majlis.invalid", r.device),
        ))
        .to(("", "export@majlis.invalid"))
        .subject(match crate::roster::dm_members(&r.channel) {
            Some(names) if names.len() == 1 => format!("Notes of {} ({})", names[0], r.kind),
            Some(names) => format!("DM {} ({})", names.join(", "), r.kind),
            None => format!("#{} ({})", r.channel_name, r.kind),
        })
        .date((m.sent_at / 1000) as i64)
        .message_id(format!("{}@majlis.invalid", r.id))
        .header(
            "X-Majlis-Channel",
            mail_builder::headers::text::Text::new(r.channel.clone()),
        )
        .text_body(r.text.as_str());
    if let Some(t) = &r.target {
        b = b.in_reply_to(format!("{t}@majlis.invalid"));
    }
    if let Some(p) = &r.poll {
        b = b.header(
            "X-Majlis-Poll-Options",
            mail_builder::headers::text::Text::new(p.options.join(" | ")),
        );
    }
    if let Some(c) = &r.choices {
        let c: Vec<String> = c.iter().map(u32::to_string).collect();
        b = b.header(
            "X-Majlis-Vote",
            mail_builder::headers::text::Text::new(c.join(" ")),
        );
    }
    if let Some(f) = &r.forwarded {
        b = b.header(
            "X-Majlis-Forwarded-From",
            mail_builder::headers::text::Text::new(format!(
                "{} in {} ({}; {})",
                f.author,
                f.channel,
                f.id,
                check_word(f.check)
            )),
        );
    }
    b
}

/// A forward's check as exports write it.
fn check_word(c: crate::conversation::ForwardCheck) -> &'static str {
    use crate::conversation::ForwardCheck;
    match c {
        ForwardCheck::Matches => "matches",
        ForwardCheck::Differs => "differs",
        ForwardCheck::Unseen => "unseen",
    }
}

/// Whether the device `me` may make this export, by the roster `head`: anyone their own
/// data and the channels they read; everyone's data (a member's or all) takes an admin or
/// the archive. Returns the exporting member's name. (A rule of honest clients: a device
/// can always copy what it can read; see docs/compliance.md.)
pub fn allowed(
    head: &crate::roster::VerifiedRoster,
    me: &crate::DeviceId,
    scope: &Scope,
) -> Result<String> {
    use crate::roster::Role;
    let m = head.member_of_device(me).ok_or_else(|| {
        Error::Invalid("this device is not on the org roster; it exports nothing".into())
    })?;
    let officer = matches!(m.role, Role::Admin | Role::Archive);
    let ok = match scope {
        Scope::Member(name) => name == &m.name || officer,
        Scope::Channel(c) => officer || head.roster.may_read(m, c),
        Scope::All => officer,
    };
    if !ok {
        return Err(match scope {
            // Why, as reading its history says it (whose channel or conversation it is).
            Scope::Channel(c) => head
                .readable_channel(me, c)
                .err()
                .unwrap_or_else(|| Error::Denied(format!("'{}' may not read '{c}'", m.name))),
            _ => Error::Invalid(format!(
                "only an admin or the archive exports others' data; export your own with --member {}",
                m.name
            )),
        });
    }
    if let Scope::Member(name) = scope {
        if head.roster.member(name).is_none()
            && !head
                .roster
                .governance
                .erasures
                .iter()
                .any(|e| &e.member == name)
        {
            return Err(Error::Invalid(format!("no member named '{name}'")));
        }
    }
    Ok(m.name.clone())
}

/// What the action log keeps of an export: scope, period, format, counts, and the hash of
/// its manifest's file list (not the content).
pub fn action_detail(spec: &Spec, m: &Manifest) -> serde_json::Value {
    let list = serde_json::to_vec(&m.files).expect("files serialize");
    serde_json::json!({
        "scope": spec.scope,
        "from": spec.from,
        "to": spec.to,
        "format": spec.format,
        "out": spec.out,
        "messages": m.counts.messages,
        "files": m.counts.files,
        "files_hash": blake3::hash(&list).to_hex().to_string(),
    })
}

/// A CSV cell of text people wrote, as a spreadsheet opens it: one that starts like a
/// formula (`=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so Excel or
/// LibreOffice shows it as text rather than running it (a colleague's `=HYPERLINK(…)` or
/// DDE payload in the file a compliance officer opens; OWASP's advice for CSV injection).
/// `messages.json` keeps the text exactly as sent.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        true => std::borrow::Cow::Owned(format!("'{text}")),
        false => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DeviceKey, OrgKey};
    use crate::roster::{Roster, RosterChange, RosterSigner, VerifiedRoster};

    #[test]
    fn a_member_is_told_why_a_channel_is_not_theirs_to_export() {
        let (root, amina, bilal) = (
            OrgKey::generate(),
            DeviceKey::generate(),
            DeviceKey::generate(),
        );
        let mut r = Roster::genesis(&root, "acme", "amina", amina.id(), 1);
        for (i, c) in [
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
            RosterChange::CreateChannel {
                name: "hr".into(),
                members: Some(vec!["amina".into()]),
            },
        ]
        .iter()
        .enumerate()
        {
            let prev = VerifiedRoster::sign(r.clone(), RosterSigner::Root(&root));
            r = prev.roster.next(prev.hash, c, 2 + i as u64).unwrap();
        }
        let head = VerifiedRoster::sign(r, RosterSigner::Root(&root));
        let hr = Scope::Channel("hr".into());
        let e = allowed(&head, &bilal.id(), &hr).unwrap_err();
        assert!(
            matches!(&e, Error::Denied(why) if why.contains("open to amina only")),
            "{e}"
        );
        assert_eq!(allowed(&head, &amina.id(), &hr).unwrap(), "amina");
        assert!(allowed(&head, &bilal.id(), &Scope::Channel("general".into())).is_ok());
    }
}
