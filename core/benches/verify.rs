//! Signature checks on the receive path, beside the crypto baseline measured in the same run:
//! ed25519-dalek's own `verify_strict` of the same signature from the key's 32 bytes (what a
//! node did for every gossiped message before it kept decompressed keys).
//!
//!     cargo bench -p majlis-core --bench verify
//!
//! Figures and their history: docs/benchmarks.md ("Unit benchmarks").

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ed25519_dalek::{Signature, VerifyingKey};
use majlis_core::{identity, message, Envelope};

#[path = "../examples/common/mod.rs"]
mod common;

/// 64 sealed messages of one author, as a node receives them.
fn envelopes() -> Vec<Envelope> {
    let dir = tempfile::tempdir().expect("temp dir");
    let ((a, chain), _) = common::two_members(dir.path()).expect("an org of two");
    (0..64)
        .flat_map(|i| {
            a.compose(
                &chain,
                "general",
                &format!("message {i} with a typical short text"),
            )
            .expect("composed")
        })
        .filter(|e| e.unsigned.seq > 1) // the key grant is another size
        .collect()
}

fn verify(c: &mut Criterion) {
    let envs = envelopes();
    let (msg, sig, key) = envs[0].signed_parts();
    let mut g = c.benchmark_group("verify one");
    g.bench_function(
        "baseline: ed25519-dalek verify_strict, key decompressed each time",
        |b| {
            b.iter(|| {
                let vk = VerifyingKey::from_bytes(&key).expect("a key");
                vk.verify_strict(&msg, &Signature::from_bytes(&sig)).is_ok()
            })
        },
    );
    g.bench_function("identity::verify (kept key)", |b| {
        b.iter(|| identity::verify(&key, &msg, &sig))
    });
    g.bench_function(
        "message::verify_batch of 1 (a lone gossiped message)",
        |b| b.iter(|| message::verify_batch(&envs[..1])),
    );
    g.finish();

    let mut g = c.benchmark_group("verify batch");
    g.throughput(criterion::Throughput::Elements(envs.len() as u64));
    g.bench_function(format!("message::verify_batch of {}", envs.len()), |b| {
        b.iter_batched(
            || envs.clone(),
            |e| message::verify_batch(&e),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
