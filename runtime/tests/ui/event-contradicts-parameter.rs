use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook(event = "kustomer.customer.create")]
async fn on_update(event: CustomerUpdate) {
    let _ = event;
}

fn main() {}
