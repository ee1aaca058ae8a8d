//! Costs of end-to-end encryption and sealing at rest, each next to a baseline measured in
//! the same run (one core's ed25519 `verify`, the per-message cost every node already pays):
//!
//!     cargo run --release -p majlis-core --example e2ebench
//!
//! - sealing and opening one text body (XChaCha20-Poly1305);
//! - granting a sender key to one device (HPKE) and opening a grant;
//! - a key rotation in a 1 000-member channel: time to make the grant messages and bytes;
//! - opening a data directory: key in a file, sealed by a passphrase (argon2id).

use std::time::Instant;

use majlis_core::e2e::{self, ChannelKey, Plain};
use majlis_core::seal::Unlock;
use majlis_core::{DeviceKey, Profile, RosterChange};

fn per_sec(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Baseline: ed25519 verify of a typical envelope.
    let key = DeviceKey::generate();
    let msg = vec![7u8; 150];
    let sig = key.sign(&msg);
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        assert!(majlis_core::identity::verify(&key.id().0, &msg, &sig));
    }
    let verify = per_sec(n, t);
    println!("baseline: ed25519 verify, one core: {verify:.0}/s");

    let ck = ChannelKey::generate();
    let text = Plain::Text("a typical short message of about sixty bytes, say".into());
    let t = Instant::now();
    let mut sealed = Vec::new();
    for _ in 0..n {
        sealed.push(e2e::seal(&ck, "general", &key.id(), &text));
    }
    let seal_rate = per_sec(n, t);
    let t = Instant::now();
    for c in &sealed {
        let e2e::Content::Sealed {
            nonce, ciphertext, ..
        } = c
        else {
            unreachable!()
        };
        assert!(e2e::open(&ck, "general", &key.id(), nonce, ciphertext).is_some());
    }
    let open_rate = per_sec(n, t);
    let plain_len = postcard::to_stdvec(&text)?.len();
    println!(
        "seal a body: {seal_rate:.0}/s ({:.1}% of a verify); open: {open_rate:.0}/s ({:.1}% of a verify); bytes: {} sealed vs {} plain (+{})",
        100.0 * verify / seal_rate,
        100.0 * verify / open_rate,
        sealed[0].encode().len(),
        plain_len,
        sealed[0].encode().len() - plain_len
    );

    let devices: Vec<_> = (0..1000).map(|_| DeviceKey::generate()).collect();
    let m = 1000;
    let t = Instant::now();
    let grants: Vec<_> = devices
        .iter()
        .take(m)
        .map(|d| e2e::grant(&ck, "general", &d.id()).unwrap())
        .collect();
    let grant_rate = per_sec(m, t);
    let t = Instant::now();
    for (d, g) in devices.iter().zip(&grants) {
        assert!(e2e::accept_grant(d, "general", &ck.id(), g).is_some());
    }
    let accept_rate = per_sec(m, t);
    println!(
        "grant a key to one device (HPKE seal): {grant_rate:.0}/s ({:.1}x a verify); open a grant: {accept_rate:.0}/s ({:.1}x a verify)",
        verify / grant_rate,
        verify / accept_rate
    );

    // A 1 000-member channel: first message, then one removal and the next message.
    let dir = tempfile::tempdir()?;
    let how = Unlock::default();
    let admin = Profile::init_with(&dir.path().join("amina"), "amina", &how)?;
    admin.org_create("acme")?;
    let mut chain = admin.chain()?;
    for (i, d) in devices.iter().enumerate().take(999) {
        admin.change_roster(
            &mut chain,
            &RosterChange::AddMember {
                name: format!("m{i}"),
                device: d.id(),
                role: None,
            },
        )?;
    }
    let bytes = |envs: &[majlis_core::Envelope]| -> (usize, usize) {
        let keys: Vec<_> = envs.iter().filter(|e| e.is_keys()).collect();
        (keys.len(), keys.iter().map(|e| e.wire.len()).sum())
    };
    let t = Instant::now();
    let first = admin.compose(&chain, "general", "hello, 999 colleagues")?;
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let (k1, b1) = bytes(&first);
    let t = Instant::now();
    let second = admin.compose(&chain, "general", "no new key needed")?;
    let steady_us = t.elapsed().as_secs_f64() * 1e6;
    admin.change_roster(
        &mut chain,
        &RosterChange::RemoveMember { name: "m0".into() },
    )?;
    let t = Instant::now();
    let rotated = admin.compose(&chain, "general", "after a removal")?;
    let rot_ms = t.elapsed().as_secs_f64() * 1e3;
    let (k3, b3) = bytes(&rotated);
    println!(
        "1 000-member channel: first message grants its key to 999 devices in {k1} key messages, {b1} bytes, {first_ms:.0} ms; next message {} envelope(s), {steady_us:.0} µs; after a removal the key rotates: {k3} key messages, {b3} bytes, {rot_ms:.0} ms",
        second.len()
    );
    drop((admin, chain));

    // Opening a data directory.
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n")?;
    let sealed_how = Unlock {
        passphrase_file: Some(pass),
        ..Default::default()
    };
    drop(Profile::init_with(
        &dir.path().join("srv"),
        "srv",
        &sealed_how,
    )?);
    let mut file_ms = Vec::new();
    let mut pass_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        drop(Profile::open_with(&dir.path().join("amina"), &how)?);
        file_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        drop(Profile::open_with(&dir.path().join("srv"), &sealed_how)?);
        pass_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    file_ms.sort_by(f64::total_cmp);
    pass_ms.sort_by(f64::total_cmp);
    println!(
        "open a data directory (median of 5): data key in a file {:.1} ms; sealed by a passphrase (argon2id, 19 MiB, t=2) {:.1} ms",
        file_ms[2], pass_ms[2]
    );
    Ok(())
}
