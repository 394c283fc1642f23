use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate) -> Result<(), Box<dyn std::error::Error>> {
    let _ = event;
    Ok(())
}

fn main() {}
