use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(_event: &CustomerUpdate) {}

fn main() {}
