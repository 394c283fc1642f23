use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(_db: State<u8>, _event: CustomerUpdate) {}

fn main() {}
