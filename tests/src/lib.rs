//! Shared helpers for the cross-crate test suites and benchmarks.
//!
//! - [`mutate`]: a deterministic generator of drifted copies of the ten
//!   seed samples, for property tests and benchmarks of inference;
//! - [`alloc_counter`]: a counting global allocator, so a test or benchmark
//!   binary can measure the peak heap of what it runs;
//! - [`call_counter`]: a global allocator counting allocating calls on
//!   demand, for allocations per operation in benchmarks.
#![deny(missing_docs)]

pub mod alloc_counter;
pub mod call_counter;
pub mod mutate;
