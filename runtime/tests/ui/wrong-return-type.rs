use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
fn on_update(event: CustomerUpdate) -> u8 {
    let _ = event;
    0
}

fn main() {}
