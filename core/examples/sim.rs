//! Simulator benchmark: a hostile run of N nodes (default 1000) over the protocol core.
//!
//! `cargo run --release -p majlis-core --example sim -- [NODES] [SEED]`

fn main() {
    let mut args = std::env::args().skip(1);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let cfg = majlis_core::sim::Config::hostile(seed, nodes);
    println!("{cfg:?}");
    let t = std::time::Instant::now();
    let r = majlis_core::sim::run(cfg);
    let wall = t.elapsed();

    println!("{r:#?}");
    let deliveries = (r.messages * r.members).max(1) as f64;
    println!(
        "nodes {nodes}: {} messages, {} members; missed {} extra {}; converged {:.1} s simulated \
         (sending phase {:.0} s); gossip frames per message per member {:.2}, duplicates {:.2}; \
         wall {:.1} s",
        r.messages,
        r.members,
        r.missed,
        r.extra,
        r.converged_ms as f64 / 1000.0,
        30.0,
        r.gossip_sent as f64 / deliveries,
        r.gossip_duplicates as f64 / deliveries,
        wall.as_secs_f64()
    );
    if r.missed + r.extra > 0 {
        std::process::exit(1);
    }
}
