//! Capturing deliveries: which are saved (filters), how (one file per event
//! id, atomically, owner-only), and that a capture failure never fails a
//! delivery.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kustomer_schema::SEED_SAMPLES;
use kustomer_webhooks::capture::{Capture, Filter};
use kustomer_webhooks::receiver::{Receiver, Reply, Request};
use kustomer_webhooks::verify::{SIGNATURE_HEADER, Verifier, sign};
use kustomer_webhooks::{Dispatcher, State, TeamCreate};
use serde_json::Value;

const TOKEN: &str = "capture-token";

type Count = Arc<AtomicUsize>;

async fn failing_once(_: TeamCreate, failures: State<Count>) -> Result<(), std::io::Error> {
    if failures.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("the database is down"));
    }
    Ok(())
}

fn receiver(capture: Capture) -> Receiver {
    // The team handler has already failed once: it succeeds from now on.
    receiver_failing(capture, 1)
}

fn receiver_failing(capture: Capture, failures_so_far: usize) -> Receiver {
    let dispatcher = Dispatcher::with_state(Count::new(failures_so_far.into()))
        .handler(failing_once)
        .build()
        .unwrap();
    Receiver::new(dispatcher, Verifier::new(TOKEN)).with_capture(capture)
}

async fn deliver(receiver: &Receiver, body: &[u8]) -> Reply {
    deliver_signed(receiver, body, &sign(TOKEN.as_bytes(), body)).await
}

async fn deliver_signed(receiver: &Receiver, body: &[u8], signature: &str) -> Reply {
    let header = |name: &str| match name {
        "content-type" => Some(&b"application/json"[..]),
        SIGNATURE_HEADER => Some(signature.as_bytes()),
        _ => None,
    };
    receiver
        .receive(Request {
            method: "POST",
            header,
            body,
        })
        .await
}

fn sample(event: &str) -> &'static str {
    SEED_SAMPLES.iter().find(|(e, _)| *e == event).unwrap().1
}

fn edited(event: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(sample(event)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The files in `dir`, by name, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn event_id(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_delivery_is_saved_byte_for_byte_one_file_per_event_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("captured");
    let capture = Capture::new(&dir);
    let counts = capture.counts();
    let receiver = receiver(capture);
    let mut expected = Vec::new();
    for (event, body) in SEED_SAMPLES {
        let reply = deliver(&receiver, body.as_bytes()).await;
        assert_eq!(reply.status / 100, 2, "{event}: {reply:?}");
        let id = event_id(body.as_bytes());
        let saved = std::fs::read(dir.join(format!("{id}.json"))).unwrap();
        assert_eq!(
            saved,
            body.as_bytes(),
            "{event} is saved exactly as received"
        );
        expected.push(format!("{id}.json"));
    }
    expected.sort();
    expected.dedup();
    assert_eq!(
        files(&dir),
        expected,
        "nothing else, no temporary files left"
    );
    assert_eq!(
        counts.written.load(Ordering::SeqCst),
        SEED_SAMPLES.len() as u64
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_directory_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("captured");
    let receiver = receiver(Capture::new(&dir));
    let body = sample("kustomer.customer.create");
    assert_eq!(deliver(&receiver, body.as_bytes()).await.status, 200);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let file = dir.join(format!("{}.json", event_id(body.as_bytes())));
    assert_eq!(mode(&file), 0o600);
}

#[tokio::test]
async fn the_unexpected_filter_keeps_only_drift_and_events_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = Capture::new(tmp.path()).filter(Filter::Unexpected);
    let counts = capture.counts();
    let receiver = receiver(capture);

    // The clean samples match the models: none is saved.
    for (_, body) in SEED_SAMPLES {
        assert_eq!(deliver(&receiver, body.as_bytes()).await.status / 100, 2);
    }
    assert_eq!(files(tmp.path()), Vec::<String>::new());
    assert_eq!(
        counts.skipped.load(Ordering::SeqCst),
        SEED_SAMPLES.len() as u64
    );

    // Drift: a number where the models have a string.
    let drifted = edited("kustomer.customer.update", |v| {
        v["id"] = "a00000000000000000000001".into();
        v["data"]["attributes"]["displayName"] = 42.into();
    });
    // Unknown keys are not drift: still left out.
    let new_key = edited("kustomer.customer.update", |v| {
        v["id"] = "a00000000000000000000002".into();
        v["data"]["attributes"]["somethingNew"] = "x".into();
    });
    // A name outside the known list, and a known one without a model.
    let unknown = edited("kustomer.team.create", |v| {
        v["id"] = "a00000000000000000000003".into();
        v["name"] = "kustomer.kobject.create".into();
    });
    let untyped = edited("kustomer.team.create", |v| {
        v["id"] = "a00000000000000000000004".into();
        v["name"] = "kustomer.tag.create".into();
    });
    for body in [&drifted, &new_key, &unknown, &untyped] {
        assert_eq!(deliver(&receiver, body).await.status / 100, 2);
    }
    assert_eq!(
        files(tmp.path()),
        [
            "a00000000000000000000001.json",
            "a00000000000000000000003.json",
            "a00000000000000000000004.json"
        ]
    );
}

#[tokio::test]
async fn forgeries_bad_bodies_and_duplicates_are_not_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = Capture::new(tmp.path());
    let counts = capture.counts();
    let receiver = receiver(capture);
    let body = sample("kustomer.user.create").as_bytes();

    let forged = deliver_signed(&receiver, body, &sign(b"another token", body)).await;
    assert_eq!(forged.status, 401);
    assert_eq!(deliver(&receiver, b"{\"name\": 1").await.status, 400);
    assert_eq!(files(tmp.path()), Vec::<String>::new());

    assert_eq!(deliver(&receiver, body).await.status, 200);
    let duplicate = deliver(&receiver, body).await;
    assert_eq!(duplicate.outcome, "duplicate");
    assert_eq!(counts.written.load(Ordering::SeqCst), 1);
    assert_eq!(files(tmp.path()).len(), 1);
}

#[tokio::test]
async fn a_retried_event_rewrites_its_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = Capture::new(tmp.path());
    let counts = capture.counts();
    let receiver = receiver_failing(capture, 0);
    let body = sample("kustomer.team.create").as_bytes();
    assert_eq!(
        deliver(&receiver, body).await.status,
        500,
        "the handler fails once"
    );
    assert_eq!(
        deliver(&receiver, body).await.status,
        200,
        "Kustomer's retry"
    );
    assert_eq!(counts.written.load(Ordering::SeqCst), 2);
    assert_eq!(files(tmp.path()), [format!("{}.json", event_id(body))]);
}

#[tokio::test]
async fn a_capture_that_cannot_be_written_never_fails_the_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    // The capture "directory" is a file.
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let capture = Capture::new(&not_a_dir);
    let counts = capture.counts();
    let receiver = receiver(capture);
    let reply = deliver(&receiver, sample("kustomer.message.create").as_bytes()).await;
    assert_eq!((reply.status, reply.outcome), (200, "no handler"));
    assert_eq!(counts.failed.load(Ordering::SeqCst), 1);
    assert_eq!(counts.written.load(Ordering::SeqCst), 0);
}

#[test]
fn a_reader_never_sees_half_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = Capture::new(tmp.path());
    let id = "6087326fa8b1c7b07da5e5c9";
    let path = capture.file_for(Some(id), b"");
    // Bodies of very different sizes, each a whole JSON document.
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|n| {
            serde_json::to_vec(&serde_json::json!({"id": id, "pad": "x".repeat(n * 40_000)}))
                .unwrap()
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, path, bodies) = (done.clone(), path.clone(), bodies.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                if let Ok(seen) = std::fs::read(&path) {
                    assert!(
                        bodies.contains(&seen),
                        "a partial file of {} bytes",
                        seen.len()
                    );
                    reads += 1;
                }
                if finished && reads > 0 {
                    return reads;
                }
            }
        })
    };
    for round in 0..25 {
        let body = &bodies[round % bodies.len()];
        assert_eq!(capture.write(Some(id), body).unwrap(), path);
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0, "the reader saw the file");
    assert_eq!(files(tmp.path()), [format!("{id}.json")]);
}

/// A delivery dropped while its capture is being written (the client hung
/// up) gives its claim on the event up, so Kustomer's retry is handled
/// rather than told for minutes that another delivery is in progress.
#[tokio::test]
async fn a_delivery_dropped_while_it_is_captured_gives_its_claim_up() {
    use std::future::Future as _;
    use std::task::{Context, Waker};

    let tmp = tempfile::tempdir().unwrap();
    let receiver = receiver(Capture::new(tmp.path()));
    let body = sample("kustomer.team.create").as_bytes();
    let signature = sign(TOKEN.as_bytes(), body);
    {
        let mut delivery = std::pin::pin!(deliver_signed(&receiver, body, &signature));
        // One poll verifies, parses, claims the event id and starts writing
        // the capture on the blocking pool, which cannot finish within it
        // (the file is synced to disk): the delivery waits there.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            delivery.as_mut().poll(&mut cx).is_pending(),
            "the delivery waits for its capture"
        );
    }
    // Dropped mid-capture. The claim is given up by a task of its own: give
    // it a moment, without waiting for the claim's five-minute timeout.
    let mut reply = deliver(&receiver, body).await;
    for _ in 0..200 {
        if reply.status != 409 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        reply = deliver(&receiver, body).await;
    }
    assert_eq!((reply.status, reply.outcome), (200, "handled"), "{reply:?}");
}
