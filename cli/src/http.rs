//! `serve`'s HTTP/1.1 connections, with a time limit on request heads and
//! a limit on how many are served at once.
//!
//! `axum::serve` sets none: a client that opens a connection and sends its
//! request head slowly, or never finishes it, holds the connection (and a
//! file descriptor) for as long as it likes, and keeps a graceful stop
//! waiting for it. Here each connection must send a whole request head
//! within `head_timeout` of opening, or of its previous answer (a
//! keep-alive connection idling between deliveries), or it is closed. The
//! body's own limit is the receiver's (`Receiver::with_read_timeout`).
//! Past `max` connections open, the next wait in the system's backlog, so
//! that many clients at once (each holding a body of up to the receiver's
//! size limit) cannot exhaust the process's memory or file descriptors.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How `serve` takes connections: the time limit on request heads, and how
/// many connections it serves at once. Clones share the count.
#[derive(Clone)]
pub struct Connections {
    head_timeout: Duration,
    slots: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    /// Heads within `head_timeout`; at most `max` connections at once (at
    /// least one), the next waiting in the system's backlog until one
    /// closes.
    pub fn new(head_timeout: Duration, max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            head_timeout,
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// The most connections served at once.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// Serves `app` on `listener` until `stop` completes; then accepts no more
/// connections, lets those with a request in progress finish it, closes
/// the others, and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    connections: Connections,
    stop: impl Future<Output = ()>,
) {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        // A slot first: past the limit, connections wait in the backlog.
        let slot = tokio::select! {
            slot = connections.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Finished connections leave the set as new ones come.
        while tasks.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        let head_timeout = connections.head_timeout;
        tasks.spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(head_timeout);
            let mut connection = pin!(http.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    while tasks.join_next().await.is_some() {}
}

/// After a failed accept: a connection that failed before it was accepted
/// is skipped; anything else (out of file descriptors) is waited out for a
/// moment rather than retried at once, in a loop.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(
        error = e.to_string().as_str(),
        "accepting a connection failed"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
}
