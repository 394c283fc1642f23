//! Handlers in a crate that depends on the runtime under another name
//! (`hooks = { package = "kustomer-webhooks", … }` in its `Cargo.toml`): the
//! attribute reads the name from the manifest, so no handler needs
//! `crate = "hooks"`.

use std::sync::atomic::{AtomicUsize, Ordering};

use hooks::{TeamCreate, kustomer_webhook};

/// Teams created, as the handler saw them.
pub static TEAMS_CREATED: AtomicUsize = AtomicUsize::new(0);

/// Counts each team created.
#[kustomer_webhook]
pub async fn on_team_create(event: TeamCreate) {
    let _ = &event.data.id;
    TEAMS_CREATED.fetch_add(1, Ordering::SeqCst);
}

/// The dispatcher of this crate's handlers.
pub fn dispatcher() -> Result<hooks::Dispatcher, hooks::BuildError> {
    hooks::Dispatcher::builder().registered().build()
}
