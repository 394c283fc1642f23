use kustomer_webhooks::{CustomerUpdate, kustomer_webhook};

#[kustomer_webhook(evnt = "kustomer.customer.update")]
async fn on_update(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(event = 42)]
async fn on_create(event: kustomer_webhooks::CustomerCreate) {
    let _ = event;
}

#[kustomer_webhook("kustomer.customer.update")]
async fn by_a_string(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(events = "kustomer.customer.update")]
async fn not_a_list(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(events = [kustomer.customer.update])]
async fn not_strings(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(event)]
async fn no_value(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(event =)]
async fn no_value_after(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook(crate)]
async fn no_crate_path(event: CustomerUpdate) {
    let _ = event;
}

#[kustomer_webhook]
#[kustomer_webhook]
async fn twice(event: CustomerUpdate) {
    let _ = event;
}

fn main() {}
