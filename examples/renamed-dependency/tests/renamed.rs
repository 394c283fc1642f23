//! A handler of a crate that renames the runtime is registered and run.

use std::sync::atomic::Ordering;

use kustomer_webhooks_example_renamed::{TEAMS_CREATED, dispatcher};

#[tokio::test]
async fn a_handler_written_without_crate_runs_under_the_renamed_runtime() {
    let dispatcher = dispatcher().unwrap();
    let body = include_bytes!("../../../schema/samples/kustomer.team.create.json");
    let done = dispatcher
        .dispatch(body, Some("kustomer.team.create"))
        .await
        .unwrap();
    assert!(
        matches!(done, hooks::Dispatched::Handled { .. }),
        "{done:?}"
    );
    assert_eq!(TEAMS_CREATED.load(Ordering::SeqCst), 1);
}
