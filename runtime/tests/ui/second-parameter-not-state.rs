use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
fn on_update(event: CustomerUpdate, db: u8) {
    let _ = (event, db);
}

fn main() {}
