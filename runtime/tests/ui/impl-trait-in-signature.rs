use std::future::Future;

use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(event: impl Into<CustomerUpdate>) {
    let _ = event.into();
}

#[kustomer_webhook]
fn on_update_later(event: CustomerUpdate) -> impl Future<Output = ()> + Send {
    async move {
        let _ = event;
    }
}

fn main() {}
