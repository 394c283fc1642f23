use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook(event = "kustomer.customer.create")]
async fn on_update(event: CustomerUpdate) {
    let _ = event;
}

// Tags have no generated type: an `OtherEvent` handler takes them.
#[kustomer_webhook(event = "kustomer.tag.create")]
async fn on_tag(event: kustomer_webhooks::CustomerEvent) {
    let _ = event;
}

#[kustomer_webhook(event = "kustomer.tag.update")]
async fn on_tag_update(event: kustomer_webhooks::CustomerUpdate) {
    let _ = event;
}

fn main() {}
