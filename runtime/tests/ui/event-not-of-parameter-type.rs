use kustomer_webhooks::{AnyEvent, CustomerEvent, OtherEvent, TeamCreate, kustomer_webhook};

#[kustomer_webhook(event = "kustomer.tag.create")]
async fn on_tag(event: OtherEvent) {
    let _ = event;
}

#[kustomer_webhook(event = "kustomer.customer.create")]
async fn on_new_customer(event: OtherEvent) {
    let _ = event;
}

#[kustomer_webhook(event = "kustomer.team.create")]
async fn on_team(event: CustomerEvent) {
    let _ = event;
}

type Teams = TeamCreate;

// A type whose name does not say which events it holds: checked by the compiler.
#[kustomer_webhook(event = "kustomer.team.update")]
async fn on_team_update(event: Teams) {
    let _ = event;
}

// A catch-all's events are those with a generated type.
#[kustomer_webhook(event = "kustomer.tag.update")]
async fn on_tags(event: AnyEvent) {
    let _ = event;
}

// A typo, on a type the compiler checks.
#[kustomer_webhook(event = "kustomer.custmer.update")]
async fn on_customers(event: AnyEvent) {
    let _ = event;
}

fn main() {}
