use super::*;

struct Org {
    root: OrgKey,
    admin: DeviceKey,
    chain: RosterChain,
}

fn org() -> Org {
    let root = OrgKey::generate();
    let admin = DeviceKey::generate();
    let g = VerifiedRoster::sign(
        Roster::genesis(&root, "acme", "amina", admin.id(), 1),
        RosterSigner::Root(&root),
    );
    let mut chain = RosterChain::new(root.org_id());
    let rep = chain.apply(vec![g]);
    assert_eq!(rep.error, None);
    Org { root, admin, chain }
}

fn next(chain: &RosterChain, change: RosterChange, signer: RosterSigner<'_>) -> VerifiedRoster {
    let head = chain.head().unwrap();
    let r = head.roster.next(head.hash, &change, 2).unwrap();
    VerifiedRoster::sign(r, signer)
}

/// Like [`next`], but with an `issued_at` chosen so the hash is not tiny: a test that then
/// grinds a forgery with a smaller hash finds one quickly (with a tiny honest hash it would
/// fail on an unlucky draw, about once in 150 runs).
fn next_not_tiny(
    chain: &RosterChain,
    change: RosterChange,
    signer: RosterSigner<'_>,
) -> VerifiedRoster {
    let head = chain.head().unwrap();
    (2..)
        .map(|at| {
            let r = head.roster.next(head.hash, &change, at).unwrap();
            VerifiedRoster::sign(r, signer)
        })
        .find(|v| v.hash[0] >= 0x40)
        .expect("an unbounded search ends")
}

/// The org with a second admin, "bashir": his key and the chain.
fn second_admin(o: &Org) -> (DeviceKey, RosterChain) {
    let bashir = DeviceKey::generate();
    let mut base = o.chain.clone();
    base.apply(vec![next(
        &base,
        RosterChange::AddMember {
            name: "bashir".into(),
            device: bashir.id(),
            role: Some(Role::Admin),
        },
        RosterSigner::Device(&o.admin),
    )]);
    (bashir, base)
}

fn add(name: &str) -> RosterChange {
    RosterChange::AddMember {
        name: name.into(),
        device: DeviceKey::generate().id(),
        role: None,
    }
}

#[test]
fn newer_version_signed_by_admin_is_accepted() {
    let mut o = org();
    let v2 = next(&o.chain, add("bilal"), RosterSigner::Device(&o.admin));
    let rep = o.chain.apply(vec![v2]);
    assert_eq!(
        rep,
        ApplyReport {
            changed_from: Some(2),
            ..Default::default()
        }
    );
    assert!(o.chain.head().unwrap().roster.member("bilal").is_some());
}

#[test]
fn root_key_may_sign_any_version() {
    let mut o = org();
    let v2 = next(&o.chain, add("bilal"), RosterSigner::Root(&o.root));
    assert_eq!(o.chain.apply(vec![v2]).error, None);
}

#[test]
fn non_admin_signer_is_rejected() {
    let mut o = org();
    let member = DeviceKey::generate();
    let v2 = next(
        &o.chain,
        RosterChange::AddMember {
            name: "bilal".into(),
            device: member.id(),
            role: None,
        },
        RosterSigner::Device(&o.admin),
    );
    o.chain.apply(vec![v2]);
    // bilal is a member, not an admin: he may not sign version 3.
    let v3 = next(&o.chain, add("chen"), RosterSigner::Device(&member));
    let rep = o.chain.apply(vec![v3]);
    assert_eq!(
        rep.error,
        Some(RosterError::NotAuthorized {
            version: 3,
            prev: 2
        })
    );
    assert_eq!(o.chain.version(), 2);
    // Nor may a stranger.
    let v3 = next(
        &o.chain,
        add("chen"),
        RosterSigner::Device(&DeviceKey::generate()),
    );
    assert!(o.chain.apply(vec![v3]).error.is_some());
}

#[test]
fn wrong_org_is_rejected() {
    let mut o = org();
    let other = org();
    let v2 = next(&other.chain, add("x"), RosterSigner::Root(&other.root));
    assert_eq!(o.chain.apply(vec![v2]).error, Some(RosterError::WrongOrg));
    // A document claiming our org id but carrying another root key fails well-formedness.
    let head = o.chain.head().unwrap();
    let mut r = head.roster.next(head.hash, &add("x"), 3).unwrap();
    r.root_key = other.root.public();
    let forged = VerifiedRoster::sign(r, RosterSigner::Root(&other.root));
    assert_eq!(
        o.chain.apply(vec![forged]).error,
        Some(RosterError::WrongOrg)
    );
}

#[test]
fn rollback_is_ignored_and_gap_reported() {
    let mut o = org();
    let v2 = next(&o.chain, add("b"), RosterSigner::Device(&o.admin));
    o.chain.apply(vec![v2.clone()]);
    let v3 = next(&o.chain, add("c"), RosterSigner::Device(&o.admin));
    o.chain.apply(vec![v3]);
    let rep = o.chain.apply(vec![v2]);
    assert_eq!(rep.already_held, 1);
    assert_eq!(rep.changed_from, None);
    assert_eq!(o.chain.version(), 3);

    let mut fresh = RosterChain::new(o.chain.org());
    let rep = fresh.apply(vec![o.chain.get(3).unwrap().clone()]);
    assert!(rep.error.is_some());
    assert_eq!(fresh.version(), 0);
    // The whole chain bootstraps a fresh node.
    let rep = fresh.apply(o.chain.versions().to_vec());
    assert_eq!(rep.error, None);
    assert_eq!(fresh.head().unwrap().hash, o.chain.head().unwrap().hash);
}

#[test]
fn forks_resolve_to_the_smaller_hash_in_any_order() {
    let o = org();
    let second = DeviceKey::generate();
    let mut base = o.chain.clone();
    base.apply(vec![next(
        &base,
        RosterChange::AddMember {
            name: "bashir".into(),
            device: second.id(),
            role: Some(Role::Admin),
        },
        RosterSigner::Device(&o.admin),
    )]);
    let a = next(&base, add("x"), RosterSigner::Device(&o.admin));
    let b = next(&base, add("y"), RosterSigner::Device(&second));
    let winner = if a.hash < b.hash { a.hash } else { b.hash };

    let mut n1 = base.clone();
    n1.apply(vec![a.clone()]);
    // n1 builds on its branch, then hears of the other one.
    let a2 = next(&n1, add("z"), RosterSigner::Device(&o.admin));
    n1.apply(vec![a2]);
    n1.apply(vec![b.clone()]);
    let mut n2 = base.clone();
    n2.apply(vec![b]);
    n2.apply(n1.suffix_for(3).to_vec());
    assert_eq!(n1.get(3).unwrap().hash, winner);
    assert_eq!(n2.get(3).unwrap().hash, winner);
    // After exchanging suffixes both hold the same chain.
    let s1 = n1.suffix_for(n2.version()).to_vec();
    n2.apply(s1);
    let s2 = n2.suffix_for(n1.version()).to_vec();
    n1.apply(s2);
    assert_eq!(n1.head().unwrap().hash, n2.head().unwrap().hash);
}

#[test]
fn a_removed_admin_cannot_undo_the_removal_by_forking_an_earlier_version() {
    let o = org();
    let (bashir, base) = second_admin(&o);
    let mut honest = base.clone();
    // An honest version 3 whose hash is not tiny, so a forgery that beats it is quick to
    // find (otherwise this test fails on an unlucky hash, about once in 500 runs).
    let v3 = (0..)
        .map(|i| {
            next(
                &honest,
                add(&format!("x{i}")),
                RosterSigner::Device(&o.admin),
            )
        })
        .find(|v| v.hash[0] >= 0x40)
        .expect("an unbounded search ends");
    honest.apply(vec![v3.clone()]);
    let v4 = next(
        &honest,
        RosterChange::RemoveMember {
            name: "bashir".into(),
        },
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(honest.apply(vec![v4]).error, None);
    // Bashir grinds a version 3 whose hash beats the honest one (half of all tries do).
    let forged = (0..200)
        .map(|i| next(&base, add(&format!("y{i}")), RosterSigner::Device(&bashir)))
        .find(|f| f.hash < v3.hash)
        .expect("a smaller hash within 200 tries");
    let head = honest.head().unwrap().hash;
    let rep = honest.apply(vec![forged.clone()]);
    assert_eq!(rep.error, Some(RosterError::ForkLost { version: 3 }));
    assert_eq!(honest.head().unwrap().hash, head);
    // A node that took the forgery first moves to the honest branch when it hears it.
    let mut fooled = base.clone();
    fooled.apply(vec![forged]);
    let rep = fooled.apply(honest.suffix_for(3).to_vec());
    assert_eq!(rep.error, None);
    assert_eq!(fooled.head().unwrap().hash, head);
}

/// Admins amina and bashir remove each other in concurrent versions: no hash settles it.
#[test]
fn mutual_removal_is_contested_until_the_root_key_decides() {
    let o = org();
    let (bashir, base) = second_admin(&o);
    let rm = |name: &str| RosterChange::RemoveMember { name: name.into() };
    let by_amina = next_not_tiny(&base, rm("bashir"), RosterSigner::Device(&o.admin));
    // Bashir grinds `issued_at` for a smaller hash: it must not matter.
    let h = base.head().unwrap();
    let by_bashir = (0..200)
        .map(|i| {
            let r = h.roster.next(h.hash, &rm("amina"), 3 + i).unwrap();
            VerifiedRoster::sign(r, RosterSigner::Device(&bashir))
        })
        .find(|f| f.hash < by_amina.hash)
        .expect("a smaller hash within 200 tries");
    let (mut n1, mut n2) = (base.clone(), base.clone());
    n1.apply(vec![by_amina.clone()]);
    n2.apply(vec![by_bashir.clone()]);
    let rep = n1.apply(vec![by_bashir.clone()]);
    assert_eq!(rep.contested, Some(3));
    assert_eq!(
        n1.head().unwrap().hash,
        by_amina.hash,
        "kept what it saw first"
    );
    assert_eq!(n2.apply(vec![by_amina.clone()]).contested, Some(3));
    assert_eq!(n2.head().unwrap().hash, by_bashir.hash);
    // The root key signs on amina's branch: every node moves there.
    let settled = next(&n1, add("x"), RosterSigner::Root(&o.root));
    n1.apply(vec![settled.clone()]);
    let rep = n2.apply(n1.suffix_for(3).to_vec());
    assert_eq!(rep.error, None);
    assert_eq!(n2.head().unwrap().hash, settled.hash);
}

/// Under `members_create_channels`, a removed member forks the removal with a channel
/// creation (and a ground-down hash): nobody adopts it, and a node that did moves back.
#[test]
fn a_removed_member_cannot_fork_the_removal_with_a_channel() {
    let mut o = org();
    let mallory = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "mallory".into(),
                device: mallory.id(),
                role: None,
            },
            RosterChange::SetPolicy {
                policy: Policy {
                    members_create_channels: true,
                    dms: DmPolicy::Members,
                },
            },
        ],
    );
    let base = o.chain.clone();
    let removal = next_not_tiny(
        &base,
        RosterChange::RemoveMember {
            name: "mallory".into(),
        },
        RosterSigner::Device(&o.admin),
    );
    let forged = (0..200)
        .map(|i| {
            next(
                &base,
                RosterChange::CreateChannel {
                    name: format!("c{i}"),
                    members: None,
                },
                RosterSigner::Device(&mallory),
            )
        })
        .find(|f| f.hash < removal.hash)
        .expect("a smaller hash within 200 tries");
    let mut honest = base.clone();
    honest.apply(vec![removal.clone()]);
    assert!(honest.apply(vec![forged.clone()]).error.is_some());
    assert_eq!(honest.head().unwrap().hash, removal.hash);
    let mut fooled = base.clone();
    fooled.apply(vec![forged]);
    assert_eq!(fooled.apply(vec![removal.clone()]).error, None);
    assert_eq!(fooled.head().unwrap().hash, removal.hash);
}

#[test]
fn guests_see_only_channels_that_name_them_and_dms_follow_policy() {
    let mut o = org();
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "gita".into(),
                device: DeviceKey::generate().id(),
                role: Some(Role::Guest),
            },
            add("bilal"),
            RosterChange::CreateChannel {
                name: "project".into(),
                members: Some(vec!["gita".into(), "amina".into()]),
            },
        ],
    );
    let r = &o.chain.head().unwrap().roster;
    let (gita, bilal, amina) = (
        r.member("gita").unwrap(),
        r.member("bilal").unwrap(),
        r.member("amina").unwrap(),
    );
    assert!(!r.may_read(gita, "general"));
    assert!(r.may_post(gita, "project"));
    assert!(!r.may_read(bilal, "project"));
    // DMs: members by default, guests not; the channel name is canonical.
    assert_eq!(dm_channel("bilal", "amina"), "@amina,bilal");
    assert_eq!(dm_members("@amina,bilal"), Some(vec!["amina", "bilal"]));
    assert_eq!(dm_members("@bilal,amina"), None);
    assert!(r.may_post(bilal, "@amina,bilal"));
    assert!(!r.may_read(gita, "@amina,bilal"));
    assert!(!r.channel_exists("@amina,gita"));
    assert!(!r.may_post(amina, "@amina,amina"));
    let all = next(
        &o.chain,
        RosterChange::SetPolicy {
            policy: Policy {
                dms: DmPolicy::All,
                ..Policy::default()
            },
        },
        RosterSigner::Device(&o.admin),
    );
    o.chain.apply(vec![all]);
    let r = &o.chain.head().unwrap().roster;
    assert!(r.may_post(r.member("gita").unwrap(), "@amina,gita"));
    let off = Roster {
        policy: Policy {
            dms: DmPolicy::Off,
            ..Policy::default()
        },
        ..r.clone()
    };
    assert!(!off.channel_exists("@amina,bilal"));
    let audit = o.chain.audit();
    assert!(matches!(
        audit.last().unwrap().changes[..],
        [AuditChange::PolicyChanged { .. }]
    ));
}

#[test]
fn members_create_channels_only_when_policy_allows_and_change_nothing_else() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    let v2 = next(
        &o.chain,
        RosterChange::AddMember {
            name: "bilal".into(),
            device: bilal.id(),
            role: None,
        },
        RosterSigner::Device(&o.admin),
    );
    o.chain.apply(vec![v2]);
    let chan = RosterChange::CreateChannel {
        name: "lunch".into(),
        members: None,
    };
    let denied = next(&o.chain, chan.clone(), RosterSigner::Device(&bilal));
    assert!(matches!(
        o.chain.clone().apply(vec![denied]).error,
        Some(RosterError::NotAuthorized { .. })
    ));
    let open = next(
        &o.chain,
        members_create_channels(),
        RosterSigner::Device(&o.admin),
    );
    o.chain.apply(vec![open]);
    // Anything beyond new channels still needs an admin.
    let sneaky = next(&o.chain, add("friend"), RosterSigner::Device(&bilal));
    assert!(matches!(
        o.chain.clone().apply(vec![sneaky]).error,
        Some(RosterError::NotAuthorized { .. })
    ));
    let ok = next(&o.chain, chan, RosterSigner::Device(&bilal));
    assert_eq!(o.chain.apply(vec![ok]).error, None);
    assert_eq!(o.chain.audit().last().unwrap().signed_by, "bilal");
}

/// What a modified client signs: `head` with `channels` appended, nothing checked.
fn with_channels(chain: &RosterChain, channels: &[&str], signer: &DeviceKey) -> VerifiedRoster {
    let head = chain.head().unwrap();
    let mut r = head.roster.clone();
    r.version += 1;
    r.prev = Some(head.hash);
    r.issued_at += 1;
    r.channels.extend(channels.iter().map(|n| Channel {
        name: n.to_string(),
        members: None,
    }));
    VerifiedRoster::sign(r, RosterSigner::Device(signer))
}

#[test]
fn a_member_cannot_slip_in_a_channel_that_looks_like_another() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            joins("bilal", &bilal),
            members_create_channels(),
            RosterChange::CreateChannel {
                name: "legal".into(),
                members: Some(vec!["amina".into()]),
            },
        ],
    );
    let held = o.chain.head().unwrap().version();
    // Each signed by bilal's own (modified) client, which checks nothing.
    for names in [
        &["legaI"][..],     // capital I for l
        &["lеgal"],         // Cyrillic е
        &["General"],       // case
        &["le\u{200B}gal"], // a zero-width space
        &["\u{202E}lagel"], // shown as "legal", right to left
        &["#legal"],        // shown as "##legal"
    ] {
        let v = with_channels(&o.chain, names, &bilal);
        let err = o.chain.clone().apply(vec![v]).error;
        assert!(
            matches!(err, Some(RosterError::Rule(_))),
            "{names:?}: {err:?}"
        );
    }
    assert_eq!(o.chain.head().unwrap().version(), held);
    // The same client adding honest names is accepted: the refusals above are the names'.
    // One at a time: a client that adds many in one version is refused.
    let v = with_channels(&o.chain, &["legal-2", "المبيعات"], &bilal);
    let err = o.chain.clone().apply(vec![v]).error;
    assert!(
        matches!(&err, Some(RosterError::Rule(w)) if w.contains("adds 2")),
        "{err:?}"
    );
    for name in ["legal-2", "المبيعات"] {
        let v = with_channels(&o.chain, &[name], &bilal);
        assert_eq!(o.chain.apply(vec![v]).error, None);
    }
    assert_eq!(o.chain.head().unwrap().version(), held + 2);
    // Up to a bound: past it, only an admin adds channels.
    let fill: Vec<String> = (o.chain.head().unwrap().roster.channels.len()..MAX_MEMBER_CHANNELS)
        .map(|i| format!("project {i}"))
        .collect();
    let fill: Vec<&str> = fill.iter().map(String::as_str).collect();
    let v = with_channels(&o.chain, &fill, &o.admin);
    assert_eq!(o.chain.apply(vec![v]).error, None);
    let v = with_channels(&o.chain, &["one more"], &bilal);
    let err = o.chain.clone().apply(vec![v]).error;
    assert!(
        matches!(&err, Some(RosterError::Rule(w)) if w.contains("an admin can add more")),
        "{err:?}"
    );
    let v = with_channels(&o.chain, &["one more"], &o.admin);
    assert_eq!(o.chain.apply(vec![v]).error, None);
    // An admin's version is not held to it: what admins signed before stays valid.
    let v = with_channels(&o.chain, &["legaI"], &o.admin);
    assert_eq!(o.chain.apply(vec![v]).error, None);
}

#[test]
fn a_version_dated_before_the_one_it_follows_is_refused_even_from_the_root() {
    let mut o = org();
    let v2 = next(&o.chain, add("bilal"), RosterSigner::Device(&o.admin));
    let t = v2.roster.issued_at;
    assert_eq!(o.chain.apply(vec![v2]).error, None);
    let head = o.chain.head().unwrap().clone();
    let at = |issued_at: u64| {
        let mut r = head.roster.next(head.hash, &add("chen"), t).unwrap();
        r.issued_at = issued_at;
        VerifiedRoster::sign(r, RosterSigner::Root(&o.root))
    };
    let err = o.chain.clone().apply(vec![at(t - 1)]).error;
    assert!(
        matches!(&err, Some(RosterError::Rule(why)) if why.contains("dated before version 2")),
        "{err:?}"
    );
    assert_eq!(
        o.chain.apply(vec![at(t)]).error,
        None,
        "the same time is fine"
    );
}

#[test]
fn names_that_look_alike_or_hide_characters_are_refused_with_a_fix() {
    let o = org();
    let head = o.chain.head().unwrap();
    let r = head.roster.next(head.hash, &add("bilal"), 2).unwrap();
    let create = |name: &str| {
        r.next(
            head.hash,
            &RosterChange::CreateChannel {
                name: name.into(),
                members: None,
            },
            3,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let e = create("generaI").unwrap_err();
    assert!(e.contains("looks like the channel 'general'"), "{e}");
    let e = create("gen\u{200B}eral").unwrap_err();
    assert!(e.contains("looks like the channel 'general'"), "{e}");
    let e = create("\u{202E}spo").unwrap_err();
    assert!(e.contains("(U+202E); try 'spo'"), "{e}");
    for ok in [
        "ops",
        "site-b",
        "المبيعات",
        "می\u{200C}خواهم",
        "🚀\u{FE0F} launch",
        "general 2",
    ] {
        assert_eq!(create(ok), Ok(()), "{ok}");
    }
    let add_err = |name: &str| r.next(head.hash, &add(name), 3).unwrap_err().to_string();
    let e = add_err("biIal");
    assert!(e.contains("looks like the member 'bilal'"), "{e}");
    let e = add_err("Ьilal");
    assert!(e.contains("looks like the member 'bilal'"), "{e}");
    let e = add_err("sara\u{2066}");
    assert!(e.contains("(U+2066); try 'sara'"), "{e}");
    let e = add_err("\u{200D}\u{FE0F}");
    assert!(e.ends_with("name: it has nothing that can be seen"), "{e}");
    let e = create("\u{200C}").unwrap_err();
    assert!(e.ends_with("name: it has nothing that can be seen"), "{e}");
    assert!(r.next(head.hash, &add("bilal b"), 3).is_ok());
}

#[test]
fn audit_lists_every_change_with_its_signer() {
    let mut o = org();
    let b = DeviceKey::generate();
    o.chain.apply(vec![next(
        &o.chain,
        RosterChange::AddMember {
            name: "bilal".into(),
            device: b.id(),
            role: None,
        },
        RosterSigner::Device(&o.admin),
    )]);
    o.chain.apply(vec![next(
        &o.chain,
        RosterChange::RevokeDevice { device: b.id() },
        RosterSigner::Root(&o.root),
    )]);
    let a = o.chain.audit();
    assert_eq!(a.len(), 3);
    assert_eq!(a[0].signed_by, "org root key");
    assert!(matches!(a[0].changes[0], AuditChange::OrgCreated { .. }));
    assert_eq!(a[1].signed_by, "amina");
    assert_eq!(
        a[1].changes,
        vec![
            AuditChange::MemberAdded {
                name: "bilal".into(),
                role: Role::Member
            },
            AuditChange::DeviceAdded {
                name: "bilal".into(),
                device: b.id()
            }
        ]
    );
    assert_eq!(
        a[2].changes,
        vec![AuditChange::DeviceRevoked {
            name: "bilal".into(),
            device: b.id()
        }]
    );
    assert_eq!(a[2].prev.as_deref(), Some(a[1].hash.as_str()));
}

#[test]
fn a_thousand_member_channel_works() {
    let o = org();
    let mut r = o.chain.head().unwrap().roster.clone();
    for i in 0..999 {
        r.members.push(Member {
            name: format!("m{i}"),
            role: Role::Member,
            devices: vec![DeviceKey::generate().id()],
        });
    }
    let head = o.chain.head().unwrap();
    r.version = 2;
    r.prev = Some(head.hash);
    let names: Vec<String> = r
        .members
        .iter()
        .filter(|m| m.name != "m998")
        .map(|m| m.name.clone())
        .collect();
    r.channels.push(Channel {
        name: "all-hands".into(),
        members: Some(names),
    });
    let mut chain = o.chain.clone();
    let rep = chain.apply(vec![VerifiedRoster::sign(
        r,
        RosterSigner::Device(&o.admin),
    )]);
    assert_eq!(rep.error, None);
    let r = &chain.head().unwrap().roster;
    assert_eq!(r.members.len(), 1000);
    assert!(r.may_post(r.member("m997").unwrap(), "all-hands"));
    assert!(!r.may_read(r.member("m998").unwrap(), "all-hands"));
}

#[test]
fn last_admin_cannot_be_removed() {
    let o = org();
    let head = o.chain.head().unwrap();
    let err = head
        .roster
        .next(
            head.hash,
            &RosterChange::RemoveMember {
                name: "amina".into(),
            },
            3,
        )
        .unwrap_err();
    assert!(matches!(err, RosterError::Rule(_)));
}

#[test]
fn private_channel_rules() {
    let mut o = org();
    let b = DeviceKey::generate();
    o.chain.apply(vec![next(
        &o.chain,
        RosterChange::AddMember {
            name: "b".into(),
            device: b.id(),
            role: None,
        },
        RosterSigner::Device(&o.admin),
    )]);
    o.chain.apply(vec![next(
        &o.chain,
        RosterChange::CreateChannel {
            name: "hr".into(),
            members: Some(vec!["amina".into()]),
        },
        RosterSigner::Device(&o.admin),
    )]);
    let r = &o.chain.head().unwrap().roster;
    let amina = r.member("amina").unwrap();
    let bm = r.member("b").unwrap();
    assert!(r.may_post(amina, "hr"));
    assert!(!r.may_read(bm, "hr"));
    assert!(r.may_post(bm, "general"));
    assert!(!r.may_read(bm, "nope"));
}

#[test]
fn corrupted_wire_never_panics_and_is_rejected() {
    let o = org();
    let wire = o.chain.head().unwrap().wire.clone();
    for i in 0..wire.len() {
        let mut w = wire.clone();
        w[i] ^= 0x41;
        assert!(VerifiedRoster::decode(&w).is_err(), "byte {i}");
    }
    for n in 0..wire.len() {
        assert!(VerifiedRoster::decode(&wire[..n]).is_err());
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = VerifiedRoster::decode(&bytes);
    }
}

#[test]
fn file_policy_matches_types_and_sizes() {
    let p = FilePolicy {
        max_bytes: Some(1000),
        auto_fetch_bytes: 10,
        types: vec!["image/*".into(), "application/pdf".into()],
    };
    assert!(p.allows_type("image/png") && p.allows_type("application/PDF"));
    assert!(!p.allows_type("application/zip") && !p.allows_type("imagex/png"));
    assert!(p.refuse(1000, "image/jpeg").is_none());
    assert!(p.refuse(1001, "image/jpeg").unwrap().contains("up to 1000"));
    assert!(FilePolicy::default().refuse(u64::MAX, "x/y").is_none());
}

#[test]
fn a_roster_body_of_the_first_release_still_decodes() {
    let org = OrgKey::generate();
    let dev = DeviceKey::generate();
    let r = Roster::genesis(&org, "acme", "amina", dev.id(), 1_700_000_000_000);
    let legacy = FirstLayout {
        org: r.org,
        name: r.name.clone(),
        root_key: r.root_key,
        version: r.version,
        prev: r.prev,
        issued_at: r.issued_at,
        members: r.members.clone(),
        channels: r.channels.clone(),
        policy: r.policy,
    };
    let body = postcard::to_stdvec(&legacy).unwrap();
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&body);
    #[derive(serde::Serialize)]
    struct Wire {
        format: u8,
        body: Vec<u8>,
        signer: [u8; 32],
        signature: Vec<u8>,
    }
    let wire = postcard::to_stdvec(&Wire {
        format: ROSTER_FORMAT,
        body,
        signer: org.public(),
        signature: org.sign(&msg).to_vec(),
    })
    .unwrap();
    let v = VerifiedRoster::decode(&wire).expect("an old roster opens");
    assert_eq!(v.roster, r, "read with the default file policy");
    assert_eq!(v.wire, wire, "and keeps its bytes (and so its hash)");
}

/// A bot reads and posts like a member (open channels, and private ones that list it), is
/// never a channel's reader otherwise, and signs no roster version, not even a channel
/// creation when members may create channels.
#[test]
fn a_bot_posts_like_a_member_and_signs_nothing() {
    let mut o = org();
    let bot = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "ci".into(),
                device: bot.id(),
                role: Some(Role::Bot),
            },
            RosterChange::CreateChannel {
                name: "board".into(),
                members: Some(vec!["amina".into()]),
            },
            RosterChange::CreateChannel {
                name: "builds".into(),
                members: Some(vec!["amina".into(), "ci".into()]),
            },
            members_create_channels(),
        ],
    );
    let head = o.chain.head().unwrap();
    let ci = head.member_of_device(&bot.id()).unwrap();
    assert_eq!(ci.role.to_string(), "bot");
    assert_eq!("bot".parse::<Role>().unwrap(), Role::Bot);
    assert!(head.roster.may_post(ci, "general"));
    assert!(head.roster.may_post(ci, "builds"));
    assert!(!head.roster.may_read(ci, "board"));
    assert!(head.roster.key_holders("builds").contains(&bot.id()));
    let chan = next(
        &o.chain,
        RosterChange::CreateChannel {
            name: "bots".into(),
            members: None,
        },
        RosterSigner::Device(&bot),
    );
    assert!(matches!(
        o.chain.clone().apply(vec![chan]).error,
        Some(RosterError::NotAuthorized { .. })
    ));
}

/// Many changes in one version: one signature, the next version number, every change in, and
/// a bad change anywhere refuses the whole batch.
#[test]
fn a_batch_of_changes_is_one_version() {
    let mut o = org();
    let head = o.chain.head().unwrap().clone();
    let team: Vec<RosterChange> = (0..50).map(|i| add(&format!("m{i}"))).collect();
    let r = head.roster.next_all(head.hash, &team, 2).unwrap();
    assert_eq!(r.version, head.roster.version + 1);
    assert_eq!(r.prev, Some(head.hash));
    assert_eq!(r.members.len(), head.roster.members.len() + 50);
    let rep = o.chain.apply(vec![VerifiedRoster::sign(
        r,
        RosterSigner::Device(&o.admin),
    )]);
    assert!(rep.error.is_none(), "{:?}", rep.error);
    let mut bad = team.clone();
    bad.push(RosterChange::RemoveMember {
        name: "nobody".into(),
    });
    assert!(head.roster.next_all(head.hash, &bad, 2).is_err());
}

/// Governance rides in the roster: only admins change it (a member's channel-only version
/// that also sneaks in a retention rule or drops a hold is refused), an unchanged governance
/// keeps the earlier body layout (older nodes still read the roster), and the audit log
/// names every governance change.
#[test]
fn governance_is_admin_signed_audited_and_keeps_the_old_layout_until_set() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
            members_create_channels(),
        ],
    );
    let head = o.chain.head().unwrap();
    assert!(
        read_by::<ReleaseWithFiles>(&head.roster.encode_body()),
        "default governance: written in the earlier layout"
    );
    // A member signs a version that adds a channel and, quietly, a retention rule.
    let mut sneaky = head
        .roster
        .next(
            head.hash,
            &RosterChange::CreateChannel {
                name: "lunch".into(),
                members: None,
            },
            2,
        )
        .unwrap();
    sneaky.governance.retention.org.days = Some(1);
    let sneaky = VerifiedRoster::sign(sneaky, RosterSigner::Device(&bilal));
    assert!(matches!(
        o.chain.clone().apply(vec![sneaky]).error,
        Some(RosterError::NotAuthorized { .. })
    ));
    // The admin sets retention, a hold and an erasure.
    admin_applies(
        &mut o,
        [
            RosterChange::SetRetention {
                scope: Scope::Org,
                keep: Keep {
                    days: Some(30),
                    files_days: Some(7),
                },
            },
            RosterChange::PlaceHold {
                members: vec!["bilal".into()],
                channels: vec![],
                reason: "case 17".into(),
            },
            RosterChange::Erase {
                member: "bilal".into(),
            },
        ],
    );
    let head = o.chain.head().unwrap();
    let again = VerifiedRoster::decode(&head.wire).unwrap();
    assert_eq!(
        again.roster.governance, head.roster.governance,
        "round trip"
    );
    assert_eq!(head.roster.governance.erasures[0].devices, vec![bilal.id()]);
    let hold = head.roster.governance.holds[0].id;
    let v = next(
        &o.chain,
        RosterChange::ReleaseHold { id: hold },
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    let changes: Vec<AuditChange> = o
        .chain
        .audit()
        .into_iter()
        .flat_map(|e| e.changes)
        .collect();
    assert!(changes
        .iter()
        .any(|c| matches!(c, AuditChange::RetentionChanged { .. })));
    assert!(changes
        .iter()
        .any(|c| matches!(c, AuditChange::HoldPlaced { .. })));
    assert!(changes
        .iter()
        .any(|c| matches!(c, AuditChange::ErasureRequested { member, .. } if member == "bilal")));
    assert!(changes
        .iter()
        .any(|c| matches!(c, AuditChange::HoldReleased { id } if *id == hold)));
    let v = next(
        &o.chain,
        RosterChange::SetReadReceipts {
            receipts: ReadReceipts::Off,
        },
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    assert!(o
        .chain
        .audit()
        .last()
        .unwrap()
        .changes
        .contains(&AuditChange::ReadReceiptsChanged {
            receipts: ReadReceipts::Off
        }));
    // Rules refuse nonsense with a clear error.
    let r = &o.chain.head().unwrap().roster;
    let h = o.chain.head().unwrap().hash;
    for bad in [
        RosterChange::SetRetention {
            scope: Scope::Channel("nope".into()),
            keep: Keep::default(),
        },
        RosterChange::SetRetention {
            scope: Scope::Org,
            keep: Keep {
                days: Some(0),
                files_days: None,
            },
        },
        RosterChange::ReleaseHold { id: 999 },
        RosterChange::SetReadReceipts {
            receipts: ReadReceipts::Off,
        },
        RosterChange::Erase {
            member: "nobody".into(),
        },
        RosterChange::PlaceHold {
            members: vec![],
            channels: vec![],
            reason: String::new(),
        },
    ] {
        assert!(
            matches!(r.next(h, &bad, 3), Err(RosterError::Rule(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn reading_a_channel_one_may_not_read_says_why_instead_of_showing_it_empty() {
    let mut o = org();
    let (bilal, gita) = (DeviceKey::generate(), DeviceKey::generate());
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
            RosterChange::AddMember {
                name: "gita".into(),
                device: gita.id(),
                role: Some(Role::Guest),
            },
            RosterChange::CreateChannel {
                name: "hr".into(),
                members: Some(vec!["amina".into()]),
            },
        ],
    );
    let head = o.chain.head().unwrap();
    let denied = |dev: &DeviceKey, ch: &str| match head.readable_channel(&dev.id(), ch) {
        Err(crate::Error::Denied(why)) => why,
        other => panic!("{ch}: expected a refusal, got {other:?}"),
    };
    assert!(denied(&bilal, "hr").contains("open to amina only"));
    assert!(denied(&gita, "general").contains("a guest reads only"));
    assert!(denied(&gita, "@amina,bilal").contains("direct conversation of amina and bilal"));
    assert_eq!(head.readable_channel(&o.admin.id(), "hr").unwrap(), "hr");
    assert_eq!(
        head.readable_channel(&bilal.id(), "@amina").unwrap(),
        "@amina,bilal"
    );
    // A device the roster does not list has nothing to read yet.
    assert!(matches!(
        head.readable_channel(&DeviceKey::generate().id(), "general"),
        Err(crate::Error::NotOnRoster)
    ));
}

#[test]
fn an_admin_changes_who_is_on_a_channel_and_a_member_cannot() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            RosterChange::AddMember {
                name: "bilal".into(),
                device: bilal.id(),
                role: None,
            },
            add("carol"),
            members_create_channels(),
            RosterChange::CreateChannel {
                name: "legal".into(),
                members: Some(vec!["amina".into(), "bilal".into()]),
            },
        ],
    );
    let change = |c: MembersChange| RosterChange::ChannelMembers {
        name: "legal".into(),
        change: c,
    };
    let head = |o: &Org| o.chain.head().unwrap().roster.clone();
    let try_next = |o: &Org, c: MembersChange| {
        let h = o.chain.head().unwrap();
        h.roster.next(h.hash, &change(c), 3)
    };
    let readers = |r: &Roster| -> Vec<&str> {
        ["amina", "bilal", "carol"]
            .into_iter()
            .filter(|n| r.may_read(r.member(n).unwrap(), "legal"))
            .collect()
    };

    // Put carol on it, then take bilal off: each is one admin-signed version.
    for (c, want) in [
        (
            MembersChange::Add(vec!["carol".into()]),
            vec!["amina", "bilal", "carol"],
        ),
        (
            MembersChange::Remove(vec!["bilal".into()]),
            vec!["amina", "carol"],
        ),
    ] {
        let v = next(&o.chain, change(c), RosterSigner::Device(&o.admin));
        assert_eq!(o.chain.apply(vec![v]).error, None);
        assert_eq!(readers(&head(&o)), want);
    }
    let audit = o.chain.audit();
    assert_eq!(
        audit.last().unwrap().changes,
        vec![AuditChange::ChannelChanged {
            name: "legal".into(),
            members: Some(vec!["amina".into(), "carol".into()]),
        }]
    );

    // Mistakes are refused with a reason, and change nothing.
    let refused = |o: &Org, c: MembersChange, says: &str| match try_next(o, c) {
        Err(RosterError::Rule(m)) => assert!(m.contains(says), "{m}"),
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    };
    refused(
        &o,
        MembersChange::Add(vec!["carol".into()]),
        "already a member",
    );
    refused(
        &o,
        MembersChange::Remove(vec!["bilal".into()]),
        "not a member of #legal",
    );
    refused(
        &o,
        MembersChange::Add(vec!["zed".into()]),
        "'zed', who is not a member",
    );
    refused(
        &o,
        MembersChange::Remove(vec!["amina".into(), "carol".into()]),
        "no members left",
    );
    // The same people, named twice or in another order, are no change either.
    for same in [
        vec!["amina", "carol"],
        vec!["carol", "amina"],
        vec!["amina", "carol", "amina"],
    ] {
        refused(
            &o,
            MembersChange::Set(Some(same.into_iter().map(String::from).collect())),
            "nothing to change",
        );
    }
    let h = o.chain.head().unwrap();
    let err = h
        .roster
        .next(
            h.hash,
            &RosterChange::ChannelMembers {
                name: "nope".into(),
                change: MembersChange::Set(None),
            },
            3,
        )
        .unwrap_err();
    assert!(err.to_string().contains("no channel named 'nope'"), "{err}");

    // Opened to everyone, then closed again to exactly the named.
    let v = next(
        &o.chain,
        change(MembersChange::Set(None)),
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    assert_eq!(readers(&head(&o)), vec!["amina", "bilal", "carol"]);
    refused(
        &o,
        MembersChange::Add(vec!["bilal".into()]),
        "open to every member",
    );
    refused(&o, MembersChange::Set(None), "already open");
    let v = next(
        &o.chain,
        change(MembersChange::Set(Some(vec![
            "bilal".into(),
            "bilal".into(),
        ]))),
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    assert_eq!(readers(&head(&o)), vec!["bilal"]);

    // A member may create channels under this policy, but not change who is on one: bilal
    // putting himself back on a channel he was taken off is not authorized.
    let v = next(
        &o.chain,
        change(MembersChange::Set(None)),
        RosterSigner::Device(&bilal),
    );
    let version = v.version();
    assert!(matches!(
        o.chain.apply(vec![v]).error,
        Some(RosterError::NotAuthorized { version: got, .. }) if got == version
    ));
    assert_eq!(readers(&head(&o)), vec!["bilal"]);
}

/// An admin archives a channel and brings it back; nobody posts in it meanwhile; a member
/// cannot do either, not even slipped into a version that only adds a channel (which the
/// policy lets members sign); a roster that archives nothing keeps the earlier layout.
#[test]
fn an_admin_archives_a_channel_and_a_member_cannot() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            joins("bilal", &bilal),
            members_create_channels(),
            RosterChange::SetRetention {
                scope: Scope::Org,
                keep: Keep {
                    days: Some(30),
                    files_days: None,
                },
            },
        ],
    );
    let archive = |name: &str, archived| RosterChange::ArchiveChannel {
        name: name.into(),
        archived,
    };
    let body = o.chain.head().unwrap().roster.encode_body();
    assert!(
        read_by::<ReleaseWithGovernance>(&body),
        "nothing archived: written in the layout before, which earlier releases read"
    );

    // bilal may add a channel, but not archive one, alone or along with a new channel.
    unauthorized(
        &o,
        next(
            &o.chain,
            archive("general", true),
            RosterSigner::Device(&bilal),
        ),
    );
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| r.archived.push("general".into())),
    );

    // The admin archives it as typed; nobody may post, everyone still reads.
    let v = next(
        &o.chain,
        archive("#General", true),
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    assert_eq!(r.archived, vec!["general".to_string()]);
    for n in ["amina", "bilal"] {
        let m = r.member(n).unwrap();
        assert!(r.may_read(m, "general") && !r.may_post(m, "general"), "{n}");
        assert!(r.may_share_keys(m, "general"), "{n} still hands on keys");
    }
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelArchived {
            name: "general".into()
        }]
    );
    // Written in the new layout, which the layout before cannot read whole.
    let body = r.encode_body();
    assert!(!read_by::<ReleaseWithGovernance>(&body));
    let back = VerifiedRoster::decode(&head.wire).unwrap();
    assert_eq!(back.roster, *r);

    // Mistakes are refused with a reason.
    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster.next(h.hash, &c, 3).unwrap_err().to_string()
    };
    assert!(try_next(&o, archive("general", true)).contains("already archived"));
    assert!(try_next(&o, archive("nope", true)).contains("no channel named 'nope'"));
    let lunch = RosterChange::CreateChannel {
        name: "lunch".into(),
        members: None,
    };
    let v = next(&o.chain, lunch, RosterSigner::Device(&o.admin));
    assert_eq!(o.chain.apply(vec![v]).error, None);
    assert!(try_next(&o, archive("lunch", false)).contains("not archived"));

    // Brought back, it takes posts again.
    let v = next(
        &o.chain,
        archive("general", false),
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    let head = o.chain.head().unwrap();
    assert!(head.roster.archived.is_empty());
    assert!(head
        .roster
        .may_post(head.roster.member("bilal").unwrap(), "general"));
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelUnarchived {
            name: "general".into()
        }]
    );
    // An archive list that names no channel, or one twice, is not a roster.
    let mut bad = head.roster.clone();
    bad.archived = vec!["nope".into()];
    assert!(bad.check_well_formed().is_err());
    bad.archived = vec!["general".into(), "general".into()];
    assert!(bad.check_well_formed().is_err());
}

/// That `v` is refused as not authorized (and, applied to a copy, changes nothing).
fn unauthorized(o: &Org, v: VerifiedRoster) {
    assert!(matches!(
        o.chain.clone().apply(vec![v]).error,
        Some(RosterError::NotAuthorized { .. })
    ));
}

/// A version `member` may sign under the policy (it adds #lunch), with `sneak` done to it
/// as well.
fn lunch_and(o: &Org, member: &DeviceKey, sneak: impl FnOnce(&mut Roster)) -> VerifiedRoster {
    let h = o.chain.head().unwrap();
    let lunch = RosterChange::CreateChannel {
        name: "lunch".into(),
        members: None,
    };
    let mut r = h.roster.next(h.hash, &lunch, 2).unwrap();
    sneak(&mut r);
    VerifiedRoster::sign(r, RosterSigner::Device(member))
}

/// An admin renames a channel: views and commands use the new name, messages keep the
/// wire name; the new name is checked as a new channel's would be, against every name a
/// channel goes by; a member cannot rename, not even slipped into a version that adds a
/// channel; undoing the rename returns the earlier layout.
#[test]
fn an_admin_renames_a_channel_and_a_member_cannot() {
    let mut o = org();
    let bilal = DeviceKey::generate();
    admin_applies(
        &mut o,
        [
            joins("bilal", &bilal),
            members_create_channels(),
            RosterChange::CreateChannel {
                name: "legal".into(),
                members: None,
            },
        ],
    );
    let rename = |name: &str, to: &str| RosterChange::RenameChannel {
        name: name.into(),
        to: to.into(),
    };
    let before = &o.chain.head().unwrap().roster;
    assert!(
        before.layout() < Layout::Renamed && read_by::<ReleaseWithFiles>(&before.encode_body())
    );

    // bilal may not rename, alone or along with a channel he may add.
    unauthorized(
        &o,
        next(
            &o.chain,
            rename("general", "staff"),
            RosterSigner::Device(&bilal),
        ),
    );
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| {
            r.renamed.push(("general".into(), "staff".into()))
        }),
    );

    // The admin renames it, as typed.
    let v = next(
        &o.chain,
        rename("#General", "staff"),
        RosterSigner::Device(&o.admin),
    );
    assert_eq!(o.chain.apply(vec![v]).error, None);
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    assert_eq!(r.shown("general"), "staff");
    assert_eq!(r.shown("legal"), "legal");
    assert_eq!(r.shown("@amina,bilal"), "@amina,bilal");
    for typed in ["staff", "#staff", "Staff", "general", "#general"] {
        assert_eq!(
            r.channel_typed(typed).map(|c| c.name.as_str()),
            Some("general"),
            "{typed}"
        );
    }
    // Who reads and posts is the wire name's, as before.
    let b = r.member("bilal").unwrap();
    assert!(r.may_post(b, "general") && r.channel("staff").is_none());
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelRenamed {
            name: "general".into(),
            to: "staff".into()
        }]
    );
    // Written in the new layout, which the releases before cannot read whole.
    assert_eq!(r.layout(), Layout::Renamed);
    assert!(!read_by::<ReleaseWithFiles>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);

    // Names taken, looking alike or not names at all are refused with a reason, for a
    // rename and for a new channel, from an admin or a member.
    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster.next(h.hash, &c, 3).unwrap_err().to_string()
    };
    assert!(try_next(&o, rename("legal", "staff")).contains("already exists"));
    assert!(try_next(&o, rename("legal", "Staff")).contains("only in case"));
    assert!(try_next(&o, rename("legal", "general")).contains("already exists"));
    assert!(try_next(&o, rename("legal", "st\u{0430}ff")).contains("looks like"));
    assert!(try_next(&o, rename("legal", "#law")).contains("starts with '#'"));
    assert!(try_next(&o, rename("staff", "staff")).contains("nothing to change"));
    assert!(try_next(&o, rename("nope", "x")).contains("no channel named 'nope'"));
    assert!(try_next(&o, rename("@amina,bilal", "x")).contains("direct messages"));
    let create = |name: &str| RosterChange::CreateChannel {
        name: name.into(),
        members: None,
    };
    assert!(try_next(&o, create("staff")).contains("already exists"));
    let h = o.chain.head().unwrap();
    let v = VerifiedRoster::sign(
        {
            let mut r = h.roster.next(h.hash, &create("lunch"), 3).unwrap();
            r.channels.last_mut().unwrap().name = "STAFF".into();
            r
        },
        RosterSigner::Device(&bilal),
    );
    assert!(
        o.chain.clone().apply(vec![v]).error.is_some(),
        "a member's look-alike of a shown name"
    );

    // Renamed again, then back: the rename is undone, the earlier layout returns.
    for (from, to) in [("staff", "team"), ("team", "general")] {
        let v = next(&o.chain, rename(from, to), RosterSigner::Device(&o.admin));
        assert_eq!(o.chain.apply(vec![v]).error, None);
    }
    let r = &o.chain.head().unwrap().roster;
    assert!(r.renamed.is_empty());
    assert!(r.channel_typed("staff").is_none() && r.channel_typed("team").is_none());
    assert!(read_by::<ReleaseWithFiles>(&r.encode_body()));
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelRenamed {
            name: "general".into(),
            to: "general".into()
        }]
    );

    // A rename that names no channel, takes another's name, or renames one twice is not a
    // roster.
    let mut bad = r.clone();
    for renamed in [
        vec![("nope".to_string(), "x".to_string())],
        vec![("general".into(), "legal".into())],
        vec![
            ("general".into(), "x".into()),
            ("general".into(), "y".into()),
        ],
        vec![("general".into(), "x".into()), ("legal".into(), "x".into())],
        vec![("general".into(), "general".into())],
    ] {
        bad.renamed = renamed;
        assert!(bad.check_well_formed().is_err(), "{:?}", bad.renamed);
    }
}

/// The roster body a release with file policies (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithFiles {
    first: FirstLayout,
    files: FilePolicy,
}

/// The roster body a release with governance (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithGovernance {
    first: FirstLayout,
    files: FilePolicy,
    governance: Governance,
}

/// Whether a release that decodes bodies as `T` reads `body` whole, as it would to check it
/// is canonical.
fn read_by<T: serde::de::DeserializeOwned>(body: &[u8]) -> bool {
    postcard::take_from_bytes::<T>(body).is_ok_and(|(_, rest)| rest.is_empty())
}

const H: u64 = 3_600_000;
const T: u64 = 1_800_000_000_000;

/// `name` joins as a member with the device `key`.
fn with_role(name: &str, key: &DeviceKey, role: Role) -> RosterChange {
    RosterChange::AddMember {
        name: name.into(),
        device: key.id(),
        role: Some(role),
    }
}

fn joins(name: &str, key: &DeviceKey) -> RosterChange {
    RosterChange::AddMember {
        name: name.into(),
        device: key.id(),
        role: None,
    }
}

/// A refused post says why under the name people know the channel by, and what would let
/// them: whose channel or conversation it is, that a guest needs a channel naming them,
/// that a relay never posts, that the channel is archived.
#[test]
fn a_refused_post_says_why_and_what_would_let_it() {
    let mut o = org();
    let (bilal, gus, relay) = (
        DeviceKey::generate(),
        DeviceKey::generate(),
        DeviceKey::generate(),
    );
    admin_applies(
        &mut o,
        [
            joins("bilal", &bilal),
            with_role("gus", &gus, Role::Guest),
            with_role("vault", &relay, Role::Relay),
            RosterChange::CreateChannel {
                name: "legal".into(),
                members: Some(vec!["amina".into()]),
            },
            RosterChange::RenameChannel {
                name: "legal".into(),
                to: "counsel".into(),
            },
            RosterChange::CreateChannel {
                name: "launch".into(),
                members: None,
            },
            RosterChange::ArchiveChannel {
                name: "launch".into(),
                archived: true,
            },
        ],
    );
    let r = &o.chain.head().unwrap().roster;
    let why = |name: &str, channel: &str| {
        let m = r.member(name).unwrap();
        assert!(!r.may_post(m, channel), "{name} in {channel}");
        r.why_not_post(m, channel)
    };
    assert_eq!(
        why("bilal", "legal"),
        "'bilal' may not post in #counsel: it is open to amina only; an admin can add you to it"
    );
    assert_eq!(
        why("gus", "general"),
        "'gus' may not post in #general: a guest reads only the channels that name them; an admin can add you to one"
    );
    assert_eq!(
        why("gus", "@amina,bilal"),
        "'gus' may not post in @amina,bilal: it is the direct conversation of amina and bilal"
    );
    assert_eq!(
        why("vault", "general"),
        "'vault' is the org's relay: it stores and serves what members post, and never posts"
    );
    assert!(why("bilal", "launch").starts_with("#launch is archived"));
}

/// Apply `changes`, each a version the admin signs.
fn admin_applies(o: &mut Org, changes: impl IntoIterator<Item = RosterChange>) {
    for c in changes {
        let v = next(&o.chain, c, RosterSigner::Device(&o.admin));
        assert_eq!(o.chain.apply(vec![v]).error, None);
    }
}

/// The policy change that lets members create channels (and sign versions that do).
fn members_create_channels() -> RosterChange {
    RosterChange::SetPolicy {
        policy: Policy {
            members_create_channels: true,
            ..Policy::default()
        },
    }
}

/// Apply `changes`, each signed by the admin and dated as given.
fn dated(o: &mut Org, changes: Vec<(u64, RosterChange)>) {
    for (at, c) in changes {
        let h = o.chain.head().unwrap();
        let r = h.roster.next(h.hash, &c, at).unwrap();
        let v = VerifiedRoster::sign(r, RosterSigner::Device(&o.admin));
        assert_eq!(o.chain.apply(vec![v]).error, None);
    }
}

/// The org with bilal joining at [`T`], then `later` (each at its time): the org and bilal's
/// device key.
fn bilal_joins_then(later: Vec<(u64, RosterChange)>) -> (Org, DeviceKey) {
    let (mut o, bilal) = (org(), DeviceKey::generate());
    let mut changes = vec![(T, joins("bilal", &bilal))];
    changes.extend(later);
    dated(&mut o, changes);
    (o, bilal)
}

/// What a device signed while it had a right stays its member's, inside the window the
/// versions' dates give, and nothing outside it: not before the right, not after it was
/// taken, not in another channel, not for a device never listed, not on a version that is
/// not the head.
#[test]
fn a_right_taken_away_still_covers_what_was_signed_while_it_held() {
    let t = T;
    let (o, bilal) = bilal_joins_then(vec![
        (
            t + 10 * H,
            RosterChange::CreateChannel {
                name: "legal".into(),
                members: Some(vec!["amina".into(), "bilal".into()]),
            },
        ),
        (
            t + 20 * H,
            RosterChange::ChannelMembers {
                name: "legal".into(),
                change: MembersChange::Remove(vec!["bilal".into()]),
            },
        ),
        (
            t + 30 * H,
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
        ),
    ]);
    let head = o.chain.head().unwrap();
    let b = bilal.id();
    assert!(head.member_of_device(&b).is_none());
    let at = |c: &str, when: u64| head.posted_before(&b, c, when);
    assert_eq!(at("general", t + H), Some("bilal"));
    assert_eq!(at("general", t + 30 * H - 1), Some("bilal"));
    assert_eq!(at("general", t + 30 * H), None, "signed once removed");
    assert_eq!(at("general", t - 2 * H), None, "before he was listed");
    assert_eq!(at("legal", t + 15 * H), Some("bilal"));
    assert_eq!(
        at("legal", t + 25 * H),
        None,
        "after he was taken off #legal"
    );
    assert_eq!(at("legal", t + 5 * H), None, "before #legal existed");
    assert_eq!(at("nope", t + H), None);
    assert!(head.posted_once(&b, "legal") && !head.posted_once(&b, "nope"));
    let stranger = DeviceKey::generate().id();
    assert_eq!(head.posted_before(&stranger, "general", t + H), None);
    // Only the head carries it.
    let v4 = &o.chain.versions()[3];
    assert_eq!(v4.posted_before(&b, "legal", t + 15 * H), None);
}

/// A DM with a member who left: the one who stays reads it and may still hand on keys (to
/// a new device of theirs), nobody posts; "@bilal" still names it; the leaver's own DM
/// messages from before are still his.
#[test]
fn a_dm_with_a_leaver_is_read_only_for_the_one_who_stays() {
    let t = T;
    let (o, bilal) = bilal_joins_then(vec![
        (t + 10 * H, add("chen")),
        (
            t + 20 * H,
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
        ),
    ]);
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    let (amina, chen) = (r.member("amina").unwrap(), r.member("chen").unwrap());
    let dm = dm_channel("amina", "bilal");
    assert_eq!(
        r.dm_with_leaver(&dm)
            .map(|(m, l)| (m.iter().map(|m| m.name.as_str()).collect(), l)),
        Some((vec!["amina"], vec!["bilal"]))
    );
    assert!(r.channel_exists(&dm));
    assert!(r.may_read(amina, &dm) && !r.may_read(chen, &dm));
    assert!(!r.may_post(amina, &dm), "nobody writes to someone who left");
    assert!(r.may_share_keys(amina, &dm) && !r.may_share_keys(chen, &dm));
    assert!(r.may_post(amina, &dm_channel("amina", "chen")));
    assert!(left_dm_text(r, &dm).starts_with("bilal has left"));
    assert_eq!(
        head.resolve_channel(&o.admin.id(), "@bilal").unwrap(),
        dm,
        "the leaver's name still names the conversation"
    );
    assert!(head.was_member("bilal") && !head.was_member("nobody") && !head.was_member("chen"));
    assert!(head.resolve_channel(&o.admin.id(), "@nobody").is_err());
    // His DM messages from while he was a member, and nothing after.
    assert_eq!(head.posted_before(&bilal.id(), &dm, t + H), Some("bilal"));
    assert_eq!(head.posted_before(&bilal.id(), &dm, t + 20 * H), None);
    assert_eq!(
        head.posted_before(&bilal.id(), &dm_channel("chen", "dora"), t + H),
        None
    );
    assert!(head.posted_once(&bilal.id(), &dm));
    // What amina wrote there before he left is hers; the conversation ended with him.
    assert_eq!(head.dm_ended(&dm), Some(t + 20 * H));
    assert_eq!(head.dm_ended(&dm_channel("amina", "chen")), None);
}

#[test]
fn a_new_name_cannot_be_mistaken_for_another_and_hash_names_the_channel() {
    let o = org();
    let head = o.chain.head().unwrap();
    let create = |name: &str| {
        head.roster.next(
            head.hash,
            &RosterChange::CreateChannel {
                name: name.into(),
                members: None,
            },
            2,
        )
    };
    let refused = |name: &str| create(name).unwrap_err().to_string();
    assert!(refused("#ops").contains("try 'ops'"), "{}", refused("#ops"));
    assert!(refused(" ops ").contains("space"), "{}", refused(" ops "));
    assert!(
        refused("General").contains("only in case"),
        "{}",
        refused("General")
    );
    assert!(refused("general").contains("already exists"));
    assert!(create("ops").is_ok() && create("المبيعات").is_ok() && create("site b").is_ok());
    // What every view shows, `#general`, names the channel; a name that is not one is
    // still refused with the list.
    let me = o.admin.id();
    assert_eq!(head.resolve_channel(&me, "#general").unwrap(), "general");
    assert_eq!(head.resolve_channel(&me, "#General").unwrap(), "general");
    assert_eq!(head.roster.member_typed("Amina").unwrap().name, "amina");
    let err = head.roster.next(head.hash, &add("Amina"), 2).unwrap_err();
    assert!(err.to_string().contains("only in case"), "{err}");
    let err = head.roster.next(head.hash, &add("bilal "), 2).unwrap_err();
    assert!(err.to_string().contains("try 'bilal'"), "{err}");
    let only_amina = RosterChange::ChannelMembers {
        name: "#General".into(),
        change: MembersChange::Set(Some(vec!["amina".into()])),
    };
    let r = head.roster.next(head.hash, &only_amina, 2).unwrap();
    assert_eq!(
        r.channel("general").unwrap().members,
        Some(vec!["amina".into()])
    );
    // Rules that name a channel or a member keep the name as the roster writes it.
    let keep = Keep {
        days: Some(30),
        files_days: None,
    };
    let typed = RosterChange::SetRetention {
        scope: Scope::Channel("#General".into()),
        keep,
    };
    let r = head.roster.next(head.hash, &typed, 2).unwrap();
    assert_eq!(
        r.governance.retention.channels,
        vec![("general".into(), keep)]
    );
    let hold = RosterChange::PlaceHold {
        members: vec!["Amina".into()],
        channels: vec!["#General".into()],
        reason: "audit".into(),
    };
    let r = head.roster.next(head.hash, &hold, 2).unwrap();
    let h = &r.governance.holds[0];
    assert_eq!(
        (h.members.clone(), h.channels.clone()),
        (vec!["amina".to_string()], vec!["general".to_string()])
    );
    let err = head.resolve_channel(&me, "#nope").unwrap_err().to_string();
    assert!(
        err.contains("no channel '#nope'; channels: general"),
        "{err}"
    );
}

/// The roster body the release with renamed channels (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithRenamed {
    first: FirstLayout,
    files: FilePolicy,
    governance: Governance,
    archived: Vec<String>,
    renamed: Vec<(String, String)>,
}

/// An admin gives a member a full name: views show it, commands take it, the roster name
/// stays what messages carry; nobody's full name may be, or look like, someone else's
/// name; a member cannot give themselves one, not even slipped into a version that adds a
/// channel; a removed member's full name goes with them; taking every full name away
/// returns the earlier layout.
#[test]
fn an_admin_gives_full_names_and_a_member_cannot() {
    let mut o = org();
    let (bilal, chen) = (DeviceKey::generate(), DeviceKey::generate());
    admin_applies(
        &mut o,
        [
            joins("bilal", &bilal),
            joins("chen", &chen),
            members_create_channels(),
        ],
    );
    let name = |member: &str, full: Option<&str>| RosterChange::SetFullName {
        member: member.into(),
        full_name: full.map(str::to_string),
    };
    let before = o.chain.head().unwrap().roster.clone();
    assert!(before.layout() < Layout::FullNames);
    assert!(read_by::<ReleaseWithRenamed>(
        &before.encode_as(Layout::Renamed)
    ));

    // bilal may not name himself (or anyone), alone or along with a channel he may add.
    unauthorized(
        &o,
        next(
            &o.chain,
            name("bilal", Some("Bilal the Admin")),
            RosterSigner::Device(&bilal),
        ),
    );
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| {
            r.full_names.push(("bilal".into(), "Amina Haddad".into()))
        }),
    );

    // The admin names amina and bilal; bilal as typed.
    admin_applies(
        &mut o,
        [
            name("amina", Some("Amina Haddad")),
            name("Bilal", Some("بلال أحمد")),
        ],
    );
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    assert_eq!(r.person("amina"), "Amina Haddad");
    assert_eq!(r.person("bilal"), "بلال أحمد");
    assert_eq!(r.person("chen"), "chen");
    assert_eq!(r.person("a-leaver"), "a-leaver");
    for typed in ["amina", "Amina", "Amina Haddad", "amina haddad"] {
        assert_eq!(
            r.member_typed(typed).map(|m| m.name.as_str()),
            Some("amina")
        );
    }
    assert_eq!(r.member_typed("بلال أحمد").unwrap().name, "bilal");
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::FullNameChanged {
            name: "bilal".into(),
            full_name: Some("بلال أحمد".into())
        }]
    );
    // Written in the new layout, which the releases before cannot read whole.
    assert_eq!(r.layout(), Layout::FullNames);
    assert!(!read_by::<ReleaseWithRenamed>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);

    // Names that are someone else's, look like it, or are not names are refused, saying why.
    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster.next(h.hash, &c, 3).unwrap_err().to_string()
    };
    for (full, why) in [
        ("amina", "the member 'amina'"),
        ("AMINA HADDAD", "the full name of 'amina'"),
        ("Amina Hadd\u{0430}d", "the full name of 'amina'"),
        ("Bilal", "the member 'bilal'"),
        (" Chen Wei", "try 'Chen Wei'"),
        ("Chen\u{200B}Wei", "cannot be seen"),
        ("Chen\nWei", "control character"),
        ("@chen", "starts with '@'"),
        ("\u{3000}", "nothing that can be seen"),
    ] {
        let said = try_next(&o, name("chen", Some(full)));
        assert!(said.contains(why), "{full:?}: {said}");
    }
    assert!(try_next(&o, name("chen", Some(&"w".repeat(129)))).contains("1-128 bytes"));
    assert!(try_next(&o, name("amina", Some("Amina Haddad"))).contains("nothing to change"));
    assert!(try_next(&o, name("chen", None)).contains("has no full name"));
    assert!(try_next(&o, name("nobody", Some("N"))).contains("no member named 'nobody'"));
    // One's own roster name in other case is no one else's.
    admin_applies(&mut o, [name("chen", Some("Chen"))]);
    // A new member may not be called what someone is shown as.
    let add = |n: &str| RosterChange::AddMember {
        name: n.into(),
        device: DeviceKey::generate().id(),
        role: None,
    };
    assert!(try_next(&o, add("amina haddad")).contains("the full name of 'amina'"));

    // Removed, bilal's full name goes with him; taken away, amina's and chen's too: the
    // earlier layout returns.
    admin_applies(
        &mut o,
        [
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
            name("amina", None),
            name("chen", None),
        ],
    );
    let r = &o.chain.head().unwrap().roster;
    assert!(r.full_names.is_empty() && r.person("bilal") == "bilal");
    assert!(r.layout() < Layout::FullNames && read_by::<ReleaseWithFiles>(&r.encode_body()));
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::FullNameChanged {
            name: "chen".into(),
            full_name: None
        }]
    );

    // A full name for nobody, twice for one member, or not a name is not a roster.
    let mut bad = r.clone();
    for full_names in [
        vec![("nobody".to_string(), "N".to_string())],
        vec![("amina".into(), "A".into()), ("amina".into(), "B".into())],
        vec![("amina".into(), String::new())],
        vec![("amina".into(), "A\u{7}".into())],
    ] {
        bad.full_names = full_names;
        assert!(bad.check_well_formed().is_err(), "{:?}", bad.full_names);
    }
}

/// The roster body the release with full names (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithFullNames {
    first: FirstLayout,
    files: FilePolicy,
    governance: Governance,
    archived: Vec<String>,
    renamed: Vec<(String, String)>,
    full_names: Vec<(String, String)>,
}

/// An admin lets only some readers post in a channel (announcements): the others read it,
/// are told why they may not post, and keep handing its keys to their own new devices;
/// what they posted before stays theirs; a member cannot set it, not even slipped into a
/// version that adds a channel; only readers can be named; every reader posts again when
/// it is taken away, and the earlier layout returns.
#[test]
fn an_admin_lets_only_some_post_in_a_channel() {
    let t = T;
    let (mut o, bilal) = bilal_joins_then(vec![
        (t, members_create_channels()),
        (
            t,
            RosterChange::CreateChannel {
                name: "news".into(),
                members: None,
            },
        ),
        (
            t,
            RosterChange::CreateChannel {
                name: "board".into(),
                members: Some(vec!["amina".into()]),
            },
        ),
    ]);
    let posters = |name: &str, p: Option<&[&str]>| RosterChange::ChannelPosters {
        name: name.into(),
        posters: p.map(|p| p.iter().map(|n| n.to_string()).collect()),
    };
    assert!(o.chain.head().unwrap().roster.layout() < Layout::Posters);
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| {
            r.posters.push(("news".into(), vec!["bilal".into()]))
        }),
    );

    // As typed: "#News", "Amina".
    dated(&mut o, vec![(t + H, posters("#News", Some(&["Amina"])))]);
    let head = o.chain.head().unwrap().clone();
    let r = &head.roster;
    let (a, b) = (r.member("amina").unwrap(), r.member("bilal").unwrap());
    assert_eq!(r.posters("news"), Some(&["amina".to_string()][..]));
    assert!(r.may_post(a, "news") && !r.may_post(b, "news") && r.may_read(b, "news"));
    assert!(r.may_post(b, "general"), "other channels as before");
    assert_eq!(
        r.why_not_post(b, "news"),
        "'bilal' reads #news and may not post in it: only amina posts there; an admin can let you"
    );
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelPostersChanged {
            name: "news".into(),
            posters: Some(vec!["amina".into()])
        }]
    );
    assert_eq!(r.layout(), Layout::Posters);
    assert!(!read_by::<ReleaseWithFullNames>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);
    // What bilal posted there before stays his; after, nothing new is.
    let dev = bilal.id();
    assert_eq!(head.posted_before(&dev, "news", t + H / 2), Some("bilal"));
    assert_eq!(head.posted_before(&dev, "news", t + 2 * H), None);

    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster
            .next(h.hash, &c, t + 3 * H)
            .unwrap_err()
            .to_string()
    };
    assert!(try_next(&o, posters("news", Some(&[]))).contains("archive it"));
    assert!(try_next(&o, posters("board", Some(&["bilal"]))).contains("does not read #board"));
    assert!(try_next(&o, posters("news", Some(&["nobody"]))).contains("no member named"));
    assert!(try_next(&o, posters("news", Some(&["amina"]))).contains("nothing to change"));
    assert!(try_next(&o, posters("@bilal", None)).contains("direct messages"));
    assert!(try_next(&o, posters("nope", None)).contains("no channel named 'nope'"));

    // amina leaves: nobody posts there until an admin names someone.
    let mut left = o.chain.clone();
    for c in [
        RosterChange::AddMember {
            name: "bilal".into(),
            device: bilal.id(),
            role: Some(Role::Admin),
        },
        RosterChange::RemoveMember {
            name: "amina".into(),
        },
    ] {
        let h = left.head().unwrap();
        let v = h.roster.next(h.hash, &c, t + 3 * H).unwrap();
        assert_eq!(
            left.apply(vec![VerifiedRoster::sign(
                v,
                RosterSigner::Device(&o.admin)
            )])
            .error,
            None
        );
    }
    let gone = &left.head().unwrap().roster;
    let b = gone.member("bilal").unwrap();
    assert_eq!(gone.posters("news"), Some(&[][..]));
    assert!(!gone.may_post(b, "news"));
    assert!(gone
        .why_not_post(b, "news")
        .contains("nobody posts there now"));

    // Taken away: every reader posts again, in the layout before.
    dated(&mut o, vec![(t + 4 * H, posters("news", None))]);
    let r = &o.chain.head().unwrap().roster;
    assert!(r.posters.is_empty() && r.may_post(r.member("bilal").unwrap(), "news"));
    assert!(r.layout() < Layout::Posters);

    // Not a channel, set twice, or naming someone not listed: not a roster.
    let mut bad = r.clone();
    for p in [
        vec![("nope".to_string(), vec!["amina".to_string()])],
        vec![
            ("news".into(), vec!["amina".into()]),
            ("news".into(), vec!["bilal".into()]),
        ],
        vec![("news".into(), vec!["ghost".into()])],
        vec![("news".into(), vec!["amina".into(), "amina".into()])],
    ] {
        bad.posters = p;
        assert!(bad.check_well_formed().is_err(), "{:?}", bad.posters);
    }
}

/// The roster body the release with posters (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithPosters {
    first: FirstLayout,
    files: FilePolicy,
    governance: Governance,
    archived: Vec<String>,
    renamed: Vec<(String, String)>,
    full_names: Vec<(String, String)>,
    posters: Vec<(String, Vec<String>)>,
}

/// An admin makes a group one mention reaches (`@hr`): a mention of it addresses each of
/// its members; its name cannot be taken for a member's (nor a member's for it), nor for
/// `@here`; a member cannot make one, not even slipped into a version that adds a channel;
/// removing a member takes them out of it; deleting it returns the earlier layout.
#[test]
fn an_admin_makes_a_group_that_one_mention_reaches() {
    let t = T;
    let (mut o, bilal) = bilal_joins_then(vec![(t, members_create_channels())]);
    let group = |name: &str, m: Option<&[&str]>| RosterChange::SetGroup {
        name: name.into(),
        members: m.map(|m| m.iter().map(|n| n.to_string()).collect()),
    };
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| {
            r.groups.push(("hr".into(), vec!["bilal".into()]))
        }),
    );

    // Members as typed ("Amina"), each once.
    dated(
        &mut o,
        vec![(
            t + H,
            group("it-support", Some(&["Amina", "bilal", "amina"])),
        )],
    );
    let head = o.chain.head().unwrap().clone();
    let r = &head.roster;
    let both = ["amina".to_string(), "bilal".to_string()];
    assert_eq!(r.group("it-support"), Some(&both[..]));
    assert_eq!(
        r.group("IT-Support"),
        Some(&both[..]),
        "as a mention folds it"
    );
    assert_eq!(r.addressed_as("bilal"), ["bilal", "it-support"]);
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::GroupChanged {
            name: "it-support".into(),
            members: Some(both.to_vec())
        }]
    );
    assert_eq!(r.layout(), Layout::Groups);
    assert!(!read_by::<ReleaseWithPosters>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);

    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster
            .next(h.hash, &c, t + 3 * H)
            .unwrap_err()
            .to_string()
    };
    for (bad, why) in [
        ("Bilal", "the name of member 'bilal'"),
        ("here", "@here already means"),
        ("@hr", "letters, digits"),
        ("h r", "letters, digits"),
        ("hr-", "letters, digits"),
        ("IT-support", "nothing to change"),
    ] {
        let said = try_next(&o, group(bad, Some(&["amina", "bilal"])));
        assert!(said.contains(why), "{bad}: {said}");
    }
    assert!(try_next(&o, group("hr", Some(&[]))).contains("at least one member"));
    assert!(try_next(&o, group("hr", Some(&["nobody"]))).contains("no member named"));
    assert!(try_next(&o, group("hr", None)).contains("no group named 'hr'; groups: it-support"));
    // A newcomer named as the group is refused: a mention of them would reach it.
    let said = try_next(
        &o,
        RosterChange::AddMember {
            name: "IT-Support".into(),
            device: DeviceKey::generate().id(),
            role: None,
        },
    );
    assert!(said.contains("the group 'it-support'"), "{said}");

    // A channel's members named by the group: its members added (those not on already).
    dated(
        &mut o,
        vec![(
            t + H + 1,
            RosterChange::CreateChannel {
                name: "helpdesk".into(),
                members: Some(vec!["amina".into()]),
            },
        )],
    );
    let members = |name: &str, change| RosterChange::ChannelMembers {
        name: name.into(),
        change,
    };
    dated(
        &mut o,
        vec![(
            t + H + 2,
            members("helpdesk", MembersChange::Add(vec!["@it-support".into()])),
        )],
    );
    let on = |o: &Org| {
        o.chain
            .head()
            .unwrap()
            .roster
            .channel("helpdesk")
            .unwrap()
            .members
            .clone()
    };
    assert_eq!(on(&o), Some(vec!["amina".into(), "bilal".into()]));
    assert!(try_next(
        &o,
        members("helpdesk", MembersChange::Add(vec!["@it-support".into()]))
    )
    .contains("everyone in @it-support is that way already"));
    // Taken off by the group (in other case): here everyone on it, which is refused.
    assert!(try_next(
        &o,
        members(
            "helpdesk",
            MembersChange::Remove(vec!["@IT-Support".into()])
        )
    )
    .contains("no members left"));

    // Changed by its name in other case; bilal removed from the org leaves it.
    dated(
        &mut o,
        vec![(t + 2 * H, group("IT-SUPPORT", Some(&["bilal"])))],
    );
    assert_eq!(
        o.chain.head().unwrap().roster.groups,
        [("it-support".to_string(), vec!["bilal".to_string()])]
    );
    dated(
        &mut o,
        vec![(
            t + 3 * H,
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
        )],
    );
    let r = &o.chain.head().unwrap().roster;
    assert_eq!(r.group("it-support"), Some(&[][..]));

    // Deleted: the layout before.
    dated(&mut o, vec![(t + 4 * H, group("it-support", None))]);
    let r = &o.chain.head().unwrap().roster;
    assert!(r.groups.is_empty() && r.layout() < Layout::Groups);
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::GroupChanged {
            name: "it-support".into(),
            members: None
        }]
    );

    // Named twice, or naming someone not listed: not a roster.
    let mut bad = r.clone();
    for g in [
        vec![
            ("hr".to_string(), vec!["amina".to_string()]),
            ("hr".into(), vec![]),
        ],
        vec![("hr".into(), vec!["ghost".into()])],
        vec![("hr".into(), vec!["amina".into(), "amina".into()])],
        vec![(String::new(), vec![])],
    ] {
        bad.groups = g;
        assert!(bad.check_well_formed().is_err(), "{:?}", bad.groups);
    }
}

/// A group conversation (a DM of more than two) is read and written by exactly the members
/// its name lists, under the same policy as a DM; a relay stores it; `@bilal, @Chen` names
/// it from each member's side; once one of them leaves it is read only for the others, from
/// that member's removal on.
#[test]
fn a_group_conversation_is_its_members_and_nobody_elses() {
    assert_eq!(
        dm_members("@amina,bilal,chen"),
        Some(vec!["amina", "bilal", "chen"])
    );
    for bad in [
        "@amina,chen,bilal",
        "@amina,amina,bilal",
        "@",
        "@,amina",
        "@a,b,c,d,e,f,g,h,i,j",
        "amina,bilal",
    ] {
        assert_eq!(dm_members(bad), None, "{bad}");
    }
    assert_eq!(dm_members("@a,b,c,d,e,f,g,h,i").map(|n| n.len()), Some(9));
    assert_eq!(
        dm_channel_of(["chen", "amina", "bilal", "amina"]),
        "@amina,bilal,chen"
    );
    let t = T;
    let (chen, gus, relay) = (
        DeviceKey::generate(),
        DeviceKey::generate(),
        DeviceKey::generate(),
    );
    let mut later = vec![
        (t + H, joins("chen", &chen)),
        (t + H, add("dina")),
        (t + H, with_role("gus", &gus, Role::Guest)),
        (t + H, with_role("vault", &relay, Role::Relay)),
    ];
    for i in 0..8 {
        later.push((t + 2 * H, add(&format!("m{i}"))));
    }
    later.push((
        t + 20 * H,
        RosterChange::RemoveMember {
            name: "chen".into(),
        },
    ));
    let (o, bilal) = bilal_joins_then(later);
    let versions = o.chain.versions();
    let before = &versions[versions.len() - 2];
    let r = &before.roster;
    let group = "@amina,bilal,chen";
    let who = |n: &str| r.member(n).unwrap();
    for m in ["amina", "bilal", "chen"] {
        assert!(
            r.may_read(who(m), group) && r.may_post(who(m), group),
            "{m}"
        );
    }
    assert!(!r.may_read(who("dina"), group) && !r.may_post(who("dina"), group));
    assert!(r.may_read(who("vault"), group) && !r.may_post(who("vault"), group));
    assert_eq!(
        r.why_unreadable(group),
        "it is the direct conversation of amina, bilal and chen"
    );
    // A guest is in no DM under the default policy, so neither is a group with one.
    assert!(!r.channel_exists("@amina,bilal,gus"));
    assert!(!r.channel_exists("@amina,bilal,vault"));
    assert!(r.inboxes(who("dina")).contains(&"@dina".to_string()));
    // As each member names it.
    let me = o.admin.id();
    assert_eq!(before.resolve_channel(&me, "@bilal, @Chen").unwrap(), group);
    assert_eq!(before.resolve_channel(&me, group).unwrap(), group);
    assert_eq!(
        before.resolve_channel(&bilal.id(), "@amina,chen").unwrap(),
        group
    );
    assert_eq!(
        before.resolve_channel(&me, "@bilal,").unwrap(),
        dm_channel("amina", "bilal"),
        "a group of one other is their DM"
    );
    let refused = |target: &str| before.resolve_channel(&me, target).unwrap_err().to_string();
    assert!(refused("@bilal,nobody").contains("no member named 'nobody'"));
    assert!(refused("@gus,bilal").contains("not allowed by the org policy"));
    // A conversation's own name that this member cannot be in is that conversation, which
    // they are refused reading with whose it is.
    assert!(before
        .readable_channel(&me, "@bilal,gus")
        .unwrap_err()
        .to_string()
        .contains("direct conversation of bilal and gus"));
    assert_eq!(
        before.resolve_channel(&me, "@amina,Amina").unwrap(),
        "@amina",
        "a group of only this member is its notes"
    );
    let nine: Vec<String> = (0..8)
        .map(|i| format!("m{i}"))
        .chain(["bilal".into()])
        .collect();
    assert!(refused(&format!("@{}", nine.join(","))).contains("at most 9 members"));
    assert_eq!(
        before
            .resolve_channel(&me, &format!("@{}", nine[1..].join(",")))
            .unwrap()
            .matches(',')
            .count(),
        8,
        "nine with this member is allowed"
    );
    // Chen left: amina and bilal read what was said, nobody writes, from his removal on.
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    let (amina, dina) = (r.member("amina").unwrap(), r.member("dina").unwrap());
    assert!(r.may_read(amina, group) && !r.may_post(amina, group));
    assert!(!r.may_read(dina, group));
    assert!(left_dm_text(r, group).starts_with("chen has left"));
    assert_eq!(head.dm_ended(group), Some(t + 20 * H));
    assert_eq!(
        head.posted_before(&chen.id(), group, t + 3 * H),
        Some("chen")
    );
    assert_eq!(head.posted_before(&chen.id(), group, t + 21 * H), None);
    assert_eq!(head.resolve_channel(&me, "@bilal,chen").unwrap(), group);
}

/// A member's notes (`@amina`, a conversation of one) are read and written by that
/// member's devices only, whatever the DM policy; a relay stores them and an archive reads
/// them; every other member, a guest and an admin included, is refused them with whose they
/// are, and naming them from another member's side means a DM with that member. A leaver's
/// notes are nobody's to write.
#[test]
fn a_members_notes_are_theirs_alone() {
    assert_eq!(notes_of("@amina"), Some("amina"));
    assert_eq!(notes_of("@amina,bilal"), None);
    assert_eq!(notes_of("amina"), None);
    assert_eq!(notes_channel("amina"), "@amina");
    let t = T;
    let (gus, relay, vault) = (
        DeviceKey::generate(),
        DeviceKey::generate(),
        DeviceKey::generate(),
    );
    let (o, bilal) = bilal_joins_then(vec![
        (t + H, with_role("gus", &gus, Role::Guest)),
        (t + H, with_role("relay", &relay, Role::Relay)),
        (t + H, with_role("vault", &vault, Role::Archive)),
        (
            t + 2 * H,
            RosterChange::SetPolicy {
                policy: Policy {
                    dms: DmPolicy::Off,
                    ..Policy::default()
                },
            },
        ),
        (
            t + 3 * H,
            RosterChange::RemoveMember {
                name: "bilal".into(),
            },
        ),
    ]);
    let versions = o.chain.versions();
    let before = &versions[versions.len() - 2];
    let r = &before.roster;
    let who = |n: &str| r.member(n).unwrap();
    let notes = "@bilal";
    // Under `dms off` nobody writes to anyone directly, and each still has notes.
    assert!(!r.channel_exists("@amina,bilal"));
    assert!(r.may_read(who("bilal"), notes) && r.may_post(who("bilal"), notes));
    assert!(r.may_read(who("gus"), "@gus") && r.may_post(who("gus"), "@gus"));
    for other in ["amina", "gus"] {
        assert!(
            !r.may_read(who(other), notes) && !r.may_post(who(other), notes),
            "{other}"
        );
    }
    assert!(r.may_read(who("relay"), notes) && !r.may_decrypt(who("relay"), notes));
    assert!(r.may_decrypt(who("vault"), notes) && !r.may_post(who("vault"), notes));
    assert!(!r.channel_exists("@relay") && !r.channel_exists("@vault"));
    assert_eq!(
        r.key_holders(notes),
        {
            let mut k = vec![bilal.id(), vault.id()];
            k.sort();
            k
        },
        "its own devices and the archive hold its keys"
    );
    assert_eq!(
        r.why_unreadable(notes),
        "it is bilal's notes, which only their own devices read"
    );
    // Each member's inbox carries its notes, so every member has one (relays listen on all).
    assert_eq!(r.inboxes(who("gus")), ["@gus"]);
    assert!(r.inboxes(who("relay")).contains(&"@bilal".to_string()));
    assert!(!r.inboxes(who("relay")).contains(&"@relay".to_string()));
    assert!(r.may_subscribe(who("bilal"), notes) && !r.may_subscribe(who("amina"), notes));
    // Named from each side: its own name (as typed) is its notes; another's is refused.
    assert_eq!(
        before.resolve_channel(&bilal.id(), "@Bilal").unwrap(),
        notes
    );
    assert_eq!(before.resolve_channel(&relay.id(), notes).unwrap(), notes);
    let admin = o.admin.id();
    assert!(before
        .readable_channel(&admin, notes)
        .unwrap_err()
        .to_string()
        .contains("not allowed by the org policy"));
    assert_eq!(before.resolve_channel(&admin, "@amina").unwrap(), "@amina");
    // Bilal left: his notes are nobody's to write or read any more (an archive keeps what
    // it holds), and nobody else's notes change.
    let head = o.chain.head().unwrap();
    let r = &head.roster;
    assert!(!r.channel_exists(notes));
    assert!(r.channel_exists("@amina") && r.channel_exists("@gus"));
}

/// The roster body the release with groups (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithGroups {
    first: FirstLayout,
    files: FilePolicy,
    governance: Governance,
    archived: Vec<String>,
    renamed: Vec<(String, String)>,
    full_names: Vec<(String, String)>,
    posters: Vec<(String, Vec<String>)>,
    groups: Vec<(String, Vec<String>)>,
}

/// An admin lets the readers of a channel where only some post reply in its threads: only
/// there (not where everyone posts, not in a DM), not twice, not by a member slipping it
/// into a version; the audit says it; what a reader replied stays theirs once it is turned
/// off; every reader posting again turns it off, and the earlier layout returns.
#[test]
fn an_admin_lets_the_readers_of_a_channel_reply_in_its_threads() {
    let t = T;
    let (mut o, bilal) = bilal_joins_then(vec![
        (t, members_create_channels()),
        (
            t,
            RosterChange::CreateChannel {
                name: "news".into(),
                members: None,
            },
        ),
    ]);
    let replies = |name: &str, on| RosterChange::ChannelReplies {
        name: name.into(),
        on,
    };
    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster
            .next(h.hash, &c, t + 9 * H)
            .unwrap_err()
            .to_string()
    };
    assert!(try_next(&o, replies("news", true)).contains("set who posts first"));
    dated(
        &mut o,
        vec![(
            t + H,
            RosterChange::ChannelPosters {
                name: "news".into(),
                posters: Some(vec!["amina".into()]),
            },
        )],
    );
    unauthorized(&o, lunch_and(&o, &bilal, |r| r.replies.push("news".into())));
    assert!(try_next(&o, replies("news", false)).contains("nothing to change"));
    assert!(try_next(&o, replies("@bilal", true)).contains("direct messages"));

    // As typed: "#News".
    dated(&mut o, vec![(t + 3 * H, replies("#News", true))]);
    let head = o.chain.head().unwrap().clone();
    let r = &head.roster;
    let (a, b) = (r.member("amina").unwrap(), r.member("bilal").unwrap());
    assert!(r.readers_reply("news") && !r.readers_reply("general"));
    assert!(r.may_reply(b, "news") && !r.may_post(b, "news") && r.may_reply(a, "news"));
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::ChannelRepliesChanged {
            name: "news".into(),
            on: true
        }]
    );
    assert_eq!(r.layout(), Layout::Replies);
    assert!(!read_by::<ReleaseWithGroups>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);
    assert!(try_next(&o, replies("news", true)).contains("nothing to change"));

    // Off: what bilal replied while on stays his; after, nothing.
    dated(&mut o, vec![(t + 4 * H, replies("news", false))]);
    let head = o.chain.head().unwrap().clone();
    let b = head.roster.member("bilal").unwrap();
    assert!(!head.roster.may_reply(b, "news") && head.roster.may_respond(b, "news"));
    assert!(head.roster.layout() < Layout::Replies);
    let dev = bilal.id();
    let replied = |at| head.had_right(&dev, "news", at, crate::roster::Right::Reply);
    assert_eq!(replied(t + 3 * H + H / 2), Some("bilal"));
    assert_eq!(replied(t + H + H / 2), None, "before it was on");
    assert_eq!(replied(t + 5 * H), None);
    assert_eq!(head.posted_before(&dev, "news", t + 3 * H + H / 2), None);

    // Everyone posting again turns it off too.
    dated(&mut o, vec![(t + 5 * H, replies("news", true))]);
    dated(
        &mut o,
        vec![(
            t + 6 * H,
            RosterChange::ChannelPosters {
                name: "news".into(),
                posters: None,
            },
        )],
    );
    let r = &o.chain.head().unwrap().roster;
    assert!(r.replies.is_empty() && r.layout() < Layout::Posters);

    // Where not everyone posts, once: or not a roster.
    let mut bad = r.clone();
    bad.replies = vec!["news".into()];
    assert!(bad.check_well_formed().is_err());
    bad.posters = vec![("news".into(), vec!["amina".into()])];
    assert!(bad.check_well_formed().is_ok());
    bad.replies = vec!["news".into(), "news".into()];
    assert!(bad.check_well_formed().is_err());
}

/// The roster body the release with readers' replies (and nothing after) reads.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ReleaseWithReplies {
    before: ReleaseWithGroups,
    replies: Vec<String>,
}

/// An admin gives a member a job title and takes it away: as typed, checked as text, not
/// unique, never by a member slipping it into a version; the audit says it; a removed
/// member's goes with them, and with no title left the earlier layout returns.
#[test]
fn an_admin_gives_job_titles_and_a_member_cannot() {
    let t = T;
    let (mut o, bilal) = bilal_joins_then(vec![(t, members_create_channels())]);
    let title = |member: &str, title: Option<&str>| RosterChange::SetTitle {
        member: member.into(),
        title: title.map(str::to_string),
    };
    let try_next = |o: &Org, c: RosterChange| {
        let h = o.chain.head().unwrap();
        h.roster
            .next(h.hash, &c, t + 9 * H)
            .unwrap_err()
            .to_string()
    };
    unauthorized(
        &o,
        lunch_and(&o, &bilal, |r| {
            r.titles.push(("bilal".into(), "Director".into()))
        }),
    );
    assert!(try_next(&o, title("chen", Some("Accountant"))).contains("no member named 'chen'"));
    assert!(try_next(&o, title("bilal", None)).contains("has no job title"));
    for bad in [
        " Engineer",
        "",
        "Eng\u{202e}ineer",
        "Eng\nineer",
        &"x".repeat(129),
    ] {
        let said = try_next(&o, title("bilal", Some(bad)));
        assert!(said.contains("is not a good job title"), "{bad:?}: {said}");
    }

    // As typed ("Bilal"), and the same title twice in the org is fine.
    let site = "Site engineer, Dubai yard";
    dated(
        &mut o,
        vec![
            (t + H, title("Bilal", Some(site))),
            (t + H, title("amina", Some(site))),
        ],
    );
    let head = o.chain.head().unwrap().clone();
    let r = &head.roster;
    assert_eq!(
        (r.title("bilal"), r.title("amina")),
        (Some(site), Some(site))
    );
    assert_eq!(
        o.chain.audit().last().unwrap().changes,
        vec![AuditChange::TitleChanged {
            name: "amina".into(),
            title: Some(site.into())
        }]
    );
    assert_eq!(r.layout(), Layout::Titles);
    assert!(!read_by::<ReleaseWithReplies>(&r.encode_body()));
    assert_eq!(VerifiedRoster::decode(&head.wire).unwrap().roster, *r);
    assert!(try_next(&o, title("bilal", Some(site))).contains("already has the job title"));

    // Taken away, and gone with the member.
    dated(
        &mut o,
        vec![
            (t + 2 * H, title("amina", None)),
            (
                t + 2 * H,
                RosterChange::RemoveMember {
                    name: "bilal".into(),
                },
            ),
        ],
    );
    let r = &o.chain.head().unwrap().roster;
    assert!(r.titles.is_empty() && r.layout() < Layout::Titles);

    // A listed member's, once: or not a roster.
    let mut bad = r.clone();
    bad.titles = vec![("bilal".into(), "Director".into())];
    assert!(bad.check_well_formed().is_err());
    bad.titles = vec![("amina".into(), "Director".into())];
    assert!(bad.check_well_formed().is_ok());
    bad.titles.push(("amina".into(), "CEO".into()));
    assert!(bad.check_well_formed().is_err());
}
