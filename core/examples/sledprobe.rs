//! Which sled write patterns are cheap to flush: `cargo run --release -p majlis-core --example sledprobe`.
//! With `records`: a message's three single-key writes (history record, author log entry, id
//! index) with records of several sizes, to see what the record's bytes cost. With `keys`:
//! what each of the three keys costs (100 000 messages over 100 000 held, a flush every 500,
//! as a catch-up writes), to see what a store format with fewer keys a message would save.
use std::time::Instant;

/// A database in a fresh directory (kept while the directory is), flushed only when told.
fn fresh() -> (tempfile::TempDir, sled::Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .open()
        .unwrap();
    (dir, db)
}

fn run(name: &str, f: impl Fn(&sled::Db, u64)) {
    let (_dir, db) = fresh();
    // warm: 20k existing entries
    for i in 0..20_000u64 {
        f(&db, i);
    }
    db.flush().unwrap();
    let t = Instant::now();
    for i in 20_000..25_000u64 {
        f(&db, i);
    }
    let ins = t.elapsed();
    let t = Instant::now();
    db.flush().unwrap();
    let fl = t.elapsed();
    let t = Instant::now();
    for i in 25_000..25_500u64 {
        f(&db, i);
        if i % 10 == 0 {
            db.flush().unwrap();
        }
    }
    let grp = t.elapsed();
    println!(
        "{name:<28} insert 5000: {:>6.1} ms  flush: {:>6.1} ms   500 with flush/10: {:>6.1} ms",
        ins.as_secs_f64() * 1e3,
        fl.as_secs_f64() * 1e3,
        grp.as_secs_f64() * 1e3
    );
}

fn batch_writes(b: &mut sled::Batch, i: u64, record: &[u8]) {
    let id = *blake3::hash(&i.to_le_bytes()).as_bytes();
    let mut c = b"cgeneral\0".to_vec();
    c.extend_from_slice(&i.to_be_bytes());
    c.extend_from_slice(&id);
    b.insert(c.clone(), record);
    let mut a = b"ageneral\0".to_vec();
    a.extend_from_slice(&[9u8; 32]);
    a.extend_from_slice(&i.to_be_bytes());
    b.insert(a, &id[..]);
    let mut m = b"m".to_vec();
    m.extend_from_slice(&id);
    b.insert(m, c);
}

/// A message's writes as the store makes them, the first `keys` of them: the record under a
/// time-ordered key, the id index, the author's log entry.
fn message_writes(db: &sled::Db, i: u64, record: &[u8], keys: usize) {
    let id = *blake3::hash(&i.to_le_bytes()).as_bytes();
    let mut c = b"cgeneral\0".to_vec();
    c.extend_from_slice(&i.to_be_bytes());
    c.extend_from_slice(&id);
    db.insert(&c, record).unwrap();
    if keys >= 2 {
        let mut m = b"m".to_vec();
        m.extend_from_slice(&id);
        db.insert(m, c).unwrap();
    }
    if keys >= 3 {
        let mut a = b"ageneral\0".to_vec();
        a.extend_from_slice(&[9u8; 32]);
        a.extend_from_slice(&i.to_be_bytes());
        db.insert(a, &id[..]).unwrap();
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("keys") {
        let record = vec![7u8; 350];
        for _ in 0..2 {
            for keys in [3, 2, 1] {
                let (_dir, db) = fresh();
                for i in 0..100_000u64 {
                    message_writes(&db, i, &record, keys);
                }
                db.flush().unwrap();
                let t = Instant::now();
                for i in 100_000..200_000u64 {
                    message_writes(&db, i, &record, keys);
                    if i % 500 == 0 {
                        db.flush().unwrap();
                    }
                }
                let us = t.elapsed().as_secs_f64() * 1e6 / 100_000.0;
                println!("{keys} key(s) a message: {us:.1} µs a message");
            }
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("records") {
        for n in [350usize, 120, 12] {
            let record = vec![7u8; n];
            run(&format!("3 keys, record {n} B"), |db, i| {
                message_writes(db, i, &record, 3)
            });
        }
        return;
    }
    if std::env::args().nth(1).as_deref() == Some("batch") {
        let record = vec![7u8; 350];
        for _ in 0..2 {
            run("3 keys each, single inserts", |db, i| {
                message_writes(db, i, &record, 3)
            });
            // The same writes, 500 messages to a `Batch` (a catch-up answer's worth).
            let pending = std::cell::RefCell::new(sled::Batch::default());
            run("3 keys each, batch of 500", |db, i| {
                batch_writes(&mut pending.borrow_mut(), i, &record);
                if i % 500 == 499 {
                    db.apply_batch(std::mem::take(&mut *pending.borrow_mut()))
                        .unwrap();
                }
            });
        }
        return;
    }
    let val = vec![7u8; 250];
    let rand_key = |i: u64| *blake3::hash(&i.to_le_bytes()).as_bytes();
    run("1 random key", |db, i| {
        db.insert(rand_key(i), val.clone()).unwrap();
    });
    run("1 sequential key", |db, i| {
        db.insert(i.to_be_bytes(), val.clone()).unwrap();
    });
    run("seq record + random 32B idx", |db, i| {
        let mut b = sled::Batch::default();
        b.insert(&i.to_be_bytes(), val.clone());
        b.insert(&rand_key(i), &i.to_be_bytes());
        db.apply_batch(b).unwrap();
    });
    run("current: 3 keys + outbox", |db, i| {
        let mut b = sled::Batch::default();
        b.insert(&rand_key(i), val.clone());
        let mut k = b"cgeneral\0".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k.extend_from_slice(&rand_key(i));
        b.insert(k, &[][..]);
        b.insert(&b"hgeneral"[..], &i.to_be_bytes());
        db.apply_batch(b).unwrap();
        db.open_tree("outbox")
            .unwrap()
            .insert(rand_key(i), &[][..])
            .unwrap();
    });
}
