use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

// A mistake in the body is said once, where it is.
#[kustomer_webhook]
async fn on_update(event: CustomerUpdate) {
    let _event = event
    let _then = 1;
}

fn main() {}
