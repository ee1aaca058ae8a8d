//! Cost of a 1 000-member roster: `cargo run --release -p majlis-core --example rosterbench`.
use std::time::Instant;

use majlis_core::roster::{RosterChain, RosterSigner, VerifiedRoster};
use majlis_core::{DeviceKey, OrgKey, Roster, RosterChange};

fn main() {
    let root = OrgKey::generate();
    let admin = DeviceKey::generate();
    let mut chain = RosterChain::new(root.org_id());
    chain.apply(vec![VerifiedRoster::sign(
        Roster::genesis(&root, "acme", "admin", admin.id(), 1),
        RosterSigner::Root(&root),
    )]);
    for i in 0..999 {
        let head = chain.head().unwrap();
        let change = RosterChange::AddMember {
            name: format!("member{i:04}"),
            device: DeviceKey::generate().id(),
            role: None,
        };
        let next = head.roster.next(head.hash, &change, 2).unwrap();
        chain.apply(vec![VerifiedRoster::sign(next, RosterSigner::Root(&root))]);
    }
    let head = chain.head().unwrap().clone();
    let members: Vec<String> = head.roster.members.iter().map(|m| m.name.clone()).collect();
    let change = RosterChange::CreateChannel {
        name: "all-hands".into(),
        members: Some(members),
    };
    let t = Instant::now();
    let next = head.roster.next(head.hash, &change, 3).unwrap();
    let signed = VerifiedRoster::sign(next, RosterSigner::Device(&admin));
    let make = t.elapsed();
    let n = 100;
    let t = Instant::now();
    for _ in 0..n {
        VerifiedRoster::decode(&signed.wire).unwrap();
    }
    let decode = t.elapsed() / n;
    let mut clones: Vec<RosterChain> = (0..10).map(|_| chain.clone()).collect();
    let t = Instant::now();
    for c in &mut clones {
        let rep = c.apply(vec![VerifiedRoster::decode(&signed.wire).unwrap()]);
        assert!(rep.error.is_none(), "{:?}", rep.error);
    }
    let apply = t.elapsed() / 10;
    println!(
        "roster of {} members (+ a channel listing all of them), {} bytes: make+sign {:.2} ms; decode+verify {:.2} ms; decode+verify+authorize+apply {:.2} ms",
        chain.head().unwrap().roster.members.len(),
        signed.wire.len(),
        make.as_secs_f64() * 1e3,
        decode.as_secs_f64() * 1e3,
        apply.as_secs_f64() * 1e3
    );
}
