use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook(evnt = "kustomer.customer.update")]
async fn on_update(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(event = 42)]
async fn on_create(event: kustomer_webhooks::CustomerCreate) {
    let _ = event;
}

fn main() {}
