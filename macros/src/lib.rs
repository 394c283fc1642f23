//! The `#[kustomer_webhook]` attribute, re-exported by `kustomer-webhooks`.
//!
//! It will turn a function taking a typed event (such as
//! `fn on_update(e: CustomerUpdate)`) into a handler the runtime's dispatcher
//! finds by itself, with compile-time errors that point at the offending
//! token. Depend on `kustomer-webhooks`, not on this crate directly.
#![deny(missing_docs)]
