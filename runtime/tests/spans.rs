//! A delivery's span is a child of the span its own request was in, also
//! when the axum router's batches run it in another request's task. In a
//! test binary of its own: tracing's per-callsite caches are shared by the
//! whole process, and other tests receiving deliveries at the same time
//! with no subscriber disturb a subscriber set for one thread.
#![cfg(feature = "axum")]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use axum::body::Body;
use axum::http::Request;
use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::{Verifier, sign};
use kustomer_webhooks::{Dispatcher, TeamCreate, TeamUpdate};
use tower_service::Service;
use tracing::Instrument;
use tracing::span::{Attributes, Id, Record};

const TOKEN: &str = "span-token";

/// Records each span created: its name, the event it names (if any), and
/// its parent's name.
#[derive(Default)]
struct Parents {
    spans: Mutex<Vec<&'static tracing::Metadata<'static>>>,
    entered: Mutex<Vec<u64>>,
    created: Mutex<Vec<(String, &'static str)>>,
}

struct EventField<'a>(&'a mut String);

impl tracing::field::Visit for EventField<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "event" {
            *self.0 = format!(" {value:?}");
        }
    }
}

impl tracing::Subscriber for Parents {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut spans = self.spans.lock().unwrap();
        let parent = match attrs.parent() {
            Some(id) => Some(id.into_u64()),
            None if attrs.is_contextual() => self.entered.lock().unwrap().last().copied(),
            None => None,
        };
        let parent = parent.map_or("none", |id| spans[id as usize - 1].name());
        let mut event = String::new();
        attrs.record(&mut EventField(&mut event));
        let label = format!("{}{event}", attrs.metadata().name());
        self.created.lock().unwrap().push((label, parent));
        spans.push(attrs.metadata());
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, id: &Id) {
        self.entered.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.entered.lock().unwrap().pop();
    }
    fn current_span(&self) -> tracing_core::span::Current {
        let spans = self.spans.lock().unwrap();
        match self.entered.lock().unwrap().last() {
            Some(&id) => tracing_core::span::Current::new(Id::from_u64(id), spans[id as usize - 1]),
            None => tracing_core::span::Current::none(),
        }
    }
}

async fn on_create(_: TeamCreate) {}
async fn on_update(_: TeamUpdate) {}

/// A signed delivery of the seed sample of `event`, posted to `/`.
fn delivery(event: &str) -> Request<Body> {
    let body = SEED_SAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .unwrap()
        .1;
    Request::post("/")
        .header("content-type", "application/json")
        .header(
            "x-kustomer-webhook-signature",
            sign(TOKEN.as_bytes(), body.as_bytes()),
        )
        .body(Body::from(body))
        .unwrap()
}

async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

#[test]
fn a_delivery_span_is_a_child_of_its_own_requests_span() {
    let parents = Arc::new(Parents::default());
    let _default = tracing::subscriber::set_default(Arc::clone(&parents));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dispatcher = Dispatcher::builder()
            .handler(on_create)
            .handler(on_update)
            .build()
            .unwrap();
        let mut router =
            kustomer_webhooks::axum::router(Receiver::new(dispatcher, Verifier::new(TOKEN)));
        std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut router, cx))
            .await
            .unwrap();
        let first = router
            .call(delivery("kustomer.team.create"))
            .instrument(tracing::info_span!("request_a"));
        let second = router
            .call(delivery("kustomer.team.update"))
            .instrument(tracing::info_span!("request_b"));
        let (mut first, mut second) = (Box::pin(first), Box::pin(second));
        // The first leads a batch and waits for its turn; the second joins
        // it; the first's task then runs both.
        assert!(poll_once(first.as_mut()).await.is_pending());
        assert!(poll_once(second.as_mut()).await.is_pending());
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            tokio::join!(first, second)
        })
        .await
        .expect("both answered");
        assert_eq!(
            (a.unwrap().status().as_u16(), b.unwrap().status().as_u16()),
            (200, 200)
        );
    });
    let created = parents.created.lock().unwrap().clone();
    let parent_of = |label: &str| {
        created
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, parent)| *parent)
    };
    assert_eq!(
        parent_of("kustomer_webhook \"kustomer.team.create\""),
        Some("request_a"),
        "{created:?}"
    );
    assert_eq!(
        parent_of("kustomer_webhook \"kustomer.team.update\""),
        Some("request_b"),
        "{created:?}"
    );
}
