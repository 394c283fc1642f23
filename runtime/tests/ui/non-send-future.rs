use std::rc::Rc;

use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

async fn save(_: &str) {}

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate) {
    let name = Rc::new(event.name.clone());
    save("x").await;
    let _ = name;
}

fn main() {}
