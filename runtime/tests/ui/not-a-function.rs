use kustomer_webhooks::kustomer_webhook;

#[kustomer_webhook]
struct OnUpdate;

fn main() {}
