//! The dispatcher: every sample reaches its handler with typed data; unknown
//! events, failures, panics and mismatches come back as values.

use std::sync::{Arc, Mutex};

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::{
    AnyEvent, BuildError, ConversationCreate, ConversationUpdate, CustomerCreate, CustomerEvent,
    CustomerUpdate, DispatchError, Dispatched, Dispatcher, EventName, MessageCreate, MessageUpdate,
    OtherEvent, ParseError, State, TeamCreate, TeamUpdate, UserCreate, UserUpdate,
    kustomer_webhook,
};

type Seen = Arc<Mutex<Vec<String>>>;

fn note(seen: &Seen, what: String) {
    seen.lock().unwrap().push(what);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

async fn conversation_create(e: ConversationCreate, s: State<Seen>) {
    note(
        &s,
        format!(
            "conversation.create {}",
            e.data.attributes.status.as_deref().unwrap_or("?")
        ),
    );
}
async fn conversation_update(e: ConversationUpdate, s: State<Seen>) {
    note(
        &s,
        format!("conversation.update rev {:?}", e.data.attributes.rev),
    );
}
async fn customer_create(e: CustomerCreate, s: State<Seen>) {
    note(
        &s,
        format!(
            "customer.create {}",
            e.data.attributes.name.as_deref().unwrap_or("?")
        ),
    );
}
fn customer_update(e: CustomerUpdate, s: State<Seen>) {
    let rev = e
        .changes
        .as_ref()
        .and_then(|c| c.attributes.rev.as_ref())
        .map(|c| (c.before, c.after));
    note(&s, format!("customer.update {rev:?}"));
}
async fn message_create(e: MessageCreate, s: State<Seen>) {
    note(
        &s,
        format!(
            "message.create {}",
            e.data.attributes.channel.as_deref().unwrap_or("?")
        ),
    );
}
async fn message_update(e: MessageUpdate, s: State<Seen>) {
    note(
        &s,
        format!("message.update redacted {:?}", e.data.attributes.redacted),
    );
}
async fn team_create(e: TeamCreate, s: State<Seen>) {
    note(
        &s,
        format!(
            "team.create {}",
            e.data.attributes.name.as_deref().unwrap_or("?")
        ),
    );
}
async fn team_update(e: TeamUpdate, s: State<Seen>) {
    note(
        &s,
        format!(
            "team.update members {}",
            e.data.attributes.members.as_ref().map_or(0, Vec::len)
        ),
    );
}
fn user_create(e: UserCreate, s: State<Seen>) {
    note(
        &s,
        format!(
            "user.create {}",
            e.data.attributes.name.as_deref().unwrap_or("?")
        ),
    );
}
async fn user_update(e: UserUpdate, s: State<Seen>) {
    note(
        &s,
        format!(
            "user.update {}",
            e.data.attributes.display_name.as_deref().unwrap_or("?")
        ),
    );
}
async fn other(e: OtherEvent, s: State<Seen>) {
    note(&s, format!("other {}", e.name));
}

fn all_handlers(seen: &Seen) -> Dispatcher {
    Dispatcher::with_state(seen.clone())
        .handler(conversation_create)
        .handler(conversation_update)
        .handler(customer_create)
        .handler(customer_update)
        .handler(message_create)
        .handler(message_update)
        .handler(team_create)
        .handler(team_update)
        .handler(user_create)
        .handler(user_update)
        .handler(other)
        .build()
        .unwrap()
}

#[test]
fn every_sample_reaches_its_handler_with_typed_data() {
    let seen = Seen::default();
    let dispatcher = all_handlers(&seen);
    runtime().block_on(async {
        for (event, text) in SEED_SAMPLES {
            let outcome = dispatcher
                .dispatch(text.as_bytes(), Some(event))
                .await
                .unwrap();
            assert!(
                matches!(outcome, Dispatched::Handled { .. }),
                "{event}: {outcome:?}"
            );
        }
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "conversation.create open",
            "conversation.update rev Some(2)",
            "customer.create Franz Kafka",
            "customer.update Some((Some(2), Some(3)))",
            "message.create sms",
            "message.update redacted Some(true)",
            "team.create Der Prozess",
            "team.update members 2",
            "user.create Gregor Samsa",
            "user.update Gregor",
        ]
    );
    assert_eq!(dispatcher.events().len(), 10);
}

#[test]
fn unknown_and_untyped_events_reach_the_other_handler() {
    let seen = Seen::default();
    let dispatcher = all_handlers(&seen);
    runtime().block_on(async {
        for body in [
            r#"{"name": "kustomer.kobject.order.create", "data": {"type": "kobject"}}"#,
            r#"{"name": "kustomer.tag.create", "data": {"type": "tag"}}"#,
        ] {
            let outcome = dispatcher.dispatch(body.as_bytes(), None).await.unwrap();
            assert!(matches!(outcome, Dispatched::Handled { .. }), "{outcome:?}");
        }
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "other kustomer.kobject.order.create",
            "other kustomer.tag.create"
        ]
    );
}

#[test]
fn events_without_a_handler_are_acknowledged_as_such() {
    let dispatcher = Dispatcher::builder().build().unwrap();
    let outcome = runtime()
        .block_on(dispatcher.dispatch(SEED_SAMPLES[0].1.as_bytes(), None))
        .unwrap();
    assert_eq!(
        outcome,
        Dispatched::NoHandler {
            event: EventName::ConversationCreate
        }
    );
}

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}
impl std::error::Error for Refused {}

async fn failing(_: TeamCreate) -> Result<(), Refused> {
    Err(Refused)
}
async fn panicking(_: TeamUpdate) {
    panic!("boom in async")
}
fn panicking_blocking(_: UserCreate) {
    panic!("boom in blocking")
}
async fn fine(_: UserUpdate) {}

#[test]
fn errors_and_panics_come_back_as_values_and_the_dispatcher_keeps_working() {
    let dispatcher = Dispatcher::builder()
        .handler(failing)
        .handler(panicking)
        .handler(panicking_blocking)
        .handler(fine)
        .build()
        .unwrap();
    let body = |event: &str| {
        SEED_SAMPLES
            .iter()
            .find(|(e, _)| *e == event)
            .unwrap()
            .1
            .as_bytes()
    };
    runtime().block_on(async {
        let err = dispatcher.dispatch(body("kustomer.team.create"), None).await.unwrap_err();
        assert!(matches!(&err, DispatchError::Handler { error, .. } if error.to_string() == "refused"), "{err}");
        assert!(err.to_string().contains("failing failed on kustomer.team.create: refused"), "{err}");
        // Said once by a report of the whole chain (anyhow's `{:#}`).
        assert!(std::error::Error::source(&err).is_none(), "{err}");
        let err = dispatcher.dispatch(body("kustomer.team.update"), None).await.unwrap_err();
        assert!(matches!(&err, DispatchError::Panicked { message, .. } if message == "boom in async"), "{err}");
        let err = dispatcher.dispatch(body("kustomer.user.create"), None).await.unwrap_err();
        assert!(matches!(&err, DispatchError::Panicked { message, .. } if message == "boom in blocking"), "{err}");
        let ok = dispatcher.dispatch(body("kustomer.user.update"), None).await.unwrap();
        assert!(matches!(ok, Dispatched::Handled { .. }));
    });
}

#[test]
fn a_header_that_contradicts_the_body_is_refused() {
    let dispatcher = Dispatcher::builder().handler(fine).build().unwrap();
    let err = runtime()
        .block_on(dispatcher.dispatch(SEED_SAMPLES[9].1.as_bytes(), Some("kustomer.user.create")))
        .unwrap_err();
    assert!(
        matches!(&err, DispatchError::Parse(ParseError::NameMismatch { header, body })
            if header == "kustomer.user.create" && body == "kustomer.user.update"),
        "{err}"
    );
}

/// A body's name with white space at either end arrives in the header
/// without it (HTTP drops it): no contradiction, and the event is the
/// body's name as it is (an unknown event), not the header's.
#[test]
fn a_header_that_is_the_bodys_name_without_its_white_space_agrees() {
    let sample: serde_json::Value = serde_json::from_str(SEED_SAMPLES[8].1).unwrap();
    let original = sample["name"].as_str().unwrap().to_owned();
    for spaced in [format!("{original} "), format!("\t{original}")] {
        let mut body = sample.clone();
        body["name"] = spaced.clone().into();
        let body = serde_json::to_vec(&body).unwrap();
        let parsed = kustomer_webhooks::parse_as(&body, &original).unwrap();
        assert_eq!(parsed.event.name().as_str(), spaced);
        let parsed = kustomer_webhooks::parse_as(&body, &spaced).unwrap();
        assert_eq!(parsed.event.name().as_str(), spaced);
    }
}

async fn customer_any(_: CustomerEvent) {}
async fn customer_update_only(_: CustomerUpdate) {}

#[test]
fn two_handlers_for_one_event_are_refused_when_building() {
    let err = Dispatcher::builder()
        .handler(customer_any)
        .handler(customer_update_only)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::Duplicate { event, .. } if event == "kustomer.customer.update"),
        "{err}"
    );
    // Restricted to create, the envelope handler no longer collides.
    Dispatcher::builder()
        .handler_for(&["kustomer.customer.create"], customer_any)
        .handler(customer_update_only)
        .build()
        .unwrap();
    let err = Dispatcher::builder()
        .handler_for(&["kustomer.team.create"], customer_any)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NotHandled { .. }), "{err}");
    // A typo gets the name it is closest to.
    let err = Dispatcher::builder()
        .handler_for(&["kustomer.custmer.create"], customer_any)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "which its parameter type does not hold; did you mean kustomer.customer.create?"
        ),
        "{err}"
    );
    // A name listed twice is listed once.
    Dispatcher::builder()
        .handler_for(
            &["kustomer.customer.create", "kustomer.customer.create"],
            customer_any,
        )
        .build()
        .unwrap();
    // One function added twice: said so.
    let err = Dispatcher::builder()
        .handler(customer_any)
        .handler(customer_any)
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("if these name one function, it was added twice"),
        "{err}"
    );
}

/// An `OtherEvent` handler takes every event without a generated type: it
/// cannot be restricted, and saying so is clearer than "does not hold".
#[test]
fn an_other_event_handler_restricted_to_some_events_is_refused_saying_why() {
    let err = Dispatcher::with_state(Seen::default())
        .handler_for(&["kustomer.tag.create"], other)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::OtherRestricted { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("takes OtherEvent, which gets every event without a generated type, and cannot be restricted to some"),
        "{err}"
    );
}

#[test]
fn a_handler_wanting_another_state_is_refused_when_building() {
    let err = Dispatcher::with_state(42u8)
        .handler(customer_update)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::StateMismatch { .. }), "{err}");
}

async fn catch_all(e: AnyEvent, s: State<Seen>) {
    let drift = e.drift().len();
    note(
        &s,
        format!("any {} typed={} drift={drift}", e.name(), e.is_typed()),
    );
}
fn catch_all_blocking(e: AnyEvent, s: State<Seen>) -> Result<(), Refused> {
    note(&s, format!("any (blocking) {}", e.name()));
    if e.name() == EventName::TeamCreate {
        return Err(Refused);
    }
    Ok(())
}
async fn customer_update_seen(_: CustomerUpdate, s: State<Seen>) {
    note(&s, "own customer.update".to_owned());
}
async fn other_seen(e: OtherEvent, s: State<Seen>) {
    note(&s, format!("other {}", e.name));
}

#[test]
fn a_catch_all_gets_every_event_no_other_handler_takes() {
    let seen = Seen::default();
    let dispatcher = Dispatcher::with_state(seen.clone())
        .handler(customer_update_seen)
        .handler(catch_all)
        .build()
        .unwrap();
    assert!(dispatcher.has_catch_all());
    // Only the events with a handler of their own are listed.
    assert_eq!(dispatcher.events(), ["kustomer.customer.update"]);
    runtime().block_on(async {
        for (event, body) in SEED_SAMPLES {
            let outcome = dispatcher
                .dispatch(body.as_bytes(), Some(event))
                .await
                .unwrap();
            let handler = match outcome {
                Dispatched::Handled { handler, .. } => handler,
                other => panic!("{event}: {other:?}"),
            };
            let expected = if event == "kustomer.customer.update" {
                "customer_update_seen"
            } else {
                "catch_all"
            };
            assert!(handler.ends_with(expected), "{event}: {handler}");
        }
        // Unknown and untyped events too, with no `OtherEvent` handler.
        let body = r#"{"name": "kustomer.kobject.order.create", "data": {"type": "kobject"}}"#;
        dispatcher.dispatch(body.as_bytes(), None).await.unwrap();
        // A drifted payload reaches it with its drift.
        let drifted = SEED_SAMPLES[0]
            .1
            .replacen(r#""status":"#, r#""status":7,"was":"#, 1);
        dispatcher.dispatch(drifted.as_bytes(), None).await.unwrap();
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), SEED_SAMPLES.len() + 2, "{seen:?}");
    assert_eq!(
        seen.iter().filter(|s| *s == "own customer.update").count(),
        1
    );
    assert_eq!(
        seen[SEED_SAMPLES.len()],
        "any kustomer.kobject.order.create typed=false drift=0"
    );
    assert_eq!(
        seen[SEED_SAMPLES.len() + 1],
        "any kustomer.conversation.create typed=true drift=1"
    );
}

#[test]
fn an_other_event_handler_comes_before_the_catch_all() {
    let seen = Seen::default();
    let dispatcher = Dispatcher::with_state(seen.clone())
        .handler(other_seen)
        .handler(catch_all_blocking)
        .build()
        .unwrap();
    runtime().block_on(async {
        let body = r#"{"name": "kustomer.tag.create", "data": {"type": "tag"}}"#;
        dispatcher.dispatch(body.as_bytes(), None).await.unwrap();
        dispatcher
            .dispatch(SEED_SAMPLES[1].1.as_bytes(), None)
            .await
            .unwrap();
        // A plain `fn` catch-all fails a delivery like any handler.
        let team = SEED_SAMPLES
            .iter()
            .find(|(e, _)| *e == "kustomer.team.create")
            .unwrap()
            .1;
        let err = dispatcher
            .dispatch(team.as_bytes(), None)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("catch_all_blocking failed on kustomer.team.create: refused"),
            "{err}"
        );
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "other kustomer.tag.create",
            "any (blocking) kustomer.conversation.update",
            "any (blocking) kustomer.team.create",
        ]
    );
}

#[test]
fn two_catch_alls_are_refused_unless_one_is_restricted() {
    let err = Dispatcher::with_state(Seen::default())
        .handler(catch_all)
        .handler(catch_all_blocking)
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::DuplicateCatchAll { first, second }
            if first.ends_with("catch_all") && second.ends_with("catch_all_blocking")),
        "{err}"
    );
    assert!(err.to_string().contains("two catch-all handlers"), "{err}");
    // Restricted, an `AnyEvent` handler handles the named events only.
    let seen = Seen::default();
    let dispatcher = Dispatcher::with_state(seen.clone())
        .handler_for(&["kustomer.team.create", "kustomer.team.update"], catch_all)
        .handler(catch_all_blocking)
        .build()
        .unwrap();
    assert_eq!(
        dispatcher.events(),
        ["kustomer.team.create", "kustomer.team.update"]
    );
    runtime().block_on(async {
        for (_, body) in SEED_SAMPLES
            .iter()
            .filter(|(e, _)| e.starts_with("kustomer.team."))
        {
            dispatcher.dispatch(body.as_bytes(), None).await.unwrap();
        }
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "any kustomer.team.create typed=true drift=0",
            "any kustomer.team.update typed=true drift=0",
        ]
    );
    // Only events with a generated type can be named.
    let err = Dispatcher::with_state(Seen::default())
        .handler_for(&["kustomer.tag.create"], catch_all)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NotHandled { .. }), "{err}");
    // Restricted, it is no longer a catch-all; restricted to nothing, it is
    // refused (it would never run), as any handler is.
    let restricted = kustomer_webhooks::IntoHandler::into_handler(catch_all, "catch_all");
    assert!(restricted.is_catch_all());
    assert!(!restricted.only(&["kustomer.team.create"]).is_catch_all());
    for err in [
        Dispatcher::with_state(Seen::default())
            .handler_for(&[], catch_all)
            .build()
            .unwrap_err(),
        Dispatcher::builder()
            .handler_for(&[], customer_any)
            .build()
            .unwrap_err(),
    ] {
        assert!(matches!(err, BuildError::NoEvents { .. }), "{err}");
        assert!(err.to_string().contains("restricted to no event"), "{err}");
    }
}

fn on_blocking_thread(_: TeamCreate, s: State<Arc<Mutex<Option<std::thread::ThreadId>>>>) {
    *s.lock().unwrap() = Some(std::thread::current().id());
}

#[test]
fn blocking_handlers_run_off_the_async_runtime() {
    let cell: Arc<Mutex<Option<std::thread::ThreadId>>> = Arc::new(Mutex::new(None));
    let dispatcher = Dispatcher::with_state(cell.clone())
        .handler(on_blocking_thread)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = SEED_SAMPLES
        .iter()
        .find(|(e, _)| *e == "kustomer.team.create")
        .unwrap()
        .1;
    rt.block_on(dispatcher.dispatch(body.as_bytes(), None))
        .unwrap();
    let ran_on = cell.lock().unwrap().expect("the handler ran");
    assert_ne!(
        ran_on,
        std::thread::current().id(),
        "a blocking handler ran on the runtime's thread"
    );
}

// Registered with the attribute: found without being listed.
static REGISTERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[kustomer_webhook]
async fn registered_update(event: kustomer_webhooks::MessageUpdate) {
    REGISTERED
        .lock()
        .unwrap()
        .push(format!("update {:?}", event.data.id.map(|i| i.to_string())));
}

#[kustomer_webhook(event = "kustomer.message.create")]
fn registered_create(event: kustomer_webhooks::MessageEvent) -> Result<(), Refused> {
    REGISTERED
        .lock()
        .unwrap()
        .push(format!("create {:?}", event.data.attributes.channel));
    Ok(())
}

/// A catch-all found by `registered()`, like any annotated handler.
#[kustomer_webhook]
fn registered_catch_all(event: AnyEvent) {
    REGISTERED
        .lock()
        .unwrap()
        .push(format!("any {}", event.name()));
}

/// A stand-in for `registered_update`, in a module of its own.
mod stand_in {
    use super::*;

    #[kustomer_webhook]
    pub async fn on_message_update(event: kustomer_webhooks::MessageUpdate) {
        let _ = event;
    }
}

#[test]
fn annotated_handlers_are_found_without_a_list() {
    // All of them: the stand-in and the handler it stands in for.
    let err = Dispatcher::builder().registered().build().unwrap_err();
    assert!(
        matches!(&err, BuildError::Duplicate { event, .. } if event == "kustomer.message.update"),
        "{err}"
    );
    // Chosen by path.
    let stand_in = Dispatcher::builder()
        .registered_where(|path| path.starts_with("dispatch::stand_in::"))
        .build()
        .unwrap();
    assert_eq!(stand_in.events(), ["kustomer.message.update"]);
    assert!(!stand_in.has_catch_all());
    let dispatcher = Dispatcher::builder()
        .registered_where(|path| !path.starts_with("dispatch::stand_in::"))
        .build()
        .unwrap();
    assert_eq!(
        dispatcher.events(),
        ["kustomer.message.create", "kustomer.message.update"]
    );
    assert!(dispatcher.has_catch_all());
    let rt = runtime();
    for event in [
        "kustomer.message.create",
        "kustomer.message.update",
        "kustomer.user.create",
    ] {
        let body = SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1;
        rt.block_on(dispatcher.dispatch(body.as_bytes(), Some(event)))
            .unwrap();
    }
    assert_eq!(
        *REGISTERED.lock().unwrap(),
        [
            "create Some(\"sms\")",
            "update Some(\"608739298f7703963ebf6e9f\")",
            "any kustomer.user.create",
        ]
    );
}

/// A dispatcher built from `.handler` alone, beside `#[kustomer_webhook]`
/// functions whose events it leaves without a handler, says which (most
/// likely `.registered()` was meant too): their events would be
/// acknowledged unhandled, and Kustomer does not send a 2xx again.
#[test]
fn annotated_functions_left_out_of_a_dispatcher_are_said() {
    let said = kustomer_webhooks_tests::warnings(|| {
        Dispatcher::builder()
            .handler(registered_update)
            .build()
            .unwrap();
    });
    let about = |name: &str| said.iter().filter(|l| l.starts_with(name)).count();
    // The create handler and the catch-all are said; the update handler,
    // given, and its stand-in, whose event it takes, are not.
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(
        about(
            "dispatch::registered_create is a #[kustomer_webhook] function this dispatcher was built without (no `.registered()`): kustomer.message.create would be acknowledged without running it"
        ),
        1,
        "{said:?}"
    );
    assert_eq!(
        about(
            "dispatch::registered_catch_all is a #[kustomer_webhook] function this dispatcher was built without (no `.registered()`): the events no handler here takes would be acknowledged without running it"
        ),
        1,
        "{said:?}"
    );
    // Taken with `.registered_where`, or the events all taken: nothing said.
    let said = kustomer_webhooks_tests::warnings(|| {
        Dispatcher::builder()
            .registered_where(|path| path.starts_with("dispatch::stand_in::"))
            .build()
            .unwrap();
    });
    assert!(said.is_empty(), "{said:?}");
    let said = kustomer_webhooks_tests::warnings(|| {
        Dispatcher::builder()
            .handler(registered_update)
            .handler_for(&["kustomer.message.create"], registered_create)
            .handler(registered_catch_all)
            .build()
            .unwrap();
    });
    assert!(said.is_empty(), "{said:?}");
}

/// One function added twice, by `.registered_where` and by `.handler`, is
/// said to be one.
#[test]
fn a_function_added_twice_is_said_to_be() {
    let err = Dispatcher::builder()
        .registered_where(|path| path.starts_with("dispatch::stand_in::"))
        .handler(stand_in::on_message_update)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("it was added twice"), "{err}");
}

#[test]
fn the_attribute_knows_every_documented_event_name() {
    let in_macro: Vec<&str> = kustomer_webhooks_macros::__known_events!().to_vec();
    let mut in_runtime: Vec<&str> = EventName::KNOWN.to_vec();
    let mut sorted_macro = in_macro.clone();
    sorted_macro.sort_unstable();
    in_runtime.sort_unstable();
    assert_eq!(sorted_macro, in_runtime);
    // And the generator, which keeps their type names.
    let mut in_schema = kustomer_schema::KNOWN_EVENTS.to_vec();
    in_schema.sort_unstable();
    assert_eq!(in_schema, in_runtime);
}

// A handler sees its own event's drift, whether it takes one event type or
// the resource's envelope; the `Model` trait in scope changes nothing.
#[allow(unused_imports)]
use kustomer_webhooks::Model as _;

async fn update_drift(e: CustomerUpdate, s: State<Seen>) {
    let drift: Vec<String> = e.drift().iter().map(ToString::to_string).collect();
    note(&s, format!("update {drift:?}"));
}
async fn envelope_drift(e: CustomerEvent, s: State<Seen>) {
    let drift: Vec<String> = e.drift().iter().map(ToString::to_string).collect();
    note(&s, format!("envelope {drift:?}"));
}

#[test]
fn a_handler_reads_the_drift_of_its_event() {
    let seen = Seen::default();
    let dispatcher = Dispatcher::with_state(seen.clone())
        .handler(update_drift)
        .handler_for(&["kustomer.customer.create"], envelope_drift)
        .build()
        .unwrap();
    let rt = runtime();
    for event in ["kustomer.customer.update", "kustomer.customer.create"] {
        let body = SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1;
        let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
        // Clean first, then with a rev sent as a string.
        rt.block_on(dispatcher.dispatch(body.as_bytes(), Some(event)))
            .unwrap();
        v["data"]["attributes"]["rev"] = "7".into();
        let drifted = serde_json::to_vec(&v).unwrap();
        rt.block_on(dispatcher.dispatch(&drifted, Some(event)))
            .unwrap();
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "update []",
            "update [\"/data/attributes/rev: expected integer, found string\"]",
            "envelope []",
            "envelope [\"/data/attributes/rev: expected integer, found string\"]",
        ]
    );
}

#[test]
fn a_handler_that_panics_before_returning_its_future_comes_back_as_a_value() {
    #[allow(unreachable_code)]
    let no_state = |_: TeamCreate| -> std::future::Ready<()> {
        panic!("boom before the future");
        std::future::ready(())
    };
    #[allow(unreachable_code)]
    let with_state = |_: TeamUpdate, _: State<u8>| -> std::future::Ready<()> {
        panic!("boom before the future, with state");
        std::future::ready(())
    };
    let dispatcher = Dispatcher::with_state(7u8)
        .handler(no_state)
        .handler(with_state)
        .handler(|_: UserUpdate, _: State<u8>| async {})
        .build()
        .unwrap();
    runtime().block_on(async {
        for (event, message) in [
            ("kustomer.team.create", "boom before the future"),
            ("kustomer.team.update", "boom before the future, with state"),
        ] {
            let body = SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1;
            let err = dispatcher
                .dispatch(body.as_bytes(), None)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, DispatchError::Panicked { message: m, .. } if m == message),
                "{err}"
            );
        }
        let body = SEED_SAMPLES
            .iter()
            .find(|(e, _)| *e == "kustomer.user.update")
            .unwrap()
            .1;
        let ok = dispatcher.dispatch(body.as_bytes(), None).await.unwrap();
        assert!(matches!(ok, Dispatched::Handled { .. }));
    });
}
