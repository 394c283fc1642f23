use kustomer_webhooks::{ConversationEvent, CustomerEvent, OtherEvent, kustomer_webhook};

#[kustomer_webhook(event = "kustomer.custmer.update")]
async fn on_update(event: CustomerEvent) {
    let _ = event;
}

#[kustomer_webhook(event = "kustomer.convo.update")]
async fn on_conversation(event: ConversationEvent) {
    let _ = event;
}

#[kustomer_webhook(event = "kustomer.company.create")]
async fn on_company(event: OtherEvent) {
    let _ = event;
}

fn main() {}
