//! Full-text search over every message this node can read (their text, file names and
//! captions), with tantivy. The index is derived: built from the store at start, updated as
//! messages arrive, never the source of truth. It is kept in memory, not on disk: a search
//! index holds the words of every message in the clear, and the data directory is sealed
//! (docs/security.md), so an on-disk index would undo that. The cost is a rebuild at every
//! start (measured in docs/benchmarks.md); the gain is that a crash can never leave it wrong.
//!
//! A node indexes what it can read: messages it holds no key for (another member's private
//! channel) are never indexed, so they never appear in results.

pub mod query;
pub mod text;

use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::message::MessageId;
use crate::store::StoredMessage;

pub use query::{parse, In, Query};

/// During a long build, commit every this many messages (see [`SearchIndex::add`]).
const COMMIT_DOCS: u64 = 200_000;

/// The analyzer's name in the index.
const ANALYZER: &str = "majlis";

/// Words as [`text::words`] makes them, for tantivy.
#[derive(Clone, Default)]
struct Analyzer;

struct Words {
    tokens: Vec<Token>,
    at: usize,
}

impl Tokenizer for Analyzer {
    type TokenStream<'a> = Words;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Words {
        let tokens = text::words(text)
            .into_iter()
            .enumerate()
            .map(|(position, w)| Token {
                offset_from: w.from,
                offset_to: w.to,
                position,
                text: w.term,
                position_length: 1,
            })
            .collect();
        Words { tokens, at: 0 }
    }
}

impl TokenStream for Words {
    fn advance(&mut self) -> bool {
        self.at += 1;
        self.at <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.at - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.at - 1]
    }
}

#[derive(Clone, Copy)]
struct Fields {
    /// The message id's 32 bytes, stored (not indexed): where a hit's message comes from.
    id: Field,
    /// The id's first 8 bytes as a number, indexed: what replacing or removing a message
    /// deletes by. Indexing the id itself (64 hex characters, one unique term per message)
    /// made building the term dictionary the largest part of live indexing; a 64-bit key
    /// costs an eighth of that. Two ids sharing it would take 2^64 tries to make, and would
    /// only drop a message from results.
    key: Field,
    channel: Field,
    sender: Field,
    text: Field,
    sent_at: Field,
    has: Field,
    mention: Field,
}

/// Newest first, or best match first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Newest,
    Relevance,
}

/// One result: the message, and a piece of its text around the match with the matched
/// byte ranges of that piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: MessageId,
    /// The message as history shows it.
    pub message: StoredMessage,
    pub snippet: String,
    pub highlights: Vec<(usize, usize)>,
}

impl Hit {
    /// The snippet with matches marked by `open` and `close` (e.g. `[`/`]` in a terminal).
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for &(a, b) in &self.highlights {
            out.push_str(&self.snippet[at..a]);
            out.push_str(open);
            out.push_str(&self.snippet[a..b]);
            out.push_str(close);
            at = b;
        }
        out.push_str(&self.snippet[at..]);
        out
    }
}

/// What is indexed of a message: its text (a file's caption, a poll's question), its file's
/// name, a poll's options.
fn body_of(m: &StoredMessage) -> String {
    let mut body = m.text.clone();
    if let Some(f) = &m.file {
        body.push('\n');
        body.push_str(&f.name);
    }
    for o in m.poll.iter().flat_map(|p| &p.options) {
        body.push('\n');
        body.push_str(&o.text);
    }
    body
}

/// How `in:@name` and `mentions:me` are resolved, and where hits' messages come from: the
/// caller knows the roster and holds the store.
pub struct Context<'a> {
    /// A message by id, as history shows it.
    pub message: &'a dyn Fn(&MessageId) -> Option<StoredMessage>,
    /// The DM channel with a member (`@amina,bilal`), if there is one.
    pub dm_channel: &'a dyn Fn(&str) -> Option<String>,
    /// The names a mention of this device's member carries (`mentions:me`): their roster
    /// name first, then each group they are in ([`crate::roster::Roster::addressed_as`]).
    pub me: &'a [&'a str],
    /// Channels whose messages this device holds but may no longer read (an admin took its
    /// member off): never in results, as their history is no longer shown.
    pub hidden: &'a [String],
    /// What this member saved for later (`is:saved`).
    pub saved: &'a [MessageId],
}

pub struct SearchIndex {
    _index: Index,
    writer: IndexWriter,
    reader: IndexReader,
    f: Fields,
    dirty: bool,
    docs: u64,
    /// New documents not yet handed to tantivy's indexing thread: handed over together
    /// (one wake-up of that thread per batch, not per message).
    queued: Vec<TantivyDocument>,
}

/// Documents handed to the indexing thread at once, at most.
const QUEUE_DOCS: usize = 256;

/// A message's key in the index (see [`Fields::key`]).
fn key_of(id: &MessageId) -> u64 {
    u64::from_le_bytes(id.0[..8].try_into().expect("8 of 32 bytes"))
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("search index: {e}"))
}

impl SearchIndex {
    /// An empty index in memory.
    pub fn new() -> Result<SearchIndex> {
        let mut b = Schema::builder();
        // Only ids are stored: a hit's message (and the text its snippet is cut from) comes
        // from the store, which keeps the index small.
        let text_opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let f = Fields {
            id: b.add_bytes_field("id", STORED),
            key: b.add_u64_field("key", INDEXED),
            channel: b.add_text_field("channel", STRING),
            sender: b.add_text_field("sender", STRING),
            text: b.add_text_field("text", text_opts),
            sent_at: b.add_u64_field("sent_at", INDEXED | FAST),
            has: b.add_text_field("has", STRING),
            mention: b.add_text_field("mention", STRING),
        };
        let index = Index::create_in_ram(b.build());
        index.tokenizers().register(ANALYZER, Analyzer);
        // One indexing thread and a small arena: messages are small, and a node is not a
        // search server.
        let writer = index.writer_with_num_threads(1, 15_000_000).map_err(err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        Ok(SearchIndex {
            _index: index,
            writer,
            reader,
            f,
            dirty: false,
            docs: 0,
            queued: Vec::new(),
        })
    }

    /// Index a message (skipped if this node cannot read it). Searchable after [`Self::commit`].
    pub fn add(&mut self, m: &StoredMessage) -> Result<()> {
        self.add_doc(m, true)
    }

    /// Index a message known not to be in the index yet (a build into an empty index, a
    /// message just shown): no delete of an earlier copy, which tantivy would otherwise
    /// apply at every commit. Should it be there after all, [`Self::search`] shows it once.
    pub fn add_new(&mut self, m: &StoredMessage) -> Result<()> {
        self.add_doc(m, false)
    }

    fn add_doc(&mut self, m: &StoredMessage, replace: bool) -> Result<()> {
        use crate::conversation::Act;
        // Reactions, edits and deletions are not documents: they change their target, which
        // is indexed again as it now shows (a deleted one is removed).
        if m.locked || !Act::is_message(m.act.as_ref()) {
            return Ok(());
        }
        let f = self.f;
        if m.deleted || replace {
            // A delete must follow the adds queued before it.
            self.send_queued()?;
        }
        if m.deleted {
            self.writer
                .delete_term(Term::from_field_u64(f.key, key_of(&m.id)));
            self.dirty = true;
            return Ok(());
        }
        let mut d = doc!(
            f.id => m.id.0.as_slice(),
            f.key => key_of(&m.id),
            f.channel => m.channel.clone(),
            f.sender => text::normalize(&m.sender),
            f.text => body_of(m),
            f.sent_at => m.sent_at,
        );
        if m.file.is_some() {
            d.add_text(f.has, "file");
        }
        if text::has_link(&m.text) {
            d.add_text(f.has, "link");
        }
        if m.poll.is_some() {
            d.add_text(f.has, "poll");
        }
        for name in text::mentions(&m.text) {
            d.add_text(f.mention, name);
        }
        // A message indexed again (a channel re-read once its keys arrived) replaces itself.
        if replace {
            self.writer
                .delete_term(Term::from_field_u64(f.key, key_of(&m.id)));
        }
        if replace {
            self.writer.add_document(d).map_err(err)?;
        } else {
            self.queued.push(d);
            if self.queued.len() >= QUEUE_DOCS {
                self.send_queued()?;
            }
        }
        self.dirty = true;
        self.docs += 1;
        // An in-memory directory frees segments that merges replaced only at a commit:
        // a long build commits now and then, or it holds every intermediate segment.
        if self.docs.is_multiple_of(COMMIT_DOCS) {
            self.commit()?;
        }
        Ok(())
    }

    /// Hand the queued new documents to tantivy's indexing thread (they are searchable
    /// after the next [`Self::commit`], which does this itself).
    pub fn send_queued(&mut self) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let ops: Vec<_> = self
            .queued
            .drain(..)
            .map(tantivy::indexer::UserOperation::Add)
            .collect();
        self.writer.run(ops).map_err(err)?;
        Ok(())
    }

    /// Drop messages from the index (retention or erasure removed them).
    pub fn remove(&mut self, ids: &[crate::MessageId]) -> Result<()> {
        // The adds queued before this must not outlive it.
        self.send_queued()?;
        for id in ids {
            self.writer
                .delete_term(Term::from_field_u64(self.f.key, key_of(id)));
        }
        self.dirty |= !ids.is_empty();
        Ok(())
    }

    /// A bulk build into an empty index: segments are not merged while it runs. Merging
    /// during a rebuild took a third of its CPU on two cores (segments merged, then merged
    /// again as they grow); [`Self::end_bulk`] merges what the build left, in the background,
    /// once every message is searchable.
    pub fn begin_bulk(&mut self) {
        self.writer
            .set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    }

    /// Back to the usual merge policy; the next commit starts merging what the build left.
    pub fn end_bulk(&mut self) {
        self.writer
            .set_merge_policy(Box::new(tantivy::indexer::LogMergePolicy::default()));
        self.dirty = true;
    }

    /// Segments the searcher reads (fewer: faster queries).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Make what was added searchable.
    pub fn commit(&mut self) -> Result<()> {
        self.send_queued()?;
        if self.dirty {
            self.writer.commit().map_err(err)?;
            self.reader.reload().map_err(err)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Bytes the index's segments take (what the searcher reads; the writer's arena and the
    /// allocator's slack come on top).
    pub fn size_bytes(&self) -> u64 {
        self.reader
            .searcher()
            .space_usage()
            .map(|u| u.total().get_bytes())
            .unwrap_or(0)
    }

    /// Messages added so far (counting re-adds).
    pub fn added(&self) -> u64 {
        self.docs
    }

    /// The query, or `None` when its words and phrases are only punctuation (or a phrase is
    /// still empty, a lone `"`) and it has no filter: it
    /// matches nothing (an error only when nothing at all was asked).
    fn build(&self, q: &Query, cx: &Context) -> Result<Option<Box<dyn TQuery>>> {
        let f = self.f;
        let mut must: Vec<Box<dyn TQuery>> = Vec::new();
        let term_q = |field: Field, t: &str| -> Box<dyn TQuery> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::WithFreqs,
            ))
        };
        for w in &q.words {
            for t in text::terms(w) {
                must.push(term_q(f.text, &t));
            }
        }
        for p in &q.phrases {
            let terms: Vec<Term> = text::terms(p)
                .iter()
                .map(|t| Term::from_field_text(f.text, t))
                .collect();
            match terms.len() {
                0 => {}
                1 => must.push(Box::new(TermQuery::new(
                    terms[0].clone(),
                    IndexRecordOption::WithFreqs,
                ))),
                _ => must.push(Box::new(PhraseQuery::new(terms))),
            }
        }
        let text_clauses = must.len();
        if let Some(name) = &q.from {
            must.push(term_q(f.sender, &text::normalize(name)));
        }
        match &q.r#in {
            Some(In::Channel(c)) => must.push(term_q(f.channel, c)),
            Some(In::Dm(name)) => {
                let ch = (cx.dm_channel)(name).ok_or_else(|| {
                    Error::Invalid(format!("in:@{name}: no direct messages with '{name}'"))
                })?;
                must.push(term_q(f.channel, &ch));
            }
            None => {}
        }
        if q.has_file {
            must.push(term_q(f.has, "file"));
        }
        if q.has_link {
            must.push(term_q(f.has, "link"));
        }
        if q.has_poll {
            must.push(term_q(f.has, "poll"));
        }
        if let Some(who) = &q.mentions {
            // `@channel` and `@here` mention everyone who reads the channel, and a group's
            // name each of its members.
            must.push(match who.eq_ignore_ascii_case("me") {
                true => Box::new(BooleanQuery::new(
                    cx.me
                        .iter()
                        .map(|n| text::normalize(n))
                        .chain(["channel".into(), "here".into()])
                        .map(|n| (Occur::Should, term_q(f.mention, &n)))
                        .collect(),
                )),
                false => term_q(f.mention, &text::normalize(who)),
            });
        }
        if q.saved {
            // Nothing saved: nothing found (an empty `Should` list would match everything).
            if cx.saved.is_empty() {
                return Ok(None);
            }
            must.push(Box::new(BooleanQuery::new(
                cx.saved
                    .iter()
                    .map(|id| {
                        let t = Term::from_field_u64(f.key, key_of(id));
                        let q: Box<dyn TQuery> =
                            Box::new(TermQuery::new(t, IndexRecordOption::Basic));
                        (Occur::Should, q)
                    })
                    .collect(),
            )));
        }
        if q.after.is_some() || q.before.is_some() {
            let bound = |b: Option<u64>, inclusive: bool| match b {
                Some(t) if inclusive => Bound::Included(Term::from_field_u64(f.sent_at, t)),
                Some(t) => Bound::Excluded(Term::from_field_u64(f.sent_at, t)),
                None => Bound::Unbounded,
            };
            must.push(Box::new(RangeQuery::new(
                bound(q.after, true),
                bound(q.before, false),
            )));
        }
        if must.is_empty() {
            if text_clauses == 0 && !(q.words.is_empty() && q.phrases.is_empty()) {
                return Ok(None);
            }
            return Err(Error::Invalid(
                "type words to search for, or a filter such as from:NAME".into(),
            ));
        }
        let not = cx
            .hidden
            .iter()
            .map(|c| (Occur::MustNot, term_q(f.channel, c)));
        Ok(Some(Box::new(BooleanQuery::new(
            must.into_iter()
                .map(|q| (Occur::Must, q))
                .chain(not)
                .collect(),
        ))))
    }

    /// Search; results newest first or by relevance, at most `limit`.
    pub fn search(&self, q: &Query, cx: &Context, order: Order, limit: usize) -> Result<Vec<Hit>> {
        let Some(query) = self.build(q, cx)? else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let limit = limit.clamp(1, 10_000);
        let addrs: Vec<tantivy::DocAddress> = match order {
            Order::Newest => searcher
                .search(
                    &*query,
                    &TopDocs::with_limit(limit)
                        .order_by_fast_field::<u64>("sent_at", tantivy::Order::Desc),
                )
                .map_err(err)?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
            Order::Relevance => searcher
                .search(&*query, &TopDocs::with_limit(limit))
                .map_err(err)?
                .into_iter()
                .map(|(_, a)| a)
                .collect(),
        };
        let mut snippets =
            tantivy::snippet::SnippetGenerator::create(&searcher, &*query, self.f.text)
                .map_err(err)?;
        snippets.set_max_num_chars(160);
        let mut out = Vec::with_capacity(addrs.len());
        let mut seen = std::collections::HashSet::new();
        for a in addrs {
            let d: TantivyDocument = searcher.doc(a).map_err(err)?;
            // Gone from the store since (erased): not a result. Indexed twice (see
            // `add_new`): one result.
            let Some(message) = d
                .get_first(self.f.id)
                .and_then(|v| v.as_bytes())
                .and_then(|b| Some(MessageId(b.try_into().ok()?)))
                .filter(|id| seen.insert(*id))
                // (The index's key is 64 bits of the id: `is:saved` checks the whole id.)
                .filter(|id| !q.saved || cx.saved.contains(id))
                .and_then(|id| (cx.message)(&id))
                .filter(|m| !m.deleted)
            else {
                continue;
            };
            let body = body_of(&message);
            let s = snippets.snippet(&body);
            let (snippet, highlights) = if s.fragment().is_empty() {
                // Only filters matched: the start of the text.
                let end = body.char_indices().nth(160).map_or(body.len(), |(i, _)| i);
                (body[..end].to_string(), Vec::new())
            } else {
                whole_marks(
                    &body,
                    s.fragment(),
                    s.highlighted().iter().map(|r| (r.start, r.end)).collect(),
                )
            };
            out.push(Hit {
                id: message.id,
                message,
                snippet,
                highlights,
            });
        }
        Ok(out)
    }
}

/// The snippet `fragment` of `body` with the punctuation right around it in `body` taken
/// in: tantivy cuts fragments at tokens, so `see the *new plan*` came out as
/// `see the *new plan` and `Where is the offsite?` without its `?`, a marker or a question
/// lost to the reader. `highlights` move with the start. Only up to a few characters, and
/// never across a space or a line.
fn whole_marks(
    body: &str,
    fragment: &str,
    highlights: Vec<(usize, usize)>,
) -> (String, Vec<(usize, usize)>) {
    const MOST: usize = 4;
    let Some(at) = body.find(fragment) else {
        return (fragment.to_string(), highlights);
    };
    let mark = |c: &char| !c.is_alphanumeric() && !c.is_whitespace();
    let before: usize = body[..at]
        .chars()
        .rev()
        .take(MOST)
        .take_while(mark)
        .map(char::len_utf8)
        .sum();
    let end = at + fragment.len();
    let after: usize = body[end..]
        .chars()
        .take(MOST)
        .take_while(mark)
        .map(char::len_utf8)
        .sum();
    (
        body[at - before..end + after].to_string(),
        highlights
            .into_iter()
            .map(|(a, b)| (a + before, b + before))
            .collect(),
    )
}

/// Index every message of `channel` (every channel if empty) that `store` can show. Reads a
/// page at a time (a channel of a million messages read at once held them all in memory
/// during a rebuild). Into an empty index (`ix.is_empty()`) nothing needs replacing.
pub fn index_store(
    ix: &mut SearchIndex,
    store: &crate::store::Store,
    channel: &str,
) -> Result<usize> {
    let fresh = ix.docs == 0;
    let channels = if channel.is_empty() {
        store.channels_starting_with("")?
    } else {
        vec![channel.to_string()]
    };
    if fresh {
        ix.begin_bulk();
    }
    let n = index_channels(ix, store, channels, fresh);
    if fresh {
        ix.end_bulk();
    }
    n
}

fn index_channels(
    ix: &mut SearchIndex,
    store: &crate::store::Store,
    channels: Vec<String>,
    fresh: bool,
) -> Result<usize> {
    const PAGE: usize = 4096;
    let mut n = 0;
    for c in channels {
        let mut before = None;
        loop {
            // Newest page first, each page oldest first.
            let page = store.history_before(&c, before, PAGE)?;
            let Some(first) = page.first() else { break };
            before = Some((first.sent_at, first.id));
            let full = page.len() == PAGE;
            for m in &page {
                // A thread's replies are acts, not rows: read beside their root.
                let replies = match m.replies {
                    0 => Vec::new(),
                    _ => store.replies_only_in_thread(&c, &m.id)?,
                };
                for m in std::iter::once(m).chain(&replies) {
                    match fresh {
                        true => ix.add_new(m)?,
                        false => ix.add(m)?,
                    }
                    n += 1;
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(n)
}

/// Parse `text` and search, resolving `in:@name` and `mentions:me` against `head` as the
/// device `me` sees it.
pub fn query(
    ix: &SearchIndex,
    store: &crate::store::Store,
    text: &str,
    head: Option<&crate::roster::VerifiedRoster>,
    me: &crate::DeviceId,
    order: Order,
    limit: usize,
) -> Result<Vec<Hit>> {
    let mut q = parse(text).map_err(Error::Invalid)?;
    // `in:#General` as typed names #general (see `Roster::channel_typed`).
    if let (Some(In::Channel(c)), Some(h)) = (&mut q.r#in, head) {
        if let Some(named) = h.roster.channel_typed(c) {
            *c = named.name.clone();
        }
    }
    // `from:Amina` and `from:"Amina Haddad"` name amina (see `Roster::member_typed`); a
    // leaver, no longer on the roster, by the name their messages carry.
    if let (Some(from), Some(h)) = (&mut q.from, head) {
        if let Some(m) = h.roster.member_typed(from) {
            *from = m.name.clone();
        }
    }
    let member = head.and_then(|h| h.member_of_device(me));
    let me_names: Vec<&str> = match (head, member) {
        (Some(h), Some(m)) => h.roster.addressed_as(&m.name),
        _ => Vec::new(),
    };
    let dm = |name: &str| {
        head.and_then(|h| h.resolve_channel(me, &format!("@{name}")).ok())
            .filter(|c| c.starts_with('@'))
    };
    let message = |id: &MessageId| store.message(id).ok().flatten();
    let hidden: Vec<String> = match (head, member) {
        (Some(h), Some(m)) => h
            .roster
            .channels
            .iter()
            .map(|c| c.name.clone())
            .chain(store.channels_starting_with("@")?)
            .filter(|c| !h.roster.may_read(m, c))
            .collect(),
        _ => Vec::new(),
    };
    ix.search(
        &q,
        &Context {
            message: &message,
            dm_channel: &dm,
            me: &me_names,
            hidden: &hidden,
            // Read only when asked for: a search runs at every keystroke.
            saved: &match q.saved {
                true => store.saved_by(member.map(|m| m.name.as_str()))?,
                false => Vec::new(),
            },
        },
        order,
        limit,
    )
}

#[cfg(test)]
mod tests;
