use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use kustomer_webhooks::{CustomerCreate, CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate, db: State<Rc<u8>>) {
    let _ = (event, db);
}

#[kustomer_webhook]
fn on_create(event: CustomerCreate, db: State<Arc<RefCell<Vec<u8>>>>) {
    let _ = (event, db);
}

fn main() {}
