use kustomer_webhooks::{CustomerCreate, CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
fn on_update(event: CustomerUpdate, state: State<u8>, extra: u8) {
    let _ = (event, state, extra);
}

#[kustomer_webhook]
fn on_create(event: CustomerCreate, state: State<u8>, extra: u8, more: u16) {
    let _ = (event, state, extra, more);
}

fn main() {}
