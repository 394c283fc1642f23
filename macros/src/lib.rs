//! The attribute macros of `kustomer-webhooks`, which re-exports them.
//!
//! - `#[model]` turns a plain struct into a drift-tolerant, lossless model:
//!   it is what the generated models (and models you regenerate for your own
//!   org) are written with.
//! - `#[kustomer_webhook]` registers a handler function.
//!
//! Depend on `kustomer-webhooks`, not on this crate directly.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod handler;
mod manifest;
mod model;

/// Marks a function as the handler of Kustomer webhook events.
///
/// It goes on a free function (not an associated function): a macro does not
/// see the `impl` block it is in, and there rustc reports "`const` items in
/// this context need a name".
///
/// The function takes the event and, optionally, the application's shared
/// state as `State<T>` (`kustomer_webhooks::State`, imported under any name:
/// `use kustomer_webhooks::State as HookState;` beside axum's `State`); it may be `async` or not (a plain `fn` runs on
/// tokio's blocking pool, a hand-off to another thread per event, so a
/// handler that never blocks is best `async`), and returns `()` or
/// `Result<(), E>`, `E` an error that converts into
/// `Box<dyn Error + Send + Sync>` (a type implementing `Error` that is
/// `Send + Sync + 'static`, `anyhow::Error`, a `String`; so
/// `Box<dyn Error + Send + Sync>`, not `Box<dyn Error>`). Every
/// function marked so in the binary is found by
/// `Dispatcher::builder().registered()`, with no central list to keep.
///
/// Which events it handles:
///
/// - from the parameter type: `CustomerUpdate` is `kustomer.customer.update`;
///   an envelope such as `CustomerEvent` is every customer event (create and
///   update share one function); `OtherEvent` is every event without a
///   generated type (unknown names included); `AnyEvent`, the whole set, is
///   a catch-all: every event that no other handler takes;
/// - or named: `#[kustomer_webhook(event = "kustomer.customer.update")]`, or
///   several: `#[kustomer_webhook(events = ["kustomer.customer.create",
///   "kustomer.customer.update"])]`, which must be events of the parameter
///   type (with models generated for your org, any event its types hold,
///   such as a custom object's `kustomer.kobject.order.update`; write such
///   a type by its path, `kustomer::CustomerEvent`, where it has a bundled
///   type's name).
///
/// ```ignore
/// use kustomer_webhooks::{kustomer_webhook, AnyEvent, ConversationEvent, CustomerEvent, CustomerUpdate, OtherEvent, State};
///
/// #[kustomer_webhook]
/// async fn on_update(event: CustomerUpdate) -> Result<(), MyError> { Ok(()) }
///
/// #[kustomer_webhook(event = "kustomer.conversation.create")]
/// fn on_new_conversation(event: ConversationEvent, db: State<Db>) { }
///
/// #[kustomer_webhook]
/// async fn on_untyped(event: OtherEvent) { }
///
/// // Every event the others do not take, to forward or queue as it comes.
/// #[kustomer_webhook]
/// async fn on_anything_else(event: AnyEvent) { }
/// ```
///
/// A dependency renamed in your crate's `Cargo.toml`
/// (`kw = { package = "kustomer-webhooks", … }`, in any dependency table,
/// or inherited from the workspace's) is found there: the expansion reaches
/// the runtime as `::kw`. Where the runtime has another name the manifest
/// does not say (a crate of your own that re-exports it), say so with
/// `crate = "…"`: `#[kustomer_webhook(crate = "my_facade::kustomer_webhooks",
/// event = "…")]` (`#[model(crate = "…")]` likewise; `crate` always wins).
/// Otherwise, the expansion reaches the runtime as `::kustomer_webhooks`.
///
/// Mistakes are compile errors pointing at the offending token: an unknown
/// event name (with the closest known one), a parameter that is not an event
/// type, an event its parameter type does not hold, a wrong number of
/// parameters, a second parameter that is not `kustomer_webhooks::State<T>`
/// (axum's `State` among them), `State<T>` before the event, an event taken
/// by reference, a generic, `const`, `unsafe` or `extern` function, `impl
/// Trait` in the signature, `State` without its type, use on something that
/// is not a function, malformed arguments, an event listed twice in `events
/// = [...]`, a return type other than `()` or `Result<(), E>`, and an `async
/// fn` whose future is not `Send`.
#[proc_macro_attribute]
pub fn kustomer_webhook(args: TokenStream, input: TokenStream) -> TokenStream {
    handler::expand(args.into(), input.into()).into()
}

/// The event names `#[kustomer_webhook]` accepts, as an array expression.
#[doc(hidden)]
#[proc_macro]
pub fn __known_events(_input: TokenStream) -> TokenStream {
    let names = handler::KNOWN_EVENTS;
    quote::quote!([#(#names),*]).into()
}

/// Makes a struct a Kustomer model: tolerant reading (`Model`, with the
/// runtime's JSON reader) that never fails on a value of an unexpected type
/// (the value is kept in `extra` and reported as drift), a `Serialize` that
/// gives back exactly the JSON received, and the drift walk.
///
/// Every field but `extra` carries `#[json("key")]`, naming its JSON key, and
/// its form decides how it is read:
///
/// - `Option<T>`: absent or `T`; `null` or another type is drift;
/// - `Option<T>` with `#[json("key", nullable)]`: `null` is expected too;
/// - `Option<serde_json::Value>` with `#[json("key", any)]`: any JSON at all
///   (an `any` field of another type is an error);
/// - `T` (a model struct): required; absent or drifted, it keeps its default.
///
/// `extra: Extra` (a map of JSON values) holds the keys the model does not
/// know.
///
/// A field's type is one the runtime reads (`Model`): `Option<T>` or a
/// model struct, `T` being `bool`, `i64`, `serde_json::Number`, `Str` (text;
/// not `String`), `Id`, `DateTime`, `Op`, `Value`, `Map<String, Value>`,
/// `Vec<T>`, `Box<T>`, `Change<T>` or a model struct. Each JSON key goes to one field, and
/// a field cannot be `#[cfg]`-gated (gate the whole struct instead). Fields
/// keep the visibility they are written with (`extra`, which must be
/// `pub`, stays so).
///
/// The struct must be `pub`, with named fields and no generics. Where the
/// runtime is reached by another path, `#[model(crate = "kw")]` (as for
/// `#[kustomer_webhook]`). The
/// attribute derives `Clone`, `Default`, `PartialEq` and `Debug` itself
/// (derive them again and they conflict), and adds a hidden field that
/// remembers which required fields were present: build a model with
/// `..Default::default()` after the fields you set. Models implement
/// `Serialize`, not `Deserialize`: read one with the crate's `parse`, or
/// `Model::from_json`. The `Model` trait is implemented by this attribute
/// only.
///
/// ```ignore
/// #[kustomer_webhooks::model]
/// pub struct Location {
///     #[json("cityName")]
///     pub city_name: Option<Str>,
///     #[json("id", any)]
///     pub id: Option<Value>,
///     pub extra: Extra,
/// }
/// ```
#[proc_macro_attribute]
pub fn model(args: TokenStream, input: TokenStream) -> TokenStream {
    model::expand(args.into(), input.into()).into()
}
