use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook(crate = "not a path")]
async fn on_update(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhooks::model(crate = kw)]
pub struct Contact {
    pub extra: kustomer_webhooks::Extra,
}

fn main() {}
