//! [`check_revision_store`]: the contract of [`RevisionStore`], run against
//! a store.

use std::time::Duration;

use super::check::{all, run_prefix};
use super::{RevisionStore, SharedTurn, StoreError};

/// How many records of one resource, and how many takes of one turn,
/// [`check_revision_store`] has in flight at once.
pub const CONCURRENT_CALLS: usize = 16;

/// The hold of the turn [`check_revision_store`] lets end by itself.
pub const SHORT_HOLD: Duration = Duration::from_millis(300);

/// How long past [`SHORT_HOLD`] a turn may still be held before
/// [`check_revision_store`] reports it as never ending.
pub const HOLD_GRACE: Duration = Duration::from_secs(1);

/// The hold of every other turn the check takes: far longer than the check.
const LONG_HOLD: Duration = Duration::from_secs(60);

/// Where a store broke the contract of [`RevisionStore`], as found by
/// [`check_revision_store`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevisionCheckError {
    /// `last_revision` answered another revision than the records before it
    /// leave.
    #[error(
        "{step}: `last_revision` answered {found:?} where the contract needs {expected:?} (resource {resource})"
    )]
    Revision {
        /// What the check was doing, in words.
        step: &'static str,
        /// The resource id it used.
        resource: String,
        /// The revision the contract needs.
        expected: Option<i64>,
        /// The store's answer.
        found: Option<i64>,
    },
    /// `take_turn` answered something the contract does not allow.
    #[error(
        "{step}: `take_turn` answered {found} where the contract needs {expected} (resource {resource})"
    )]
    Turn {
        /// What the check was doing, in words.
        step: &'static str,
        /// The resource id it used.
        resource: String,
        /// The answer the contract needs: `Taken`, `Busy` or `InProcess`.
        expected: &'static str,
        /// The store's answer, its token left out.
        found: &'static str,
    },
    /// Two takes of one turn were given the same token: a late
    /// [`give_turn`](RevisionStore::give_turn) of the first holder would
    /// give back the second's turn.
    #[error(
        "two takes of one turn were given the same token: a late give-back of the first would end the second (resource {resource})"
    )]
    SameToken {
        /// The resource id it used.
        resource: String,
    },
    /// Of the concurrent takes of one free turn, not exactly one was
    /// [`SharedTurn::Taken`]: a store whose `take_turn` reads and then
    /// writes, instead of taking in one atomic step, lets two replicas handle
    /// one resource's events at once.
    #[error(
        "{takes} takes of one turn in flight at once: {taken} answered Taken, where exactly one must (resource {resource})"
    )]
    NotAtomic {
        /// The resource id whose turn was taken.
        resource: String,
        /// How many takes were in flight.
        takes: usize,
        /// How many of them answered [`SharedTurn::Taken`].
        taken: usize,
    },
    /// The store returned an error.
    #[error("{step}: the store {} (resource {resource})", error.said())]
    Store {
        /// What the check was doing, in words.
        step: &'static str,
        /// The resource id it used.
        resource: String,
        /// The store's error.
        error: StoreError,
    },
}

/// Runs the contract of [`RevisionStore`] against `store`, with fresh
/// resource ids of its own, and says where the store breaks it.
///
/// Meant for the tests of a revision store of your own (the ordering
/// guard's revisions, and its turns, kept where every replica of a service
/// sees them): run it against a test instance. It checks that
///
/// - a resource never recorded has no last revision, and records of other
///   resources do not give it one;
/// - the last revision is the highest recorded: a lower one recorded after
///   it, or the same one again, leaves it; revisions past 2^53 (where a
///   floating-point comparison no longer tells them apart), up to
///   `i64::MAX` and below zero are compared exactly;
/// - of [`CONCURRENT_CALLS`] records of one resource in flight at once, from
///   the highest revision down, the highest stays (a store that reads, then
///   writes, keeps whichever wrote last);
///
/// and, when the store [shares turns](RevisionStore::shares_turns), that
///
/// - a free turn is [`SharedTurn::Taken`], and [`SharedTurn::Busy`] while
///   held; other resources' turns are free meanwhile;
/// - [`give_turn`](RevisionStore::give_turn) with another token leaves the
///   turn held; with the holder's token, it frees it;
/// - each take gets a token of its own, and a late give-back with the
///   previous holder's token leaves the new holder's turn held;
/// - of [`CONCURRENT_CALLS`] takes of one free turn in flight at once,
///   exactly one is `Taken`;
/// - a turn taken for [`SHORT_HOLD`] and never given back is free again
///   within [`HOLD_GRACE`] after the hold (so the check takes a little
///   over [`SHORT_HOLD`]).
///
/// A store that does not share turns (the default, as
/// [`OrderingGuard`](super::OrderingGuard)) must not give them either: one
/// whose `take_turn` answers `Taken` while `shares_turns` is false has turns
/// the receiver never asks for, and fails the check.
///
/// The calls in flight at once are polled together from the calling task,
/// as [`check_store`](super::check_store)'s are. The resource ids start with
/// `store-check-` and contain letters that no Kustomer resource id (24 hex
/// digits) has, so they never meet a real resource; the revisions they
/// record stay in the store as any would, and every turn the check takes is
/// given back or ends by itself. It needs no particular async runtime: it
/// waits out the short hold on a thread of its own.
///
/// ```
/// use kustomer_webhooks::dedupe::{OrderingGuard, check_revision_store};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// check_revision_store(&OrderingGuard::new()).await?;
/// # Ok::<(), kustomer_webhooks::dedupe::RevisionCheckError>(())
/// # }).unwrap();
/// ```
pub async fn check_revision_store<S: RevisionStore + ?Sized>(
    store: &S,
) -> Result<(), RevisionCheckError> {
    let prefix = run_prefix();
    let resource = |what: &str| format!("{prefix}-{what}");
    check_revisions(store, &resource).await?;
    if store.shares_turns() {
        check_turns(store, &resource).await
    } else {
        // The receiver never asks a store that does not share turns for
        // one: a turn it gives would guard nothing.
        let step = "a turn of a store that does not share turns";
        let lone = resource("lone-turn");
        let turn = take(store, step, &lone, LONG_HOLD).await?;
        if let SharedTurn::Taken(token) = &turn {
            let _ = store.give_turn(&lone, token).await;
        }
        expect_turn(step, &lone, &turn, "InProcess")
    }
}

async fn check_revisions<S: RevisionStore + ?Sized>(
    store: &S,
    resource: &impl Fn(&str) -> String,
) -> Result<(), RevisionCheckError> {
    let updated = resource("updated");
    expect_last(store, "a resource never recorded", &updated, None).await?;
    let steps: [(&'static str, i64, i64); 4] = [
        ("a first revision recorded", 5, 5),
        ("a lower revision recorded after a higher one", 3, 5),
        ("the same revision recorded again", 5, 5),
        ("a higher revision recorded", 9, 9),
    ];
    for (step, rev, last) in steps {
        record(store, step, &updated, rev).await?;
        expect_last(store, step, &updated, Some(last)).await?;
    }
    let other = resource("untouched");
    let step = "a resource never recorded, beside one that was";
    expect_last(store, step, &other, None).await?;

    // Past 2^53 an f64 no longer holds every integer: 2^53 + 1 reads as 2^53.
    let large = resource("large");
    const TWO_TO_53: i64 = 1 << 53;
    let steps: [(&'static str, i64, i64); 4] = [
        ("2^53 recorded", TWO_TO_53, TWO_TO_53),
        ("2^53 + 1 recorded after 2^53", TWO_TO_53 + 1, TWO_TO_53 + 1),
        ("i64::MAX - 1 recorded", i64::MAX - 1, i64::MAX - 1),
        ("i64::MAX recorded after i64::MAX - 1", i64::MAX, i64::MAX),
    ];
    for (step, rev, last) in steps {
        record(store, step, &large, rev).await?;
        expect_last(store, step, &large, Some(last)).await?;
    }

    let below = resource("below-zero");
    let steps: [(&'static str, i64, i64); 3] = [
        ("a revision below zero recorded", -5, -5),
        ("a lower revision below zero recorded after it", -7, -5),
        ("a higher revision below zero recorded", -1, -1),
    ];
    for (step, rev, last) in steps {
        record(store, step, &below, rev).await?;
        expect_last(store, step, &below, Some(last)).await?;
    }

    let raced = resource("raced");
    let step = "concurrent records of one resource, the highest revision first";
    let highest = CONCURRENT_CALLS as i64;
    let records = all((1..=highest)
        .rev()
        .map(|rev| store.record_revision(&raced, rev))
        .collect())
    .await;
    for answer in records {
        answer.map_err(failed(step, &raced))?;
    }
    expect_last(store, step, &raced, Some(highest)).await
}

async fn check_turns<S: RevisionStore + ?Sized>(
    store: &S,
    resource: &impl Fn(&str) -> String,
) -> Result<(), RevisionCheckError> {
    let held = resource("turn");
    let first = taken(store, "a free turn", &held, LONG_HOLD).await?;
    let step = "a turn taken again while held";
    expect_busy(store, step, &held).await?;
    let beside = resource("turn-beside");
    let step = "another resource's turn while one is held";
    let other = taken(store, step, &beside, LONG_HOLD).await?;
    give(store, "giving a turn back", &beside, &other).await?;

    let step = "giving a turn back with another token";
    give(store, step, &held, "store-check-not-the-token").await?;
    expect_busy(store, step, &held).await?;

    give(store, "giving a turn back", &held, &first).await?;
    let step = "a turn taken again after it was given back";
    let second = taken(store, step, &held, LONG_HOLD).await?;
    if second == first {
        let _ = store.give_turn(&held, &second).await;
        return Err(RevisionCheckError::SameToken { resource: held });
    }
    let step = "a late give-back of the turn's previous holder";
    give(store, step, &held, &first).await?;
    expect_busy(store, step, &held).await?;
    give(store, "giving a turn back", &held, &second).await?;

    let raced = resource("turn-raced");
    let step = "concurrent takes of a free turn";
    let answers = all((0..CONCURRENT_CALLS)
        .map(|_| store.take_turn(&raced, LONG_HOLD))
        .collect())
    .await;
    let mut tokens = Vec::new();
    let mut unexpected = None;
    let mut error = None;
    for answer in answers {
        match answer {
            Ok(SharedTurn::Taken(token)) => tokens.push(token),
            Ok(SharedTurn::Busy) => {}
            Ok(SharedTurn::InProcess) => unexpected = Some("InProcess"),
            Err(e) => error = Some(e),
        }
    }
    // Whatever went wrong, no turn of the check's is left held.
    for token in &tokens {
        let _ = store.give_turn(&raced, token).await;
    }
    if let Some(source) = error {
        return Err(failed(step, &raced)(source));
    }
    if let Some(found) = unexpected {
        return Err(RevisionCheckError::Turn {
            step,
            resource: raced,
            expected: "Taken or Busy",
            found,
        });
    }
    if tokens.len() != 1 {
        return Err(RevisionCheckError::NotAtomic {
            resource: raced,
            takes: CONCURRENT_CALLS,
            taken: tokens.len(),
        });
    }

    let left = resource("turn-left");
    let step = "a turn taken for a short hold";
    taken(store, step, &left, SHORT_HOLD).await?;
    expect_busy(store, "a turn taken again within its hold", &left).await?;
    sleep(SHORT_HOLD).await;
    let step = "a turn never given back, after its hold";
    let mut waited = Duration::ZERO;
    loop {
        match take(store, step, &left, LONG_HOLD).await? {
            SharedTurn::Taken(token) => {
                return give(store, "giving a turn back", &left, &token).await;
            }
            SharedTurn::Busy if waited < HOLD_GRACE => {
                let pause = Duration::from_millis(100);
                sleep(pause).await;
                waited += pause;
            }
            found => return expect_turn(step, &left, &found, "Taken"),
        }
    }
}

/// Records `rev` for `resource`.
async fn record<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
    rev: i64,
) -> Result<(), RevisionCheckError> {
    store
        .record_revision(resource, rev)
        .await
        .map_err(failed(step, resource))
}

/// Reads `resource`'s last revision and compares it with `expected`.
async fn expect_last<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
    expected: Option<i64>,
) -> Result<(), RevisionCheckError> {
    let found = store
        .last_revision(resource)
        .await
        .map_err(failed(step, resource))?;
    if found == expected {
        Ok(())
    } else {
        Err(RevisionCheckError::Revision {
            step,
            resource: resource.to_owned(),
            expected,
            found,
        })
    }
}

/// Takes `resource`'s turn for `hold`.
async fn take<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
    hold: Duration,
) -> Result<SharedTurn, RevisionCheckError> {
    store
        .take_turn(resource, hold)
        .await
        .map_err(failed(step, resource))
}

/// Takes `resource`'s turn, which must be free: its token.
async fn taken<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
    hold: Duration,
) -> Result<String, RevisionCheckError> {
    match take(store, step, resource, hold).await? {
        SharedTurn::Taken(token) => Ok(token),
        found => Err(turn_error(step, resource, "Taken", &found)),
    }
}

/// Takes `resource`'s turn, which must be held; a turn taken after all is
/// given back.
async fn expect_busy<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
) -> Result<(), RevisionCheckError> {
    let found = take(store, step, resource, LONG_HOLD).await?;
    if let SharedTurn::Taken(token) = &found {
        let _ = store.give_turn(resource, token).await;
    }
    expect_turn(step, resource, &found, "Busy")
}

/// Gives `resource`'s turn back with `token`.
async fn give<S: RevisionStore + ?Sized>(
    store: &S,
    step: &'static str,
    resource: &str,
    token: &str,
) -> Result<(), RevisionCheckError> {
    store
        .give_turn(resource, token)
        .await
        .map_err(failed(step, resource))
}

fn expect_turn(
    step: &'static str,
    resource: &str,
    found: &SharedTurn,
    expected: &'static str,
) -> Result<(), RevisionCheckError> {
    if turn_name(found) == expected {
        Ok(())
    } else {
        Err(turn_error(step, resource, expected, found))
    }
}

fn turn_error(
    step: &'static str,
    resource: &str,
    expected: &'static str,
    found: &SharedTurn,
) -> RevisionCheckError {
    RevisionCheckError::Turn {
        step,
        resource: resource.to_owned(),
        expected,
        found: turn_name(found),
    }
}

fn turn_name(turn: &SharedTurn) -> &'static str {
    match turn {
        SharedTurn::Taken(_) => "Taken",
        SharedTurn::Busy => "Busy",
        SharedTurn::InProcess => "InProcess",
    }
}

/// The error for a store that failed at `step`.
fn failed(step: &'static str, resource: &str) -> impl FnOnce(StoreError) -> RevisionCheckError {
    let resource = resource.to_owned();
    move |source| RevisionCheckError::Store {
        step,
        resource,
        error: source,
    }
}

/// Waits `pause` on a thread of its own, so that the check runs on any
/// async runtime (or a runtime without a timer).
async fn sleep(pause: Duration) {
    let (done, waited) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("revision-store-check".to_owned())
        .spawn(move || {
            std::thread::sleep(pause);
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = waited.await;
        }
        // No thread to wait on: wait on this one.
        Err(_) => std::thread::sleep(pause),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::dedupe::tests::block_on;
    use crate::dedupe::{OrderingGuard, StoreFuture};

    /// Revisions and turns in tables, with switches that break one rule
    /// each.
    #[derive(Default)]
    struct Tables {
        revisions: Mutex<HashMap<String, i64>>,
        turns: Mutex<HashMap<String, (String, Instant)>>,
        tokens: AtomicU64,
        /// Turns are taken and given (otherwise the store keeps none).
        shares: bool,
        /// `shares_turns` answers false whatever the store does.
        says_it_does_not_share: bool,
        /// `record_revision` writes whatever it is given.
        last_written_wins: bool,
        /// `record_revision` reads, yields, then writes the higher.
        read_then_write: bool,
        /// Revisions compared as `f64`.
        floats: bool,
        /// `last_revision` reads the first resource ever recorded.
        one_resource: bool,
        /// `give_turn` frees the turn whatever the token.
        give_ignores_token: bool,
        /// Every take gets the same token.
        one_token: bool,
        /// `take_turn` reads, yields, then writes.
        take_reads_then_writes: bool,
        /// Turns never end by themselves.
        forever: bool,
        /// Every call fails.
        down: bool,
    }

    impl Tables {
        fn sharing() -> Self {
            Tables {
                shares: true,
                ..Tables::default()
            }
        }

        fn refuse(&self) -> Result<(), StoreError> {
            if self.down {
                Err(StoreError::unavailable("connection refused"))
            } else {
                Ok(())
            }
        }

        fn free(&self, resource: &str) -> bool {
            let turns = self.turns.lock().unwrap();
            match turns.get(resource) {
                None => true,
                Some((_, until)) => !self.forever && *until <= Instant::now(),
            }
        }

        fn set_turn(&self, resource: &str, hold: Duration) -> String {
            let token = if self.one_token {
                "turn".to_owned()
            } else {
                format!("turn:{}", self.tokens.fetch_add(1, Ordering::Relaxed))
            };
            let until = Instant::now() + hold;
            self.turns
                .lock()
                .unwrap()
                .insert(resource.to_owned(), (token.clone(), until));
            token
        }
    }

    impl RevisionStore for Tables {
        fn last_revision<'a>(&'a self, resource_id: &'a str) -> StoreFuture<'a, Option<i64>> {
            Box::pin(async move {
                self.refuse()?;
                let revisions = self.revisions.lock().unwrap();
                if self.one_resource {
                    return Ok(revisions.values().next().copied());
                }
                Ok(revisions.get(resource_id).copied())
            })
        }

        fn record_revision<'a>(&'a self, resource_id: &'a str, rev: i64) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.refuse()?;
                if self.read_then_write {
                    let seen = self.revisions.lock().unwrap().get(resource_id).copied();
                    tokio::task::yield_now().await;
                    if seen.is_none_or(|seen| seen < rev) {
                        let mut revisions = self.revisions.lock().unwrap();
                        revisions.insert(resource_id.to_owned(), rev);
                    }
                    return Ok(());
                }
                let mut revisions = self.revisions.lock().unwrap();
                let newer = match revisions.get(resource_id) {
                    None => true,
                    Some(_) if self.last_written_wins => true,
                    #[allow(clippy::cast_precision_loss)]
                    Some(&last) if self.floats => (last as f64) < (rev as f64),
                    Some(&last) => last < rev,
                };
                if newer {
                    revisions.insert(resource_id.to_owned(), rev);
                }
                Ok(())
            })
        }

        fn take_turn<'a>(
            &'a self,
            resource_id: &'a str,
            hold: Duration,
        ) -> StoreFuture<'a, SharedTurn> {
            Box::pin(async move {
                self.refuse()?;
                if !self.shares {
                    return Ok(SharedTurn::InProcess);
                }
                if self.take_reads_then_writes {
                    let free = self.free(resource_id);
                    tokio::task::yield_now().await;
                    return Ok(if free {
                        SharedTurn::Taken(self.set_turn(resource_id, hold))
                    } else {
                        SharedTurn::Busy
                    });
                }
                let mut turns = self.turns.lock().unwrap();
                let free = match turns.get(resource_id) {
                    None => true,
                    Some((_, until)) => !self.forever && *until <= Instant::now(),
                };
                if !free {
                    return Ok(SharedTurn::Busy);
                }
                turns.remove(resource_id);
                drop(turns);
                Ok(SharedTurn::Taken(self.set_turn(resource_id, hold)))
            })
        }

        fn give_turn<'a>(&'a self, resource_id: &'a str, token: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.refuse()?;
                let mut turns = self.turns.lock().unwrap();
                if self.give_ignores_token
                    || turns
                        .get(resource_id)
                        .is_some_and(|(held, _)| held == token)
                {
                    turns.remove(resource_id);
                }
                Ok(())
            })
        }

        fn shares_turns(&self) -> bool {
            self.shares && !self.says_it_does_not_share
        }
    }

    fn check(store: &Tables) -> Result<(), RevisionCheckError> {
        block_on(check_revision_store(store))
    }

    fn err_text(store: &Tables) -> String {
        check(store).unwrap_err().to_string()
    }

    #[test]
    fn the_ordering_guard_keeps_the_contract() {
        block_on(check_revision_store(&OrderingGuard::new())).unwrap();
        // Twice on one guard: each run's resources are its own.
        let guard = OrderingGuard::new();
        block_on(check_revision_store(&guard)).unwrap();
        block_on(check_revision_store(&guard)).unwrap();
        let boxed: Box<dyn RevisionStore> = Box::new(OrderingGuard::new());
        block_on(check_revision_store(boxed.as_ref())).unwrap();
    }

    #[test]
    fn tables_keeping_every_rule_pass_with_turns_and_without() {
        check(&Tables::default()).unwrap();
        let started = Instant::now();
        let sharing = Tables::sharing();
        check(&sharing).unwrap();
        assert!(
            started.elapsed() >= SHORT_HOLD,
            "the short hold is waited out"
        );
        assert!(
            sharing.turns.lock().unwrap().is_empty(),
            "every turn the check took is given back"
        );
    }

    #[test]
    fn a_lower_revision_overwriting_a_higher_is_caught() {
        let text = err_text(&Tables {
            last_written_wins: true,
            ..Tables::default()
        });
        assert!(
            text.starts_with(
                "a lower revision recorded after a higher one: `last_revision` answered Some(3) where the contract needs Some(5) (resource store-check-"
            ),
            "{text}"
        );
    }

    #[test]
    fn revisions_compared_as_floats_are_caught_past_2_to_53() {
        let text = err_text(&Tables {
            floats: true,
            ..Tables::default()
        });
        assert!(
            text.starts_with(
                "2^53 + 1 recorded after 2^53: `last_revision` answered Some(9007199254740992) where the contract needs Some(9007199254740993)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_record_that_reads_then_writes_is_caught() {
        let err = check(&Tables {
            read_then_write: true,
            ..Tables::default()
        })
        .unwrap_err();
        match err {
            RevisionCheckError::Revision {
                step,
                expected,
                found,
                ..
            } => {
                assert_eq!(
                    step,
                    "concurrent records of one resource, the highest revision first"
                );
                assert_eq!(expected, Some(CONCURRENT_CALLS as i64));
                assert_eq!(found, Some(1), "the last to write won");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn resources_that_share_a_revision_are_caught() {
        let text = err_text(&Tables {
            one_resource: true,
            ..Tables::default()
        });
        assert!(
            text.starts_with("a resource never recorded, beside one that was: `last_revision` answered Some(9) where the contract needs None"),
            "{text}"
        );
    }

    #[test]
    fn a_give_back_with_another_token_is_caught() {
        let text = err_text(&Tables {
            give_ignores_token: true,
            ..Tables::sharing()
        });
        assert!(
            text.starts_with(
                "giving a turn back with another token: `take_turn` answered Taken where the contract needs Busy"
            ),
            "{text}"
        );
    }

    #[test]
    fn one_token_for_every_take_is_caught() {
        let err = check(&Tables {
            one_token: true,
            ..Tables::sharing()
        })
        .unwrap_err();
        assert!(matches!(err, RevisionCheckError::SameToken { .. }), "{err}");
        assert!(err.to_string().contains("same token"), "{err}");
    }

    #[test]
    fn a_take_that_reads_then_writes_is_caught() {
        let store = Tables {
            take_reads_then_writes: true,
            ..Tables::sharing()
        };
        let err = check(&store).unwrap_err();
        match &err {
            RevisionCheckError::NotAtomic { takes, taken, .. } => {
                assert_eq!(*takes, CONCURRENT_CALLS);
                assert_eq!(*taken, CONCURRENT_CALLS);
            }
            other => panic!("{other}"),
        }
        assert!(
            err.to_string()
                .contains("16 takes of one turn in flight at once: 16 answered Taken"),
            "{err}"
        );
        // The check gave back every turn it took on the way.
        let raced = store
            .turns
            .lock()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("-turn-raced"));
        assert!(!raced, "the raced turn was given back");
    }

    #[test]
    fn a_turn_that_never_ends_is_caught_after_the_grace() {
        let started = Instant::now();
        let text = err_text(&Tables {
            forever: true,
            ..Tables::sharing()
        });
        assert!(
            text.starts_with(
                "a turn never given back, after its hold: `take_turn` answered Busy where the contract needs Taken"
            ),
            "{text}"
        );
        assert!(started.elapsed() >= SHORT_HOLD + HOLD_GRACE);
    }

    #[test]
    fn turns_given_while_not_shared_are_caught() {
        let text = err_text(&Tables {
            says_it_does_not_share: true,
            ..Tables::sharing()
        });
        assert!(
            text.starts_with(
                "a turn of a store that does not share turns: `take_turn` answered Taken where the contract needs InProcess"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_store_that_fails_is_reported_with_its_error() {
        let err = check(&Tables {
            down: true,
            ..Tables::sharing()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "a resource never recorded: the store is unavailable: connection refused \
                 (resource store-check-"
            ),
            "{text}"
        );
        assert!(!text.contains("idempotency"), "{text}");
        // The store's error is in the message once, and in the variant.
        assert!(std::error::Error::source(&err).is_none());
        assert!(matches!(
            err,
            RevisionCheckError::Store {
                error: StoreError::Unavailable(_),
                ..
            }
        ));
    }
}
