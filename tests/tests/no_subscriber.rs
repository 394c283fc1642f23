//! A process that never sets a `tracing` subscriber (one that logs through
//! the `log` crate, to which `tracing` then falls back) keeps that fallback:
//! no delivery, of an `async` handler or a plain `fn` one, sets a
//! subscriber, not even none. Alone in its binary: any other test setting a
//! subscriber would end the fallback for all of them.

use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::testing::Delivery;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{Dispatcher, TeamCreate, TeamUpdate};

fn plain(_: TeamCreate) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("boom"))
}

async fn in_async(_: TeamUpdate) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_never_set_a_subscriber() {
    let dispatcher = Dispatcher::builder()
        .handler(plain)
        .handler(in_async)
        .build()
        .unwrap();
    let receiver = Receiver::new(dispatcher, Verifier::new("t"));
    for (event, status) in [("kustomer.team.create", 500), ("kustomer.team.update", 200)] {
        let reply = Delivery::sample(event)
            .unwrap()
            .signed_with("t")
            .deliver_to(&receiver)
            .await;
        assert_eq!(reply.status, status, "{event}");
    }
    assert!(!tracing::dispatcher::has_been_set());
}
