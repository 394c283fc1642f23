//! An org's own Kustomer models, end to end.
//!
//! This org gives its customers custom attributes Kustomer's published
//! samples do not have (`loyaltyTierStr`, `vipBool`, `renewalAt`,
//! `accountManagerId`) and its conversations others (`orderNumberStr`,
//! `refundRequestedBool`). With the bundled models they would only be
//! reachable as raw JSON in `extra`; here they are typed fields:
//!
//! 1. **Capture**: the service ran with capture on
//!    (`Receiver::with_capture`, or `kustomer-webhooks serve --capture
//!    DIR`), which saved deliveries as `captured/<event id>.json`.
//! 2. **Regenerate** (from the repository root):
//!
//!    ```sh
//!    cargo run -- regenerate --samples examples/org-models/captured --out examples/org-models/src/models
//!    ```
//!
//!    which infers from the captures merged with Kustomer's published
//!    samples, prints what changed against the models already there, and
//!    writes [`models`].
//! 3. **Handle**: [`on_customer_update`] takes the org's
//!    `models::CustomerUpdate` and reads `custom.loyalty_tier_str` (an
//!    `Option<Str>`), `custom.vip_bool` (`Option<bool>`) and
//!    `custom.renewal_at` (`Option<DateTime>`).
//! 4. **Serve**: [`receiver`] builds the runtime's receiver over these
//!    models (`models::dispatcher_with_state`), and `tests/end_to_end.rs`
//!    delivers a signed payload over HTTP and sees the typed values.
//!
//! `cargo run -- check --samples examples/org-models/captured --models
//! examples/org-models/src/models` fails when the captures and the models
//! disagree; CI runs it.

// The generated models hold to the lints a careful crate turns on.
#![deny(unused_qualifications, missing_debug_implementations)]

use std::sync::{Arc, Mutex};

use kustomer_webhooks::receiver::Receiver;
use kustomer_webhooks::verify::Verifier;
use kustomer_webhooks::{BuildError, DateTime, State, kustomer_webhook};

#[rustfmt::skip]
pub mod models;

/// What the handlers learned about a customer (a stand-in for the org's CRM).
#[derive(Clone, Debug, PartialEq)]
pub struct Loyalty {
    /// The customer's id.
    pub customer: String,
    /// `custom.loyaltyTierStr`.
    pub tier: String,
    /// `custom.vipBool`.
    pub vip: bool,
    /// `custom.renewalAt`.
    pub renewal: Option<DateTime>,
}

/// The handlers' shared state.
#[derive(Debug, Default)]
pub struct Crm {
    /// Every loyalty update seen, in order.
    pub loyalty: Mutex<Vec<Loyalty>>,
    /// Order numbers of conversations that asked for a refund.
    pub refunds: Mutex<Vec<String>>,
    /// Names of the events that had no model.
    pub other: Mutex<Vec<String>>,
}

/// A list of the [`Crm`] that a handler panicked while changing: the
/// delivery fails (500), so that Kustomer sends it again, rather than being
/// acknowledged with nothing recorded.
#[derive(Debug)]
pub struct Unusable(&'static str);

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the CRM's {} list is unusable: a handler panicked while changing it",
            self.0
        )
    }
}

impl std::error::Error for Unusable {}

/// A customer update: the org's typed custom attributes.
#[kustomer_webhook]
pub async fn on_customer_update(
    event: models::CustomerUpdate,
    crm: State<Arc<Crm>>,
) -> Result<(), Unusable> {
    let custom = &event.data.attributes.custom;
    if let Some(tier) = &custom.loyalty_tier_str {
        let entry = Loyalty {
            customer: event.data.id.as_deref().unwrap_or_default().to_owned(),
            tier: tier.to_string(),
            vip: custom.vip_bool.unwrap_or(false),
            renewal: custom.renewal_at.clone(),
        };
        let mut loyalty = crm.loyalty.lock().map_err(|_| Unusable("loyalty"))?;
        loyalty.push(entry);
    }
    Ok(())
}

/// A new conversation: refunds asked for, by order number.
#[kustomer_webhook]
pub fn on_conversation_create(
    event: models::ConversationCreate,
    crm: State<Arc<Crm>>,
) -> Result<(), Unusable> {
    // `custom` is null on conversations the org never customised.
    let Some(custom) = &event.data.attributes.custom else {
        return Ok(());
    };
    if custom.refund_requested_bool == Some(true)
        && let Some(order) = &custom.order_number_str
    {
        let mut refunds = crm.refunds.lock().map_err(|_| Unusable("refunds"))?;
        refunds.push(order.to_string());
    }
    Ok(())
}

/// Every event without a generated type in this set of models: the
/// `OtherEvent` of [`models`].
#[kustomer_webhook]
pub async fn on_other(event: models::OtherEvent, crm: State<Arc<Crm>>) -> Result<(), Unusable> {
    let mut other = crm.other.lock().map_err(|_| Unusable("other"))?;
    other.push(event.name.to_string());
    Ok(())
}

/// The receiver of this org's deliveries: every `#[kustomer_webhook]`
/// handler of [`models`] in the binary, verified with `token`.
pub fn receiver(token: &str, crm: Arc<Crm>) -> Result<Receiver<models::AnyEvent>, BuildError> {
    let dispatcher = models::dispatcher_with_state(crm).registered().build()?;
    Ok(Receiver::new(dispatcher, Verifier::new(token)))
}
