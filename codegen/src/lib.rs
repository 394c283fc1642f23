//! JSON Schemas → Rust models for Kustomer webhook events.
//!
//! This crate will turn the schemas that `kustomer-schema` infers
//! (`schema/schemas/*.json`) into the Rust models checked in under the
//! runtime's `src/models/`: typify for the types, prettyplease for the
//! formatting, Kustomer-aware names, open enums, catch-all fields for keys the
//! models do not know, and typed change sets. It is a library the
//! `kustomer-webhooks generate` and `check` commands call; it never runs at a
//! user's build time.
//!
//! Nothing is generated yet: the code generator is the next link of the
//! pipeline to be built.
#![deny(missing_docs)]
