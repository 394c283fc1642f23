use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
unsafe fn on_update(_event: CustomerUpdate) {}

#[kustomer_webhook]
extern "C" fn on_update_c(_event: CustomerUpdate) {}

fn main() {}
