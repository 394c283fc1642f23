//! `#[kustomer_webhook]` functions of two services in one binary, each with
//! its own state: a dispatcher built from one service's `.handler`s says
//! nothing of the other's functions, which `.registered()` would refuse
//! (they take another state), nor of a function added for some of its
//! events with `.handler_for`.

use kustomer_webhooks::{
    ConversationCreate, ConversationEvent, Dispatcher, State, TeamCreate, kustomer_webhook,
};
use kustomer_webhooks_tests::warnings;

#[derive(Clone)]
struct Support;
#[derive(Clone)]
struct Billing;

mod support {
    use super::*;

    #[kustomer_webhook]
    pub async fn on_team(_: TeamCreate, _: State<Support>) {}

    #[kustomer_webhook]
    pub async fn on_conversation(_: ConversationEvent, _: State<Support>) {}
}

mod billing {
    use super::*;

    #[kustomer_webhook]
    pub async fn on_conversation_created(_: ConversationCreate, _: State<Billing>) {}
}

#[test]
fn another_services_functions_and_those_added_for_some_events_are_not_said() {
    let said = warnings(|| {
        Dispatcher::with_state(Support)
            .handler(support::on_team)
            .handler_for(&["kustomer.conversation.update"], support::on_conversation)
            .build()
            .unwrap();
    });
    assert!(said.is_empty(), "{said:?}");
    // Without `on_conversation`, its events are said: it takes this state.
    let said = warnings(|| {
        Dispatcher::with_state(Support)
            .handler(support::on_team)
            .build()
            .unwrap();
    });
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with(
            "registered_state::support::on_conversation is a #[kustomer_webhook] function this \
             dispatcher was built without (no `.registered()`): kustomer.conversation.create, \
             kustomer.conversation.update would be acknowledged"
        ),
        "{said:?}"
    );
}

/// A function declared inside a test, added twice (by `.registered_where`
/// and by `.handler`), is said to be one.
#[test]
fn a_function_declared_inside_a_test_added_twice_is_said_to_be() {
    #[kustomer_webhook]
    async fn declared_in_a_test(_: kustomer_webhooks::UserCreate, _: State<Billing>) {}
    let err = Dispatcher::with_state(Billing)
        .registered_where(|path| path.ends_with("::declared_in_a_test"))
        .handler(declared_in_a_test)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("it was added twice"), "{err}");
}
