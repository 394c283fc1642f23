// Models generated into a service's own binary compile without a warning,
// even where the service uses little of them.
#![deny(warnings)]

#[path = "../../../examples/org-models/src/models/mod.rs"]
mod kustomer;

fn main() {
    assert!(kustomer::parse(b"{}").is_err());
}
