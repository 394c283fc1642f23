use kustomer_webhooks::kustomer_webhook;

#[kustomer_webhook]
async fn on_update() {}

fn main() {}
