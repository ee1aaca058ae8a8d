//! A data directory written by the release before sealing and end-to-end encryption
//! (commit 3b465f7, `majlisd init`, `org create`, a channel message and a DM, all stored in
//! plain text) opens in this release: history reads the same, and the directory is sealed on
//! the way, with no trace of the plaintext left in any file.

use std::path::Path;

use majlis_core::seal::{Sealing, Unlock};
use majlis_core::Profile;

mod common;
use common::copy_dir;

const PHRASE: &[u8] = b"LEGACY-PHRASE";

/// Files under `dir` that contain `PHRASE`.
fn files_with_phrase(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_with_phrase(&p));
        } else if std::fs::read(&p)
            .unwrap()
            .windows(PHRASE.len())
            .any(|w| w == PHRASE)
        {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A copy of fixture `name`'s `amina` directory (owner-only, as a node makes it), and how to
/// unlock it with `passphrase`.
fn fixture(name: &str, passphrase: &str) -> (tempfile::TempDir, std::path::PathBuf, Unlock) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .join("amina");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("amina");
    copy_dir(&from, &dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, format!("{passphrase}\n")).unwrap();
    let how = Unlock {
        passphrase_file: Some(pass),
        ..Default::default()
    };
    (tmp, dir, how)
}

#[test]
fn a_plaintext_store_of_the_previous_release_is_sealed_on_first_open() {
    let (_tmp, dir, how) = fixture("legacy-3b465f7", "a server passphrase");
    assert!(
        !files_with_phrase(&dir).is_empty(),
        "the fixture should hold the phrase in plain text"
    );
    assert_eq!(std::fs::read(dir.join("device.key")).unwrap().len(), 32);

    let p = Profile::open_with(&dir, &how).unwrap();
    assert_eq!(p.sealing(), Sealing::Passphrase);
    let general = p.store().history("general", 10).unwrap();
    assert_eq!(general.len(), 1);
    assert!(general[0].text.starts_with("LEGACY-PHRASE in general"));
    let dms = p.store().channels_starting_with("@").unwrap();
    assert_eq!(dms, vec!["@amina,bilal".to_string()]);
    let dm = p.store().history("@amina,bilal", 10).unwrap();
    assert!(dm[0].text.starts_with("LEGACY-PHRASE in a DM"));
    // It keeps working: a new message (sealed end to end) and the roster.
    let chain = p.chain().unwrap();
    assert_eq!(chain.version(), 2);
    p.compose(&chain, "general", "after the upgrade").unwrap();
    p.store().flush().unwrap();
    drop((p, chain));

    let left = files_with_phrase(&dir);
    assert!(left.is_empty(), "plaintext left after sealing: {left:?}");
    assert!(std::fs::read(dir.join("device.key")).unwrap().len() > 32);
    assert!(std::fs::read(dir.join("org-root.key")).unwrap().len() > 32);
    // Reopens; without the passphrase it does not.
    let p = Profile::open_with(&dir, &how).unwrap();
    assert_eq!(p.store().history("general", 10).unwrap().len(), 2);
    drop(p);
    let err = Profile::open_with(&dir, &Unlock::default()).err().unwrap();
    assert!(err.to_string().contains("passphrase"), "{err}");
}

/// A data directory written by the previous release (commit 41b4ca7, through its CLI:
/// `core/tests/fixtures/make-release-fixture.sh`) opens in this one with everything in it:
/// the roster chain with its private channel and file policy, messages in a channel, a DM
/// and a private channel, and a shared file whose blob is complete. It keeps working: a new
/// message is written, and it reopens.
#[test]
fn a_data_directory_of_the_previous_release_opens_with_everything_in_it() {
    let (_tmp, dir, how) = fixture("release-41b4ca7", "fixture passphrase");
    let p = Profile::open_with(&dir, &how).unwrap();
    assert_eq!(p.sealing(), Sealing::Passphrase);

    let chain = p.chain().unwrap();
    let head = chain.head().unwrap();
    assert_eq!(
        chain.version(),
        4,
        "genesis, bilal, #sales, the file policy"
    );
    assert!(head.roster.members.iter().any(|m| m.name == "bilal"));
    assert_eq!(head.roster.files.max_bytes, Some(100 << 20));
    assert_eq!(head.roster.files.auto_fetch_bytes, 1 << 20);
    assert!(head.roster.channel_exists("sales"));
    // Device ids of the previous release bound message dates from when they joined.
    assert!(head.listed_since(&p.device_id()).is_some());

    let general = p.store().history("general", 10).unwrap();
    assert_eq!(general.len(), 2, "{general:?}");
    assert_eq!(general[0].text, "PREVIOUS-RELEASE in general");
    let file = general[1].file.as_ref().expect("the shared file");
    assert_eq!(file.name, "report.txt");
    assert_eq!(general[1].text, "PREVIOUS-RELEASE file");
    let (blob, info, _) = p.store().file_of(&general[1].id).unwrap().unwrap();
    assert_eq!(info.size, file.size);
    let on_disk = dir.join("blobs").join(blob.id.to_string());
    assert!(
        on_disk.metadata().is_ok_and(|m| m.len() >= info.size),
        "the blob is complete at {}",
        on_disk.display()
    );
    let dms = p.store().channels_starting_with("@").unwrap();
    assert_eq!(dms.len(), 1, "{dms:?}");
    let dm = p.store().history(&dms[0], 10).unwrap();
    assert_eq!(dm[0].text, "PREVIOUS-RELEASE in a DM");
    let sales = p.store().history("sales", 10).unwrap();
    assert_eq!(sales[0].text, "PREVIOUS-RELEASE in sales");
    assert!(general.iter().chain(&dm).chain(&sales).all(|m| !m.locked));

    // It keeps working.
    p.compose(&chain, "general", "after the upgrade").unwrap();
    p.store().flush().unwrap();
    drop((p, chain));
    let p = Profile::open_with(&dir, &how).unwrap();
    assert_eq!(p.store().history("general", 10).unwrap().len(), 3);
}
