use std::sync::Arc;

use kustomer_webhooks::{CustomerUpdate, MessageCreate, kustomer_webhook};

// Another crate's `State`, as axum's is.
mod web {
    #[derive(Clone)]
    pub struct State<T>(pub T);
}
use web::State;

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate, db: State<Arc<u8>>) {
    let _ = (event, db);
}

#[kustomer_webhook]
fn on_message(event: MessageCreate, db: State<Arc<u8>>) {
    let _ = (event, db);
}

fn main() {}
