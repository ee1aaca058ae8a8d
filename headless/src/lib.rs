//! `majlisd`: the headless Majlis node and its command line.
//!
//! Every command takes `--data DIR`. While `majlisd run` is running for a directory, the other
//! commands talk to it over its local socket (so roster changes spread at once and the
//! database has one owner); otherwise they open the directory directly.

pub mod api;
pub mod http;

/// `println!` for a command's answer that does not panic when the reader has gone
/// (`majlisd history general | head -3`): the rest is not written and the command ends as
/// it would have (whatever it stored is kept), where `println!` would panic on the closed
/// pipe. Any other failure to write (a full disk under `> file`) is an error.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout(), "{}", $crate::printable(&format!($($t)*))) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(anyhow::Error::new(e).context("cannot write the answer"));
            }
            $crate::READER_GONE.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }};
}

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use majlis_core::{
    roster::{Keep, MembersChange, Policy, Scope},
    Config, DeviceId, Event, MessageId, Multiaddr, Node, OrgId, Profile, Role, Roster,
    RosterChange, StoredMessage,
};

use api::{Marks, Request, Response, SearchHit, ThreadLine};
use majlis_core::files::human_size;

#[derive(Parser, Debug)]
#[command(
    name = "majlisd",
    version,
    about = "Majlis: a serverless messenger for the local network (headless node and CLI)"
)]
pub struct Cli {
    /// Data directory of this device [default: the platform's data dir]
    #[arg(long, global = true, env = "MAJLIS_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seal the data directory with the passphrase on this file's first line (servers);
    /// also the systemd credential `majlis-passphrase` [default: the OS keyring, else a
    /// 0600 key file beside the data, with a warning]
    #[arg(
        long,
        global = true,
        env = "MAJLIS_PASSPHRASE_FILE",
        value_name = "FILE"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Refuse to create or open a data directory that would not be sealed
    #[arg(long, global = true, env = "MAJLIS_REQUIRE_SEALED")]
    pub require_sealed: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create this device's identity; prints the device id last
    Init {
        /// This device's owner as the org will know them (e.g. amina)
        #[arg(long)]
        name: String,
    },
    /// Print this device's id
    Id,
    /// Found or join an organization
    #[command(subcommand)]
    Org(OrgCmd),
    /// Show or change the org roster (changes need an admin)
    #[command(subcommand)]
    Roster(RosterCmd),
    /// Manage channels
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// Run the node in the foreground until SIGINT/SIGTERM
    Run {
        /// Address to listen on (repeatable): IP:PORT or a multiaddr [default: /ip4/0.0.0.0/tcp/0]
        #[arg(long, value_name = "ADDR", value_parser = majlis_core::net::parse_listen_addr)]
        listen: Vec<Multiaddr>,
        /// Peer to dial, for networks without multicast (repeatable): IP:PORT, HOST:PORT
        /// (resolved before each dial; one that does not resolve yet is tried again) or a
        /// multiaddr
        #[arg(long, value_name = "ADDR", value_parser = majlis_core::net::parse_peer_addr)]
        peer: Vec<Multiaddr>,
        /// Do not use mDNS discovery
        #[arg(long)]
        no_mdns: bool,
        /// Connect to every other roster device while the org has at most N of them; beyond
        /// that, to a few per channel (relays always connect to all)
        #[arg(long, value_name = "N", default_value_t = majlis_core::proto::neighbours::FULL_MESH_UP_TO)]
        mesh_limit: usize,
        /// Print every message received (bodies included) on stdout. Off by default: a
        /// server's output goes to logs, and logs must not carry what people wrote.
        #[arg(long)]
        print_messages: bool,
        /// Serve the HTTP API (docs/api.md) on ADDR [default when given alone:
        /// 127.0.0.1:7480]. Anything but loopback exposes it to the network: tokens guard it,
        /// but the traffic is plain HTTP
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:7480", value_parser = parse_http_addr)]
        http: Option<std::net::SocketAddr>,
    },
    /// Tokens for the HTTP API (`majlisd run --http`)
    #[command(subcommand)]
    Api(ApiCmd),
    /// Send a message to CHANNEL, to @NAME (a direct message; your own name: your notes, on
    /// each of your devices) or to @NAME,NAME (a group conversation of up to nine, you among
    /// them); prints the message id last
    Send {
        /// A channel name, @NAME for a direct message, @NAME,NAME for a group conversation
        channel: String,
        /// The message text; `-` reads it from standard input (`make 2>&1 | tail -5 |
        /// majlisd send ops -`)
        text: String,
        /// Send it later, at this time: a date (2026-12-14, midnight UTC) or an RFC 3339
        /// time (2026-12-14T09:00:00+04:00). Kept until then by `majlisd run`
        #[arg(long, value_parser = parse_date)]
        at: Option<u64>,
    },
    /// Be reminded of a message at a time, on this device: `majlisd run` and the app say it
    /// then; prints the reminder's number last. Needs `majlisd run`
    #[command(group(clap::ArgGroup::new("when").required(true).args(["at", "in_"])))]
    Remind {
        /// The message (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// When: a date (2026-12-14, midnight UTC) or an RFC 3339 time
        /// (2026-12-14T09:00:00+04:00)
        #[arg(long, value_name = "TIME", value_parser = parse_date)]
        at: Option<u64>,
        /// Or in how long: 30m, 2h, 3days
        #[arg(long = "in", id = "in_", value_name = "DURATION", value_parser = parse_for)]
        in_: Option<std::time::Duration>,
    },
    /// The reminders waiting on this device, or cancel one
    Reminders {
        /// Take reminder ID off the list
        #[arg(long, value_name = "ID")]
        cancel: Option<u64>,
        /// Print JSON lines instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// The messages waiting to be sent later (`send --at`), or cancel one
    Scheduled {
        /// Take message ID off the schedule, unsent
        #[arg(long, value_name = "ID")]
        cancel: Option<u64>,
        /// Print JSON lines instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Share a file in CHANNEL or with @NAME (any size; readers fetch it from every peer that
    /// has it); prints the message id last. Needs `majlisd run`
    Share {
        /// A channel name, @NAME for a direct message, @NAME,NAME for a group conversation
        channel: String,
        /// The file to share
        path: PathBuf,
        /// Text shown with the file
        #[arg(long, default_value = "")]
        caption: String,
    },
    /// Shared files this node knows of, with download progress
    Files {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Download the file a message shares and save it to --out (waits, showing progress);
    /// with no node running, save one already downloaded here
    Get {
        /// The message that shares the file (its id, or its first digits as `history --ids`
        /// shows them)
        message: MessageArg,
        /// Where to save the file
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// Give up after this many seconds
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Save a message for later (`search is:saved` lists them), or take it off the list.
    /// Through a running `majlisd run`, the list travels in your notes to each of your
    /// devices; without one, it stays on this device
    Bookmark {
        /// The message (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// Take it off the list
        #[arg(long)]
        remove: bool,
    },
    /// Forward a message to another channel or @NAME, saying where it came from; prints
    /// the new message's id. Needs `majlisd run`
    Forward {
        /// The message forwarded (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// Where to: a channel, or @NAME
        to: String,
    },
    /// Ask a question with options to choose from; prints the poll's id last. Needs
    /// `majlisd run`
    Poll {
        /// A channel, or @NAME
        channel: String,
        /// The question, one line
        question: String,
        /// An option (give 2 to 12: `--option Tuesday --option Thursday`)
        #[arg(long = "option", value_name = "TEXT", required = true)]
        options: Vec<String>,
        /// Let people choose several options
        #[arg(long)]
        multi: bool,
    },
    /// Vote in a poll by its options' numbers as `history` shows them (`2`, or `1 3` where
    /// several may be chosen); `--clear` takes your vote back, `--close` closes the poll
    /// (who asked, or an admin). Needs `majlisd run`
    #[command(group(clap::ArgGroup::new("what").required(true).args(["choices", "clear", "close"])))]
    Vote {
        /// The poll (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// The options chosen, numbered from 1
        #[arg(value_parser = clap::value_parser!(u16).range(1..))]
        choices: Vec<u16>,
        /// Take your vote back
        #[arg(long, conflicts_with_all = ["choices", "close"])]
        clear: bool,
        /// Close the poll: it takes no more votes
        #[arg(long, conflicts_with = "choices")]
        close: bool,
    },
    /// Reply to a message in its thread; prints the reply's id last. Needs `majlisd run`
    Reply {
        /// The message replied to (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// The reply's text
        text: String,
        /// Show the reply in the channel too, not only in the thread
        #[arg(long)]
        also_channel: bool,
    },
    /// Change the text of one of your messages (readers see it marked edited). Needs
    /// `majlisd run`
    Edit {
        /// The message to change (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// Its new text
        text: String,
    },
    /// Delete one of your messages, or anyone's as an admin. Needs `majlisd run`
    Delete {
        /// The message to delete (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
    },
    /// React to a message with an emoji (`--remove` takes it back). Needs `majlisd run`
    React {
        /// The message reacted to (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// One emoji, e.g. 👍
        emoji: String,
        /// Take the reaction back
        #[arg(long)]
        remove: bool,
    },
    /// Pin a message to its channel (`--remove` unpins it); `channel show` lists the pins.
    /// Needs `majlisd run`
    Pin {
        /// The message to pin (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// Unpin it
        #[arg(long)]
        remove: bool,
    },
    /// Show a message and the replies in its thread, oldest first
    Thread {
        /// Any message of the thread (its id, or its first digits as `history --ids` shows them)
        message: MessageArg,
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
        /// Show each message's id first, its first eight digits: enough to name it in
        /// `reply`, `react`, `edit` and the other commands taking a message
        #[arg(long)]
        ids: bool,
    },
    /// Show the history of CHANNEL or of the direct messages with @NAME, oldest first
    History {
        /// A channel name, @NAME for the direct messages with NAME, @NAME,NAME for a group
        /// conversation
        channel: String,
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
        /// Show at most this many (the newest)
        #[arg(long, default_value_t = 100, value_parser = at_least_one)]
        limit: usize,
        /// Show each message's id first, its first eight digits: enough to name it in
        /// `reply`, `react`, `edit` and the other commands taking a message
        #[arg(long)]
        ids: bool,
        /// Then keep going: each new message and reply as the running node gets it, and
        /// what edits, reactions, pins and deletions did, until interrupted
        #[arg(long, short)]
        follow: bool,
        /// The page before this message (its id, or its first digits): older history, a
        /// `--limit` at a time
        #[arg(long, value_name = "MESSAGE", conflicts_with = "follow")]
        before: Option<MessageArg>,
    },
    /// The threads you take part in (you started one that has replies, replied or were
    /// mentioned in it), the one with the latest reply first
    Threads {
        /// Show at most this many
        #[arg(long, default_value_t = 20, value_parser = at_least_one)]
        limit: usize,
        /// JSON lines: `root` and `last` (its latest reply) with the fields of `history
        /// --json`, and `shown` (the channel as people know it)
        #[arg(long)]
        json: bool,
        /// Show each thread's id first (its first message's), its first eight digits:
        /// enough to name it in `thread` and `reply`
        #[arg(long)]
        ids: bool,
    },
    /// Search every message this device can read. Words and "phrases", with from:NAME,
    /// in:#channel or in:@name, has:file, has:link, before:/after:/on:YYYY-MM-DD, mentions:me, is:saved.
    /// Arabic and English, mixed; newest first
    Search {
        /// What to look for, e.g. 'invoice from:bilal in:#sales after:2026-01-01'
        query: String,
        /// JSON lines with the fields of `history --json`, plus `snippet`
        #[arg(long)]
        json: bool,
        /// Show at most this many results
        #[arg(long, default_value_t = 20, value_parser = at_least_one)]
        limit: usize,
        /// Best match first instead of newest first
        #[arg(long)]
        relevance: bool,
        /// Show each message's id first, its first eight digits: enough to name it in
        /// `reply`, `react`, `edit` and the other commands taking a message
        #[arg(long)]
        ids: bool,
    },
    /// Connected devices of the org
    Peers {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Counters of accepted and rejected input (running node only)
    Stats,
    /// Your status beside your name ("In a meeting", "On leave until Monday"), and your
    /// colleagues'
    #[command(subcommand)]
    Presence(PresenceCmd),
    /// The node at a glance: running or not, member, roster version, peers, records held,
    /// store size
    Status {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// How long messages and files are kept (setting it needs an admin)
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Legal holds: what a hold covers is kept, whatever retention or erasure say (admins)
    #[command(subcommand)]
    Hold(HoldCmd),
    /// Erase everything a member wrote, on every node, leaving tombstones (an admin's answer
    /// to a GDPR erasure request); a legal hold wins until released
    Erase {
        /// The member's name as on the roster
        #[arg(long)]
        member: String,
    },
    /// Export a member's data, a channel, or everything this device holds, with a manifest
    /// of BLAKE3 hashes (DIR/manifest.json)
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["member", "channel", "all"])))]
    Export {
        /// A member's data (yours; anyone's takes an admin)
        #[arg(long)]
        member: Option<String>,
        /// One channel (or @NAME for a DM)
        #[arg(long)]
        channel: Option<String>,
        /// Everything this device holds (admins and the archive)
        #[arg(long)]
        all: bool,
        /// Messages sent on or after this date (2026-01-31 or RFC 3339)
        #[arg(long, value_parser = parse_date)]
        from: Option<u64>,
        /// Messages sent before this date
        #[arg(long, value_parser = parse_date)]
        to: Option<u64>,
        /// json (with a schema, docs/export.schema.json), csv or eml (one email a message)
        #[arg(long, value_parser = ["json", "csv", "eml"], default_value = "json")]
        format: String,
        /// A new (or empty) directory
        #[arg(long)]
        out: PathBuf,
    },
    /// Every roster change (version, time, signing admin, what changed), then this device's
    /// own signed action log (exports)
    Audit {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Why can't I see X? Checks interfaces, mDNS, listen addresses, static peers and every
    /// roster device (seen? connected? last error). Exits non-zero when something is wrong
    Doctor {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
        /// Print a text to paste into a ticket: device ids shortened, no message content
        #[arg(long, conflicts_with = "json")]
        report: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiCmd {
    /// Per-integration tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// Incoming webhooks: URLs that post into one channel
    #[command(subcommand)]
    Hook(HookCmd),
    /// Outgoing webhooks: every message of a channel POSTed (signed) to a URL
    #[command(subcommand)]
    Webhook(WebhookCmd),
}

#[derive(Subcommand, Debug)]
pub enum WebhookCmd {
    /// POST every message of CHANNEL to URL (http://), signed with a secret printed last
    /// (shown once; stored sealed). Takes effect in a running node at once
    Add {
        /// What the webhook is for, e.g. `ticketing`; unique
        #[arg(long)]
        name: String,
        /// The channel whose messages it receives
        #[arg(long)]
        channel: String,
        /// Where to POST them (http://host:port/path)
        #[arg(long)]
        url: String,
    },
    /// The outgoing webhooks (never their secrets)
    List {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Remove a webhook by name or id
    Remove {
        /// The webhook's name or id (`api webhook list`)
        name: String,
    },
    /// Deliveries that failed every retry (webhook, message id, attempts, last error)
    Dead {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Send a webhook's failed deliveries again (once its receiver is back), with their
    /// first event ids; they leave the dead-letter list. A running node sends them within
    /// seconds, a stopped one at its next start
    Redeliver {
        /// The webhook's name or id (`api webhook list`)
        name: String,
        /// Only this event (its id, as `api webhook dead --json` shows it); repeatable
        #[arg(long)]
        event: Vec<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum HookCmd {
    /// Create an incoming webhook for CHANNEL; prints its URL path last (POST {"text": …}
    /// to it; shown once, never stored). `api token list` lists it, `api token revoke` ends it
    Create {
        /// What the hook is for, e.g. `alerts`; unique
        #[arg(long)]
        name: String,
        /// The channel it posts into
        #[arg(long)]
        channel: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; prints it last (it is shown once and never stored)
    Create {
        /// What the token is for, e.g. `ci-bot`; unique
        #[arg(long)]
        name: String,
        /// Comma-separated: read (messages, search, channels, roster, events), send (post)
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<http::tokens::Scope>,
    },
    /// The tokens that exist (names, ids, scopes; never the secrets)
    List {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name or id; takes effect at once, also in a running node
    Revoke {
        /// The token's name or id (`api token list`)
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Found an org; this device becomes its first admin. Prints the org id last
    Create {
        /// The org's name, shown to members
        #[arg(long)]
        name: String,
    },
    /// Belong to an org; only its rosters will be accepted. Without ORG, lists the orgs
    /// inviting newcomers on this network
    Join {
        /// The org id `org create` printed (ask an admin), its join link (`majlisd org
        /// link`: the id and where to find the org's nodes, dialled at every start from then
        /// on), or the name of an org inviting on this network (an admin's `majlisd org
        /// invite`)
        org_id: Option<String>,
        /// How long to listen for invitations on this network
        #[arg(long, default_value = "3s", value_parser = parse_for)]
        wait: std::time::Duration,
    },
    /// Let newcomers on this network join without typing the org id: this admin's device
    /// announces the org's id and name over mDNS for a while. Needs `majlisd run`
    Invite {
        /// How long: 15m, 2h (at most a day)
        #[arg(long = "for", id = "for_", default_value = "15m", value_parser = parse_for)]
        for_: std::time::Duration,
        /// Stop inviting now
        #[arg(long, conflicts_with = "for_")]
        stop: bool,
    },
    /// Print the org's join link: its id and where this node listens, for a newcomer on
    /// another network to give `majlisd org join` (or paste at the app's first start). It
    /// grants nothing: an admin still adds the device. Asks the running node for its
    /// addresses
    Link,
    /// Move the org root key off this laptop, or bring it back
    #[command(subcommand)]
    RootKey(RootKeyCmd),
}

#[derive(Subcommand, Debug)]
pub enum RootKeyCmd {
    /// Write the root key to FILE sealed by a passphrase (argon2id), then erase it here
    Export {
        /// Where to write it (e.g. a USB key that goes into a safe)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The passphrase that will seal it, on this file's first line
        #[arg(long, value_name = "FILE")]
        root_passphrase_file: PathBuf,
        /// Keep a copy here too
        #[arg(long)]
        keep: bool,
    },
    /// Bring an exported root key back (it stays sealed by its passphrase; roster commands
    /// use it only with MAJLIS_ROOT_PASSPHRASE_FILE)
    Import {
        /// The file `org root-key export` wrote
        file: PathBuf,
        /// The passphrase it was sealed with, on this file's first line
        #[arg(long, value_name = "FILE")]
        root_passphrase_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum RosterCmd {
    /// Add a member, or a device to an existing member
    Add {
        /// The member's name (a new member, or one who gets another device)
        #[arg(long)]
        name: String,
        /// The device id its `majlisd init` (or the app) printed
        #[arg(long, required_unless_present = "code", conflicts_with = "code")]
        device: Option<String>,
        /// Or the join code its screen shows ("2134 9216 9286"): the device asking to join
        /// with that code, as the running node sees it (`roster requests`)
        #[arg(long)]
        code: Option<String>,
        /// What the member may do [default: member; an existing member keeps their role]
        #[arg(long, value_parser = ["admin", "member", "guest", "relay", "archive", "bot"])]
        role: Option<String>,
        /// The name colleagues see ("Bilal Ahmed"), set in the same roster version
        #[arg(long)]
        full_name: Option<String>,
    },
    /// Devices on this network asking to join: the name each asks for and its join code
    /// (compare it with the code on the newcomer's screen before `roster add`). Asks the
    /// running node, which sees them
    Requests {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Remove a member and all their devices
    Remove {
        /// The member's name as on the roster
        #[arg(long)]
        name: String,
    },
    /// Revoke one device
    Revoke {
        /// The device id (`roster show` lists them)
        #[arg(long)]
        device: String,
    },
    /// Give a member the full name colleagues see ("Bilal Ahmed"), or take it away. Their
    /// roster name stays: messages, mentions and commands keep using it
    FullName {
        /// The member's name as on the roster
        #[arg(long)]
        name: String,
        /// The full name (in quotes when it has spaces)
        full_name: Option<String>,
        /// Take the full name away: views show the roster name again
        #[arg(long, conflicts_with = "full_name")]
        clear: bool,
    },
    /// Give a member the job title colleagues see beside their name ("Site engineer, Dubai
    /// yard"), or take it away (admins)
    Title {
        /// The member's name as on the roster
        #[arg(long)]
        name: String,
        /// The job title (in quotes when it has spaces)
        title: Option<String>,
        /// Take the job title away
        #[arg(long, conflicts_with = "title")]
        clear: bool,
    },
    /// Make a group that one mention reaches (`@hr` notifies each of its members who reads
    /// the conversation), change who is in it, or delete it (admins)
    #[command(group(clap::ArgGroup::new("how").required(true).args(["members", "delete"])))]
    Group {
        /// The group's name, as it is mentioned (`hr`, `it-support`)
        name: String,
        /// Exactly these members, comma-separated
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        members: Option<Vec<String>>,
        /// Delete the group
        #[arg(long)]
        delete: bool,
    },
    /// The roster: members, their roles and devices, channels, groups, policies
    Show {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Set the org policy: who creates channels, and who may send direct messages
    Policy {
        /// Who may create channels
        #[arg(long, value_parser = ["admins", "members"], default_value = "admins")]
        channels: String,
        /// Direct messages: off, between members (not guests), or all
        #[arg(long, value_parser = ["off", "members", "all"], default_value = "members")]
        dms: String,
    },
    /// Whether members' apps send read receipts (on by default; delivered ticks stay)
    Receipts {
        /// on or off
        #[arg(value_parser = ["on", "off"])]
        setting: String,
    },
    /// Set the file policy: largest file, what downloads at once, which types are allowed
    Files {
        /// Largest file (e.g. 2G, 500M); `none` for no cap
        #[arg(long, default_value = "none")]
        max_size: String,
        /// Files up to this size download as soon as they are shared (e.g. 8M)
        #[arg(long, default_value = "8M", value_parser = parse_size)]
        auto_download: u64,
        /// Allowed media types, comma-separated (e.g. image/*,application/pdf); empty: any
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
    },
}

/// `12`, `500K`, `20M`, `2G`, `1T` (powers of 1024; a trailing `B` or `iB` is allowed).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| (n * mult as f64) as u64)
        .ok_or_else(|| format!("'{s}' is not a size; write e.g. 500M or 2G"))
}

fn parse_size_or_none(s: &str) -> Result<Option<u64>, String> {
    if s.eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        parse_size(s).map(Some)
    }
}

#[derive(Subcommand, Debug)]
pub enum RetentionCmd {
    /// Keep messages N days (or forever) for the org, one channel, or direct messages
    Set {
        /// Days, or `forever`
        #[arg(long, value_parser = parse_days)]
        days: Days,
        /// Files: days, or `forever` (never longer than their messages)
        #[arg(long, value_parser = parse_days)]
        files_days: Option<Days>,
        /// The rule for one channel (default: the org's rule)
        #[arg(long, conflicts_with = "dms")]
        channel: Option<String>,
        /// The rule for direct messages
        #[arg(long)]
        dms: bool,
    },
    /// The rules, holds and erasure requests in force
    Show {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Apply the rules now (a node also does every minute and whenever they change)
    Sweep,
}

#[derive(Subcommand, Debug)]
pub enum HoldCmd {
    /// Place a hold on members and/or channels
    Add {
        /// Members whose messages it keeps, comma-separated
        #[arg(long, value_delimiter = ',')]
        member: Vec<String>,
        /// Channels it keeps, comma-separated
        #[arg(long, value_delimiter = ',')]
        channel: Vec<String>,
        /// Why, e.g. a case number
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Release hold ID (retention and erasure apply again to what it covered)
    Release {
        /// The hold's id (`hold list`)
        id: u64,
    },
    /// The holds in force
    List {
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
}

/// A number of days, or forever (`None`).
#[derive(Debug, Clone, Copy)]
pub struct Days(pub Option<u32>);

fn parse_days(s: &str) -> Result<Days, String> {
    if s.eq_ignore_ascii_case("forever") {
        return Ok(Days(None));
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Days(Some(n))),
        _ => Err(format!(
            "'{s}' is not a number of days (1 or more) or `forever`"
        )),
    }
}

/// A message as a person names it on the command line: its whole id, its link
/// (`majlis:message/…`, as the app's "Copy link" gives it), or its first
/// [`MessageId::SHORT_MIN`] or more hex digits as `history --ids` shows them, looked up in
/// this device's store (through the running node if there is one) before the command runs.
#[derive(Debug, Clone)]
pub struct MessageArg {
    /// The whole id; until `short` is looked up, its digits given and zeros.
    pub id: MessageId,
    /// The digits given, where fewer than all 64.
    short: Option<String>,
}

impl std::str::FromStr for MessageArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(id) = MessageId::from_link(s) {
            return Ok(MessageArg { id, short: None });
        }
        if s.len() == 64 {
            return s
                .parse()
                .map(|id| MessageArg { id, short: None })
                .map_err(|e: majlis_core::Error| e.to_string());
        }
        if s.len() < MessageId::SHORT_MIN
            || s.len() > 64
            || !s.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format!(
                "'{s}' is not a message id: give its first {} or more hex digits (`majlisd history --ids` shows eight), all 64, or its link (majlis:message/…)",
                MessageId::SHORT_MIN
            ));
        }
        Ok(MessageArg {
            id: MessageId([0; 32]),
            short: Some(s.to_string()),
        })
    }
}

impl Command {
    /// The message this command acts on, if it names one.
    fn message_mut(&mut self) -> Option<&mut MessageArg> {
        match self {
            Command::Remind { message, .. }
            | Command::Get { message, .. }
            | Command::Bookmark { message, .. }
            | Command::Forward { message, .. }
            | Command::Vote { message, .. }
            | Command::Reply { message, .. }
            | Command::Edit { message, .. }
            | Command::Delete { message }
            | Command::React { message, .. }
            | Command::Pin { message, .. }
            | Command::Thread { message, .. }
            | Command::History {
                before: Some(message),
                ..
            } => Some(message),
            _ => None,
        }
    }
}

/// The whole id of the message whose id starts with `prefix`, as the running node knows it.
fn resolve_remote(stream: std::os::unix::net::UnixStream, prefix: &str) -> Result<MessageId> {
    match api::call(
        stream,
        &Request::Resolve {
            prefix: prefix.to_string(),
        },
    )? {
        Response::Resolved { id } => Ok(id),
        Response::Error { message } => bail!(message),
        other => bail!("the node answered {other:?} where it should have named a message"),
    }
}

fn parse_date(s: &str) -> Result<u64, String> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .ok_or_else(|| format!("'{s}' is not a date; write 2026-01-31 or 2026-01-31T09:00:00Z"))
}

#[derive(Subcommand, Debug)]
pub enum PresenceCmd {
    /// Colleagues' statuses, and yours
    Show {
        /// Print JSON lines instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Set your status, seen by everyone in the org beside your name. Needs `majlisd run`
    Set {
        /// One line, up to 100 characters ("On leave until Monday")
        text: String,
        /// When it ends: a date (2026-12-14, from midnight UTC) or an RFC 3339 time
        #[arg(long, value_parser = parse_date, conflicts_with = "for_")]
        until: Option<u64>,
        /// How long it lasts: 30m, 2h, 3days
        #[arg(long = "for", id = "for_", value_parser = parse_for)]
        for_: Option<std::time::Duration>,
    },
    /// Clear your status. Needs `majlisd run`
    Clear,
}

/// A time as the CLI prints it (RFC 3339, UTC, to the second).
fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A status's length: `30m`, `2h`, `3days`.
fn parse_for(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("'{s}' is not a length of time; write 30m, 2h or 3days"))
}

#[derive(Subcommand, Debug)]
pub enum ChannelCmd {
    /// Create a channel; without --members it is open to everyone
    Create {
        /// The channel's name, e.g. sales
        name: String,
        /// Who may read and post, comma-separated member names (default: everyone)
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
    },
    /// Change who may read and post in CHANNEL (admins). Whoever is taken off stops
    /// receiving it at once and cannot open what is sent there afterwards; whoever is put on
    /// it reads its history
    #[command(group(clap::ArgGroup::new("how").required(true).args(["add", "remove", "only", "everyone"])))]
    Members {
        /// The channel's name
        channel: String,
        /// Put these members on it, comma-separated
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        add: Option<Vec<String>>,
        /// Take these members off it, comma-separated
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        remove: Option<Vec<String>>,
        /// Exactly these members, comma-separated (makes an open channel private)
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        only: Option<Vec<String>>,
        /// Open it to every member (guests excepted)
        #[arg(long)]
        everyone: bool,
    },
    /// Let only some of CHANNEL's readers post (announcements: the others read), or every
    /// reader again (admins)
    #[command(group(clap::ArgGroup::new("who").required(true).args(["only", "everyone"])))]
    Posters {
        /// The channel's name
        channel: String,
        /// Only these members post, comma-separated (each must read the channel)
        #[arg(long, value_delimiter = ',', value_name = "NAMES")]
        only: Option<Vec<String>>,
        /// Every reader posts again
        #[arg(long)]
        everyone: bool,
    },
    /// Let the readers of CHANNEL, where only some post, reply in its threads (questions
    /// under an announcement), or stop them (admins; what they replied stays)
    #[command(group(clap::ArgGroup::new("switch").required(true).args(["on", "off"])))]
    Replies {
        /// The channel's name
        channel: String,
        /// Its readers reply in threads
        #[arg(long)]
        on: bool,
        /// Only its posters reply
        #[arg(long)]
        off: bool,
    },
    /// Set the topic (one line) and description of CHANNEL or @NAME. Needs `majlisd run`
    Topic {
        /// A channel name, or @NAME
        channel: String,
        /// One line shown under the channel's name
        topic: String,
        /// Longer text shown with the channel
        #[arg(long, default_value = "")]
        description: String,
    },
    /// The topic, description, pinned messages and members of CHANNEL or @NAME. Needs
    /// `majlisd run`
    Show {
        /// A channel name, or @NAME
        channel: String,
        /// Print JSON instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Leave an open channel: it leaves your list on all your devices (you may still read it
    /// and join again). Needs `majlisd run`
    Leave {
        /// The channel's name
        channel: String,
    },
    /// Join an open channel you left. Needs `majlisd run`
    Join {
        /// The channel's name
        channel: String,
    },
    /// The channels you may read: who is on each, its topic, and whether it is archived or
    /// you left it
    List {
        /// Print JSON lines instead of text (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Archive CHANNEL (admins): its history stays readable, searchable and under
    /// retention and holds; nobody can post in it until it is unarchived
    Archive {
        /// The channel's name
        channel: String,
    },
    /// Bring an archived CHANNEL back (admins): members can post in it again
    Unarchive {
        /// The channel's name
        channel: String,
    },
    /// Rename CHANNEL (admins): everyone sees and types the new name from the next roster
    /// version on; its history, members and keys stay. Renaming it to its first name undoes
    /// the rename
    Rename {
        /// The channel's name now
        channel: String,
        /// The name it goes by from now on
        to: String,
    },
}

/// Whether stdout's reader has gone (see [`out!`]): a command that would go on printing
/// (`history --follow`) stops.
pub static READER_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `s` as it may be written to a terminal: control characters other than newline and tab
/// (an escape sequence in a colleague's message could move the cursor, rewrite what the
/// terminal shows or set its title) are written as escapes, `\u001b`. That is JSON's own
/// escape, so a JSON line stays the same JSON: serde escapes C0 controls itself but writes
/// C1 controls (U+0080 to U+009F, which some terminals obey too) as they are.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match bad(c) {
            true => out.push_str(&format!("\\u{:04x}", c as u32)),
            false => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Entry point of the `majlisd` binary.
pub fn main() -> ExitCode {
    unset_empty_settings();
    let cli = Cli::parse();
    init_tracing();
    match run_cli(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", printable(&explain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// The HTTP API's address (`--http`): IP:PORT, with what to give instead of std's "invalid
/// socket address syntax".
fn parse_http_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!(
            "'{s}' is not IP:PORT; give the address the API listens on as IP:PORT \
             (127.0.0.1:7480 for this host only, 0.0.0.0:7480 for the network)"
        )
    })
}

/// The environment variables that stand for global options.
const SETTINGS: [&str; 3] = [
    "MAJLIS_DATA",
    "MAJLIS_PASSPHRASE_FILE",
    "MAJLIS_REQUIRE_SEALED",
];

/// A setting given as empty (`Environment=MAJLIS_PASSPHRASE_FILE=` in a unit, an
/// `export X=` that meant to clear it) means "not set", as for most Unix tools; clap would
/// otherwise refuse it with "a value is required for '--passphrase-file'", naming an
/// option nobody typed. Runs first, before any thread starts.
fn unset_empty_settings() {
    for name in SETTINGS {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
}

/// The error, and what to do about it in `majlisd`'s own terms (core errors say what went
/// wrong; the advice, with flags, is the front end's).
pub fn explain(e: &anyhow::Error) -> String {
    // The chain of causes, each once: a core error often quotes its source in its own text
    // ("database error: {0}"), and `{:#}` would print that source a second time.
    let mut what = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if what.contains(&cause) {
            continue;
        }
        if !what.is_empty() {
            what.push_str(": ");
        }
        what.push_str(&cause);
    }
    match e
        .chain()
        .find_map(|c| c.downcast_ref::<majlis_core::Error>())
    {
        // A cause that ends its sentence ("… on 2026-12-07 05:02:31 UTC.") is continued,
        // not followed by ".;".
        Some(ce) => match advice(ce) {
            Some(a) => format!("{}; {a}", what.trim_end_matches('.')),
            None => what,
        },
        None => what,
    }
}

/// What a `majlisd` user does about a core error.
pub fn advice(e: &majlis_core::Error) -> Option<String> {
    use majlis_core::Error as E;
    const PASS: &str = "give --passphrase-file FILE (or MAJLIS_PASSPHRASE_FILE, or the systemd credential majlis-passphrase)";
    Some(match e {
        E::Removed { .. } => {
            "to use this directory again, run `majlisd init --name NAME` (a new device id, which an admin adds) and `majlisd org join ORG_ID`".into()
        }
        E::NoIdentity { .. } => {
            "run `majlisd init --name NAME` first, or pass the right --data DIR".into()
        }
        E::HasIdentity { .. } => "use another --data directory for a second device".into(),
        E::NoOrg => {
            "run `majlisd org create --name ORG`, or `majlisd org join ORG_ID` with the id an admin gives you".into()
        }
        E::InOrg { .. } => "use a new --data directory to join another org".into(),
        E::NotOnRoster => "give the output of `majlisd id` to an admin, who adds this device".into(),
        E::NeedPassphrase { .. } => PASS.into(),
        E::SealingUnavailable { .. } => format!("{PASS}, or drop --require-sealed"),
        E::Listen { .. } => "pick another --listen address".into(),
        E::Mdns(_) => "use --no-mdns and give peers with --peer ADDR".into(),
        E::Busy { .. } => {
            "a majlisd (or the app) has it open; a running majlisd carries out send, history, peers, stats, audit and roster commands itself, stop it for the others".into()
        }
        other => other.hint()?.into(),
    })
}

/// Whether `e` says another process holds the data directory.
fn is_busy(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<majlis_core::Error>(),
        Some(majlis_core::Error::Busy { .. })
    )
}

/// How long a command waits for a node that is starting (it holds the store before its
/// local API socket exists: `majlisd run &` then `majlisd send` at once).
const STARTING_NODE_WAIT: Duration = Duration::from_secs(15);

/// Wait for the socket of a node that holds `dir` to answer.
fn wait_for_node(socket: &std::path::Path) -> Option<std::os::unix::net::UnixStream> {
    let deadline = std::time::Instant::now() + STARTING_NODE_WAIT;
    while std::time::Instant::now() < deadline {
        if let Some(s) = api::connect(socket) {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAJLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,majlis_core=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub fn default_data_dir() -> Result<PathBuf> {
    majlis_core::profile::default_data_dir()
        .ok_or_else(|| anyhow!("cannot find a home directory; pass --data DIR"))
}

pub fn run_cli(mut cli: Cli) -> Result<()> {
    let dir = match cli.data {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let mut unlock = majlis_core::seal::Unlock::from_env();
    if cli.passphrase_file.is_some() {
        unlock.passphrase_file = cli.passphrase_file.clone();
    }
    unlock.require_sealed |= cli.require_sealed;
    if matches!(cli.command, Command::Run { .. }) {
        // A node already running for this directory holds it for good: say so at once,
        // rather than after waiting for the lock below.
        if api::connect(&dir.join(majlis_core::profile::SOCKET)).is_some() {
            bail!(
                "a node is already running for {} (its local socket answers); stop it first \
                 (Ctrl+C, or `systemctl stop majlisd` for the service), or give another --data DIR",
                dir.display()
            );
        }
        // A command run just before (`majlisd send` while the node starts) holds the
        // directory for a moment: wait for it rather than fail.
        unlock.lock_wait = Some(Duration::from_secs(10));
    }
    // A directory opened to find out whether a node holds it is kept for the command
    // itself: opening it a second time could lose a race with a `majlisd run` starting.
    let probed: std::cell::RefCell<Option<Profile>> = std::cell::RefCell::new(None);
    let open = |dir: &std::path::Path| -> Result<Profile> {
        if let Some(p) = probed.borrow_mut().take() {
            return Ok(p);
        }
        let p = Profile::open_with(dir, &unlock)?;
        warn_if_unsealed(&p);
        Ok(p)
    };
    let socket = dir.join(majlis_core::profile::SOCKET);
    if let Some(arg) = cli.command.message_mut().filter(|a| a.short.is_some()) {
        let prefix = arg.short.take().unwrap_or_default();
        arg.id = match api::connect(&socket) {
            Some(s) => resolve_remote(s, &prefix)?,
            None => match open(&dir) {
                Err(e) if is_busy(&e) => resolve_remote(wait_for_node(&socket).ok_or(e)?, &prefix)?,
                Err(e) => return Err(e),
                Ok(p) => {
                    let id = p.store().message_by_prefix(&prefix)?;
                    *probed.borrow_mut() = Some(p);
                    id
                }
            },
        };
    }
    // A join code names a device the running node sees asking to join.
    if let Command::Roster(RosterCmd::Add {
        device,
        code: Some(code),
        ..
    }) = &mut cli.command
    {
        let Some(stream) = api::connect(&socket) else {
            bail!("a join code names a device that the running node sees asking to join: start `majlisd run` for {}, wait a few seconds, then try again (or give --device)", dir.display());
        };
        let Response::Diagnosis { report } = api::call(stream, &Request::Diagnose)? else {
            bail!("majlisd answered the request for its diagnosis with something else");
        };
        *device = Some(device_with_code(&report, code)?);
    }
    if let Command::Send { text, .. } = &mut cli.command {
        if text == "-" {
            *text = text_from_stdin()?;
        }
    }
    if let Command::History {
        channel,
        limit,
        follow: true,
        ..
    } = &cli.command
    {
        return follow_history(&socket, &dir, &cli.command, channel, *limit);
    }
    // Commands a running node should carry out.
    let remote_req = match &cli.command {
        Command::Send {
            channel,
            text,
            at: None,
        } => Some(Request::Send {
            channel: channel.clone(),
            text: text.clone(),
        }),
        Command::Send {
            channel,
            text,
            at: Some(at),
        } => Some(Request::SendLater {
            channel: channel.clone(),
            text: text.clone(),
            at: *at,
        }),
        Command::Scheduled {
            cancel: Some(id), ..
        } => Some(Request::Unschedule { id: *id }),
        Command::Scheduled { cancel: None, .. } => Some(Request::Scheduled),
        Command::Remind { message, at, in_ } => Some(Request::Remind {
            message: message.id,
            at: at
                .unwrap_or_else(|| majlis_core::now_ms() + in_.map_or(0, |d| d.as_millis() as u64)),
        }),
        Command::Reminders {
            cancel: Some(id), ..
        } => Some(Request::Unremind { id: *id }),
        Command::Reminders { cancel: None, .. } => Some(Request::Reminders),
        Command::Threads { limit, .. } => Some(Request::Threads { limit: *limit }),
        Command::Search {
            query,
            limit,
            relevance,
            ..
        } => Some(Request::Search {
            query: query.clone(),
            limit: *limit,
            relevance: *relevance,
        }),
        Command::History {
            channel,
            limit,
            before,
            ..
        } => Some(Request::History {
            channel: channel.clone(),
            // One more than shown: whether there are older ones (see `print_response`).
            limit: limit.saturating_add(1),
            before: before.as_ref().map(|b| b.id),
        }),
        Command::Bookmark { message, remove } => Some(Request::Bookmark {
            message: message.id,
            on: !remove,
        }),
        Command::Forward { message, to } => Some(Request::Forward {
            message: message.id,
            to: to.clone(),
        }),
        Command::Poll {
            channel,
            question,
            options,
            multi,
        } => Some(Request::Poll {
            channel: channel.clone(),
            question: question.clone(),
            options: options.clone(),
            multi: *multi,
        }),
        Command::Vote {
            message,
            close: true,
            ..
        } => Some(Request::ClosePoll {
            message: message.id,
        }),
        Command::Vote {
            message, choices, ..
        } => Some(Request::Vote {
            message: message.id,
            choices: choices.iter().map(|c| usize::from(*c) - 1).collect(),
        }),
        Command::Reply {
            message,
            text,
            also_channel,
        } => Some(Request::Reply {
            message: message.id,
            text: text.clone(),
            also_channel: *also_channel,
        }),
        Command::Edit { message, text } => Some(Request::Edit {
            message: message.id,
            text: text.clone(),
        }),
        Command::Delete { message } => Some(Request::Delete {
            message: message.id,
        }),
        Command::React {
            message,
            emoji,
            remove,
        } => Some(Request::React {
            message: message.id,
            emoji: emoji.clone(),
            on: !remove,
        }),
        Command::Thread { message, .. } => Some(Request::Thread {
            message: message.id,
        }),
        Command::Pin { message, remove } => Some(Request::Pin {
            message: message.id,
            on: !remove,
        }),
        Command::Channel(ChannelCmd::Topic {
            channel,
            topic,
            description,
        }) => Some(Request::Topic {
            channel: channel.clone(),
            topic: topic.clone(),
            description: description.clone(),
        }),
        Command::Channel(ChannelCmd::Show { channel, .. }) => Some(Request::Details {
            channel: channel.clone(),
        }),
        Command::Channel(ChannelCmd::Leave { channel }) => Some(Request::Join {
            channel: channel.clone(),
            on: false,
        }),
        Command::Channel(ChannelCmd::Join { channel }) => Some(Request::Join {
            channel: channel.clone(),
            on: true,
        }),
        Command::Peers { .. } => Some(Request::Peers),
        Command::Presence(PresenceCmd::Show { .. }) => Some(Request::Statuses),
        Command::Presence(PresenceCmd::Clear) => Some(Request::SetStatus {
            text: String::new(),
            until: None,
        }),
        Command::Presence(PresenceCmd::Set { text, until, for_ }) => Some(Request::SetStatus {
            text: text.clone(),
            until: until.or(for_.map(|d| majlis_core::now_ms() + d.as_millis() as u64)),
        }),
        Command::Stats => Some(Request::Stats),
        Command::Status { .. } | Command::Org(OrgCmd::Link) => Some(Request::Status),
        Command::Org(OrgCmd::Invite { for_, stop }) => Some(Request::Invite {
            until: (!stop).then(|| majlis_core::now_ms() + for_.as_millis() as u64),
        }),
        Command::Share {
            channel,
            path,
            caption,
        } => Some(Request::Share {
            channel: channel.clone(),
            path: std::path::absolute(path)
                .with_context(|| format!("{} is not a usable path", path.display()))?,
            caption: caption.clone(),
        }),
        Command::Files { .. } => Some(Request::Files),
        Command::Get {
            message,
            out,
            timeout,
        } => {
            let out = std::path::absolute(out)
                .with_context(|| format!("{} is not a usable path", out.display()))?;
            if api::connect(&socket).is_none() {
                match open(&dir) {
                    Ok(p) => return save_offline(&p, &dir, &message.id, &out),
                    Err(e) if is_busy(&e) => drop(wait_for_node(&socket).ok_or(e)?),
                    Err(e) => return Err(e),
                }
            }
            return get_file(&socket, &dir, message.id, &out, *timeout);
        }
        Command::Doctor { .. } => Some(Request::Diagnose),
        Command::Audit { .. } => Some(Request::Audit),
        Command::Roster(RosterCmd::Show { .. }) => Some(Request::Roster),
        Command::Roster(RosterCmd::Requests { .. }) => Some(Request::Diagnose),
        Command::Channel(ChannelCmd::List { .. }) => Some(Request::Channels),
        Command::Roster(_)
        | Command::Channel(
            ChannelCmd::Create { .. }
            | ChannelCmd::Members { .. }
            | ChannelCmd::Archive { .. }
            | ChannelCmd::Unarchive { .. }
            | ChannelCmd::Rename { .. }
            | ChannelCmd::Posters { .. }
            | ChannelCmd::Replies { .. },
        )
        | Command::Retention(RetentionCmd::Set { .. })
        | Command::Hold(HoldCmd::Add { .. } | HoldCmd::Release { .. })
        | Command::Erase { .. } => Some(Request::ChangeRoster {
            changes: roster_changes(&cli.command)?,
        }),
        Command::Retention(RetentionCmd::Show { .. }) | Command::Hold(HoldCmd::List { .. }) => {
            Some(Request::Roster)
        }
        Command::Retention(RetentionCmd::Sweep) => Some(Request::Sweep),
        Command::Export { .. } => Some(Request::Export {
            spec: export_spec(&cli.command)?,
        }),
        _ => None,
    };
    if let Some(req) = remote_req {
        let stream = match api::connect(&socket) {
            Some(s) => Some(s),
            // No node answers. If one holds the directory it is starting: wait for it.
            None => match open(&dir) {
                Err(e) if is_busy(&e) => Some(wait_for_node(&socket).ok_or(e)?),
                Ok(p) => {
                    *probed.borrow_mut() = Some(p);
                    None
                }
                Err(_) => None,
            },
        };
        if let Some(stream) = stream {
            let resp = api::call(stream, &req)?;
            print_response(&cli.command, resp)?;
            if let Command::Erase { member } = &cli.command {
                if let Some(Response::Roster { roster: Some(r) }) =
                    api::connect(&socket).and_then(|s| api::call(s, &Request::Roster).ok())
                {
                    erase_note(&r, member)?;
                }
            }
            return Ok(());
        }
    }
    match cli.command {
        Command::Init { name } => {
            let p = Profile::init_with(&dir, &name, &unlock)?;
            warn_if_unsealed(&p);
            out!("initialized device '{name}' in {}", dir.display());
            out!("{}", p.device_id());
        }
        Command::Id => out!("{}", open(&dir)?.device_id()),
        Command::Org(OrgCmd::Create { name }) => {
            let p = open(&dir)?;
            let org = p.org_create(&name)?;
            out!("founded org '{name}'; you are its first admin");
            out!(
                "the org root key is sealed in {}; move it offline with `majlisd org root-key export` (see docs/security.md)",
                dir.join(majlis_core::profile::ROOT_KEY).display()
            );
            out!("{org}");
        }
        Command::Org(OrgCmd::RootKey(RootKeyCmd::Export {
            out,
            root_passphrase_file,
            keep,
        })) => {
            let p = open(&dir)?;
            let pass = majlis_core::seal::read_passphrase(&root_passphrase_file)?;
            p.export_root_key(&out, &pass, keep)?;
            out!(
                "the org root key is in {} sealed by its passphrase{}",
                out.display(),
                if keep {
                    "; a copy stays here"
                } else {
                    "; it was erased from this device"
                }
            );
        }
        Command::Org(OrgCmd::RootKey(RootKeyCmd::Import {
            file,
            root_passphrase_file,
        })) => {
            let p = open(&dir)?;
            let pass = majlis_core::seal::read_passphrase(&root_passphrase_file)?;
            let org = p.import_root_key(&file, &pass)?;
            out!("the root key of org {org} is back, sealed by its passphrase");
        }
        // No node runs (one that does answers `Status`, see `print_response`).
        Command::Org(OrgCmd::Link) => {
            let org = open(&dir)?.org()?.ok_or(majlis_core::Error::NoOrg)?;
            eprintln!("majlisd is not running for {}: the link names the org only; start `majlisd run` for one with this node's addresses", dir.display());
            out!("{}", majlis_core::invite::JoinLink::new(org, &[]));
        }
        Command::Org(OrgCmd::Join { org_id, wait }) => {
            let p = open(&dir)?;
            // A join link: the org, and where its nodes listen.
            let link = org_id
                .as_deref()
                .filter(|l| l.trim().starts_with(majlis_core::invite::PREFIX))
                .map(majlis_core::invite::JoinLink::parse)
                .transpose()?;
            // A long run of letters and digits was meant as an id: say it is a wrong one,
            // without listening to the network for a name nobody gives an org.
            let meant_as_id = |s: &str| s.len() >= 32 && s.chars().all(|c| c.is_ascii_alphanumeric());
            let org: OrgId = match (&link, org_id.as_deref().map(str::parse::<OrgId>)) {
                (Some(link), _) => link.org,
                (None, Some(Ok(org))) => org,
                (None, Some(Err(e))) if org_id.as_deref().is_some_and(meant_as_id) => {
                    return Err(e.into())
                }
                (None, asked) => {
                    let heard = majlis_core::discovery::invitations(wait)?;
                    let name = org_id.as_deref().filter(|_| asked.is_some());
                    let Some(name) = name else {
                        if heard.is_empty() {
                            bail!("no org invites newcomers on this network (heard for {}): ask an admin to invite (`majlisd org invite`, or the app's Admin view), or for the org id", humantime::format_duration(wait));
                        }
                        for i in &heard {
                            out!("{}\t{}", i.org_name, i.org);
                        }
                        out!("join one: majlisd org join NAME (or its id)");
                        return Ok(());
                    };
                    let named: Vec<_> = heard
                        .iter()
                        .filter(|i| i.org_name.to_lowercase() == name.trim().to_lowercase())
                        .collect();
                    match named[..] {
                        [one] => one.org.parse()?,
                        [] => bail!(
                            "'{name}' is neither an org id nor an org inviting on this network (heard: {}); ask an admin to invite (`majlisd org invite`) or for the org id",
                            match heard.is_empty() {
                                true => "none".to_string(),
                                false => heard.iter().map(|i| i.org_name.as_str()).collect::<Vec<_>>().join(", "),
                            }
                        ),
                        _ => bail!(
                            "several orgs named '{name}' invite on this network: {}. Ask your admin which id is theirs and join by it",
                            named.iter().map(|i| i.org.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                }
            };
            p.org_join(org)?;
            let peers = link.map(|l| l.peers).unwrap_or_default();
            let run = match peers.is_empty() {
                true => "on the org's network".to_string(),
                false => {
                    p.remember_peers(&peers)?;
                    format!("(it dials {} at every start)", peers.join(", "))
                }
            };
            let code = majlis_core::identity::join_code(&org, &p.device_id());
            out!("joined org {org}; run `majlisd run` {run}: its admins see this device asking to join as {}, with the join code {code} (they add it once it matches the code they see). Where they cannot see it, give an admin this device id:", p.name()?);
            out!("{}", p.device_id());
        }
        Command::Run {
            listen,
            peer,
            no_mdns,
            mesh_limit,
            print_messages,
            http,
        } => {
            // The webhook secrets are sealed with the directory's key: unlock it once here.
            let http = match http {
                Some(addr) => Some((addr, http::webhooks::Sealer::for_dir(&dir, &unlock)?)),
                None => None,
            };
            // And the peers of the join link this device joined with.
            let p = open(&dir)?;
            let mut peer = peer;
            for typed in p.remembered_peers()? {
                match majlis_core::net::parse_peer_addr(&typed) {
                    Ok(a) if !peer.contains(&a) => peer.push(a),
                    Ok(_) => {}
                    Err(e) => eprintln!("warning: the join link's peer {typed}: {e}"),
                }
            }
            let config = Config {
                peers: peer,
                mdns: !no_mdns,
                mesh_limit,
                listen: if listen.is_empty() {
                    Config::default().listen
                } else {
                    listen
                },
            };
            run_node(p, config, print_messages, http)?
        }
        Command::Api(ApiCmd::Webhook(cmd)) => {
            if !dir.is_dir() {
                bail!(
                    "{} is not a data directory; run `majlisd init` first or give --data DIR",
                    dir.display()
                );
            }
            let hooks = http::webhooks::Webhooks::new(&dir);
            match cmd {
                WebhookCmd::Add { name, channel, url } => {
                    let sealer = http::webhooks::Sealer::for_dir(&dir, &unlock)?;
                    let (w, secret) = hooks.add(&sealer, &name, &channel, &url)?;
                    eprintln!(
                        "webhook {:?} (id {}) sends every message of {} to {}; check X-Majlis-Signature with this secret (shown only now):",
                        w.name, w.id, w.channel, w.url
                    );
                    out!("{secret}");
                }
                WebhookCmd::List { json } => {
                    let list = hooks.list()?;
                    if list.is_empty() && !json {
                        out!("no outgoing webhooks; `majlisd api webhook add --name N --channel C --url URL` adds one");
                    }
                    for w in list {
                        if json {
                            out!(
                                "{}",
                                serde_json::json!({"id": w.id, "name": w.name, "channel": w.channel, "url": w.url, "created_at": w.created_at})
                            );
                        } else {
                            out!("{}  {}  {} -> {}", w.id, w.name, w.channel, w.url);
                        }
                    }
                }
                WebhookCmd::Remove { name } => {
                    let gone = hooks.remove(&name)?;
                    out!("removed webhook {:?} (id {})", gone.name, gone.id);
                }
                WebhookCmd::Redeliver { name, event } => {
                    let n = hooks.redeliver(&name, &event)?;
                    out!("{n} failed deliveries of webhook {name:?} will be sent again: within seconds by a running node, else at its next start");
                }
                WebhookCmd::Dead { json } => {
                    let dead = hooks.dead()?;
                    if dead.is_empty() && !json {
                        out!("no failed deliveries");
                    }
                    for d in dead {
                        if json {
                            out!("{}", serde_json::to_string(&d)?);
                        } else {
                            out!(
                                "{}  {}  message {}  {} attempts: {}",
                                humantime::format_rfc3339_seconds(
                                    UNIX_EPOCH + Duration::from_millis(d.at)
                                ),
                                d.webhook,
                                d.message,
                                d.attempts,
                                d.reason
                            );
                        }
                    }
                }
            }
        }
        Command::Api(ApiCmd::Hook(HookCmd::Create { name, channel })) => {
            if !dir.is_dir() {
                bail!(
                    "{} is not a data directory; run `majlisd init` first or give --data DIR",
                    dir.display()
                );
            }
            let (info, token) = http::tokens::Tokens::new(&dir).create_hook(&name, &channel)?;
            eprintln!(
                "webhook {:?} (id {}) posts into {channel}: POST {{\"text\": …}} to this path on the --http address; it is shown only now, keep it secret:",
                info.name, info.id
            );
            out!("/v1/hooks/{token}");
        }
        Command::Api(ApiCmd::Token(cmd)) => {
            if !dir.is_dir() {
                bail!(
                    "{} is not a data directory; run `majlisd init` first or give --data DIR",
                    dir.display()
                );
            }
            let tokens = http::tokens::Tokens::new(&dir);
            match cmd {
                TokenCmd::Create { name, scopes } => {
                    let (info, token) = tokens.create(&name, &scopes)?;
                    let scopes: Vec<String> = info.scopes.iter().map(|s| s.to_string()).collect();
                    eprintln!(
                        "token {:?} (id {}) with scopes {}; it is shown only now, keep it secret:",
                        info.name,
                        info.id,
                        scopes.join(",")
                    );
                    out!("{token}");
                }
                TokenCmd::List { json } => {
                    let list = tokens.list()?;
                    if json {
                        for t in &list {
                            out!(
                                "{}",
                                serde_json::to_string(&serde_json::json!({
                                    "id": t.id, "name": t.name, "scopes": t.scopes, "channel": t.channel, "created_at": t.created_at,
                                }))?
                            );
                        }
                    } else if list.is_empty() {
                        out!("no API tokens; `majlisd api token create --name N --scopes read,send` makes one");
                    } else {
                        for t in &list {
                            let scopes: Vec<String> =
                                t.scopes.iter().map(|s| s.to_string()).collect();
                            out!(
                                "{}  {}  {}  created {}",
                                t.id,
                                t.name,
                                scopes.join(","),
                                humantime::format_rfc3339_seconds(
                                    UNIX_EPOCH + Duration::from_millis(t.created_at)
                                )
                            );
                        }
                    }
                }
                TokenCmd::Revoke { name } => {
                    let gone = tokens.revoke(&name)?;
                    out!("revoked token {:?} (id {})", gone.name, gone.id);
                }
            }
        }
        Command::Send { at: Some(_), .. } | Command::Scheduled { cancel: Some(_), .. } => bail!(
            "messages for later are kept and sent by the running node: start `majlisd run` for {}, then try again",
            dir.display()
        ),
        Command::Remind { .. } | Command::Reminders { cancel: Some(_), .. } => bail!(
            "reminders are kept and said by the running node: start `majlisd run` for {}, then try again",
            dir.display()
        ),
        Command::Reminders { json, .. } => {
            let p = open(&dir)?;
            print_response(
                &Command::Reminders { cancel: None, json },
                Response::Reminders {
                    reminders: majlis_core::node::reminders_in(p.store()),
                },
            )?;
        }
        Command::Scheduled { json, .. } => {
            let p = open(&dir)?;
            print_response(
                &Command::Scheduled { cancel: None, json },
                Response::Scheduled {
                    scheduled: majlis_core::node::scheduled_in(p.store()),
                },
            )?;
        }
        Command::Send { channel, text, .. } => {
            let p = open(&dir)?;
            // A node that crashed here may have published seqs it did not keep: skip them.
            p.store().resume_reservations(&p.device_id())?;
            let envs = p.compose(&p.chain()?, &channel, &text)?;
            for env in &envs {
                p.store().outbox_add(&env.id)?;
            }
            p.store().flush()?;
            eprintln!("stored; it will be delivered when `majlisd run` reaches a peer");
            if let Some(env) = envs.last() {
                out!("{}", env.id);
            }
        }
        Command::Bookmark { message, remove } => {
            open(&dir)?.store().set_saved(&message.id, !remove)?;
            print_response(
                &Command::Bookmark { message, remove },
                Response::Bookmarked { on: !remove },
            )?;
        }
        Command::Org(OrgCmd::Invite { .. }) => bail!(
            "the running node announces an invitation: start `majlisd run` for {} (with mDNS), then try again",
            dir.display()
        ),
        Command::Presence(PresenceCmd::Set { .. } | PresenceCmd::Clear) => bail!(
            "a status is sent by the running node: start `majlisd run` for {}, then try again",
            dir.display()
        ),
        Command::Presence(PresenceCmd::Show { json }) => {
            let p = open(&dir)?;
            let head = p.chain()?.head().cloned();
            let statuses = head.as_ref().map_or(Vec::new(), |h| {
                majlis_core::status::load(p.store(), Some(h)).shown(h, majlis_core::now_ms())
            });
            print_response(
                &Command::Presence(PresenceCmd::Show { json }),
                Response::Statuses { statuses },
            )?;
        }
        Command::Reply { .. }
        | Command::Forward { .. }
        | Command::Poll { .. }
        | Command::Vote { .. }
        | Command::Edit { .. }
        | Command::Delete { .. }
        | Command::React { .. }
        | Command::Pin { .. }
        | Command::Channel(
            ChannelCmd::Topic { .. }
            | ChannelCmd::Show { .. }
            | ChannelCmd::Leave { .. }
            | ChannelCmd::Join { .. },
        ) => bail!(
            "replies, forwards, polls, votes, edits, deletions, reactions, pins and channel details are checked \
             by the running node: start `majlisd run` for {}, then try again",
            dir.display()
        ),
        Command::Thread { message, json, ids } => {
            let p = open(&dir)?;
            let messages = p.store().thread(&message.id)?;
            if messages.is_empty() {
                bail!("no message {} on this device", message.id);
            }
            let head = p.chain()?.head().cloned();
            let marks = Marks::of(
                head.as_ref(),
                &p.device_id(),
                p.store(),
                &messages[0].channel,
            )?;
            print_response(
                &Command::Thread { message, json, ids },
                Response::History { messages, marks },
            )?;
        }
        Command::Files { .. } => {
            // No node runs: what the data directory holds, nothing being fetched.
            let p = open(&dir)?;
            let files = majlis_core::node::files_at_rest(&p.blobs()?, p.store())?;
            if files.iter().any(|f| f.wanted && !f.complete) {
                eprintln!(
                    "majlisd is not running for {}: nothing downloads until it runs",
                    dir.display()
                );
            }
            print_response(&cli.command, Response::Files { files })?;
        }
        Command::Share { .. } | Command::Get { .. } => bail!(
            "files move between running nodes: start `majlisd run` for {}, then try again",
            dir.display()
        ),
        Command::Doctor { .. } => {
            // No node answers for this directory: that is the first problem.
            let p = open(&dir)?;
            let chain = p.chain()?;
            let listed = chain
                .head()
                .and_then(|h| h.member_of_device(&p.device_id()))
                .map(|m| m.name.clone());
            out!(
                "device {} ({}), roster version {}",
                p.device_id(),
                listed.as_deref().unwrap_or("not on the roster"),
                chain.version()
            );
            if p.org()?.is_none() {
                out!("PROBLEM: this device is in no organization yet (`majlisd org create` or `majlisd org join`)");
            } else if listed.is_none() {
                out!(
                    "PROBLEM: this device is not on the org roster: give `majlisd id` to an admin"
                );
            }
            out!("PROBLEM: no node is running for {}", dir.display());
            bail!(
                "majlisd is not running for {}; start it with `majlisd run`, then run doctor again",
                dir.display()
            );
        }
        Command::Threads { limit, .. } => {
            let p = open(&dir)?;
            let chain = p.chain()?;
            let me = chain
                .head()
                .and_then(|h| h.member_of_device(&p.device_id()))
                .map(|m| m.name.clone())
                .context("this device is on no roster yet, so it takes part in no thread")?;
            let taking_part = search_stored(
                &p,
                &majlis_core::node::threads_queries(&me),
                majlis_core::search::Order::Newest,
                majlis_core::node::THREADS_LOOK_BACK,
            )?;
            let threads = p
                .store()
                .threads_of(taking_part.iter().map(|h| &h.message), limit)?;
            let threads = threads
                .into_iter()
                .map(|t| ThreadLine::of(t, chain.head()))
                .collect();
            print_response(&cli.command, Response::Threads { threads })?;
        }
        cmd @ Command::Search { .. } => {
            let Command::Search {
                query,
                limit,
                relevance,
                ..
            } = &cmd
            else {
                unreachable!("matched above")
            };
            let (limit, relevance) = (*limit, *relevance);
            let p = open(&dir)?;
            let hits = search_stored(&p, &[query], search_order(relevance), limit)?;
            let chain = p.chain()?;
            print_response(
                &cmd,
                Response::Search {
                    hits: hits
                        .into_iter()
                        .map(|h| SearchHit::of(h, chain.head()))
                        .collect(),
                },
            )?;
        }
        Command::Status { json } => {
            let p = open(&dir)?;
            // A device in no org yet has a status too: its id, to give to an admin.
            let chain = match p.chain() {
                Err(majlis_core::Error::NoOrg) => None,
                chain => Some(chain?),
            };
            let head = chain.as_ref().and_then(|c| c.head());
            let member = head
                .and_then(|h| h.member_of_device(&p.device_id()))
                .map(|m| m.name.clone());
            let status = api::Status {
                running: false,
                device: p.device_id().to_string(),
                join_code: api::waiting_code(p.org()?, &p.device_id(), member.as_deref()),
                member,
                org: p.org()?.map(|o| o.to_string()),
                org_name: head.map(|h| h.roster.name.clone()),
                roster_version: chain.as_ref().map_or(0, |c| c.version()),
                uptime_secs: 0,
                peers: Vec::new(),
                listen: Vec::new(),
                accepted: 0,
                rejected: 0,
                records: p.store().message_count(),
                store_bytes: p.store().size_on_disk(),
                disk_free: p.store().disk_free(),
                disk_margin: majlis_core::store::min_free(),
                index: None,
            };
            print_response(&Command::Status { json }, Response::Status { status })?;
        }
        Command::Retention(RetentionCmd::Sweep) => {
            let s = open(&dir)?.sweep()?;
            print_response(
                &cli_sweep(),
                Response::Swept {
                    report: majlis_core::node::SweepReport {
                        expired: s.expired.len(),
                        erased: s.erased.len(),
                        files: s.files.len(),
                        scanned: s.scanned,
                        millis: 0,
                    },
                },
            )?;
        }
        cmd @ Command::Export { .. } => {
            let m = open(&dir)?.export(&export_spec(&cmd)?)?;
            print_response(
                &cmd,
                Response::Exported {
                    manifest: Box::new(m),
                },
            )?;
        }
        cmd @ (Command::History { .. }
        | Command::Peers { .. }
        | Command::Stats
        | Command::Audit { .. }
        | Command::Roster(_)
        | Command::Channel(_)
        | Command::Retention(_)
        | Command::Hold(_)
        | Command::Erase { .. }) => {
            let p = open(&dir)?;
            let resp = match &cmd {
                Command::History {
                    channel,
                    limit,
                    before,
                    ..
                } => {
                    p.require_org()?;
                    let head = p.chain()?.head().cloned();
                    let channel = match &head {
                        Some(h) => h.readable_channel(&p.device_id(), channel)?,
                        None => channel.clone(),
                    };
                    let before = api::page_end(p.store(), &channel, before.as_ref().map(|b| b.id))?;
                    Response::History {
                        messages: p.store().history_before(
                            &channel,
                            before,
                            limit.saturating_add(1),
                        )?,
                        marks: Marks::of(head.as_ref(), &p.device_id(), p.store(), &channel)?,
                    }
                }
                Command::Peers { .. } => Response::Peers { peers: vec![] },
                Command::Audit { .. } => Response::Audit {
                    entries: p.chain()?.audit(),
                    actions: p.store().actions()?,
                },
                Command::Stats => bail!(
                    "majlisd is not running for {}; start it with `majlisd run`",
                    dir.display()
                ),
                Command::Roster(RosterCmd::Requests { .. }) => bail!(
                    "requests to join are what a running node sees on the network: start `majlisd run` for {}, wait a few seconds, then try again",
                    dir.display()
                ),
                Command::Channel(ChannelCmd::List { .. }) => Response::Channels {
                    channels: match p.chain()?.head() {
                        Some(head) => majlis_core::conversation::channel_rows(
                            head,
                            &p.device_id(),
                            p.store(),
                        )?,
                        None => Vec::new(),
                    },
                },
                Command::Roster(RosterCmd::Show { .. })
                | Command::Retention(RetentionCmd::Show { .. })
                | Command::Hold(HoldCmd::List { .. }) => Response::Roster {
                    roster: p.chain()?.head().map(|h| h.roster.clone()),
                },
                _ => {
                    let mut chain = p.chain()?;
                    let v = p.change_roster_all(&mut chain, &roster_changes(&cmd)?)?;
                    Response::RosterChanged {
                        version: v.version(),
                    }
                }
            };
            print_response(&cmd, resp)?;
            if let Command::Erase { member } = &cmd {
                if let Some(h) = p.chain()?.head() {
                    erase_note(&h.roster, member)?;
                }
            }
        }
    }
    Ok(())
}

/// The roster changes `cmd` makes, signed as one version: a newcomer's full name with
/// their joining (`roster add --full-name`), else the one change.
fn roster_changes(cmd: &Command) -> Result<Vec<RosterChange>> {
    let mut changes = vec![roster_change(cmd)?];
    if let Command::Roster(RosterCmd::Add {
        name,
        full_name: Some(full),
        ..
    }) = cmd
    {
        changes.push(RosterChange::SetFullName {
            member: name.clone(),
            full_name: Some(full.clone()),
        });
    }
    Ok(changes)
}

fn roster_change(cmd: &Command) -> Result<RosterChange> {
    Ok(match cmd {
        Command::Roster(RosterCmd::Add {
            name, device, role, ..
        }) => RosterChange::AddMember {
            name: name.clone(),
            device: device.as_deref().unwrap_or_default().parse::<DeviceId>()?,
            role: role.as_deref().map(str::parse::<Role>).transpose()?,
        },
        Command::Roster(RosterCmd::Remove { name }) => {
            RosterChange::RemoveMember { name: name.clone() }
        }
        Command::Roster(RosterCmd::Revoke { device }) => RosterChange::RevokeDevice {
            device: device.parse()?,
        },
        Command::Roster(RosterCmd::Policy { channels, dms }) => RosterChange::SetPolicy {
            policy: Policy {
                members_create_channels: channels == "members",
                dms: dms.parse()?,
            },
        },
        Command::Roster(RosterCmd::Files {
            max_size,
            auto_download,
            types,
        }) => RosterChange::SetFilePolicy {
            files: majlis_core::roster::FilePolicy {
                max_bytes: parse_size_or_none(max_size).map_err(|e| anyhow!(e))?,
                auto_fetch_bytes: *auto_download,
                types: types
                    .iter()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            },
        },
        Command::Roster(RosterCmd::FullName {
            name,
            full_name,
            clear,
        }) => {
            if full_name.is_none() && !clear {
                bail!("give the full name (in quotes when it has spaces), or --clear to take {name}'s away");
            }
            RosterChange::SetFullName {
                member: name.clone(),
                full_name: full_name.clone(),
            }
        }
        Command::Roster(RosterCmd::Title { name, title, clear }) => {
            if title.is_none() && !clear {
                bail!("give the job title (in quotes when it has spaces), or --clear to take {name}'s away");
            }
            RosterChange::SetTitle {
                member: name.clone(),
                title: title.clone(),
            }
        }
        Command::Roster(RosterCmd::Group { name, members, .. }) => RosterChange::SetGroup {
            name: name.strip_prefix('@').unwrap_or(name).to_string(),
            members: members.clone(),
        },
        Command::Roster(RosterCmd::Receipts { setting }) => RosterChange::SetReadReceipts {
            receipts: match setting.as_str() {
                "off" => majlis_core::roster::ReadReceipts::Off,
                _ => majlis_core::roster::ReadReceipts::On,
            },
        },
        Command::Channel(ChannelCmd::Create { name, members }) => RosterChange::CreateChannel {
            name: name.clone(),
            members: members.clone(),
        },
        Command::Channel(ChannelCmd::Members {
            channel,
            add,
            remove,
            only,
            everyone: _,
        }) => RosterChange::ChannelMembers {
            name: channel.clone(),
            change: match (add, remove, only) {
                (Some(names), _, _) => MembersChange::Add(names.clone()),
                (_, Some(names), _) => MembersChange::Remove(names.clone()),
                (_, _, Some(names)) => MembersChange::Set(Some(names.clone())),
                _ => MembersChange::Set(None),
            },
        },
        Command::Channel(ChannelCmd::Posters { channel, only, .. }) => {
            RosterChange::ChannelPosters {
                name: channel.clone(),
                posters: only.clone(),
            }
        }
        Command::Channel(ChannelCmd::Replies { channel, on, .. }) => RosterChange::ChannelReplies {
            name: channel.clone(),
            on: *on,
        },
        Command::Channel(ChannelCmd::Archive { channel }) => RosterChange::ArchiveChannel {
            name: channel.clone(),
            archived: true,
        },
        Command::Channel(ChannelCmd::Unarchive { channel }) => RosterChange::ArchiveChannel {
            name: channel.clone(),
            archived: false,
        },
        Command::Channel(ChannelCmd::Rename { channel, to }) => RosterChange::RenameChannel {
            name: channel.clone(),
            to: to.clone(),
        },
        Command::Retention(RetentionCmd::Set {
            days,
            files_days,
            channel,
            dms,
        }) => RosterChange::SetRetention {
            scope: match (channel, dms) {
                (Some(c), _) => Scope::Channel(c.clone()),
                (None, true) => Scope::Dms,
                (None, false) => Scope::Org,
            },
            keep: Keep {
                days: days.0,
                files_days: files_days.and_then(|d| d.0),
            },
        },
        Command::Hold(HoldCmd::Add {
            member,
            channel,
            reason,
        }) => RosterChange::PlaceHold {
            members: member.clone(),
            channels: channel.clone(),
            reason: reason.clone(),
        },
        Command::Hold(HoldCmd::Release { id }) => RosterChange::ReleaseHold { id: *id },
        Command::Erase { member } => RosterChange::Erase {
            member: member.clone(),
        },
        _ => bail!("not a roster change"),
    })
}

/// What `majlisd export` asks for.
fn export_spec(cmd: &Command) -> Result<majlis_core::export::Spec> {
    let Command::Export {
        member,
        channel,
        all,
        from,
        to,
        format,
        out,
    } = cmd
    else {
        bail!("not an export");
    };
    use majlis_core::export::Scope as S;
    let scope = match (member, channel, all) {
        (Some(m), _, _) => S::Member(m.clone()),
        (_, Some(c), _) => S::Channel(c.clone()),
        _ => S::All,
    };
    Ok(majlis_core::export::Spec {
        scope,
        from: *from,
        to: *to,
        format: format.parse()?,
        out: std::path::absolute(out)
            .with_context(|| format!("{} is not a usable path", out.display()))?,
    })
}

fn cli_sweep() -> Command {
    Command::Retention(RetentionCmd::Sweep)
}

/// Holds win over erasure: say so when one covers the member just erased.
fn erase_note(r: &Roster, member: &str) -> Result<()> {
    let holds: Vec<String> = r
        .governance
        .holds
        .iter()
        .filter(|h| h.members.iter().any(|m| m == member) || !h.channels.is_empty())
        .map(|h| format!("hold {} ({})", h.id, h.describe(Some(r))))
        .collect();
    if holds.is_empty() {
        out!("{member}'s messages are erased on every node as it gets this roster version (offline nodes when they return)");
    } else {
        out!(
            "NOTE: legal holds win over erasure: what {} covers stays until released (`majlisd hold release ID`); everything else of {member}'s is erased now",
            holds.join(", ")
        );
    }
    Ok(())
}

fn print_governance(cmd: &Command, r: &Roster) -> Result<()> {
    let g = &r.governance;
    match cmd {
        Command::Hold(HoldCmd::List { json: true }) => {
            out!("{}", serde_json::to_string_pretty(&g.holds)?)
        }
        Command::Hold(_) => {
            if g.holds.is_empty() {
                out!("no legal holds (`majlisd hold add --member NAME` places one)");
            }
            for h in &g.holds {
                let t = UNIX_EPOCH + Duration::from_millis(h.placed_at);
                out!(
                    "hold {}: {} (placed {})",
                    h.id,
                    h.describe(Some(r)),
                    humantime::format_rfc3339_seconds(t)
                );
            }
        }
        Command::Retention(RetentionCmd::Show { json: true }) => {
            out!("{}", serde_json::to_string_pretty(g)?)
        }
        _ => {
            out!("retention: {}", g.retention.describe(Some(r)));
            for h in &g.holds {
                out!("hold {}: {}", h.id, h.describe(Some(r)));
            }
            for e in &g.erasures {
                let t = UNIX_EPOCH + Duration::from_millis(e.before);
                out!(
                    "erasure {}: everything {} wrote up to {}",
                    e.id,
                    e.member,
                    humantime::format_rfc3339_seconds(t)
                );
            }
        }
    }
    Ok(())
}

/// The device waiting to join whose join code is `code` (digits compared, spaces aside).
fn device_with_code(report: &majlis_core::diagnose::Report, code: &str) -> Result<String> {
    let digits = |c: &str| {
        c.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
    };
    let want = digits(code);
    if want.len() != 12 || !want.bytes().all(|b| b.is_ascii_digit()) {
        bail!("'{code}' is not a join code: it is twelve digits, as the newcomer's screen shows them (2134 9216 9286)");
    }
    match report
        .strangers
        .iter()
        .find(|s| s.this_org && !s.code.is_empty() && digits(&s.code) == want)
    {
        Some(s) => Ok(s.device.clone()),
        None => bail!("no device asking to join shows the code {code} (`majlisd roster requests` lists those that ask, with their codes): check the digits, and that the newcomer's node runs on this network"),
    }
}

/// Devices of this org not on the roster, as `roster requests` lists them: who each asks
/// to be, its join code, where it was seen, and the command that adds it.
fn print_requests(report: &majlis_core::diagnose::Report, json: bool) -> Result<()> {
    let waiting: Vec<&majlis_core::diagnose::Stranger> =
        report.strangers.iter().filter(|s| s.this_org).collect();
    if json {
        out!("{}", serde_json::to_string(&waiting)?);
        return Ok(());
    }
    if waiting.is_empty() {
        out!("no device is asking to join (a newcomer runs `majlisd org join ORG_ID`, then `majlisd run` on this network)");
        return Ok(());
    }
    for s in waiting {
        let asks = s.asks.as_deref().unwrap_or("(no name given)");
        let how = match (s.turned_away.is_some(), s.inbound) {
            (true, true) => "tried to connect",
            (true, false) => "answered at an address given to this node",
            (false, _) => "announces itself",
        };
        out!("{asks}\tcode {}\t{}\t{how}", s.code, s.device);
        if let Some(a) = s.addrs.first() {
            out!("  at {a}");
        }
        let name = s.asks.as_deref().unwrap_or("NAME");
        out!(
            "  if the code on its screen is {}: majlisd roster add --name {name} --device {}",
            s.code,
            s.device
        );
    }
    Ok(())
}

/// A `--limit`: 1 or more, so `--limit 0` is an error saying so, not an empty answer that
/// reads as "nothing there".
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 would show nothing; give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "'{s}' is not a count; give a whole number, 1 or more"
        )),
    }
}

/// Search what the store of `p` holds, with no node running: index it once, then run each
/// query, their hits one after another.
fn search_stored(
    p: &Profile,
    queries: &[impl AsRef<str>],
    order: majlis_core::search::Order,
    limit: usize,
) -> Result<Vec<majlis_core::search::Hit>> {
    p.require_org()?;
    let mut ix = majlis_core::search::SearchIndex::new()?;
    majlis_core::search::index_store(&mut ix, p.store(), "")?;
    ix.commit()?;
    let chain = p.chain()?;
    let mut hits = Vec::new();
    for query in queries {
        hits.extend(majlis_core::search::query(
            &ix,
            p.store(),
            query.as_ref(),
            chain.head(),
            &p.device_id(),
            order,
            limit,
        )?);
    }
    Ok(hits)
}

fn print_response(cmd: &Command, resp: Response) -> Result<()> {
    let json = matches!(
        cmd,
        Command::History { json: true, .. }
            | Command::Thread { json: true, .. }
            | Command::Channel(ChannelCmd::Show { json: true, .. })
            | Command::Search { json: true, .. }
            | Command::Peers { json: true }
            | Command::Roster(RosterCmd::Show { json: true })
            | Command::Roster(RosterCmd::Requests { json: true })
            | Command::Channel(ChannelCmd::List { json: true })
            | Command::Audit { json: true }
            | Command::Doctor { json: true, .. }
            | Command::Status { json: true }
            | Command::Presence(PresenceCmd::Show { json: true })
            | Command::Scheduled { json: true, .. }
            | Command::Reminders { json: true, .. }
            | Command::Threads { json: true, .. }
    );
    let ids = matches!(
        cmd,
        Command::History { ids: true, .. }
            | Command::Thread { ids: true, .. }
            | Command::Search { ids: true, .. }
            | Command::Threads { ids: true, .. }
    );
    // With `--ids`, a message's line starts with its short id.
    let id_of = |id: &MessageId| match ids {
        true => format!("{} ", id.short()),
        false => String::new(),
    };
    match resp {
        Response::Sent { id } | Response::Resolved { id } => out!("{id}"),
        // Only `follow` is answered so, and says more (see `follow_history`).
        Response::Missed { events } => eprintln!("majlisd: {events} events were dropped"),
        Response::Status { status } if matches!(cmd, Command::Org(OrgCmd::Link)) => {
            let org: majlis_core::identity::OrgId = status
                .org
                .as_deref()
                .ok_or(majlis_core::Error::NoOrg)?
                .parse()?;
            let listen: Vec<majlis_core::Multiaddr> =
                status.listen.iter().filter_map(|a| a.parse().ok()).collect();
            let link = majlis_core::invite::JoinLink::new(org, &listen);
            if link.peers.is_empty() {
                eprintln!("this node listens on no address another host can reach (loopback only?): the link names the org only; give `majlisd run` a --listen address on the network");
            }
            out!("{link}");
        }
        Response::Status { status } if json => out!("{}", serde_json::to_string(&status)?),
        Response::Status { status: s } => {
            let who = s.member.as_deref().unwrap_or("not on the roster yet");
            out!(
                "device {} ({who}), roster version {}",
                s.device, s.roster_version
            );
            match (&s.org, &s.org_name) {
                (Some(id), Some(name)) => out!("org {name} ({id})"),
                (Some(id), None) => out!("org {id} (its roster has not reached this device yet)"),
                _ => out!("in no organization yet (`majlisd org create` or `org join`)"),
            }
            if let Some(code) = &s.join_code {
                out!("waiting to join: an admin adds this device once the join code they see (`majlisd roster requests`, or the app's Admin view) is {code}");
            }
            if s.running {
                out!(
                    "running for {}, listening on {}",
                    humantime::format_duration(Duration::from_secs(s.uptime_secs)),
                    s.listen.join(", ")
                );
                match s.peers.is_empty() {
                    true => out!("connected to nobody"),
                    false => out!("connected to {} ({})", s.peers.len(), s.peers.join(", ")),
                }
                out!(
                    "{} messages taken since start, {} refused (`majlisd stats`)",
                    s.accepted, s.rejected
                );
            } else {
                out!("not running (`majlisd run` starts it)");
            }
            out!(
                "{} records held (messages and key grants), {} on disk",
                s.records,
                human_size(s.store_bytes)
            );
            if let Some(free) = s.disk_free {
                let margin = s.disk_margin;
                let full = match free < margin {
                    true => " (full: nothing new is stored; `majlisd doctor` says more)",
                    false if free < majlis_core::diagnose::LOW_DISK => " (nearly full)",
                    false => "",
                };
                out!(
                    "{} free on its disk{full}; Majlis keeps {} free",
                    human_size(free),
                    human_size(margin)
                );
            }
            if let Some(ix) = &s.index {
                out!(
                    "search index: {} message{}, {} in memory",
                    ix.messages,
                    if ix.messages == 1 { "" } else { "s" },
                    human_size(ix.bytes)
                );
            }
        }
        Response::History {
            mut messages,
            marks,
        } => {
            // `history` asks for one more than `--limit`: if it came, there are older ones,
            // and where they are is said (on stderr, for people).
            if let Command::History {
                channel,
                limit,
                follow: false,
                ..
            } = cmd
            {
                if messages.len() > *limit {
                    messages.drain(..messages.len() - limit);
                    if let (false, Some(first)) = (json, messages.first()) {
                        eprintln!(
                            "(older messages: majlisd history {} --before {})",
                            shell_word(channel),
                            first.id.short()
                        );
                    }
                }
            }
            for m in messages {
                let row = marks.row(m);
                if json {
                    out!("{}", serde_json::to_string(&row)?);
                } else {
                    let ticks = row
                        .receipt
                        .map_or(String::new(), |r| ticks(&r, &row.message.channel));
                    out!(
                        "{}{}{ticks}",
                        id_of(&row.message.id),
                        format_message(&row.message)
                    );
                }
            }
        }
        Response::Details {
            details,
            pinned,
            members,
        } if json => out!(
            "{}",
            serde_json::json!({ "details": details, "pinned": pinned, "members": members })
        ),
        Response::Details {
            details: d,
            pinned,
            members,
        } => {
            if d.archived {
                out!("archived: readable and searchable; nothing more can be posted");
            }
            out!("members: {}", members.join(", "));
            match &d.topic_by {
                Some((who, at)) => out!(
                    "topic: {} (set by {who}, {})",
                    d.topic,
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(*at))
                ),
                None => out!("topic: (none)"),
            }
            if !d.description.is_empty() {
                out!("description: {}", d.description);
            }
            out!("pinned: {}", pinned.len());
            // With its short id: what `pin --remove` takes.
            for m in &pinned {
                out!("  {} {}", m.id.short(), format_message(m));
            }
            if !d.left.is_empty() {
                out!("left: {}", d.left.join(", "));
            }
        }
        Response::Channels { channels } => {
            if channels.is_empty() && !json {
                out!("no channels: this device is not on the roster yet");
            }
            for c in channels {
                if json {
                    out!("{}", serde_json::to_string(&c)?);
                    continue;
                }
                let who = c
                    .members
                    .as_ref()
                    .map_or("everyone".to_string(), |m| m.join(", "));
                let mut line = format!("#{:<16} {who}", c.display_name);
                if c.display_name != c.name {
                    line.push_str(&format!("  (was #{})", c.name));
                }
                if c.archived {
                    line.push_str("  (archived)");
                }
                if let Some(p) = &c.posters {
                    line.push_str(&format!("  (posts: {})", p.join(", ")));
                }
                if c.readers_reply {
                    line.push_str("  (readers reply in threads)");
                }
                if c.left {
                    line.push_str("  (left)");
                }
                if !c.topic.is_empty() {
                    line.push_str(&format!("  {}", c.topic));
                }
                out!("{line}");
            }
        }
        Response::Threads { threads } => {
            if threads.is_empty() && !json {
                out!("no threads yet: `majlisd reply MESSAGE_ID TEXT` starts one");
            }
            let at = |ms: u64| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms));
            for t in threads {
                if json {
                    out!("{}", serde_json::to_string(&t)?);
                    continue;
                }
                let (root, last) = (&t.thread.root, &t.thread.last);
                let first = |m: &StoredMessage| match m.deleted {
                    true => majlis_core::conversation::DELETED_TEXT.to_string(),
                    false => m.text.lines().next().unwrap_or_default().to_string(),
                };
                out!(
                    "{}{} [{}] {}: {}",
                    id_of(&root.id),
                    t.shown,
                    at(root.sent_at),
                    root.sender,
                    first(root)
                );
                let n = root.replies;
                out!(
                    "    {n} {}, the latest [{}] {}: {}",
                    if n == 1 { "reply" } else { "replies" },
                    at(last.sent_at),
                    last.sender,
                    first(last)
                );
            }
        }
        Response::Search { hits } => {
            if hits.is_empty() && !json {
                out!("no messages found");
            }
            for h in hits {
                if json {
                    let mut v = serde_json::to_value(&h.message)?;
                    v["snippet"] = serde_json::Value::String(h.snippet);
                    out!("{}", serde_json::to_string(&v)?);
                } else {
                    let t = UNIX_EPOCH + Duration::from_millis(h.message.sent_at);
                    out!(
                        "{}{} [{}] {}: {}",
                        id_of(&h.message.id),
                        h.shown,
                        humantime::format_rfc3339_seconds(t),
                        h.message.sender,
                        h.snippet.replace('\n', " ")
                    );
                }
            }
        }
        Response::Scheduled { scheduled } => match cmd {
            Command::Send { .. } => {
                let s = scheduled.first().context("the node kept nothing")?;
                out!("kept; it is sent at {} (`majlisd scheduled` lists what waits)", when(s.at));
                out!("{}", s.id);
            }
            Command::Scheduled { cancel: Some(_), .. } => out!("taken off the schedule, unsent"),
            _ if json => {
                for s in scheduled {
                    out!("{}", serde_json::to_string(&s)?);
                }
            }
            _ if scheduled.is_empty() => out!("nothing is waiting to be sent"),
            _ => {
                for s in scheduled {
                    out!("{}\t{}\t{}\t{}", s.id, when(s.at), s.channel, s.text);
                }
            }
        },
        Response::Reminders { reminders } => match cmd {
            Command::Remind { .. } => {
                let r = reminders.first().context("the node kept nothing")?;
                out!("you will be reminded at {} (`majlisd reminders` lists them)", when(r.at));
                out!("{}", r.id);
            }
            Command::Reminders { cancel: Some(_), .. } => out!("reminder cancelled"),
            _ if json => {
                for r in reminders {
                    out!("{}", serde_json::to_string(&r)?);
                }
            }
            _ if reminders.is_empty() => out!("no reminders are waiting"),
            _ => {
                for r in reminders {
                    out!("{}\t{}\t{}\t{}", r.id, when(r.at), r.channel, r.message);
                }
            }
        },
        Response::Bookmarked { on: true } => {
            out!("saved for later; `majlisd search is:saved` lists what you saved")
        }
        Response::Bookmarked { on: false } => out!("taken off the list of saved messages"),
        Response::Statuses { statuses } if json => {
            for st in statuses {
                out!("{}", serde_json::to_string(&st)?);
            }
        }
        Response::Statuses { statuses } => match cmd {
            Command::Presence(PresenceCmd::Clear) => out!("your status is cleared"),
            Command::Presence(PresenceCmd::Set { .. }) => {
                out!("your status is set; colleagues see it beside your name")
            }
            _ if statuses.is_empty() => out!("nobody has set a status"),
            _ => {
                for st in statuses {
                    let until = st.until.map_or(String::new(), |t| {
                        format!(
                            "  (until {})",
                            humantime::format_rfc3339_seconds(
                                UNIX_EPOCH + std::time::Duration::from_millis(t)
                            )
                        )
                    });
                    out!("{:<16} {}{until}", st.member, st.text);
                }
            }
        },
        Response::Peers { peers } => {
            for p in peers {
                if json {
                    out!("{}", serde_json::to_string(&p)?);
                } else {
                    out!("{}\t{}\t{}", p.name, p.device, p.addr);
                }
            }
        }
        Response::Roster { roster: None } => {
            bail!("no roster yet: an admin must add this device and a peer must send it")
        }
        Response::Roster { roster: Some(r) }
            if matches!(cmd, Command::Retention(_) | Command::Hold(_)) =>
        {
            print_governance(cmd, &r)?
        }
        Response::Roster { roster: Some(r) } => {
            if json {
                out!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_roster(&r)?;
            }
        }
        Response::RosterChanged { version } => match cmd {
            Command::Hold(HoldCmd::Add { .. }) => out!(
                "placed legal hold {version} (roster version {version}); `majlisd hold release {version}` releases it"
            ),
            Command::Hold(HoldCmd::Release { id }) => {
                out!("released legal hold {id} (roster version {version})")
            }
            Command::Erase { member } => {
                out!("erasure {version} of {member}'s data requested (roster version {version})")
            }
            Command::Retention(_) => out!("retention set (roster version {version})"),
            Command::Channel(ChannelCmd::Archive { .. }) => out!(
                "archived: readable and searchable, nothing more can be posted (roster version {version})"
            ),
            Command::Channel(ChannelCmd::Unarchive { .. }) => {
                out!("open for posts again (roster version {version})")
            }
            // (A name with a '#' in front is refused: `to` is the name as stored.)
            Command::Channel(ChannelCmd::Rename { to, .. }) => out!(
                "renamed: everyone sees it as #{to} from roster version {version} on"
            ),
            Command::Channel(ChannelCmd::Posters {
                only: Some(names), ..
            }) => out!(
                "only {} {} there from roster version {version} on; everyone else on it reads",
                names.join(", "),
                if names.len() == 1 { "posts" } else { "post" }
            ),
            Command::Channel(ChannelCmd::Posters { .. }) => {
                out!("everyone on it posts again from roster version {version} on")
            }
            Command::Channel(ChannelCmd::Replies { on: true, .. }) => out!(
                "its readers reply in its threads from roster version {version} on"
            ),
            Command::Channel(ChannelCmd::Replies { .. }) => out!(
                "only its posters reply from roster version {version} on; what readers replied stays"
            ),
            Command::Roster(RosterCmd::FullName {
                name,
                full_name: Some(full),
                ..
            }) => out!(
                "everyone sees {name} as '{full}' from roster version {version} on; `@{name}` still mentions them"
            ),
            Command::Roster(RosterCmd::Title {
                name,
                title: Some(title),
                ..
            }) => out!("{name}'s job title is '{title}' from roster version {version} on"),
            Command::Roster(RosterCmd::Title { name, .. }) => {
                out!("{name} has no job title from roster version {version} on")
            }
            Command::Roster(RosterCmd::Group {
                name,
                members: Some(names),
                ..
            }) => out!(
                "@{} reaches {} from roster version {version} on",
                name.trim_start_matches('@'),
                names.join(", ")
            ),
            Command::Roster(RosterCmd::Group { name, .. }) => out!(
                "@{} is deleted from roster version {version} on",
                name.trim_start_matches('@')
            ),
            Command::Roster(RosterCmd::FullName { name, .. }) => out!(
                "{name} is shown by their roster name again from roster version {version} on"
            ),
            _ => out!("roster is now at version {version}"),
        },
        Response::Swept { report: r } => out!(
            "{} messages expired, {} erased, {} files removed ({} looked at)",
            r.expired, r.erased, r.files, r.scanned
        ),
        Response::Exported { manifest: m } => {
            let c = &m.counts;
            out!(
                "exported {} messages from {} channel(s), {} files and {} roster versions; manifest with BLAKE3 hashes: {}",
                c.messages,
                c.channels,
                c.files,
                c.roster_versions,
                match cmd {
                    Command::Export { out, .. } => out.join("manifest.json").display().to_string(),
                    _ => "manifest.json".into(),
                }
            );
        }
        Response::Audit { entries, actions } => {
            for e in entries {
                if json {
                    out!("{}", serde_json::to_string(&e)?);
                } else {
                    let t = UNIX_EPOCH + Duration::from_millis(e.issued_at);
                    let changes: Vec<String> = e
                        .changes
                        .iter()
                        .map(|c| serde_json::to_string(c).unwrap_or_default())
                        .collect();
                    out!(
                        "v{} {} signed by {} [{}…]: {}",
                        e.version,
                        humantime::format_rfc3339_seconds(t),
                        e.signed_by,
                        &e.hash[..12],
                        changes.join(" ")
                    );
                }
            }
            // Then what this device did alone (exports), from its own signed log.
            for a in actions {
                if json {
                    out!("{}", serde_json::to_string(&a)?);
                } else {
                    let t = UNIX_EPOCH + Duration::from_millis(a.action.at);
                    out!(
                        "action {} {} by {} on this device [{}…]{}: {} {}",
                        a.action.seq,
                        humantime::format_rfc3339_seconds(t),
                        a.action.member,
                        &a.hash[..12],
                        if a.verified {
                            ""
                        } else {
                            " TAMPERED: hash, signature or chain does not hold"
                        },
                        a.action.action,
                        a.action.detail
                    );
                }
            }
        }
        Response::Stats { stats } => out!("{}", serde_json::to_string(&stats)?),
        Response::Files { files } => {
            for f in files {
                if matches!(cmd, Command::Files { json: true }) {
                    out!("{}", serde_json::to_string(&f)?);
                } else {
                    // Named by the message that shares it, whose id `get` takes; a file
                    // whose message this device cannot open (a relay) by its contents' id.
                    let (name, get) = match (&f.name, f.message) {
                        (Some(n), Some(m)) => (
                            n.clone(),
                            get_command(&m, n),
                        ),
                        (None, Some(m)) => (format!("blob {}", f.blob), format!("message {m}")),
                        _ => (format!("blob {}", f.blob), String::new()),
                    };
                    out!(
                        "{name}\t{}\t{}\t{}\t{get}",
                        human_size(f.size),
                        file_state(&f),
                        f.channels.join(","),
                    );
                }
            }
        }
        Response::File { file } => out!("{}\t{}", file.blob, file_state(&file)),
        Response::Saved { path } => out!("{}", path.display()),
        Response::Invited { until: Some(t), org_name } => {
            out!("inviting newcomers on this network to {org_name} until {}: they run `majlisd org join {org_name}` (or pick it in the app), then `majlisd run`; `majlisd roster requests` lists them with their codes", when(t));
        }
        Response::Invited { until: None, .. } => out!("no longer inviting newcomers"),
        Response::Diagnosis { report } if matches!(cmd, Command::Roster(RosterCmd::Requests { .. })) => {
            print_requests(&report, json)?
        }
        Response::Diagnosis { report } => {
            let short = matches!(cmd, Command::Doctor { report: true, .. });
            return print_diagnosis(&report, json, short);
        }
        Response::Error { message } => bail!(message),
    }
    Ok(())
}

/// `majlisd doctor`: the facts and findings (as JSON for scripts; with shortened ids for a
/// ticket); an error (non-zero exit) if any finding is a problem.
fn print_diagnosis(r: &majlis_core::diagnose::Report, json: bool, short_ids: bool) -> Result<()> {
    use majlis_core::diagnose::Level;
    let findings = r.findings();
    if json {
        out!(
            "{}",
            serde_json::json!({ "report": r, "findings": findings })
        );
    } else {
        print!("{}", r.render(short_ids));
    }
    let n = findings
        .iter()
        .filter(|f| f.level == Level::Problem)
        .count();
    if n > 0 {
        bail!("{n} problem(s) found; see above (static peers: --peer ADDR; no multicast: --no-mdns with --peer)");
    }
    if !json {
        if findings.is_empty() {
            out!("nothing looks wrong");
        } else {
            out!("no problems; {} note(s) above", findings.len());
        }
    }
    Ok(())
}

/// Said at every start of a directory whose data key sits in a plain file beside the data.
fn warn_if_unsealed(p: &Profile) {
    if !p.sealing().is_sealed() {
        eprintln!(
            "warning: {} is NOT sealed: its data key is in a file beside the data (no OS keyring and no passphrase); give --passphrase-file or use --require-sealed to refuse",
            p.dir().display()
        );
    }
}

/// `--relevance` or newest first.
pub(crate) fn search_order(relevance: bool) -> majlis_core::search::Order {
    if relevance {
        majlis_core::search::Order::Relevance
    } else {
        majlis_core::search::Order::Newest
    }
}

/// The app's ticks on a message of ours, in words: "✓ sent", "✓✓ delivered" (a DM) or
/// "✓✓ delivered to N", then "✓✓ read" or "✓✓ read by N" once a reader's app showed it.
fn ticks(r: &majlis_core::conversation::Receipt, channel: &str) -> String {
    use majlis_core::conversation::Tick;
    // A DM of two says "delivered" and "read"; a group counts, as a channel does.
    let dm = majlis_core::roster::dm_members(channel).is_some_and(|n| n.len() == 2);
    match r.tick() {
        Tick::Sent => "  ✓ sent".into(),
        Tick::Delivered(_) if dm => "  ✓✓ delivered".into(),
        Tick::Delivered(n) => format!("  ✓✓ delivered to {n}"),
        Tick::Read(_) if dm => "  ✓✓ read".into(),
        Tick::Read(n) => format!("  ✓✓ read by {n}"),
    }
}

/// The command that downloads the file message `id` shares into `name` in the current
/// directory, ready to paste.
fn get_command(id: &majlis_core::MessageId, name: &str) -> String {
    format!("majlisd get {id} --out {}", shell_word(name))
}

/// `name` as one word for a POSIX shell: a file name comes from another member, and a hint
/// meant to be pasted must not run what it contains.
fn shell_word(name: &str) -> String {
    // A leading dash would read as an option: a path that starts with `./` does not.
    let name = match name.starts_with('-') {
        true => format!("./{name}"),
        false => name.to_string(),
    };
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ',' | '/'));
    match plain {
        true => name,
        false => format!("'{}'", name.replace('\'', "'\\''")),
    }
}

pub fn format_message(m: &StoredMessage) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(m.sent_at);
    // The command that downloads it is on the line, with the id `get` takes.
    let file = match &m.file {
        Some(f) if !m.locked => format!(
            "[file {} ({}); {}]{}",
            f.name,
            human_size(f.size),
            get_command(&m.id, &f.name),
            if m.text.is_empty() { "" } else { " " }
        ),
        _ => String::new(),
    };
    let mut tail = String::new();
    if m.deleted {
        return format!(
            "[{}] {}: [{}]",
            humantime::format_rfc3339_seconds(t),
            m.sender,
            m.text
        );
    }
    if m.edited {
        tail.push_str(" (edited)");
    }
    if let Some(p) = &m.poll {
        tail.push_str(&poll_line(&m.id, p));
    }
    for r in &m.reactions {
        tail.push_str(&format!(" [{} {}]", r.emoji, r.members.len()));
    }
    if m.replies > 0 {
        tail.push_str(&format!(
            " [{} repl{} from {}; majlisd thread {}]",
            m.replies,
            if m.replies == 1 { "y" } else { "ies" },
            m.repliers.join(", "),
            m.id
        ));
    }
    let reply = match m.act {
        Some(majlis_core::conversation::Act::Reply { .. }) => "↳ ",
        _ => "",
    };
    // Where a forward says it came from, and whether this device could check it.
    let file = match &m.forwarded {
        Some(f) => {
            use majlis_core::conversation::ForwardCheck;
            let check = match f.check {
                ForwardCheck::Matches => "matches the original",
                ForwardCheck::Differs => "DOES NOT MATCH the original",
                ForwardCheck::Unseen => "the original is not on this device",
            };
            format!(
                "[forwarded from {} in #{}; {check}] {file}",
                f.author, f.channel
            )
        }
        None => file,
    };
    format!(
        "[{}] {reply}{}: {file}{}{tail}",
        humantime::format_rfc3339_seconds(t),
        m.sender,
        m.text
    )
}

/// A message as it arrives (`run --print-messages`, `history --follow`): a message or reply
/// as `history` shows it; an edit, a reaction, a pin and the other acts say what they did
/// to which message (its short id, as `history --ids` shows it), not an empty line of their
/// author's; read receipts and a member's saved list say nothing.
pub fn arrival_line(m: &StoredMessage) -> Option<String> {
    use majlis_core::conversation::Act;
    let who = &m.sender;
    let what = match &m.act {
        None | Some(Act::Reply { .. }) => return Some(format_message(m)),
        Some(
            Act::Read { .. }
            | Act::Save { .. }
            | Act::Remind { .. }
            | Act::Pause { .. }
            | Act::Notify { .. }
            | Act::Hours { .. }
            | Act::Star { .. }
            | Act::Unread { .. }
            | Act::Seen { .. },
        ) => return None,
        Some(Act::Edit { of }) => format!("{who} edited {}: {}", of.short(), m.text),
        Some(Act::Delete { of }) => format!("{who} deleted {}", of.short()),
        Some(Act::React { to, emoji, on }) => match on {
            true => format!("{who} reacted {emoji} to {}", to.short()),
            false => format!("{who} took back {emoji} on {}", to.short()),
        },
        Some(Act::Pin { of, on }) => match on {
            true => format!("{who} pinned {}", of.short()),
            false => format!("{who} unpinned {}", of.short()),
        },
        Some(Act::Topic { topic, .. }) => format!("{who} set the topic: {topic}"),
        Some(Act::Join { on }) => match on {
            true => format!("{who} joined"),
            false => format!("{who} left"),
        },
        Some(Act::Vote { poll, .. }) => format!("{who} voted in {}", poll.short()),
        Some(Act::ClosePoll { of }) => format!("{who} closed the poll {}", of.short()),
    };
    let t = UNIX_EPOCH + Duration::from_millis(m.sent_at);
    Some(format!("[{}] {what}", humantime::format_rfc3339_seconds(t)))
}

/// A poll's options as `history` prints them: numbered as `majlisd vote` takes them, each
/// with who chose it, then how to vote or who closed it.
fn poll_line(id: &majlis_core::MessageId, p: &majlis_core::conversation::PollView) -> String {
    let options: Vec<String> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| match o.voters.is_empty() {
            true => format!("{}. {} (0)", i + 1, o.text),
            false => format!(
                "{}. {} ({}: {})",
                i + 1,
                o.text,
                o.voters.len(),
                o.voters.join(", ")
            ),
        })
        .collect();
    let how = match &p.closed {
        Some((by, _)) => format!("closed by {by}"),
        None if p.multi => format!("several may be chosen; majlisd vote {id} N…"),
        None => format!("majlisd vote {id} N"),
    };
    format!(" [poll: {}; {how}]", options.join(" · "))
}

fn file_state(f: &majlis_core::node::FileStatus) -> String {
    if f.complete {
        "complete".into()
    } else if f.wanted {
        format!(
            "downloading {}% from {} peer(s)",
            f.have as u64 * 100 / f.chunks.max(1) as u64,
            f.sources
        )
    } else {
        "not downloaded".into()
    }
}

/// A message's text from standard input (`send CHANNEL -`), without the newline that ends
/// the last line. Read to 1 MiB at most: the node refuses anything over its limit (32 KiB)
/// with the advice to share a file instead.
fn text_from_stdin() -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .context("reading the message from standard input")?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("the message on standard input is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// `history --follow`: the history, then each message as the running node shows it. The
/// node is asked to follow first and for the history second, so a message arriving in
/// between is printed once, not lost.
fn follow_history(
    socket: &std::path::Path,
    dir: &std::path::Path,
    cmd: &Command,
    channel: &str,
    limit: usize,
) -> Result<()> {
    use std::io::{BufRead, Write};
    let not_running = || {
        anyhow!(
            "`history --follow` shows messages as the running node gets them: start `majlisd run` for {}, then try again",
            dir.display()
        )
    };
    let stream = api::connect(socket).ok_or_else(not_running)?;
    let follow = Request::Follow {
        channel: channel.to_string(),
    };
    writeln!(stream.try_clone()?, "{}", serde_json::to_string(&follow)?)?;
    let mut lines = std::io::BufReader::new(stream).lines();
    let mut next = || -> Result<Option<Response>> {
        match lines.next() {
            None => Ok(None),
            Some(line) => match serde_json::from_str(&line.context("reading from majlisd")?)? {
                Response::Error { message } => bail!(message),
                r => Ok(Some(r)),
            },
        }
    };
    next()?.context("majlisd closed the connection; is it shutting down?")?;
    let history = api::call(
        api::connect(socket).ok_or_else(not_running)?,
        &Request::History {
            channel: channel.to_string(),
            limit,
            before: None,
        },
    )?;
    let mut seen = std::collections::HashSet::new();
    if let Response::History { messages, .. } = &history {
        seen.extend(messages.iter().map(|m| m.id));
    }
    print_response(cmd, history)?;
    end_with_the_reader();
    while !READER_GONE.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(resp) = next()? else {
            bail!("majlisd stopped")
        };
        let (messages, marks) = match resp {
            Response::History { messages, marks } => (messages, marks),
            Response::Missed { events } => {
                eprintln!(
                    "majlisd: the node was busier than this follow could keep up with ({events} events dropped): some messages may be missing here; `majlisd history {channel}` shows all it holds"
                );
                continue;
            }
            _ => continue,
        };
        let json = matches!(cmd, Command::History { json: true, .. });
        for m in messages.into_iter().filter(|m| seen.insert(m.id)) {
            // An edit, a reaction, a pin…: what it did, where `history` would fold it in.
            let act = !majlis_core::conversation::Act::is_message(m.act.as_ref());
            match arrival_line(&m) {
                None => {}
                Some(line) if act && !json => out!("{line}"),
                Some(_) => print_response(
                    cmd,
                    Response::History {
                        messages: vec![m],
                        marks: marks.clone(),
                    },
                )?,
            }
        }
    }
    Ok(())
}

/// A follow that writes into a pipe ends when the pipe's reader does (`majlisd history -f
/// | grep -m1 deploy` in a script), as `tail -f` does, not at the next message it would
/// write, which may be hours away: a thread waits for the pipe to report its reader gone,
/// and ends the process (nothing is held that needs closing). A terminal or a file never
/// reports that.
fn end_with_the_reader() {
    #[cfg(unix)]
    let _ = std::thread::Builder::new()
        .name("stdout-watch".into())
        .spawn(|| loop {
            let mut fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            };
            // SAFETY: one pollfd on the stack, for a descriptor this process holds open.
            let n = unsafe { libc::poll(&mut fd, 1, -1) };
            if n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                std::process::exit(0);
            }
            // Anything else (a closed descriptor) ends the watch, never a busy loop.
            if n > 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return;
            }
        });
}

/// `majlisd get` with no node running: a file already downloaded here is saved from the
/// data directory (a backup, a stopped laptop); one that is not says how to get it.
fn save_offline(
    p: &Profile,
    dir: &std::path::Path,
    message: &MessageId,
    out: &std::path::Path,
) -> Result<()> {
    if !p.store().has_message(message)? {
        bail!("no message {message} on this device (`majlisd history` lists their ids)");
    }
    let chain = p.chain()?;
    let (blob, info) = majlis_core::node::openable_file(p.store(), chain.head(), message)?;
    match p.blobs()?.export(&blob, &info, out) {
        Err(majlis_core::Error::NotReady(_)) => bail!(
            "file {} is not downloaded on this device yet: start `majlisd run` for {}, then `majlisd get` again (it downloads from the peers that have it)",
            blob.id,
            dir.display()
        ),
        saved => saved?,
    }
    eprintln!("saved");
    out!("{}", out.display());
    Ok(())
}

/// `majlisd get`: ask the running node to fetch, show progress until complete, then save.
fn get_file(
    socket: &std::path::Path,
    dir: &std::path::Path,
    message: MessageId,
    out: &std::path::Path,
    timeout: u64,
) -> Result<()> {
    let call = |req: &Request| -> Result<Response> {
        let stream = api::connect(socket).ok_or_else(|| {
            anyhow!(
                "files move between running nodes: start `majlisd run` for {}, then try again",
                dir.display()
            )
        })?;
        api::call(stream, req)
    };
    let Response::File { file } = call(&Request::Fetch { message })? else {
        bail!("unexpected answer from majlisd");
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
    let bar = indicatif::ProgressBar::new(file.size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    loop {
        let Response::Files { files } = call(&Request::Files)? else {
            bail!("unexpected answer from majlisd");
        };
        let f = files
            .into_iter()
            .find(|f| f.blob == file.blob)
            .ok_or_else(|| anyhow!("majlisd forgot file {}", file.blob))?;
        let done = (f.have as u64 * file.size / f.chunks.max(1) as u64).min(file.size);
        bar.set_position(done);
        bar.set_message(format!("from {} peer(s)", f.sources));
        if f.complete {
            break;
        }
        if std::time::Instant::now() > deadline {
            bar.abandon();
            bail!(
                "file {} is not complete after {timeout} s ({} of {} chunks, {} peer(s) have it now); it keeps downloading while majlisd runs: run `majlisd get` again later",
                f.blob, f.have, f.chunks, f.sources
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
    let Response::Saved { path } = call(&Request::Save {
        message,
        out: out.to_path_buf(),
    })?
    else {
        bail!("unexpected answer from majlisd");
    };
    eprintln!("saved");
    out!("{}", path.display());
    Ok(())
}

fn print_roster(r: &Roster) -> Result<()> {
    out!("org {} ({}), roster version {}", r.name, r.org, r.version);
    let archives: Vec<&str> = r.archives().map(|m| m.name.as_str()).collect();
    if archives.is_empty() {
        out!("messages are end-to-end encrypted: only the members of a channel or DM can read it");
    } else {
        out!(
            "messages are end-to-end encrypted, and this org ARCHIVES them: {} can read every channel and DM",
            archives.join(", ")
        );
    }
    out!("members:");
    for m in &r.members {
        let devs: Vec<String> = m.devices.iter().map(|d| d.to_string()).collect();
        let full = match (r.full_name(&m.name), r.title(&m.name)) {
            (Some(f), Some(t)) => format!("  ({f}, {t})"),
            (Some(n), None) | (None, Some(n)) => format!("  ({n})"),
            (None, None) => String::new(),
        };
        out!(
            "  {:<16} {:<7} {}{full}",
            m.name,
            m.role.to_string(),
            devs.join(" ")
        );
    }
    out!(
        "policy: channels created by {}, direct messages {}",
        if r.policy.members_create_channels {
            "members"
        } else {
            "admins"
        },
        match r.policy.dms {
            majlis_core::roster::DmPolicy::Off => "off",
            majlis_core::roster::DmPolicy::Members => "between members",
            majlis_core::roster::DmPolicy::All => "for everyone incl. guests",
        }
    );
    out!(
        "files: up to {}, downloaded at once up to {}, types: {}",
        r.files.max_bytes.map_or("any size".into(), human_size),
        human_size(r.files.auto_fetch_bytes),
        if r.files.types.is_empty() {
            "any".to_string()
        } else {
            r.files.types.join(", ")
        }
    );
    out!("channels:");
    for c in &r.channels {
        let who = c
            .members
            .as_ref()
            .map_or("everyone".to_string(), |m| m.join(", "));
        let archived = if r.is_archived(&c.name) {
            "  (archived)"
        } else {
            ""
        };
        let shown = r.shown(&c.name);
        let was = match shown == c.name {
            true => String::new(),
            false => format!("  (was {})", c.name),
        };
        let mut posts = r
            .posters(&c.name)
            .map_or(String::new(), |p| format!("  (posts: {})", p.join(", ")));
        if r.readers_reply(&c.name) {
            posts.push_str("  (readers reply in threads)");
        }
        out!("  {shown:<16} {who}{archived}{was}{posts}");
    }
    if !r.groups.is_empty() {
        out!("groups (one mention reaches each member):");
        for (g, members) in &r.groups {
            let who = match members.is_empty() {
                true => "nobody".to_string(),
                false => members.join(", "),
            };
            out!("  @{g:<15} {who}");
        }
    }
    Ok(())
}

/// `println!` for a long-running node: stdout may be a pipe that closed or a log file on a
/// failing disk, and a status line that cannot be written must not bring the node down
/// (`println!` panics then).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{}", $crate::printable(&format!($($t)*)));
    }};
}

/// `eprintln!` that never panics (see [`say!`]).
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

fn run_node(
    profile: Profile,
    config: Config,
    print_messages: bool,
    http: Option<(std::net::SocketAddr, http::webhooks::Sealer)>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let socket = profile.socket_path();
        let dir = profile.dir().to_path_buf();
        // Uploads a crash left behind (plaintext on its way into the blob store): gone.
        let _ = std::fs::remove_dir_all(dir.join(http::UPLOADS));
        let node = Node::start(profile, config).await?;
        // A leftover socket from a killed node: nobody answers on it, so replace it.
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("cannot create the local API socket {}", socket.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        }
        tokio::spawn(api::serve(listener, node.clone()));
        if let Some((addr, sealer)) = http {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve the HTTP API on {addr}; pick another --http address"))?;
            say!("HTTP API on http://{}", l.local_addr()?);
            if !addr.ip().is_loopback() {
                say_err!("warning: the HTTP API on {addr} is reachable from the network in plain HTTP; tokens guard it, but anyone on the path can read the traffic");
            }
            let (node, dir) = (node.clone(), dir.clone());
            tokio::spawn(async move { http::serve(l, node, &dir, sealer).await });
        }
        let mut events = node.subscribe();
        say!("device {} running", node.device_id());
        for a in node.listen_addrs().await? {
            say!("listening on {a}");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                ev = events.recv() => match ev {
                    // A message with its short id, which an act arriving later names (printed
                    // again once it opens, if it came before its key).
                    Ok(Event::Message(m) | Event::Unlocked(m)) if print_messages => if let Some(line) = arrival_line(&m) {
                        let id = match majlis_core::conversation::Act::is_message(m.act.as_ref()) {
                            true => format!("{} ", m.id.short()),
                            false => String::new(),
                        };
                        say!("#{} {id}{line}", majlis_core::roster::shown_in(node.roster_now().as_deref(), &m.channel))
                    },
                    Ok(Event::Message(_) | Event::Unlocked(_) | Event::KeysReceived { .. } | Event::Typing { .. } | Event::Away { .. } | Event::Status(_) | Event::Delivered { .. } | Event::Presence { .. }) => {}
                    Ok(Event::PeerConnected { name, device }) => say!("connected to {name} ({device})"),
                    Ok(Event::PeerDisconnected { device }) => say!("disconnected from {device}"),
                    Ok(Event::RosterChanged { version }) => say!("roster is now at version {version}"),
                    Ok(Event::Listening(a)) => tracing::debug!("listening on {a}"),
                    Ok(Event::Rejected { .. }) => {}
                    // The text stays out of the log unless messages are printed.
                    Ok(Event::ScheduledFailed { channel, why, .. }) => say_err!("a message kept for later in {channel} was not sent: {why}"),
                    // Said to the user; its text only where messages are printed.
                    Ok(Event::Reminder { reminder, message }) if print_messages => say!("reminder {}: #{} {}", reminder.id, majlis_core::roster::shown_in(node.roster_now().as_deref(), &message.channel), format_message(&message)),
                    Ok(Event::Reminder { reminder, .. }) => say!("reminder {}: message {} in {}", reminder.id, reminder.message, reminder.channel),
                    // Neither: a refused fork taken back (the node logs why).
                    Ok(Event::Swept { expired: 0, erased: 0, .. }) => {}
                    Ok(Event::Swept { expired, erased, .. }) => say!("retention removed {expired} expired messages; erasure requests removed {erased}"),
                    Ok(Event::FileReady { blob }) => tracing::info!("file {blob} is complete"),
                    Ok(Event::Wiped { version, erased }) => {
                        match erased {
                            Ok(()) => say!("this device was removed from the org roster (version {version}); its keys and local history have been erased"),
                            Err(e) => say_err!("this device was removed from the org roster (version {version}), but erasing its data failed: {e}"),
                        }
                        let _ = std::fs::remove_file(&socket);
                        return Ok(());
                    }
                    Ok(Event::StoreFailed { error }) => {
                        // Commands in flight already have their answers ("not saved"):
                        // let the API tasks write them before the process goes.
                        let _ = std::fs::remove_file(&socket);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        bail!("the disk failed under {} ({error}). The node stopped so that nothing more is lost: every acknowledged message is on disk, a send that failed was not saved. Check the disk (dmesg, smartctl), then start majlisd again (as a service it is restarted by itself)", dir.display());
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => say!("{n} events came faster than this output was read and are not printed here; `majlisd history CHANNEL` shows every message held"),
                    Err(_) => break,
                }
            }
        }
        say!("shutting down");
        node.shutdown().await?;
        let _ = std::fs::remove_file(&socket);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::shell_word;
    use clap::CommandFactory;

    /// A file name from another member, pasted from a hint, is one word and runs nothing.
    #[test]
    fn a_file_name_in_a_pasteable_hint_is_one_shell_word() {
        assert_eq!(shell_word("report.pdf"), "report.pdf");
        assert_eq!(shell_word("تقرير.pdf"), "تقرير.pdf");
        assert_eq!(shell_word("q3 figures.xlsx"), "'q3 figures.xlsx'");
        assert_eq!(shell_word("x; rm -rf ~"), "'x; rm -rf ~'");
        assert_eq!(shell_word("it's $(id)"), "'it'\\''s $(id)'");
        assert_eq!(shell_word("-rf"), "./-rf");
        assert_eq!(shell_word(""), "''");
    }

    /// A wrong `--http` address says what to give; alone, `--http` takes loopback.
    #[test]
    fn a_wrong_http_address_says_what_to_give() {
        use clap::Parser;
        let e = super::Cli::try_parse_from(["majlisd", "run", "--http", "999.1.1.1:80"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'999.1.1.1:80' is not IP:PORT"), "{e}");
        assert!(e.contains("127.0.0.1:7480"), "{e}");
        let cli = super::Cli::try_parse_from(["majlisd", "run", "--http"]).unwrap();
        let super::Command::Run { http, .. } = cli.command else {
            panic!("run")
        };
        assert_eq!(http, Some("127.0.0.1:7480".parse().unwrap()));
    }

    /// `--limit 0` is refused with the range to give, not answered with nothing.
    #[test]
    fn a_limit_of_nothing_is_refused() {
        use clap::Parser;
        for args in [
            &["history", "general"][..],
            &["threads"][..],
            &["search", "van"][..],
        ] {
            let argv = [&["majlisd"][..], args, &["--limit", "0"][..]].concat();
            let e = super::Cli::try_parse_from(argv).unwrap_err().to_string();
            assert!(
                e.contains("0 would show nothing; give 1 or more"),
                "{args:?}: {e}"
            );
            let argv = [&["majlisd"][..], args, &["--limit", "ten"][..]].concat();
            let e = super::Cli::try_parse_from(argv).unwrap_err().to_string();
            assert!(e.contains("'ten' is not a count"), "{args:?}: {e}");
            let argv = [&["majlisd"][..], args, &["--limit", "1"][..]].concat();
            assert!(super::Cli::try_parse_from(argv).is_ok(), "{args:?}");
        }
    }

    /// A core error that quotes its source is printed once, with the advice after it.
    #[test]
    fn an_error_is_explained_without_repeating_its_cause() {
        let e: anyhow::Error = majlis_core::Error::Roster(majlis_core::roster::RosterError::Rule(
            "version 3 is for another org".into(),
        ))
        .into();
        assert_eq!(
            super::explain(&e),
            "roster rejected: version 3 is for another org"
        );
        let e: anyhow::Error = majlis_core::Error::Removed {
            dir: "b".into(),
            note: "This device was removed on 2026-12-07 05:02:31 UTC.".into(),
            at: None,
        }
        .into();
        assert!(
            super::explain(&e).starts_with("b: This device was removed on 2026-12-07 05:02:31 UTC; to use this directory again, run"),
            "{}",
            super::explain(&e)
        );
        let e = anyhow::Error::from(majlis_core::Error::NoOrg).context("sending");
        assert_eq!(
            super::explain(&e),
            format!(
                "sending: this device is in no organization yet; {}",
                super::advice(&majlis_core::Error::NoOrg).unwrap()
            )
        );
    }

    /// Every command and every argument says what it is for in `--help`: an admin on a
    /// server has the help text and nothing else.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !matches!(id, "help" | "version") && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let here = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(here.clone());
                }
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "majlisd", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
