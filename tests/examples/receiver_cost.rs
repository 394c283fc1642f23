//! One run of the receiver benchmark's load, for instruction counting:
//! `receiver_cost MODE [REQUESTS]` builds REQUESTS signed deliveries
//! (default 2,000) and, for MODE `receiver`, `unbatched` (the same receiver
//! called one delivery at a time by a plain axum handler), `bare`, `floor`
//! (the bare endpoint plus the signature and JSON checks) or `typed` (the
//! bare endpoint plus the signature check and the typed parse), posts them all
//! to that server over loopback; MODE `none` only builds them, so that its
//! count can be taken off the others. Run by `scripts/receiver-instructions`
//! under callgrind and by `scripts/receiver-profile` under perf; on its own
//! it only prints what it did.

use std::sync::Arc;

use kustomer_webhooks_tests::load::{
    Part, bare_router, deliveries, load, part_router, receiver_router, serve,
    unbatched_receiver_router,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let requests = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let app = match mode.as_str() {
        "receiver" => Some(receiver_router()),
        "unbatched" => Some(unbatched_receiver_router()),
        "bare" => Some(bare_router()),
        "floor" => Some(part_router(Part::Json)),
        "typed" => Some(part_router(Part::Typed)),
        "none" => None,
        other => {
            eprintln!(
                "usage: receiver_cost receiver|unbatched|bare|floor|typed|none [REQUESTS] (not {other:?})"
            );
            std::process::exit(2);
        }
    };
    let payloads = Arc::new(deliveries(0, requests));
    let Some(app) = app else {
        println!("built {requests} deliveries");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime builds");
    let run = rt.block_on(async {
        let addr = serve(app).await;
        load(format!("http://{addr}/"), payloads).await
    });
    println!("{mode}: {requests} requests, {:.0} per second", run.rps);
}
