use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
fn on_update(event: CustomerUpdate, state: State<u8>, extra: u8) {
    let _ = (event, state, extra);
}

fn main() {}
