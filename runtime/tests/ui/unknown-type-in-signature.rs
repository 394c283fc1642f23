use kustomer_webhooks::{CustomerUpdate, State, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate, db: State<Dbx>) {
    let _ = (event, db);
}

#[kustomer_webhook]
fn on_create(event: Evnt) {
    let _ = event;
}

#[kustomer_webhook]
async fn on_delete(event: CustomerUpdate) -> Result<(), DbEror> {
    let _ = event;
    Ok(())
}

fn main() {}
