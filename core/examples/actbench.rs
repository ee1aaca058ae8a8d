//! What conversation acts cost (issue 15), next to a plain text message measured in the same
//! run, in a channel of 100 members:
//!
//!     cargo run --release -p majlis-core --example actbench
//!
//! - wire bytes of a reaction, a reply, an edit, a deletion and a short text message (each a
//!   signed envelope with a sealed body; gossip framing comes on top);
//! - signing and storing rate (`Profile::compose*`, one core, no flush) of each;
//! - reading a page of 50 messages with 100 reactions on each vs with none (the fold).

use std::time::Instant;

use majlis_core::e2e::Plain;
use majlis_core::{DeviceKey, Profile, RosterChange};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let p = Profile::init(&dir.path().join("a"), "amina")?;
    p.org_create("acme")?;
    let mut chain = p.chain()?;
    let team: Vec<RosterChange> = (0..99)
        .map(|i| RosterChange::AddMember {
            name: format!("m{i:02}"),
            device: DeviceKey::generate().id(),
            role: None,
        })
        .collect();
    p.change_roster_all(&mut chain, &team)?;
    // The first message makes and grants the key (99 grants): not what we measure.
    let first = p.compose(&chain, "general", "hello")?;
    let target = first.last().expect("a message").id;

    let n = 5_000;
    let kinds: Vec<(&str, Plain)> = vec![
        (
            "reaction 👍",
            Plain::React {
                to: target,
                emoji: "👍".into(),
                on: true,
            },
        ),
        (
            "reply (\"on my way\")",
            Plain::Reply {
                to: target,
                text: "on my way".into(),
                also_channel: false,
            },
        ),
        (
            "edit (\"on my way\")",
            Plain::Edit {
                of: target,
                text: "on my way".into(),
            },
        ),
        ("deletion", Plain::Delete { of: target }),
        ("read receipt", Plain::Read { upto: target }),
    ];
    let t = Instant::now();
    let mut text_bytes = 0;
    for _ in 0..n {
        text_bytes = p
            .compose(&chain, "general", "ok")?
            .last()
            .expect("msg")
            .wire
            .len();
    }
    let text_rate = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "baseline: text \"ok\": {text_bytes} B on the wire, {text_rate:.0}/s signed and stored"
    );
    let mut reaction_bytes = 0;
    for (name, act) in &kinds {
        let t = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            bytes = p
                .compose_act(&chain, "general", act.clone())?
                .last()
                .expect("msg")
                .wire
                .len();
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        if reaction_bytes == 0 {
            reaction_bytes = bytes;
        }
        println!(
            "{name}: {bytes} B ({:.2}× the text), {rate:.0}/s ({:.2}× the text's rate)",
            bytes as f64 / text_bytes as f64,
            rate / text_rate
        );
    }
    println!(
        "a reaction from each of 100 members to one message: {:.1} KB on the wire, sent once each",
        100.0 * reaction_bytes as f64 / 1000.0
    );

    // Reading: 50 messages with 100 reactions each, against 50 with none.
    let p2 = Profile::init(&dir.path().join("b"), "amina")?;
    p2.org_create("acme2")?;
    let chain2 = p2.chain()?;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            p2.compose(&chain2, "general", &format!("m{i}"))?
                .last()
                .expect("m")
                .id,
        );
    }
    let page = |p: &Profile| -> Result<(usize, f64), Box<dyn std::error::Error>> {
        let t = Instant::now();
        let mut shown = 0;
        for _ in 0..20 {
            shown = p.store().history("general", 50)?.len();
        }
        Ok((shown, t.elapsed().as_secs_f64() / 20.0))
    };
    let (_, without) = page(&p2)?;
    for id in &ids {
        for _ in 0..100 {
            p2.compose_act(
                &chain2,
                "general",
                Plain::React {
                    to: *id,
                    emoji: "👍".into(),
                    on: true,
                },
            )?;
        }
    }
    let (shown, with) = page(&p2)?;
    println!(
        "a page of {shown} messages: {:.2} ms with no acts; {:.1} ms with 100 reactions on each (5 000 acts folded, {:.1} µs each)",
        without * 1e3,
        with * 1e3,
        (with - without) * 1e6 / 5000.0
    );
    Ok(())
}
