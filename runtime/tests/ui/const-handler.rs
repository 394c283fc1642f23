use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
const fn on_update(event: CustomerUpdate) {
    let _ = event;
}

fn main() {}
