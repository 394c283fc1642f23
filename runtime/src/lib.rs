//! Receive Kustomer outbound webhooks as typed, verified events.
//!
//! This is the one crate a service depends on. It will hold the event
//! envelope and event names, the generated models (under `src/models/`,
//! produced by `kustomer-webhooks generate` from the inferred schemas),
//! signature verification over the raw body, dispatch to the functions
//! annotated with `#[kustomer_webhook]`, de-duplication and ordering, and
//! framework adapters behind features.
//!
//! Today the toolkit's first link is in place: the schemas inferred from
//! Kustomer's published samples (see the `kustomer-schema` crate and the
//! `kustomer-webhooks infer` command). The types in this crate come next.
#![deny(missing_docs)]
