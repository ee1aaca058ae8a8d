//! The query table: real queries in Arabic and English, and the messages they must (and
//! must not) find.

use super::*;
use crate::store::FileView;

const DAY: u64 = 24 * 60 * 60 * 1000;
/// 2026-03-10 00:00 UTC.
const T0: u64 = 1_773_100_800_000;

fn msg(n: u8, channel: &str, sender: &str, day: u64, text: &str) -> StoredMessage {
    StoredMessage {
        id: MessageId([n; 32]),
        channel: channel.into(),
        sender: sender.into(),
        device: crate::DeviceKey::generate().id(),
        sent_at: T0 + day * DAY + n as u64 * 1000,
        text: text.into(),
        ..Default::default()
    }
}

fn corpus() -> Vec<StoredMessage> {
    let mut file = msg(9, "sales", "bilal", 3, "the signed contract");
    file.file = Some(FileView {
        blob: crate::files::BlobId([9; 32]),
        name: "عقد-الشركة.pdf".into(),
        mime: "application/pdf".into(),
        size: 1000,
    });
    let mut locked = msg(10, "board", "amina", 1, "salaries for next year");
    locked.locked = true;
    let mut poll = msg(13, "general", "amina", 5, "Where is the offsite?");
    poll.poll = Some(crate::conversation::PollView {
        options: ["Muscat", "صلالة"]
            .map(|t| crate::conversation::PollOption {
                text: t.into(),
                voters: vec![],
            })
            .into(),
        multi: false,
        closed: None,
    });
    vec![
        msg(1, "general", "amina", 0, "اجتماعُ الإدارة غداً في المدرسة"),
        msg(
            2,
            "general",
            "bilal",
            1,
            "The quarterly reports are ready for review",
        ),
        msg(
            3,
            "sales",
            "أمينة",
            2,
            "تم إرسال التقارير إلى العميل، see https://crm.example/deal/42",
        ),
        msg(
            4,
            "general",
            "chen",
            4,
            "Meeting moved to ١٠:٣٠ — @bilal please confirm",
        ),
        msg(5, "@amina,bilal", "amina", 5, "هل وصلت الفاتورة؟"),
        msg(6, "general", "bilal", 6, "مستشفى المدينة يحتاج الى تقرير"),
        msg(
            7,
            "sales",
            "chen",
            7,
            "report for the hospital attached later",
        ),
        msg(
            8,
            "general",
            "amina",
            8,
            "Reporting is hard; the meeting ran long",
        ),
        msg(11, "general", "chen", 8, "@here the printer is fixed"),
        msg(12, "general", "chen", 4, "@Sales: the quote is due"),
        file,
        locked,
        poll,
    ]
}

/// tantivy ends a fragment at a token: the marks right around it in the message are taken
/// in, so a reader sees `*new plan*` and the question, not `*new plan` and a statement.
#[test]
fn a_snippet_keeps_the_marks_around_its_words() {
    let texts = [
        "welcome bilal, see the *new plan*",
        "«offsite»? not decided",
        "is the room booked?",
    ];
    let messages: Vec<StoredMessage> = (0u8..)
        .zip(texts)
        .map(|(n, t)| msg(40 + n, "general", "amina", n as u64, t))
        .collect();
    let ix = index_of(&messages);
    let lookup = |id: &MessageId| messages.iter().find(|m| m.id == *id).cloned();
    let cx = amina(&lookup);
    let snippet = |q: &str| {
        let hits = ix
            .search(&parse(q).unwrap(), &cx, Order::Newest, 10)
            .unwrap();
        assert_eq!(hits.len(), 1, "{q}: {hits:?}");
        hits[0].marked("[", "]")
    };
    assert_eq!(snippet("plan"), "welcome bilal, see the *new [plan]*");
    assert_eq!(snippet("offsite"), "«[offsite]»? not decided");
    assert_eq!(snippet("booked"), "is the room [booked]?");
}

fn index() -> SearchIndex {
    index_of(&corpus())
}

fn index_of(messages: &[StoredMessage]) -> SearchIndex {
    let mut ix = SearchIndex::new().unwrap();
    for m in messages {
        ix.add(m).unwrap();
    }
    ix.commit().unwrap();
    ix
}

/// What amina may search, its messages from `message`.
fn amina<'a>(message: &'a dyn Fn(&MessageId) -> Option<StoredMessage>) -> Context<'a> {
    Context {
        message,
        dm_channel: &|_| None,
        me: &["amina"],
        hidden: &[],
        saved: &[],
    }
}

fn lookup(id: &MessageId) -> Option<StoredMessage> {
    corpus().into_iter().find(|m| m.id == *id)
}

fn find(ix: &SearchIndex, q: &str) -> Vec<u8> {
    let dm = |name: &str| (name == "bilal").then(|| "@amina,bilal".to_string());
    let cx = Context {
        message: &lookup,
        dm_channel: &dm,
        // bilal is in the group sales, and saved two messages for later.
        me: &["bilal", "sales"],
        hidden: &[],
        saved: &[MessageId([2; 32]), MessageId([7; 32])],
    };
    let q = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut ids: Vec<u8> = ix
        .search(&q, &cx, Order::Newest, 50)
        .unwrap()
        .into_iter()
        .map(|h| h.id.0[0])
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_query_table() {
    let ix = index();
    let table: &[(&str, &[u8])] = &[
        // Arabic: hamza and tashkeel forms, ta marbuta, the article, plurals.
        ("اجتماع", &[1]),
        ("الاداره", &[1]),
        ("إدارة", &[1]),
        ("مدرسة", &[1]),
        ("غدا", &[1]),
        // A light stemmer joins affixes, not broken plurals (تقرير / تقارير).
        ("تقرير", &[6]),
        ("التقارير", &[3]),
        ("تقارير", &[3]),
        ("مستشفي", &[6]),
        ("فاتوره", &[5]),
        // English: stems.
        ("report", &[2, 7, 8]),
        ("reports", &[2, 7, 8]),
        ("meetings", &[4, 8]),
        ("quarterly reports", &[2]),
        // Phrases, in both languages.
        ("\"quarterly reports\"", &[2]),
        ("\"reports quarterly\"", &[]),
        // A quote left open (search runs as one types): the phrase so far.
        ("\"quarterly reports", &[2]),
        ("«اجتماع الادارة»", &[1]),
        // Mixed text, digits folded.
        ("تقارير crm", &[3]),
        ("10:30", &[4]),
        // File names are searched, and has:file.
        ("عقد", &[9]),
        ("has:file", &[9]),
        ("contract has:file", &[9]),
        ("has:link", &[3]),
        // A poll's options are searched with its question.
        ("offsite", &[13]),
        ("صلاله", &[13]),
        ("has:poll", &[13]),
        // Who, where, when.
        ("from:bilal", &[2, 6, 9]),
        ("from:امينه", &[3]),
        ("report from:chen", &[7]),
        ("in:#sales", &[3, 7, 9]),
        ("in:@bilal", &[5]),
        // @here and @channel mention everyone in the channel, a group's name its members.
        ("mentions:me", &[4, 11, 12]),
        ("mentions:bilal", &[4]),
        ("mentions:sales", &[12]),
        // What was saved for later; "is:" anything else is text.
        ("is:saved", &[2, 7]),
        ("hospital is:saved", &[7]),
        ("is:nothing", &[]),
        ("on:2026-03-12", &[3]),
        ("after:2026-03-16", &[7, 8, 11]),
        ("before:2026-03-11", &[1]),
        ("report after:2026-03-11 before:2026-03-18", &[7]),
        // What this node cannot read is not there.
        ("salaries", &[]),
        ("in:#board", &[]),
    ];
    let mut failed = Vec::new();
    for (q, want) in table {
        let got = find(&ix, q);
        if got != *want {
            failed.push(format!("{q}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn results_are_newest_first_with_marked_snippets() {
    let ix = index();
    let cx = amina(&lookup);
    let hits = ix
        .search(&parse("report").unwrap(), &cx, Order::Newest, 10)
        .unwrap();
    let ids: Vec<u8> = hits.iter().map(|h| h.id.0[0]).collect();
    assert_eq!(ids, [8, 7, 2]);
    assert_eq!(
        hits[1].marked("[", "]"),
        "[report] for the hospital attached later"
    );
    let hits = ix
        .search(&parse("التقارير").unwrap(), &cx, Order::Relevance, 10)
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.marked("[", "]").contains("[التقارير]")),
        "{hits:?}"
    );
    // Typed so far: only punctuation, a lone quote, a quoted "?!": nothing found, no error
    // (schemathesis found the lone quote answered 400).
    for typed in ["?!", "\"", "\"?!\"", "« »"] {
        assert!(self::hits(&ix, &cx, typed).is_empty(), "{typed}");
    }
    assert!(ix
        .search(&parse("").unwrap(), &cx, Order::Newest, 10)
        .unwrap_err()
        .to_string()
        .contains("type words"));
}

/// The first byte of each hit's id, newest first.
fn hits(ix: &SearchIndex, cx: &Context, q: &str) -> Vec<u8> {
    ix.search(&parse(q).unwrap(), cx, Order::Newest, 10)
        .unwrap()
        .iter()
        .map(|h| h.id.0[0])
        .collect()
}

#[test]
fn indexing_a_message_again_replaces_it() {
    let mut ix = index();
    let mut m = corpus()[1].clone();
    m.text = "now about budgets".into();
    ix.add(&m).unwrap();
    ix.commit().unwrap();
    let held = |id: &MessageId| (*id == m.id).then(|| m.clone()).or_else(|| lookup(id));
    let cx = amina(&held);
    let ids = |q: &str| hits(&ix, &cx, q);
    assert_eq!(ids("budget"), [2]);
    assert_eq!(ids("quarterly"), Vec::<u8>::new());
}

/// A message shown while its channel is re-read (keys arrived) can be indexed twice without
/// a replace (`add_new`): it is still one result.
#[test]
fn a_message_indexed_twice_is_one_result() {
    let mut ix = index();
    let m = corpus()[1].clone();
    ix.add_new(&m).unwrap();
    ix.commit().unwrap();
    let cx = amina(&lookup);
    let hits = ix
        .search(&parse(&m.text).unwrap(), &cx, Order::Newest, 10)
        .unwrap();
    assert_eq!(
        hits.iter().filter(|h| h.id == m.id).count(),
        1,
        "{:?}",
        hits.iter().map(|h| h.id).collect::<Vec<_>>()
    );
}

/// A bulk build does not merge while it runs, and merges what it left once it ends: an
/// index that stayed at one segment per commit would make every later query slower.
#[test]
fn a_bulk_build_merges_its_segments_once_it_ends() {
    let mut ix = SearchIndex::new().unwrap();
    ix.begin_bulk();
    for m in corpus() {
        ix.add_new(&m).unwrap();
        ix.commit().unwrap();
    }
    // One segment per commit that added something (a message this node cannot read adds
    // nothing): more than the merge policy lets stand.
    let built = ix.segments();
    assert!(built >= 9, "merged during the build: {built} segments");
    let before = find(&ix, "report");
    assert!(!before.is_empty());
    ix.end_bulk();
    let t = std::time::Instant::now();
    while ix.segments() >= built && t.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        ix.end_bulk();
        ix.commit().unwrap();
    }
    assert!(ix.segments() < built, "still {built} segments");
    assert_eq!(find(&ix, "report"), before, "merging changed the results");
}

/// New messages wait in a queue for tantivy's indexing thread; an edit, a deletion or a
/// retention sweep that follows them must still apply to them, not to nothing.
#[test]
fn what_follows_a_queued_message_applies_to_it() {
    let mut ix = SearchIndex::new().unwrap();
    let (a, b) = (
        msg(20, "general", "amina", 0, "first draft of the plan"),
        msg(21, "general", "amina", 0, "the budget sheet"),
    );
    ix.add_new(&a).unwrap();
    ix.add_new(&b).unwrap();
    // `a` edited, `b` swept, both before anything was handed over or committed.
    let mut edited = a.clone();
    edited.text = "final version of the plan".into();
    ix.add(&edited).unwrap();
    ix.remove(&[b.id]).unwrap();
    ix.commit().unwrap();
    let held = |id: &MessageId| (*id == a.id).then(|| edited.clone());
    let cx = amina(&held);
    let ids = |q: &str| hits(&ix, &cx, q);
    assert_eq!(ids("final"), [20]);
    assert_eq!(
        ids("draft"),
        Vec::<u8>::new(),
        "the edit replaced the queued text"
    );
    assert_eq!(
        ids("budget"),
        Vec::<u8>::new(),
        "the sweep removed the queued message"
    );
}
