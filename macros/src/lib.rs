//! The attribute macros of `kustomer-webhooks`, which re-exports them.
//!
//! - `#[model]` turns a plain struct into a drift-tolerant, lossless model:
//!   it is what the generated models (and models you regenerate for your own
//!   org) are written with.
//! - `#[kustomer_webhook]`, the handler attribute, is still to come.
//!
//! Depend on `kustomer-webhooks`, not on this crate directly.
#![deny(missing_docs)]

use proc_macro::TokenStream;

mod model;

/// Makes a struct a Kustomer model: a tolerant `Deserialize` that never fails
/// on a value of an unexpected type (the value is kept in `extra` and reported
/// as drift), a `Serialize` that gives back exactly the JSON received, and the
/// drift walk.
///
/// Every field but `extra` carries `#[json("key")]`, naming its JSON key, and
/// its form decides how it is read:
///
/// - `Option<T>`: absent or `T`; `null` or another type is drift;
/// - `Option<T>` with `#[json("key", nullable)]`: `null` is expected too;
/// - `Option<serde_json::Value>` with `#[json("key", any)]`: any JSON at all;
/// - `T` (a model struct): required; absent or drifted, it keeps its default.
///
/// `extra: Map<String, Value>` holds the keys the model does not know.
///
/// ```ignore
/// #[kustomer_webhooks::model]
/// pub struct Location {
///     #[json("cityName")]
///     pub city_name: Option<Str>,
///     #[json("id", any)]
///     pub id: Option<Value>,
///     pub extra: Map<String, Value>,
/// }
/// ```
#[proc_macro_attribute]
pub fn model(args: TokenStream, input: TokenStream) -> TokenStream {
    model::expand(args.into(), input.into()).into()
}
