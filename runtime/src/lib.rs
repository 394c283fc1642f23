//! Receive Kustomer outbound webhooks as typed, verified events.
//!
//! This is the one crate a service depends on. It holds the generated models
//! of the five Kustomer resources (customer, conversation, message, user,
//! team; see [`models`]), the typed parsing of event payloads, the
//! dispatch of each event to the function written for it, and the receiver
//! around them: signature verification ([`verify`]), de-duplication and
//! ordering ([`dedupe`]), capture of deliveries ([`capture`]), deliveries
//! that failed kept until they are handled ([`dead_letters`]), and an axum
//! router with a server for it (feature `axum`; `axum-tls` lets the server
//! speak HTTPS itself, its certificate reloadable). Feature `redis` adds
//! `dedupe::RedisStore`, the idempotency store a service's replicas share;
//! `redis-tls` lets it reach Redis over TLS (`rediss://`), `redis-cluster` a
//! Redis Cluster, and `redis-sentinel` the primary that Redis Sentinels name. Feature `testing`
//! adds the `testing` module: Kustomer's sample deliveries, changed
//! and signed for a service's own tests.
//!
//! # Quick start: a handler
//!
//! ```
//! use kustomer_webhooks::{CustomerUpdate, Dispatched, Dispatcher, kustomer_webhook};
//!
//! #[kustomer_webhook]
//! async fn on_customer_update(event: CustomerUpdate) -> Result<(), std::io::Error> {
//!     let attributes = &event.data.attributes;
//!     println!("{:?} is at rev {:?}", attributes.name, attributes.rev);
//!     Ok(())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Every `#[kustomer_webhook]` function linked into the binary:
//! let dispatcher = Dispatcher::builder().registered().build()?;
//! let body = br#"{"id": "6087326fa8b1c7b07da5e5c9", "name": "kustomer.customer.update",
//!   "data": {"type": "customer", "attributes": {"name": "Franz Kafka", "rev": 3}}}"#;
//! // The body as received, and the `X-Kustomer-Webhook-Event` header:
//! let outcome = dispatcher.dispatch(body, Some("kustomer.customer.update")).await?;
//! assert!(matches!(outcome, Dispatched::Handled { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! The parameter type says which events a handler takes (`CustomerUpdate`;
//! `CustomerEvent` for every customer event; [`OtherEvent`] for events
//! without a generated type; [`AnyEvent`] for a catch-all, every event no
//! other handler takes), a second parameter may take shared state
//! ([`State`]), and handlers may be `async` or blocking. See
//! [`kustomer_webhook`] for every form, and [`Dispatcher`] for what happens
//! to errors, panics, events without a handler, and two handlers for one
//! event.
//!
//! # Parsing an event
//!
//! ```
//! use kustomer_webhooks::{AnyEvent, parse};
//!
//! let body = br#"{
//!   "id": "6087326fa8b1c7b07da5e5c9",
//!   "name": "kustomer.customer.update",
//!   "data": {
//!     "type": "customer",
//!     "id": "608731c238e15a90895f7029",
//!     "attributes": {"name": "Franz Kafka", "rev": 3, "custom": {"ordersNum": 12}}
//!   },
//!   "changes": {"attributes": {"rev": {"op": "replace", "before": 2, "after": 3}}}
//! }"#;
//! let parsed = parse(body)?;
//! let AnyEvent::CustomerUpdate(event) = &parsed.event else { panic!("a customer update") };
//! let attributes = &event.data.attributes;
//! assert_eq!(attributes.name.as_deref(), Some("Franz Kafka"));
//! assert_eq!(attributes.rev, Some(3));
//! assert_eq!(attributes.custom.orders_num, Some(12.into()));
//! let rev = event.changes.as_ref().unwrap().attributes.rev.as_ref().unwrap();
//! assert_eq!((rev.before, rev.after), (Some(2), Some(3)));
//! assert!(parsed.drift().is_empty());
//! # Ok::<(), kustomer_webhooks::ParseError>(())
//! ```
//!
//! # Drift: payloads that differ from the models
//!
//! Kustomer's real payloads carry attributes the samples lack and, now and
//! then, a value of another JSON type than the samples had. Parsing never
//! fails on that: every field that fits is typed, every value that does not is
//! kept (in the `extra` map of the struct that holds it) and reported by
//! [`Parsed::drift`] with its JSON Pointer, and re-serialising the event gives
//! back the JSON that was received. A handler asks its event: `drift()` on
//! every event type (`TeamUpdate`) and envelope (`TeamEvent`) says the same.
//!
//! ```
//! let body = br#"{"name": "kustomer.team.update",
//!   "data": {"type": "team", "attributes": {"name": "Der Prozess", "members": "everyone"}}}"#;
//! let parsed = kustomer_webhooks::parse(body)?;
//! let drift = parsed.drift();
//! assert_eq!(drift.len(), 1);
//! assert_eq!(drift[0].to_string(), "/data/attributes/members: expected array, found string");
//! let kustomer_webhooks::AnyEvent::TeamUpdate(event) = &parsed.event else { unreachable!() };
//! assert_eq!(event.drift(), drift); // what a handler taking `TeamUpdate` sees
//! assert_eq!(
//!     serde_json::to_value(&parsed.event).unwrap(),
//!     serde_json::from_slice::<serde_json::Value>(body).unwrap(),
//! );
//! # Ok::<(), kustomer_webhooks::ParseError>(())
//! ```
//!
//! # Your own models
//!
//! The bundled [`models`] come from Kustomer's published samples. A models
//! module generated into your crate from your own payloads
//! (`kustomer-webhooks regenerate --samples DIR --out src/kustomer`) works
//! with the same macro and runtime: its `AnyEvent` implements [`Events`],
//! the one trait between generated models and the runtime, and [`Parsed`],
//! [`Dispatcher`], [`receiver::Receiver`] and [`OtherEvent`] are generic over
//! it (defaulting to the bundled set). The module also has `parse`,
//! `parse_as`, `dispatcher()` and `dispatcher_with_state(state)`:
//!
//! ```ignore
//! mod kustomer; // generated
//!
//! #[kustomer_webhook]
//! async fn on_update(event: kustomer::CustomerUpdate) {
//!     let tier = &event.data.attributes.custom.loyalty_tier_str; // your own attribute, typed
//! }
//!
//! let dispatcher = kustomer::dispatcher().registered().build()?; // handlers of this set
//! let receiver = Receiver::new(dispatcher, verifier);
//! ```
//!
//! The repository's `examples/org-models` crate does it end to end.
#![deny(missing_docs)]
// On docs.rs, each item behind a feature says which.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Docs link to items of every feature; built with some features only, a
// link to an item of another is left as plain text rather than warned of
// (the docs built with all of them, as docs.rs and the checks build them,
// still refuse a broken link).
#![cfg_attr(
    not(all(
        feature = "testing",
        feature = "axum-tls",
        feature = "redis-tls",
        feature = "redis-cluster",
        feature = "redis-sentinel"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

// The attribute macros name this crate by its path, also from inside it.
extern crate self as kustomer_webhooks;

pub mod app;
pub mod capture;
mod change;
pub mod dead_letters;
pub mod dedupe;
mod dispatch;
mod event;
mod macros;
mod model;
#[deny(warnings)]
#[rustfmt::skip]
pub mod models;
#[cfg(feature = "axum")]
pub mod axum;
pub mod batch;
mod parse;
mod read;
pub mod receiver;
mod recycle;
mod stall;
#[cfg(feature = "testing")]
pub mod testing;
mod types;
pub mod verify;

pub use change::Change;
pub use dispatch::{
    BuildError, DispatchError, Dispatched, Dispatcher, DispatcherBuilder, FromEvent, Handler,
    HandlerError, IntoHandler, IntoHandlerResult, State, registered,
};
pub use event::{Envelope, EventName, Events, KnownEvent, OtherEvent, Resource};
pub use kustomer_webhooks_macros::{kustomer_webhook, model};
pub use model::{Drift, Model, Pointer, json_type};
/// The bundled models: the events Kustomer publishes samples of, their
/// resources and the sets they make (`AnyEvent`), also at the crate's root.
#[doc(inline)]
pub use models::*;
pub use parse::{ParseError, Parsed, parse, parse_as};
/// The Redis client `dedupe::RedisStore` is built on (feature `redis`), for
/// a connection of your own: `RedisStore::from_connection`.
#[cfg(feature = "redis")]
pub use redis;
/// The JSON library the models are built on (for `Value`, `Map`, `Number`).
pub use serde_json;
pub use types::{DateTime, Extra, Id, NotAnId, Op, Str};

/// What the generated models and the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::{Registered, Registration, lists};
    pub use crate::event::drift_of;
    pub use inventory;

    /// What a PEM reader's error says, its markers and lines as text (for
    /// the CLI's `send --ca-cert`).
    #[cfg(feature = "axum-tls")]
    pub use crate::axum::tls::pem_detail;

    /// Why a time-out reaching a `rediss://` Redis may be one without TLS
    /// (for the CLI's `serve --redis` with a cluster, Sentinels or failing
    /// open).
    #[cfg(feature = "redis")]
    pub use crate::dedupe::no_tls_hint;

    // One constructor per handler form, each bound on its own, so that a
    // mistake in a handler is reported once, on the token it concerns. Each
    // returns the registration itself: a return type naming the event's set
    // would report a wrong parameter type a second time.

    fn registered<S: crate::Events>(
        handler: crate::Handler<S>,
        path: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Registered {
        let handler = handler.at(path);
        Registered::new(match only {
            Some(events) => handler.only(events),
            None => handler,
        })
    }

    /// Wraps an `async fn(E) -> R`.
    pub fn async_handler<E, R, F, Fut>(
        f: F,
        name: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Registered
    where
        E: crate::FromEvent,
        R: crate::IntoHandlerResult,
        F: Fn(E) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        registered(
            crate::IntoHandler::into_handler(f, name),
            std::any::type_name::<F>(),
            only,
        )
    }

    /// A webhook handler's second parameter: [`State<T>`](crate::State),
    /// under whatever name the handler's module gives it (an alias, or a
    /// `use … as`), which a macro cannot tell from the name alone.
    #[diagnostic::on_unimplemented(
        message = "the second parameter of a webhook handler is the shared state, `kustomer_webhooks::State<T>`, not `{Self}`",
        label = "not `kustomer_webhooks::State<T>`",
        note = "a webhook handler takes its event, then optionally the shared state as `kustomer_webhooks::State<T>`; `axum::extract::State` is another type: beside it, import this one renamed (`use kustomer_webhooks::State as HookState;`)"
    )]
    pub trait StateParam: Sized {
        /// The state's type, `T`.
        type Inner;
        /// The parameter, from the state the dispatcher hands out.
        fn from_state(state: crate::State<Self::Inner>) -> Self;
    }

    impl<T> StateParam for crate::State<T> {
        type Inner = T;
        fn from_state(state: crate::State<T>) -> Self {
            state
        }
    }

    /// Wraps an `async fn(E, State<T>) -> R`, `P` being `State<T>` by any
    /// name.
    pub fn async_handler_with_state<E, P, R, F, Fut>(
        f: F,
        name: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Registered
    where
        E: crate::FromEvent,
        P: StateParam,
        P::Inner: Clone + Send + Sync + 'static,
        R: crate::IntoHandlerResult,
        F: Fn(E, P) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = R> + Send + 'static,
    {
        let f = move |event: E, state: crate::State<P::Inner>| f(event, P::from_state(state));
        registered(
            crate::IntoHandler::into_handler(f, name),
            std::any::type_name::<F>(),
            only,
        )
    }

    /// Wraps a blocking `fn(E) -> R`.
    pub fn blocking_handler<E, R, F>(
        f: F,
        name: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Registered
    where
        E: crate::FromEvent,
        R: crate::IntoHandlerResult + 'static,
        F: Fn(E) -> R + Send + Sync + 'static,
    {
        registered(
            crate::IntoHandler::into_handler(f, name),
            std::any::type_name::<F>(),
            only,
        )
    }

    /// Wraps a blocking `fn(E, State<T>) -> R`, `P` being `State<T>` by
    /// any name.
    pub fn blocking_handler_with_state<E, P, R, F>(
        f: F,
        name: &'static str,
        only: Option<&'static [&'static str]>,
    ) -> Registered
    where
        E: crate::FromEvent,
        P: StateParam,
        P::Inner: Clone + Send + Sync + 'static,
        R: crate::IntoHandlerResult + 'static,
        F: Fn(E, P) -> R + Send + Sync + 'static,
    {
        let f = move |event: E, state: crate::State<P::Inner>| f(event, P::from_state(state));
        registered(
            crate::IntoHandler::into_handler(f, name),
            std::any::type_name::<F>(),
            only,
        )
    }
    pub use crate::model::{
        AnyJson, Marks, Misfit, Model, Pointer, ReadError, Reader, diff_raw_nullable,
        differs_from_default, extra_int, extra_millis, extra_str, field_drift, field_name, misfit,
        number_int, read_any, read_extra, read_field, read_nullable, read_option_in_place,
        read_required, str_millis, value_int, value_millis, write_extra, write_field,
    };
    pub use crate::recycle::{boxed_default, take as take_recycling};
    pub use serde::ser::{Serialize, SerializeMap, Serializer};
    pub use serde_json::{Map, Value};
}
