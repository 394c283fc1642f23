// A function given to `.handler` (not annotated) whose future is not
// `Send`: the error lists the usual causes, and points at the attribute
// for a precise one.
use std::rc::Rc;

use kustomer_webhooks::{CustomerUpdate, Dispatcher};

async fn save(_: &str) {}

async fn on_update(event: CustomerUpdate) {
    let name = Rc::new(event.name.clone());
    save("x").await;
    let _ = name;
}

fn main() {
    let _ = Dispatcher::builder().handler(on_update).build();
}
