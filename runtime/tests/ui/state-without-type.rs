use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate, db: State) {
    let _ = (event, db);
}

fn main() {}
