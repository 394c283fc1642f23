use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update<'a>(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook]
async fn on_update_with<T: Clone + Send + Sync + 'static>(event: CustomerUpdate, db: State<T>) {
    let _ = (event, db);
}

#[kustomer_webhook]
async fn on_update_where(event: CustomerUpdate)
where
    CustomerUpdate: Send,
{
    let _ = event;
}

fn main() {}
