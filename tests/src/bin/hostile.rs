//! A hostile host on the test LAN (run inside a namespace by the tests; never aimed outside
//! it): `hostile sockets ADDR:PORT N HOLD_S` opens N TCP connections and holds them without
//! a handshake; `hostile strangers MULTIADDR N HOLD_S` connects N libp2p identities that are
//! on no roster and reports how many stayed connected; `hostile mdns ORG_ID N HOLD_S DEV…`
//! announces N mDNS records of the org that claim to be the given devices, at this host's
//! addresses and ports where nothing listens; `hostile listen _ _ HOLD_S` only listens, as
//! anyone on a LAN can, and reports each Majlis mDNS record it heard with its TXT keys.
//! Prints one JSON line.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let hold = Duration::from_secs(args.get(3).map_or(Ok(5), |s| s.parse())?);
    match args.first().map(String::as_str) {
        Some("sockets") => sockets(&args[1], n, hold).await,
        Some("strangers") => strangers(args[1].parse()?, n, hold).await,
        Some("mdns") => spoof_mdns(&args[1], n, hold, &args[4..]).await,
        Some("listen") => listen_mdns(hold),
        _ => bail!("usage: hostile sockets|strangers|mdns|listen ADDR N HOLD_S"),
    }
}

async fn sockets(addr: &str, n: usize, hold: Duration) -> Result<()> {
    let t = Instant::now();
    let mut held = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(s)) => held.push(s),
            _ => failed += 1,
        }
    }
    let opened = t.elapsed().as_secs_f64();
    tokio::time::sleep(hold).await;
    println!(
        "{}",
        serde_json::json!({"opened": held.len(), "failed": failed, "open_s": opened})
    );
    Ok(())
}

async fn strangers(addr: libp2p::Multiaddr, n: usize, hold: Duration) -> Result<()> {
    let mut swarms = Vec::new();
    for _ in 0..n {
        let key = majlis_core::DeviceKey::generate();
        let mut s = libp2p::SwarmBuilder::with_existing_identity(key.libp2p_keypair())
            .with_tokio()
            .with_tcp(
                Default::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )?
            .with_behaviour(majlis_core::net::Behaviour::new)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        s.behaviour_mut()
            .gate
            .set_allowed(Default::default(), true, &Default::default());
        s.dial(addr.clone())?;
        swarms.push(s);
    }
    // Drive them all; count who is connected at the end.
    let mut connected = vec![false; n];
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        let next =
            futures::future::select_all(swarms.iter_mut().map(|s| Box::pin(s.select_next_some())));
        match tokio::time::timeout_at(deadline, next).await {
            Ok((ev, i, _)) => match ev {
                SwarmEvent::ConnectionEstablished { .. } => connected[i] = true,
                SwarmEvent::ConnectionClosed {
                    num_established: 0, ..
                } => connected[i] = false,
                _ => {}
            },
            Err(_) => break,
        }
    }
    let still = connected.iter().filter(|c| **c).count();
    println!(
        "{}",
        serde_json::json!({"strangers": n, "still_connected": still})
    );
    Ok(())
}

/// What a passive listener on the LAN learns from the Majlis records announced there: for
/// each device (`dev`), its latest TXT keys and values.
fn listen_mdns(hold: Duration) -> Result<()> {
    let daemon = mdns_sd::ServiceDaemon::new()?;
    let events = daemon.browse(majlis_core::discovery::SERVICE_TYPE)?;
    let deadline = Instant::now() + hold;
    let mut heard = serde_json::Map::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(ev) = events.recv_timeout(left) else {
            break;
        };
        if let mdns_sd::ServiceEvent::ServiceResolved(svc) = ev {
            let txt: serde_json::Map<String, serde_json::Value> = svc
                .get_properties()
                .iter()
                .map(|p| (p.key().to_string(), p.val_str().into()))
                .collect();
            let dev = svc.get_property_val_str("dev").unwrap_or("").to_string();
            heard.insert(dev, txt.into());
        }
    }
    let _ = daemon.shutdown();
    println!("{}", serde_json::json!({ "records": heard }));
    Ok(())
}

async fn spoof_mdns(org: &str, n: usize, hold: Duration, devices: &[String]) -> Result<()> {
    let org: majlis_core::OrgId = org.parse()?;
    let tag = org.discovery_tag();
    let daemon = mdns_sd::ServiceDaemon::new()?;
    let mut registered = 0;
    for i in 0..n {
        let dev = &devices[i % devices.len().max(1)];
        let info = mdns_sd::ServiceInfo::new(
            majlis_core::discovery::SERVICE_TYPE,
            &format!("spoof{i}"),
            &format!("spoof{i}.local."),
            "",
            20000 + (i % 40000) as u16,
            &[
                ("v", majlis_core::discovery::TXT_VERSION),
                ("org", tag.as_str()),
                ("dev", dev.as_str()),
            ][..],
        )?
        .enable_addr_auto();
        // The daemon's command queue is bounded: wait for room rather than drop records.
        for _ in 0..200 {
            match daemon.register(info.clone()) {
                Ok(()) => {
                    registered += 1;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
    tokio::time::sleep(hold).await;
    let _ = daemon.shutdown();
    println!("{}", serde_json::json!({"records": registered}));
    Ok(())
}
