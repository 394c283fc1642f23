//! Handlers, and the dispatcher that routes each event to its handler.
//!
//! A handler is a function taking one event, and optionally the
//! application's shared state:
//!
//! ```
//! use kustomer_webhooks::{CustomerUpdate, State};
//!
//! struct App { name: &'static str }
//!
//! async fn on_update(event: CustomerUpdate) {
//!     println!("customer {:?} updated", event.data.id);
//! }
//!
//! fn on_update_blocking(event: CustomerUpdate, app: State<std::sync::Arc<App>>) -> Result<(), std::io::Error> {
//!     println!("{} saw rev {:?}", app.name, event.data.attributes.rev);
//!     Ok(())
//! }
//! # let _ = (on_update, on_update_blocking);
//! ```
//!
//! Its parameter says which events it handles: one event type
//! (`CustomerUpdate`), an envelope (`CustomerEvent`: every customer event), or
//! [`OtherEvent`] (every event without a generated type, unknown names
//! included), or the whole set, [`AnyEvent`]: a catch-all handler, which
//! gets every event that no other handler takes (events to forward, or to
//! queue, as they come). It returns `()` or `Result<(), E>` for any error type `E` that
//! converts into a boxed error. Plain `fn`s run on tokio's blocking pool, so
//! they never block the async runtime; `async fn`s run on it. The blocking
//! pool costs a hand-off to another thread per event (in the receiver
//! benchmark, about 0.7 times the requests per second of `async` handlers), so a
//! handler that never blocks is best written `async`.
//!
//! Two handlers for one event are refused when the dispatcher is built
//! ([`BuildError::Duplicate`]): one delivery means one handler run, so that
//! the answer Kustomer gets (and whether it retries) is never ambiguous. A
//! catch-all does not count as a second: it runs only for the events with no
//! handler of their own (and no `OtherEvent` handler, for those without a
//! generated type). An event with no handler at all is acknowledged as
//! [`Dispatched::NoHandler`].
//!
//! ```
//! use kustomer_webhooks::{AnyEvent, CustomerUpdate, Dispatcher};
//!
//! async fn on_update(event: CustomerUpdate) { /* … */ }
//!
//! // Every other event, typed or not, unknown names included.
//! async fn forward(event: AnyEvent) -> Result<(), std::io::Error> {
//!     println!("{} {:?}", event.name(), event.envelope().event_id());
//!     Ok(())
//! }
//!
//! let dispatcher = Dispatcher::builder().handler(on_update).handler(forward).build().unwrap();
//! assert!(dispatcher.has_catch_all());
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::models::AnyEvent;
use crate::{EventName, Events, OtherEvent, ParseError, Parsed};

/// The error a handler returns, boxed.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;
type Call<S> = dyn Fn(S, &Arc<dyn Any + Send + Sync>) -> HandlerFuture + Send + Sync;

/// A type a handler can take as its event parameter.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Kustomer event type",
    label = "not an event type",
    note = "a handler takes an event such as `CustomerUpdate`, an envelope such as `CustomerEvent` (all of that resource's events), `OtherEvent` (events without a generated type), or `AnyEvent` (a catch-all: every event no other handler takes)"
)]
pub trait FromEvent: Sized + Send + 'static {
    /// The set of models the type belongs to: the bundled
    /// [`AnyEvent`](crate::AnyEvent), or one generated into your crate.
    /// A dispatcher over that set runs the handler.
    type Set: Events;
    /// The events with a generated type this type stands for: those its
    /// handler may be restricted to. Empty for [`OtherEvent`]; for the whole
    /// set ([`ANY`](Self::ANY)), its typed events (it takes the others as a
    /// catch-all).
    const EVENTS: &'static [&'static str];
    /// Whether this type takes the events without a generated type.
    const OTHER: bool = false;
    /// Whether this type is the whole set ([`AnyEvent`], or a generated
    /// set's own): its handler is a catch-all, taking every event no other
    /// handler takes, unless restricted to some of [`EVENTS`](Self::EVENTS)
    /// (the set's typed events) with [`Handler::only`].
    const ANY: bool = false;
    /// The event as this type, or the event back when it is another one.
    fn from_event(event: Self::Set) -> Result<Self, Self::Set>;
}

impl<S: Events> FromEvent for OtherEvent<S> {
    type Set = S;
    const EVENTS: &'static [&'static str] = &[];
    const OTHER: bool = true;
    fn from_event(event: S) -> Result<Self, S> {
        event.into_other()
    }
}

/// Whether `events` lists `name`: usable in constants, so a handler naming an
/// event its parameter type cannot hold fails to compile.
pub const fn lists(events: &[&str], name: &str) -> bool {
    let mut i = 0;
    while i < events.len() {
        let (a, b) = (events[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// What a handler may return: `()` or `Result<(), E>`.
#[diagnostic::on_unimplemented(
    message = "a Kustomer handler returns `()` or `Result<(), E>`, not `{Self}`",
    label = "this is what the handler returns",
    note = "`E` may be any error type that converts into `Box<dyn Error + Send + Sync>`"
)]
pub trait IntoHandlerResult {
    /// The outcome as a `Result`.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// The application's shared state, as a handler's second parameter; the
/// dispatcher hands each handler a clone of the state it was built with.
///
/// Beside axum's `State` in one module, import it under another name:
/// `use kustomer_webhooks::State as HookState;` (`#[kustomer_webhook]`
/// takes it under any name).
#[derive(Clone, Debug, Default)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why a handler run did not succeed.
enum Failure {
    Error(HandlerError),
    Panic(String),
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

pin_project_lite::pin_project! {
    /// An `async` handler's future, its output made a handler result and a
    /// panic while it is polled a [`Failure::Panic`].
    struct Run<F> {
        #[pin]
        handler: F,
    }
}

impl<F: Future<Output: IntoHandlerResult>> Future for Run<F> {
    type Output = Result<(), Failure>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handler = self.project().handler;
        match catch_unwind(AssertUnwindSafe(|| handler.poll(cx))) {
            Ok(Poll::Ready(output)) => {
                Poll::Ready(output.into_handler_result().map_err(Failure::Error))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Failure::Panic(panic_message(payload)))),
        }
    }
}

/// Runs an `async` handler: calls it (a panic in the call, which a closure
/// returning a future can have, is caught too) and boxes its future.
///
/// The handler's future is built here, where the event is first unboxed,
/// and written into a box allocated before it is built, rather than inside
/// another `async` block: the events are large (up to a few kilobytes), and
/// each layer between the parse and the handler's future copied the event
/// once more.
#[inline(always)]
fn run_async<Fut: Future<Output: IntoHandlerResult> + Send + 'static>(
    call: impl FnOnce() -> Fut,
) -> HandlerFuture {
    let slot = Box::<Run<Fut>>::new_uninit();
    match catch_unwind(AssertUnwindSafe(move || {
        Box::write(slot, Run { handler: call() })
    })) {
        Ok(run) => Box::into_pin(run),
        Err(payload) => failed(Failure::Panic(panic_message(payload))),
    }
}

/// A handler run that failed before it started.
#[cold]
#[inline(never)]
fn failed(failure: Failure) -> HandlerFuture {
    Box::pin(std::future::ready(Err(failure)))
}

/// A handler, ready for a dispatcher over the set of models `S`.
pub struct Handler<S = AnyEvent> {
    name: &'static str,
    /// The function's whole type name (`my_crate::main::{{closure}}::on_team`),
    /// alike whether `.handler` or `#[kustomer_webhook]` added it: what tells
    /// one function added twice; empty for a handler made otherwise.
    path: &'static str,
    events: &'static [&'static str],
    all_events: &'static [&'static str],
    other: bool,
    /// A catch-all: every event no other handler takes.
    any: bool,
    state: Option<(TypeId, &'static str)>,
    /// A plain `fn`, run on tokio's blocking pool: dropping its run does
    /// not stop it.
    on_a_thread: bool,
    call: Box<Call<S>>,
}

impl<S> fmt::Debug for Handler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("other", &self.other)
            .field("catch_all", &self.any)
            .field("state", &self.state.map(|s| s.1))
            .finish()
    }
}

impl<S: Events> Handler<S> {
    /// The handler's name, as errors and logs show it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The events it handles by name: none for an `OtherEvent` handler or a
    /// catch-all (see [`is_catch_all`](Self::is_catch_all)).
    pub fn events(&self) -> &'static [&'static str] {
        self.events
    }

    /// Whether the handler takes every event that no other handler takes:
    /// its parameter is the whole set ([`AnyEvent`]) and it was not
    /// restricted with [`only`](Self::only).
    pub fn is_catch_all(&self) -> bool {
        self.any
    }

    /// Restricts the handler to some of the events its parameter stands for
    /// (`only(&["kustomer.customer.update"])` on a `CustomerEvent` handler).
    /// An [`AnyEvent`] handler restricted so is no longer a catch-all: it
    /// handles the named events, which must have a generated type.
    pub fn only(mut self, events: &'static [&'static str]) -> Self {
        self.events = events;
        self.any = false;
        self
    }

    /// The function's whole type name.
    pub(crate) fn at(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }

    /// Whether `self` and `other` are one function (by its whole type name,
    /// or by name for handlers made otherwise).
    fn same_function_as(&self, other: &Handler<S>) -> bool {
        if self.path.is_empty() || other.path.is_empty() {
            same_function(self.name, other.name)
        } else {
            self.path == other.path
        }
    }

    fn new<E: FromEvent<Set = S>>(
        name: &'static str,
        state: Option<(TypeId, &'static str)>,
        call: Box<Call<S>>,
    ) -> Self {
        Handler {
            name,
            path: "",
            // A catch-all names no event: it takes those no other takes.
            events: if E::ANY { &[] } else { E::EVENTS },
            all_events: E::EVENTS,
            other: E::OTHER,
            any: E::ANY,
            state,
            on_a_thread: false,
            call,
        }
    }

    /// Marks a plain `fn`'s handler, which runs on the blocking pool.
    fn on_a_thread(mut self) -> Self {
        self.on_a_thread = true;
        self
    }
}

/// A function that can be a handler; `M` tells the four forms apart
/// (`async` or not, with or without [`State`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a Kustomer handler",
    note = "a handler is an `fn` or `async fn` taking an event (and optionally `State<T>`) and returning `()` or `Result<(), E>`",
    note = "the usual causes: an `async fn` whose future is not `Send` (a `std::sync::MutexGuard`, an `Rc` or a `RefCell` borrow held across an `.await`); a return type other than `()` or `Result<(), E>` with `E` an error type; a `State<T>` whose `T` is not `Clone + Send + Sync + 'static`; a first parameter that is not an event type",
    note = "put `#[kustomer_webhook]` on the function for an error that says which"
)]
pub trait IntoHandler<M>: Send + Sync + 'static {
    /// The set of models of the event the function takes.
    type Set: Events;
    /// Wraps the function.
    fn into_handler(self, name: &'static str) -> Handler<Self::Set>;
}

#[doc(hidden)]
pub struct AsyncFn<E, Fut>(PhantomData<fn(E) -> Fut>);
#[doc(hidden)]
pub struct AsyncFnWithState<E, T, Fut>(PhantomData<fn(E, T) -> Fut>);
#[doc(hidden)]
pub struct BlockingFn<E, R>(PhantomData<fn(E) -> R>);
#[doc(hidden)]
pub struct BlockingFnWithState<E, T, R>(PhantomData<fn(E, T) -> R>);

fn take<E: FromEvent>(event: E::Set, name: &'static str) -> Result<E, Failure> {
    E::from_event(event).map_err(|e| mismatch(name, &e))
}

/// A handler handed an event it does not take (a dispatcher bug).
#[cold]
#[inline(never)]
fn mismatch<S: Events>(name: &'static str, event: &S) -> Failure {
    Failure::Error(
        format!(
            "{name} was handed `{}`, which it does not handle",
            event.name()
        )
        .into(),
    )
}

fn state_of<T: Clone + Send + Sync + 'static>(
    state: &Arc<dyn Any + Send + Sync>,
) -> Result<T, Failure> {
    // Checked when the dispatcher was built; a mismatch here is a bug.
    state
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| Failure::Error("the dispatcher's state has another type".into()))
}

impl<F, E, Fut> IntoHandler<AsyncFn<E, Fut>> for F
where
    F: Fn(E) -> Fut + Send + Sync + 'static,
    E: FromEvent,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHandlerResult,
{
    type Set = E::Set;
    fn into_handler(self, name: &'static str) -> Handler<E::Set> {
        Handler::new::<E>(
            name,
            None,
            Box::new(move |event, _state| match E::from_event(event) {
                Ok(e) => run_async(|| self(e)),
                Err(other) => failed(mismatch(name, &other)),
            }),
        )
    }
}

impl<F, E, T, Fut> IntoHandler<AsyncFnWithState<E, T, Fut>> for F
where
    F: Fn(E, State<T>) -> Fut + Send + Sync + 'static,
    E: FromEvent,
    T: Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHandlerResult,
{
    type Set = E::Set;
    fn into_handler(self, name: &'static str) -> Handler<E::Set> {
        Handler::new::<E>(
            name,
            Some((TypeId::of::<T>(), std::any::type_name::<T>())),
            Box::new(move |event, state| {
                let s = match state_of::<T>(state) {
                    Ok(s) => s,
                    Err(failure) => return failed(failure),
                };
                match E::from_event(event) {
                    Ok(e) => run_async(|| self(e, State(s))),
                    Err(other) => failed(mismatch(name, &other)),
                }
            }),
        )
    }
}

/// Runs a plain `fn` handler on tokio's blocking pool; outside a tokio
/// runtime (a dispatcher polled by another executor), where there is no such
/// pool, on the caller's thread.
async fn blocking(
    work: impl FnOnce() -> Result<(), HandlerError> + Send + 'static,
) -> Result<(), Failure> {
    if tokio::runtime::Handle::try_current().is_err() {
        return match catch_unwind(AssertUnwindSafe(work)) {
            Ok(r) => r.map_err(Failure::Error),
            Err(payload) => Err(Failure::Panic(panic_message(payload))),
        };
    }
    // The delivery's span goes with the handler to the pool's thread, so
    // that its lines name the event as an `async` handler's do; and so does
    // the subscriber in use, when it is this thread's own (a test's
    // `with_default`) rather than the process's. Where no subscriber was
    // ever set, nothing is: setting one, even none, would end `tracing`'s
    // fallback to the `log` crate for the whole process.
    let span = tracing::Span::current();
    let subscriber =
        tracing::dispatcher::has_been_set().then(|| tracing::dispatcher::get_default(Clone::clone));
    let run = move || match subscriber {
        Some(subscriber) => tracing::dispatcher::with_default(&subscriber, || {
            span.in_scope(|| catch_unwind(AssertUnwindSafe(work)))
        }),
        None => catch_unwind(AssertUnwindSafe(work)),
    };
    match tokio::task::spawn_blocking(run).await {
        Ok(Ok(r)) => r.map_err(Failure::Error),
        Ok(Err(payload)) => Err(Failure::Panic(panic_message(payload))),
        Err(e) if e.is_panic() => Err(Failure::Panic(panic_message(e.into_panic()))),
        Err(e) => Err(Failure::Error(Box::new(e))),
    }
}

impl<F, E, R> IntoHandler<BlockingFn<E, R>> for F
where
    F: Fn(E) -> R + Send + Sync + 'static,
    E: FromEvent,
    R: IntoHandlerResult + 'static,
{
    type Set = E::Set;
    fn into_handler(self, name: &'static str) -> Handler<E::Set> {
        let f = Arc::new(self);
        Handler::new::<E>(
            name,
            None,
            Box::new(move |event, _state| {
                let f = Arc::clone(&f);
                Box::pin(async move {
                    let e = take::<E>(event, name)?;
                    blocking(move || f(e).into_handler_result()).await
                })
            }),
        )
        .on_a_thread()
    }
}

impl<F, E, T, R> IntoHandler<BlockingFnWithState<E, T, R>> for F
where
    F: Fn(E, State<T>) -> R + Send + Sync + 'static,
    E: FromEvent,
    T: Clone + Send + Sync + 'static,
    R: IntoHandlerResult + 'static,
{
    type Set = E::Set;
    fn into_handler(self, name: &'static str) -> Handler<E::Set> {
        let f = Arc::new(self);
        Handler::new::<E>(
            name,
            Some((TypeId::of::<T>(), std::any::type_name::<T>())),
            Box::new(move |event, state| {
                let f = Arc::clone(&f);
                let state = state_of::<T>(state);
                Box::pin(async move {
                    let e = take::<E>(event, name)?;
                    let s = state?;
                    blocking(move || f(e, State(s)).into_handler_result()).await
                })
            }),
        )
        .on_a_thread()
    }
}

/// A handler registered by `#[kustomer_webhook]`, found by
/// [`DispatcherBuilder::registered`] without any central list.
#[doc(hidden)]
pub struct Registration {
    /// Makes the handler.
    pub make: fn() -> Registered,
}

inventory::collect!(Registration);

/// A registered handler of any set of models.
#[doc(hidden)]
pub struct Registered {
    set: TypeId,
    left_out: LeftOut,
    handler: Box<dyn Any>,
}

impl Registered {
    /// Erases the handler's set, for the one registry of all sets.
    pub fn new<S: Events>(handler: Handler<S>) -> Self {
        Registered {
            set: TypeId::of::<S>(),
            left_out: LeftOut {
                name: handler.name,
                events: handler.events,
                catch_all: handler.any,
                other: handler.other,
            },
            handler: Box::new(handler),
        }
    }
}

/// Every handler of the set of models `S` registered with
/// `#[kustomer_webhook]` in the binary.
pub fn registered<S: Events>() -> impl Iterator<Item = Handler<S>> {
    inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.make)())
        .filter(|r| r.set == TypeId::of::<S>())
        .filter_map(|r| r.handler.downcast::<Handler<S>>().ok().map(|h| *h))
}

/// A `#[kustomer_webhook]` function of another set of models than a
/// dispatcher's, left out by [`DispatcherBuilder::registered`].
#[derive(Clone, Copy, Debug)]
struct LeftOut {
    name: &'static str,
    /// The events it takes by name.
    events: &'static [&'static str],
    /// A catch-all of its set.
    catch_all: bool,
    /// It takes its set's events without a generated type.
    other: bool,
}

/// The `#[kustomer_webhook]` functions whose path `keep` accepts: those of
/// the set `S`, and the others, left out.
fn registered_split<S: Events>(
    mut keep: impl FnMut(&str) -> bool,
) -> (Vec<Handler<S>>, Vec<LeftOut>) {
    let (mut own, mut others) = (Vec::new(), Vec::new());
    for r in inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.make)())
    {
        if !keep(r.left_out.name) {
            continue;
        }
        if r.set != TypeId::of::<S>() {
            others.push(r.left_out);
        } else if let Ok(handler) = r.handler.downcast::<Handler<S>>() {
            own.push(*handler);
        }
    }
    (own, others)
}

/// Why a dispatcher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two handlers for one event.
    #[error(
        "two handlers for {event}: {first} and {second} (one event has one handler){}",
        if same_function(first, second) {
            "; if these name one function, it was added twice (`.registered()` adds every #[kustomer_webhook] function already); if two of one name, each inside another function's body or in modules of one name, rename one"
        } else {
            "; merge them into one, or take the event in only one of them (an envelope handler can name the events it takes, with `events = [...]` on its #[kustomer_webhook] or with `.handler_for`); if `.registered()` took one that is not this dispatcher's (a test stand-in, another service's), leave it out with `.registered_where(|path| ...)`"
        }
    )]
    Duplicate {
        /// The event.
        event: String,
        /// The handler added first.
        first: &'static str,
        /// The handler added second.
        second: &'static str,
    },
    /// Two handlers for the events without a generated type.
    #[error(
        "two handlers for events without a generated type: {first} and {second} (one handler takes `OtherEvent`: merge them, matching on the event's name inside)"
    )]
    DuplicateOther {
        /// The handler added first.
        first: &'static str,
        /// The handler added second.
        second: &'static str,
    },
    /// Two catch-all handlers (both taking the whole set, `AnyEvent`).
    #[error(
        "two catch-all handlers (taking AnyEvent): {first} and {second} (restrict one to some events, with `events = [...]` on its #[kustomer_webhook] or with `.handler_for`, or merge them)"
    )]
    DuplicateCatchAll {
        /// The handler added first.
        first: &'static str,
        /// The handler added second.
        second: &'static str,
    },
    /// A handler restricted to an event its parameter does not stand for.
    #[error(
        "{handler} is restricted to {event}, which its parameter type does not hold{}",
        match suggestion {
            Some(known) => format!("; did you mean {known}?"),
            None => String::new(),
        }
    )]
    NotHandled {
        /// The handler.
        handler: &'static str,
        /// The event.
        event: String,
        /// The event of its parameter type spelled most like it, when one
        /// is close.
        suggestion: Option<&'static str>,
    },
    /// A handler taking [`OtherEvent`](crate::OtherEvent) restricted to some
    /// events: it takes every event without a generated type, and cannot
    /// be restricted.
    #[error(
        "{handler} takes OtherEvent, which gets every event without a generated type, and cannot be restricted to some"
    )]
    OtherRestricted {
        /// The handler.
        handler: &'static str,
    },
    /// `.registered()` found `#[kustomer_webhook]` functions, but every one
    /// takes events of another set of models than the dispatcher's, and no
    /// handler was added otherwise (the
    /// bundled models' events and a dispatcher of one's own models, or the
    /// other way round): a dispatcher with no handler would answer every
    /// delivery `no handler`, and Kustomer drop each one as delivered.
    #[error(
        "no #[kustomer_webhook] function takes events of this dispatcher's set of models, but \
         {} take events of another set ({}): build the dispatcher of their set (a models \
         module's `dispatcher()`, or `Dispatcher::builder()` for the bundled models), or have \
         them take this set's event types",
        handlers.len(),
        handlers.join(", ")
    )]
    OtherSet {
        /// The functions left out.
        handlers: Vec<&'static str>,
    },
    /// A handler restricted to no event at all (`handler_for(&[], f)`),
    /// which would never run.
    #[error(
        "{handler} is restricted to no event, so it would never run: name its events, or add it \
         with `.handler(…)` to take every event its parameter stands for"
    )]
    NoEvents {
        /// The handler.
        handler: &'static str,
    },
    /// A handler wants another state type than the dispatcher has.
    #[error(
        "{handler} takes State<{wants}>, but the dispatcher's state is {has}: build the \
         dispatcher with that state (`Dispatcher::with_state(…)`, or a models module's \
         `dispatcher_with_state(…)`), or leave the handler out (`.registered_where(…)`)"
    )]
    StateMismatch {
        /// The handler.
        handler: &'static str,
        /// The state type it takes.
        wants: &'static str,
        /// The dispatcher's state type.
        has: &'static str,
    },
}

/// Builds a [`Dispatcher`]: handlers added one by one, and/or every
/// `#[kustomer_webhook]` function in the binary.
///
/// `T` is the type of the shared state handlers may take as `State<T>`;
/// `S` is the set of models (the bundled [`AnyEvent`] by default).
pub struct DispatcherBuilder<T, S = AnyEvent> {
    state: T,
    handlers: Vec<Handler<S>>,
    /// `#[kustomer_webhook]` functions of other sets that `registered`
    /// left out.
    left_out: Vec<LeftOut>,
    /// Whether `registered` or `registered_where` was called.
    took_registered: bool,
}

impl<T: Send + Sync + 'static, S: Events> DispatcherBuilder<T, S> {
    /// A builder with the state `state`, for handlers of the set `S`. A
    /// generated models module has `dispatcher()` and
    /// `dispatcher_with_state(state)` calling this; for the bundled models,
    /// see [`Dispatcher::builder`] and [`Dispatcher::with_state`].
    pub fn new(state: T) -> Self {
        DispatcherBuilder {
            state,
            handlers: Vec::new(),
            left_out: Vec::new(),
            took_registered: false,
        }
    }

    /// Adds a handler function.
    pub fn handler<M>(mut self, f: impl IntoHandler<M, Set = S>) -> Self {
        let path = std::any::type_name_of_val(&f);
        self.handlers
            .push(f.into_handler(short_name(path)).at(path));
        self
    }

    /// Adds a handler function for some of the events its parameter stands
    /// for only.
    pub fn handler_for<M>(
        mut self,
        events: &'static [&'static str],
        f: impl IntoHandler<M, Set = S>,
    ) -> Self {
        let path = std::any::type_name_of_val(&f);
        self.handlers
            .push(f.into_handler(short_name(path)).at(path).only(events));
        self
    }

    /// Adds a prepared [`Handler`].
    pub fn with(mut self, handler: Handler<S>) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Adds every function marked `#[kustomer_webhook]` linked into the binary.
    ///
    /// Rust links a dependency only when the code names it: the handlers of
    /// a library crate that the binary never mentions are not linked, so not
    /// found. Name such a crate somewhere (`use my_handlers as _;`), or add
    /// its handlers one by one with [`handler`](Self::handler), and compare
    /// [`Dispatcher::events`] (plus the events a catch-all should see, with
    /// [`Dispatcher::has_catch_all`]) with the events the app definition
    /// subscribes to.
    ///
    /// It takes the functions whose parameter is an event of the
    /// dispatcher's set of models (`S`: the bundled models, or a models
    /// module of one's own) and leaves out the others: when the dispatcher
    /// would then have no handler at all, [`build`](Self::build) fails
    /// ([`BuildError::OtherSet`]); otherwise it logs a warning for each left
    /// out whose events no handler here takes (by name, as the catch-all,
    /// or as the `OtherEvent` handler).
    pub fn registered(self) -> Self {
        self.registered_where(|_| true)
    }

    /// Adds the functions marked `#[kustomer_webhook]` whose path (the
    /// crate, its modules, the function: `my_service::handlers::on_update`;
    /// a function declared inside another function's body is named by its
    /// module and its own name, the enclosing function left out)
    /// `keep` accepts: one service's handlers in a binary that links
    /// others, or a test's own, without the stand-ins and the handlers
    /// with other state that [`registered`](Self::registered) would add too.
    ///
    /// ```
    /// use kustomer_webhooks::Dispatcher;
    ///
    /// mod handlers {
    ///     use kustomer_webhooks::{TeamCreate, kustomer_webhook};
    ///
    ///     #[kustomer_webhook]
    ///     pub async fn on_team(event: TeamCreate) {}
    /// }
    ///
    /// let dispatcher = Dispatcher::builder()
    ///     .registered_where(|path| path.contains("::handlers::"))
    ///     .build()?;
    /// assert_eq!(dispatcher.events(), ["kustomer.team.create"]);
    /// # Ok::<(), kustomer_webhooks::BuildError>(())
    /// ```
    pub fn registered_where(mut self, keep: impl FnMut(&str) -> bool) -> Self {
        let (own, others) = registered_split(keep);
        self.handlers.extend(own);
        self.left_out.extend(others);
        self.took_registered = true;
        self
    }

    /// Checks the handlers and builds the dispatcher.
    pub fn build(self) -> Result<Dispatcher<S>, BuildError> {
        if self.handlers.is_empty() && !self.left_out.is_empty() {
            return Err(BuildError::OtherSet {
                handlers: self.left_out.iter().map(|l| l.name).collect(),
            });
        }
        let mut by_event: HashMap<EventName, usize> = HashMap::new();
        let mut other: Option<usize> = None;
        let mut catch_all: Option<usize> = None;
        let has = std::any::type_name::<T>();
        for (i, h) in self.handlers.iter().enumerate() {
            if let Some((id, wants)) = h.state
                && id != TypeId::of::<T>()
            {
                return Err(BuildError::StateMismatch {
                    handler: h.name,
                    wants,
                    has,
                });
            }
            if h.events.is_empty() && !h.other && !h.any {
                return Err(BuildError::NoEvents { handler: h.name });
            }
            if h.other && !h.events.is_empty() {
                return Err(BuildError::OtherRestricted { handler: h.name });
            }
            for event in h.events {
                if !h.all_events.contains(event) {
                    return Err(BuildError::NotHandled {
                        handler: h.name,
                        event: (*event).to_owned(),
                        suggestion: closest(event, h.all_events),
                    });
                }
                if let Some(&first) = by_event.get(&EventName::from(*event)) {
                    // Listed twice by one handler: once is enough.
                    if first == i {
                        continue;
                    }
                    // One function added twice: named alike, so that the
                    // error says so.
                    let second = if h.same_function_as(&self.handlers[first]) {
                        self.handlers[first].name
                    } else {
                        h.name
                    };
                    return Err(BuildError::Duplicate {
                        event: (*event).to_owned(),
                        first: self.handlers[first].name,
                        second,
                    });
                }
                by_event.insert(EventName::from(*event), i);
            }
            if h.other {
                if let Some(first) = other {
                    return Err(BuildError::DuplicateOther {
                        first: self.handlers[first].name,
                        second: h.name,
                    });
                }
                other = Some(i);
            }
            if h.any {
                if let Some(first) = catch_all {
                    return Err(BuildError::DuplicateCatchAll {
                        first: self.handlers[first].name,
                        second: h.name,
                    });
                }
                catch_all = Some(i);
            }
        }
        // Functions of another set whose events have no handler here: a
        // handler written against the other models, which would not run.
        // Functions of another set that would have run on events no
        // handler here takes: written against the other models, they go
        // quiet. An event is taken here by name, by the catch-all, or (one
        // this set has no type for) by its `OtherEvent` handler.
        let taken = |event: &str| {
            by_event.contains_key(&EventName::from(event))
                || catch_all.is_some()
                || (other.is_some() && !S::TYPED.contains(&event))
        };
        for left in &self.left_out {
            let unhandled: Vec<&str> = left.events.iter().copied().filter(|e| !taken(e)).collect();
            let name = left.name;
            if !unhandled.is_empty() {
                tracing::warn!(
                    handler = name,
                    "{name} takes events of another set of models than this dispatcher's, and is \
                     left out: {} get no handler here",
                    unhandled.join(", ")
                );
            } else if left.catch_all && catch_all.is_none() {
                tracing::warn!(
                    handler = name,
                    "{name} is a catch-all of another set of models than this dispatcher's, and \
                     is left out: the events no handler here takes are acknowledged unhandled"
                );
            } else if left.other && other.is_none() && catch_all.is_none() {
                tracing::warn!(
                    handler = name,
                    "{name} takes the events without a generated type of another set of models \
                     than this dispatcher's, and is left out: here they are acknowledged \
                     unhandled"
                );
            }
        }
        // Built from `.handler` alone, beside `#[kustomer_webhook]`
        // functions of this set that would have taken events no handler
        // here takes: most likely `.registered()` was meant too. Their
        // events would be acknowledged unhandled, and Kustomer does not
        // send a 2xx again.
        if !self.took_registered && !self.handlers.is_empty() {
            // Not one taking another state (another service's, which
            // `.registered()` would refuse), nor one added here already
            // (for some of its events, with `.handler_for`).
            let mine = |left: &Handler<S>| {
                left.state.is_none_or(|(id, _)| id == TypeId::of::<T>())
                    && !self.handlers.iter().any(|h| h.same_function_as(left))
            };
            for left in registered::<S>().filter(mine) {
                let unhandled: Vec<&str> =
                    left.events.iter().copied().filter(|e| !taken(e)).collect();
                let name = left.name;
                let what = if !unhandled.is_empty() {
                    unhandled.join(", ")
                } else if left.any && catch_all.is_none() {
                    "the events no handler here takes".to_owned()
                } else if left.other && other.is_none() && catch_all.is_none() {
                    "the events without a generated type".to_owned()
                } else {
                    continue;
                };
                tracing::warn!(
                    handler = name,
                    "{name} is a #[kustomer_webhook] function this dispatcher was built without \
                     (no `.registered()`): {what} would be acknowledged without running it"
                );
            }
        }
        Ok(Dispatcher {
            state: Arc::new(self.state),
            any_on_a_thread: self.handlers.iter().any(|h| h.on_a_thread),
            handlers: self.handlers,
            by_event,
            other,
            catch_all,
        })
    }
}

/// The name in `known` spelled most like `name`, when it is at most three
/// letters away (a typo, not another event).
fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = (above + 1)
                    .min(row[j] + 1)
                    .min(diagonal + usize::from(ca != *cb));
                diagonal = above;
            }
        }
        row[b.len()]
    }
    known
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Whether two handlers' names are likely one function's: the same, or one
/// the end of the other's path (a `#[kustomer_webhook]` function is named
/// by its whole path, `my_crate::handlers::on_team`, one given to
/// `.handler` by its last two segments, `handlers::on_team`).
fn same_function(first: &str, second: &str) -> bool {
    let ends = |long: &str, short: &str| {
        long.strip_suffix(short)
            .is_some_and(|head| head.ends_with("::"))
    };
    first == second || ends(first, second) || ends(second, first)
}

fn short_name(type_name: &'static str) -> &'static str {
    // `my_crate::handlers::on_update` → `handlers::on_update`; the path of a
    // generic function is shortened before its parameters, which are kept:
    // `my_crate::handlers::on<my_crate::Event>` → `handlers::on<my_crate::Event>`.
    let path = &type_name[..type_name.find('<').unwrap_or(type_name.len())];
    // A closure within closures (one in an `async` block, as in
    // `#[tokio::main]`) is named by the function around them:
    // `my_crate::main::{{closure}}::{{closure}}` → `main::{{closure}}`.
    const CLOSURE: &str = "::{{closure}}";
    let mut function = path;
    while let Some(outer) = function.strip_suffix(CLOSURE) {
        function = outer;
    }
    if function.len() < path.len() {
        let start = function.rfind("::").map_or(0, |i| i + 2);
        return &type_name[start..function.len() + CLOSURE.len()];
    }
    // A function declared in a closure or an `async` block (a handler
    // written inside `#[tokio::main] async fn main` or a test) is named as
    // `#[kustomer_webhook]` names it, by its module and its own name, the
    // function around it left out: `my_crate::main::{{closure}}::on_team` →
    // `my_crate::on_team`.
    let segments: Vec<&str> = path.split("::").collect();
    if let Some(first) = segments.iter().position(|s| *s == "{{closure}}")
        && let Some(own) = segments.last()
    {
        // The module: what comes before the function the first closure is in.
        let mut kept: Vec<&str> = segments[..first.saturating_sub(1)].to_vec();
        kept.push(own);
        let kept = &kept[kept.len().saturating_sub(2)..];
        return interned(kept.join("::") + &type_name[path.len()..]);
    }
    match path.rmatch_indices("::").nth(1) {
        Some((i, _)) => &type_name[i + 2..],
        None => type_name,
    }
}

/// `name`, kept for the rest of the program: once per distinct name, and
/// handler names are as many as a program's handler functions.
fn interned(name: String) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match names.get(name.as_str()) {
        Some(kept) => kept,
        None => {
            let kept: &'static str = Box::leak(name.into_boxed_str());
            names.insert(kept);
            kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DispatchError, HandlerError, same_function, short_name};

    async fn on_team(_: crate::TeamCreate) {}

    /// Functions of another set of models than the dispatcher's, left out
    /// by `.registered()`: with none of its own, no dispatcher is built; with
    /// some, a warning names those whose events get no handler here.
    /// A handler's error is said with its causes, each once.
    #[test]
    fn a_handler_error_is_said_with_its_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("saving customer")]
        struct Saving(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("writing: {0}")]
        struct Writing(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("{0} (saving)")]
        struct Around(#[source] std::io::Error);
        let said = |error: HandlerError| {
            DispatchError::Handler {
                event: "kustomer.customer.update".into(),
                handler: "on_customer",
                error,
            }
            .to_string()
        };
        let refused = || std::io::Error::other("connection refused");
        assert_eq!(
            said(Box::new(Saving(refused()))),
            "on_customer failed on kustomer.customer.update: saving customer: connection refused"
        );
        // A cause its error already says is not said again, wherever it
        // says it.
        assert_eq!(
            said(Box::new(Writing(refused()))),
            "on_customer failed on kustomer.customer.update: writing: connection refused"
        );
        assert_eq!(
            said(Box::new(Around(refused()))),
            "on_customer failed on kustomer.customer.update: connection refused (saving)"
        );
        assert_eq!(
            said("plain".into()),
            "on_customer failed on kustomer.customer.update: plain"
        );
    }

    #[test]
    fn handlers_of_another_set_fail_the_build_or_are_warned_of() {
        let other = super::LeftOut {
            name: "my_service::on_update",
            events: &["kustomer.customer.update", "kustomer.team.create"],
            catch_all: false,
            other: false,
        };
        let mut builder = crate::Dispatcher::builder();
        builder.left_out.push(other);
        let err = builder.build().unwrap_err();
        assert_eq!(
            err,
            super::BuildError::OtherSet {
                handlers: vec!["my_service::on_update"]
            }
        );
        let logs = crate::receiver::tests::logged(|| {
            let mut builder = crate::Dispatcher::builder().handler(on_team);
            builder.left_out.push(other);
            let dispatcher = builder.build().unwrap();
            assert_eq!(dispatcher.events(), ["kustomer.team.create"]);
        });
        assert_eq!(
            logs,
            [
                "WARN my_service::on_update takes events of another set of models than this \
              dispatcher's, and is left out: kustomer.customer.update get no handler here"
            ]
        );
        // A catch-all and an `OtherEvent` handler of the other set are said
        // too, unless this dispatcher has its own.
        let all = super::LeftOut {
            name: "my_service::audit_all",
            events: &[],
            catch_all: true,
            other: false,
        };
        let rest = super::LeftOut {
            name: "my_service::rest",
            events: &[],
            catch_all: false,
            other: true,
        };
        let logs = crate::receiver::tests::logged(|| {
            let mut builder = crate::Dispatcher::builder().handler(on_team);
            builder.left_out.extend([all, rest]);
            builder.build().unwrap();
        });
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(
            logs[0].starts_with("WARN my_service::audit_all is a catch-all"),
            "{logs:?}"
        );
        assert!(
            logs[1].starts_with("WARN my_service::rest takes the events without"),
            "{logs:?}"
        );
        let logs = crate::receiver::tests::logged(|| {
            let mut builder = crate::Dispatcher::builder()
                .handler(on_team)
                .handler(on_any)
                .handler(on_other);
            builder.left_out.extend([all, rest, other]);
            builder.build().unwrap();
        });
        assert_eq!(logs, Vec::<String>::new());
    }

    async fn on_any(_: crate::AnyEvent) {}
    async fn on_other(_: crate::OtherEvent) {}

    #[test]
    fn a_plain_fn_handler_runs_outside_a_tokio_runtime() {
        use super::{DispatchError, Dispatched, Dispatcher};
        fn on_team(_: crate::TeamCreate) -> Result<(), std::io::Error> {
            Ok(())
        }
        fn on_team_panics(_: crate::TeamCreate) {
            panic!("bad team");
        }
        // Polled by hand, as another executor would: no tokio runtime here.
        fn poll_once<F: Future>(f: F) -> F::Output {
            let mut f = std::pin::pin!(f);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match f.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(out) => out,
                std::task::Poll::Pending => panic!("the handler waited"),
            }
        }
        let body = br#"{"id": "e1", "name": "kustomer.team.create", "data": {"type": "team", "id": "t1", "attributes": {}}}"#;
        let dispatcher = Dispatcher::builder().handler(on_team).build().unwrap();
        let done = poll_once(dispatcher.dispatch(body, None));
        assert!(matches!(done, Ok(Dispatched::Handled { .. })), "{done:?}");
        let dispatcher = Dispatcher::builder()
            .handler(on_team_panics)
            .build()
            .unwrap();
        let panicked = poll_once(dispatcher.dispatch(body, None));
        assert!(
            matches!(&panicked, Err(DispatchError::Panicked { message, .. }) if message.contains("bad team")),
            "{panicked:?}"
        );
    }

    #[test]
    fn one_function_named_by_its_path_and_by_its_last_segments_is_one() {
        let name_of = |first, second| {
            super::BuildError::Duplicate {
                event: "kustomer.team.create".to_owned(),
                first,
                second,
            }
            .to_string()
        };
        // As `#[kustomer_webhook]` and `.handler` name one function.
        assert!(
            name_of("my_crate::handlers::on_team", "handlers::on_team")
                .contains("if these name one function, it was added twice")
        );
        assert!(same_function(
            "handlers::on_team",
            "my_crate::handlers::on_team"
        ));
        assert!(same_function("on_team", "on_team"));
        // Two functions.
        assert!(!same_function("handlers::on_team", "other::on_team"));
        assert!(!same_function("my_crate::handlers::on_team", "s::on_team"));
        assert!(!same_function("handlers::xon_team", "on_team"));
        assert!(!name_of("a::on_team", "b::on_team").contains("twice"));
        assert!(name_of("a::on_team", "b::on_team").contains("merge them into one"));
    }

    #[test]
    fn handler_names_keep_their_module_and_generic_parameters() {
        for (full, short) in [
            ("my_crate::handlers::on_update", "handlers::on_update"),
            ("handlers::on_update", "handlers::on_update"),
            ("on_update", "on_update"),
            (
                "my_crate::serve::print<my_crate::models::team::TeamEvent>",
                "serve::print<my_crate::models::team::TeamEvent>",
            ),
            ("my_crate::main::{{closure}}", "main::{{closure}}"),
            (
                "my_crate::main::{{closure}}::{{closure}}",
                "main::{{closure}}",
            ),
            (
                "main::{{closure}}::{{closure}}::{{closure}}",
                "main::{{closure}}",
            ),
            ("{{closure}}", "{{closure}}"),
            // A function declared inside a closure or an `async` block: by
            // its module, as `#[kustomer_webhook]` names it.
            ("my_crate::main::{{closure}}::on_team", "my_crate::on_team"),
            (
                "my_crate::tests::it_works::{{closure}}::{{closure}}::on_team",
                "tests::on_team",
            ),
            (
                "my_crate::main::{{closure}}::on<my_crate::Event>",
                "my_crate::on<my_crate::Event>",
            ),
            ("main::{{closure}}::on_team", "on_team"),
            ("{{closure}}::on_team", "on_team"),
            (
                "my_crate::main::{{closure}}::on_team::{{closure}}",
                "on_team::{{closure}}",
            ),
        ] {
            assert_eq!(short_name(full), short, "{full}");
        }
    }
}

/// What became of a delivery that was not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatched {
    /// The handler ran and succeeded.
    Handled {
        /// The event.
        event: EventName,
        /// The handler.
        handler: &'static str,
    },
    /// No handler is registered for the event: acknowledged, nothing ran.
    NoHandler {
        /// The event.
        event: EventName,
    },
}

/// Why a delivery was not handled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The body is not an event (see [`ParseError`]).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The handler returned an error. Its text ends with the error's
    /// causes (`saving customer …: connection refused`), each said once.
    #[error("{handler} failed on {event}: {}", with_causes(&**.error))]
    Handler {
        /// The event.
        event: EventName,
        /// The handler.
        handler: &'static str,
        /// Its error.
        error: HandlerError,
    },
    /// The handler panicked; the panic was caught (where panics unwind, as
    /// they do by default: under `panic = "abort"`, the process ends).
    #[error("{handler} panicked on {event}: {message}")]
    Panicked {
        /// The event.
        event: EventName,
        /// The handler.
        handler: &'static str,
        /// The panic's message.
        message: String,
    },
}

/// An error's message followed by those of its causes that add to it,
/// `: `-separated (`saving customer: connection refused`): a cause whose
/// text the message already holds (an error that writes its source in its
/// own message) is not said again.
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Routes each event to its handler, by name, in constant time.
///
/// ```
/// use kustomer_webhooks::{Dispatched, Dispatcher, TeamCreate};
///
/// async fn on_team(event: TeamCreate) -> Result<(), std::io::Error> {
///     assert_eq!(event.data.attributes.name.as_deref(), Some("Der Prozess"));
///     Ok(())
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dispatcher = Dispatcher::builder().handler(on_team).build()?;
/// let body = br#"{"name": "kustomer.team.create", "data": {"type": "team", "attributes": {"name": "Der Prozess"}}}"#;
/// let outcome = dispatcher.dispatch(body, Some("kustomer.team.create")).await?;
/// assert!(matches!(outcome, Dispatched::Handled { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// `S` is the set of models events are parsed with: the bundled
/// [`AnyEvent`] by default; see [`Events`] for models generated into your
/// crate.
pub struct Dispatcher<S = AnyEvent> {
    state: Arc<dyn Any + Send + Sync>,
    handlers: Vec<Handler<S>>,
    by_event: HashMap<EventName, usize>,
    other: Option<usize>,
    /// The handler taking the whole set, for the events no other takes.
    catch_all: Option<usize>,
    /// Whether any handler is a plain `fn`.
    any_on_a_thread: bool,
}

impl<S> fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handlers", &self.handlers)
            .finish()
    }
}

impl Dispatcher {
    /// A builder for a dispatcher without shared state.
    pub fn builder() -> DispatcherBuilder<()> {
        DispatcherBuilder::new(())
    }

    /// A builder for a dispatcher whose handlers may take `State<T>`: each
    /// is handed a clone of `state` (an `Arc`, a connection pool).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use kustomer_webhooks::{Dispatched, Dispatcher, State, TeamCreate};
    ///
    /// async fn on_team(_: TeamCreate, teams: State<Arc<AtomicUsize>>) {
    ///     teams.fetch_add(1, Ordering::Relaxed);
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let teams = Arc::new(AtomicUsize::new(0));
    /// let dispatcher = Dispatcher::with_state(Arc::clone(&teams)).handler(on_team).build()?;
    /// let body = br#"{"id": "6a1f00000000000000000001", "name": "kustomer.team.create",
    ///     "data": {"type": "team", "id": "6a1f00000000000000000002", "attributes": {"name": "Support"}}}"#;
    /// let dispatched = dispatcher.dispatch(body, None).await?;
    /// assert!(matches!(dispatched, Dispatched::Handled { .. }));
    /// assert_eq!(teams.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn with_state<T: Send + Sync + 'static>(state: T) -> DispatcherBuilder<T> {
        DispatcherBuilder::new(state)
    }
}

impl<S: Events> Dispatcher<S> {
    /// Whether the dispatcher has no handler at all, so that every event
    /// would be acknowledged as [`Dispatched::NoHandler`]: usually a
    /// builder that was not given `.registered()` or any `.handler(…)`.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// The events that have a handler of their own, in name order (what an
    /// app definition's `events` should list). A catch-all's events are not
    /// among them: it takes whatever Kustomer posts, so subscribe to the
    /// events it should see ([`has_catch_all`](Self::has_catch_all)).
    pub fn events(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_event.keys().map(EventName::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Whether a catch-all handler (taking [`AnyEvent`]) gets the events
    /// that no other handler takes.
    pub fn has_catch_all(&self) -> bool {
        self.catch_all.is_some()
    }

    /// Parses a body and runs its handler. `event_header` is the
    /// `X-Kustomer-Webhook-Event` header, when there is one: it must agree
    /// with the body's `name`.
    pub async fn dispatch(
        &self,
        body: &[u8],
        event_header: Option<&str>,
    ) -> Result<Dispatched, DispatchError> {
        let parsed = match event_header {
            Some(name) => Parsed::<S>::parse_as(body, name)?,
            None => Parsed::<S>::parse(body)?,
        };
        self.dispatch_event(parsed.event).await
    }

    /// Runs the handler of an event already parsed.
    pub async fn dispatch_event(&self, event: S) -> Result<Dispatched, DispatchError> {
        let name = event.name();
        let Some(index) = self.handler_of(&event, &name) else {
            return Ok(Dispatched::NoHandler { event: name });
        };
        let handler = &self.handlers[index];
        match (handler.call)(event, &self.state).await {
            Ok(()) => Ok(Dispatched::Handled {
                event: name,
                handler: handler.name,
            }),
            Err(Failure::Error(source)) => Err(DispatchError::Handler {
                event: name,
                handler: handler.name,
                error: source,
            }),
            Err(Failure::Panic(message)) => Err(DispatchError::Panicked {
                event: name,
                handler: handler.name,
                message,
            }),
        }
    }

    /// The index of the handler of `event` (named `name`), if any.
    #[inline]
    fn handler_of(&self, event: &S, name: &EventName) -> Option<usize> {
        let own = if event.is_typed() {
            self.by_event.get(name).copied()
        } else {
            self.other
        };
        own.or(self.catch_all)
    }

    /// Whether `event`'s handler is a plain `fn`, which runs on tokio's
    /// blocking pool: a time limit cannot stop it, so the receiver settles
    /// the event only once it has ended.
    pub(crate) fn runs_on_a_thread(&self, event: &S) -> bool {
        self.any_on_a_thread
            && self
                .handler_of(event, &event.name())
                .is_some_and(|i| self.handlers[i].on_a_thread)
    }
}
