use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
async fn on_update<T>(event: CustomerUpdate) {
    let _ = event;
}

fn main() {}
