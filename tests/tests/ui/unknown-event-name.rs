use kustomer_webhooks::{CustomerEvent, kustomer_webhook};

#[kustomer_webhook(event = "kustomer.custmer.update")]
async fn on_update(event: CustomerEvent) {
    let _ = event;
}

fn main() {}
