use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update<'a>(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook]
async fn on_update_with<T: Clone + Send + Sync + 'static>(event: CustomerUpdate, db: State<T>) {
    let _ = (event, db);
}

fn main() {}
