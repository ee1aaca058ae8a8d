//! Who may hold a connection to the HTTP API. An API bound to the LAN (incoming webhooks
//! from a build server) is open to anyone there, and hyper keeps a connection that never
//! sends a request open for good: a few thousand idle connections from one host used up
//! the process's file descriptors, which the node's own libp2p connections and database
//! need too (measured: 3 000 held against `majlisd run --http`, every one kept). So the
//! listener caps connections in all and per source address. How long a connection may hold
//! its place without asking for something is the server's timer (`http::HEAD_TIME`): a cap
//! alone is filled by a few hosts that each open their share and never finish a request.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Connections held at once, from everyone: well inside the 1 024 descriptors a service
/// gets by default, beside the node's peers and database.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections held at once from one address: an integration host's parallel requests
/// and event streams (or a load test on loopback).
pub const MAX_PER_ADDRESS: usize = 128;
/// How long a write may wait for the client to take bytes before the connection is
/// closed. Why: a client that asks for a large answer (a file) and then reads nothing
/// (the "slow read" attack) held its connection, its place and the answer's buffers for
/// good, as hyper waits on a full socket without end. A client on a slow link still
/// takes bytes every moment; one that takes none for this long has stopped.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

/// A TCP listener that admits connections within the caps above.
pub struct Gate {
    listener: TcpListener,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refused: u64,
}

impl Gate {
    pub fn new(listener: TcpListener) -> Gate {
        Gate {
            listener,
            held: Default::default(),
            refused: 0,
        }
    }

    /// Count a connection from `ip` if the caps allow it.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = held.values().sum();
        let from = held.entry(ip).or_insert(0);
        if total >= MAX_CONNECTIONS || *from >= MAX_PER_ADDRESS {
            return None;
        }
        *from += 1;
        Some(Slot {
            ip,
            held: self.held.clone(),
        })
    }
}

impl axum::serve::Listener for Gate {
    type Io = Gated;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Gated, SocketAddr) {
        loop {
            let (io, addr) = match self.listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was taken: wait
                    // a moment rather than spin (as axum's own listener does).
                    tracing::warn!("HTTP API: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.admit(addr.ip()) {
                Some(slot) => {
                    let _ = io.set_nodelay(true);
                    return (
                        Gated {
                            io,
                            stalled: None,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                None => {
                    // Closed at once: the client sees a reset, not a hang.
                    self.refused += 1;
                    if self.refused.is_power_of_two() {
                        tracing::warn!(
                            "HTTP API: refused {} connection(s) over the caps ({MAX_PER_ADDRESS} per address, {MAX_CONNECTIONS} in all); the latest from {addr}",
                            self.refused
                        );
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One admitted connection's place under the caps, given back when it closes.
struct Slot {
    ip: IpAddr,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// An admitted connection: the stream, and its place under the caps while it lives.
pub struct Gated {
    io: TcpStream,
    /// Since when a write has waited for the client to take bytes ([`WRITE_STALL`]).
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    _slot: Slot,
}

impl Gated {
    /// `polled` (a write's outcome) passed on, unless the writes have waited for the
    /// client longer than [`WRITE_STALL`].
    fn unless_stalled<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        use std::future::Future;
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took no bytes of the answer for {} s",
                    WRITE_STALL.as_secs()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Gated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.unless_stalled(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.unless_stalled(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A closed connection reads as end of stream (or a reset) at once.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// The per-address cap refuses the next connection, and a closed one frees its place.
    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_places_come_back() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut gate = Gate::new(l);
        let mut clients = Vec::new();
        let mut held = Vec::new();
        for _ in 0..MAX_PER_ADDRESS {
            clients.push(TcpStream::connect(addr).await.unwrap());
            held.push(gate.accept().await.0);
        }
        let mut over = TcpStream::connect(addr).await.unwrap();
        // The gate takes it and closes it, then waits for the next: accept stays pending.
        let next = tokio::time::timeout(Duration::from_millis(300), gate.accept()).await;
        assert!(next.is_err(), "a connection over the cap was admitted");
        assert!(
            closed(&mut over).await,
            "the refused connection stayed open"
        );
        drop(held.pop());
        let mut again = TcpStream::connect(addr).await.unwrap();
        let (mut io, _) = gate.accept().await;
        again.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
    }
}
