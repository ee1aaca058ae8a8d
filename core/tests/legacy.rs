//! A data directory written by the release before sealing and end-to-end encryption
//! (commit 3b465f7, `majlisd init`, `org create`, a channel message and a DM, all stored in
//! plain text) opens in this release: history reads the same, and the directory is sealed on
//! the way, with no trace of the plaintext left in any file.

use std::path::Path;

use majlis_core::seal::{Sealing, Unlock};
use majlis_core::Profile;

const PHRASE: &[u8] = b"LEGACY-PHRASE";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

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

#[test]
fn a_plaintext_store_of_the_previous_release_is_sealed_on_first_open() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-3b465f7/amina");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("amina");
    copy_dir(&fixture, &dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert!(
        !files_with_phrase(&dir).is_empty(),
        "the fixture should hold the phrase in plain text"
    );
    assert_eq!(std::fs::read(dir.join("device.key")).unwrap().len(), 32);
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "a server passphrase\n").unwrap();
    let how = Unlock {
        passphrase_file: Some(pass),
        ..Default::default()
    };

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
