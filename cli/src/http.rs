//! `serve`'s HTTP/1.1 connections, with a time limit on request heads.
//!
//! `axum::serve` sets none: a client that opens a connection and sends its
//! request head slowly, or never finishes it, holds the connection (and a
//! file descriptor) for as long as it likes, and keeps a graceful stop
//! waiting for it. Here each connection must send a whole request head
//! within `head_timeout` of opening, or of its previous answer (a
//! keep-alive connection idling between deliveries), or it is closed. The
//! body's own limit is the receiver's (`Receiver::with_read_timeout`).

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `app` on `listener` until `stop` completes; then accepts no more
/// connections, lets those with a request in progress finish it, closes
/// the others, and returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    head_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut stop = pin!(stop);
    loop {
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
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        connections.spawn(async move {
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
    while connections.join_next().await.is_some() {}
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
