use std::sync::Arc;

use kustomer_webhooks::{
    AnyEvent, ConversationEvent, CustomerEvent, CustomerUpdate, OtherEvent, State, TeamEvent,
    kustomer_webhook,
};

struct App;

#[derive(Debug)]
struct MyError;
impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}
impl std::error::Error for MyError {}

#[kustomer_webhook]
async fn on_update(event: CustomerUpdate) -> Result<(), MyError> {
    let _ = event;
    Ok(())
}

#[kustomer_webhook(event = "kustomer.customer.create")]
fn on_create(event: CustomerEvent, app: State<Arc<App>>) {
    let _ = (event, app);
}

#[kustomer_webhook(events = ["kustomer.conversation.create", "kustomer.conversation.update"])]
async fn on_conversation(event: ConversationEvent, app: State<Arc<App>>) -> Result<(), std::io::Error> {
    let _ = (event, app);
    Ok(())
}

// Named events on a type whose name does not say which events it holds.
type Teams = TeamEvent;

#[kustomer_webhook(event = "kustomer.team.create")]
fn on_team_create(event: Teams, app: State<Arc<App>>) {
    let _ = (event, app);
}

#[kustomer_webhook(events = ["kustomer.team.update"])]
async fn on_team_update(event: Teams) {
    let _ = event;
}

#[kustomer_webhook]
async fn on_other(event: OtherEvent) {
    let _ = event;
}

// A catch-all, and a handler of the whole set restricted to some events.
#[kustomer_webhook]
async fn on_anything(event: AnyEvent, app: State<Arc<App>>) -> Result<(), MyError> {
    let _ = (event, app);
    Ok(())
}

#[kustomer_webhook(events = ["kustomer.user.create", "kustomer.user.update"])]
fn on_users(event: AnyEvent) {
    let _ = event;
}

// `State` renamed beside another (axum's), and behind an alias.
mod renamed {
    use std::sync::Arc;

    use kustomer_webhooks::State as HookState;
    use kustomer_webhooks::{CustomerCreate, MessageEvent, kustomer_webhook};

    pub struct State<T>(pub T);
    type Shared = HookState<Arc<super::App>>;

    #[kustomer_webhook]
    async fn on_created(event: CustomerCreate, app: HookState<Arc<super::App>>) {
        let _ = (event, app, State(()));
    }

    #[kustomer_webhook(event = "kustomer.message.create")]
    fn on_message(event: MessageEvent, app: Shared) {
        let _ = (event, app);
    }
}

fn main() {}
