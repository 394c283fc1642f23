//! Prints the `outboundWebhooks` entry for the handlers this binary
//! registers, so the app definition lists exactly the events the code
//! handles.
//!
//! ```sh
//! cargo run -p kustomer-webhooks --example app_definition
//! ```

use kustomer_webhooks::app::OutboundWebhook;
use kustomer_webhooks::{ConversationEvent, CustomerUpdate, Dispatcher, kustomer_webhook};

#[kustomer_webhook]
async fn on_customer_update(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook]
async fn on_conversation(event: ConversationEvent) {
    let _ = event;
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dispatcher = Dispatcher::builder().registered().build()?;
    let webhook = OutboundWebhook::for_dispatcher(
        "Send events to my service",
        "https://example.com/kustomer",
        &dispatcher,
    )
    .with_header("x-app-secret", "set-me");
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "outboundWebhooks": [webhook] }))?
    );
    Ok(())
}
