//! The ten sample payloads published with Kustomer's outbound-webhook
//! documentation, embedded so the toolkit works without any file at hand.

/// Every event name Kustomer documents for outbound webhooks: the ten with
/// a published sample, and `kustomer.tag.create` and `kustomer.tag.update`,
/// which have none.
pub const KNOWN_EVENTS: [&str; 12] = [
    "kustomer.conversation.create",
    "kustomer.conversation.update",
    "kustomer.customer.create",
    "kustomer.customer.update",
    "kustomer.message.create",
    "kustomer.message.update",
    "kustomer.team.create",
    "kustomer.team.update",
    "kustomer.user.create",
    "kustomer.user.update",
    "kustomer.tag.create",
    "kustomer.tag.update",
];

/// `(event name, JSON text)` for each published sample, in name order.
pub const SEED_SAMPLES: [(&str, &str); 10] = [
    (
        "kustomer.conversation.create",
        include_str!("../samples/kustomer.conversation.create.json"),
    ),
    (
        "kustomer.conversation.update",
        include_str!("../samples/kustomer.conversation.update.json"),
    ),
    (
        "kustomer.customer.create",
        include_str!("../samples/kustomer.customer.create.json"),
    ),
    (
        "kustomer.customer.update",
        include_str!("../samples/kustomer.customer.update.json"),
    ),
    (
        "kustomer.message.create",
        include_str!("../samples/kustomer.message.create.json"),
    ),
    (
        "kustomer.message.update",
        include_str!("../samples/kustomer.message.update.json"),
    ),
    (
        "kustomer.team.create",
        include_str!("../samples/kustomer.team.create.json"),
    ),
    (
        "kustomer.team.update",
        include_str!("../samples/kustomer.team.update.json"),
    ),
    (
        "kustomer.user.create",
        include_str!("../samples/kustomer.user.create.json"),
    ),
    (
        "kustomer.user.update",
        include_str!("../samples/kustomer.user.update.json"),
    ),
];
