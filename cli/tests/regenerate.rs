//! `regenerate --samples --out` and `check` for a models module of one's
//! own, run as real processes: typed custom attributes, the change summary,
//! the seed merge, and staleness.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;

mod common;
use common::{ROOT, run};

/// A captured customer update whose `custom` is `custom`.
fn capture(dir: &Path, id: &str, custom: Value) {
    let seed =
        fs::read_to_string(Path::new(ROOT).join("schema/samples/kustomer.customer.update.json"))
            .unwrap();
    let mut event: Value = serde_json::from_str(&seed).unwrap();
    event["id"] = id.into();
    event["data"]["attributes"]["custom"] = custom;
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("{id}.json")), event.to_string()).unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn org_custom_attributes_become_typed_fields_and_changes_are_summarised() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold", "vipBool": true, "seatsNum": 3, "regionCode": "EMEA"}),
    );

    let first = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
    ]);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("a new models module"),
        "{}",
        first.stdout
    );
    let customer = fs::read_to_string(models.join("customer.rs")).unwrap();
    for field in [
        "pub loyalty_tier_str: Option<Str>",
        "pub vip_bool: Option<bool>",
        "pub seats_num: Option<Number>",
        // No known suffix: any JSON, whatever the samples held.
        "pub region_code: Option<Value>",
        // Kustomer's published samples are merged in: their custom
        // attributes are there too, and every resource has a module.
        "pub lifetime_value_num: Option<Number>",
    ] {
        assert!(customer.contains(field), "{field} in:\n{customer}");
    }
    for module in [
        "conversation.rs",
        "message.rs",
        "team.rs",
        "user.rs",
        "mod.rs",
        "shared.rs",
    ] {
        assert!(models.join(module).is_file(), "{module}");
    }
    let header = customer.lines().next().unwrap();
    assert!(
        header.contains("kustomer-webhooks regenerate --samples")
            && header.contains("and Kustomer's published samples"),
        "{header}"
    );

    // Up to date: `check` agrees, and a second run changes nothing.
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    let again = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
        "--dry-run",
    ]);
    assert!(
        again.stdout.contains("no type or field changes\n"),
        "{}",
        again.stdout
    );

    // One more capture of the same shape: only the sample counts in the
    // doc comments change, which `check` reports and the dry run names.
    capture(
        &captured,
        "6a1f000000000000000000ff",
        json!({"loyaltyTierStr": "gold", "vipBool": true, "seatsNum": 3, "regionCode": "EMEA"}),
    );
    let counts = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
        "--dry-run",
    ]);
    assert!(
        counts.stdout.contains(
            "no type or field changes; 2 file(s) differ only in doc comments (such as sample \
             counts) or in how fields are read (such as null being allowed): customer.rs, \
             shared.rs\n"
        ),
        "{}",
        counts.stdout
    );
    let stale = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(stale.code, Some(1), "{}{}", stale.stdout, stale.stderr);
    fs::remove_file(captured.join("6a1f000000000000000000ff.json")).unwrap();

    // New traffic: a new attribute, one whose values are now text, and the
    // org dropped another (recaptured from scratch).
    fs::remove_dir_all(&captured).unwrap();
    capture(
        &captured,
        "6a1f00000000000000000002",
        json!({"loyaltyTierStr": 44, "vipBool": true, "seatsNum": 3, "regionCode": 44, "churnRiskNum": 0.2}),
    );
    capture(
        &captured,
        "6a1f00000000000000000003",
        json!({"loyaltyTierStr": "silver", "vipBool": false, "seatsNum": 1, "regionCode": "EMEA"}),
    );
    let stale = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(stale.code, Some(1), "{}{}", stale.stdout, stale.stderr);
    assert!(
        stale.stderr.contains("customer.rs: differs"),
        "{}",
        stale.stderr
    );

    let dry = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
        "--dry-run",
    ]);
    assert_eq!(dry.code, Some(0));
    let expected = [
        "+ CustomerCustom.churn_risk_num: Option<Number> (\"churnRiskNum\"): new field",
        "~ CustomerCustom.loyalty_tier_str (\"loyaltyTierStr\"): type changed from Option<Str> to Option<Value>",
    ];
    for line in expected {
        assert!(dry.stdout.contains(line), "{line} in:\n{}", dry.stdout);
    }
    assert!(dry.stdout.contains("nothing written"));
    assert_eq!(
        fs::read_to_string(models.join("customer.rs")).unwrap(),
        customer,
        "a dry run writes nothing"
    );

    // Without the seed, the attributes only Kustomer's samples had are gone.
    // A file of the user's own in the directory is left alone.
    fs::write(models.join("extras.rs"), "// mine\n").unwrap();
    let alone = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--no-seed",
        "--out",
        path(&models),
    ]);
    assert_eq!(alone.code, Some(0), "{}{}", alone.stdout, alone.stderr);
    assert!(
        alone.stdout.contains(
            "- CustomerCustom.lifetime_value_num: Option<Number> (\"lifetimeValueNum\"): field removed"
        ),
        "{}",
        alone.stdout
    );
    // Only customer samples now: the other resources' modules are removed.
    assert!(
        alone.stdout.contains("team.rs") && alone.stdout.contains("removed"),
        "{}",
        alone.stdout
    );
    let mut left: Vec<String> = fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["customer.rs", "extras.rs", "mod.rs", "shared.rs"]);
    fs::remove_file(models.join("extras.rs")).unwrap();
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--no-seed",
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
}

#[test]
fn no_seed_needs_samples_and_a_missing_samples_dir_is_an_error() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("models");
    let no_samples = run(&["regenerate", "--no-seed", "--out", path(&out)]);
    assert_eq!(no_samples.code, Some(2), "clap refuses --no-seed alone");
    let missing = run(&[
        "regenerate",
        "--samples",
        path(&tmp.path().join("nowhere")),
        "--out",
        path(&out),
    ]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("nowhere"), "{}", missing.stderr);
    assert!(!out.exists(), "nothing written on error");
}

/// A published sample among `--samples` (the repository's own directory of
/// them, or a copy) would count twice beside the published samples read
/// with them: refused, naming it, unless `--no-seed`.
#[test]
fn a_published_sample_among_the_samples_is_refused_unless_no_seed() {
    let tmp = TempDir::new().unwrap();
    let (captured, out) = (tmp.path().join("captured"), tmp.path().join("models"));
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    let (event, text) = kustomer_schema::SEED_SAMPLES[3];
    fs::write(captured.join(format!("{event}.json")), text).unwrap();
    for command in ["regenerate", "check"] {
        let flag = if command == "check" {
            "--models"
        } else {
            "--out"
        };
        let refused = run(&[command, "--samples", path(&captured), flag, path(&out)]);
        assert_eq!(refused.code, Some(1), "{}", refused.stderr);
        assert!(
            refused.stderr.contains(&format!(
                "{event}.json: is Kustomer's published sample of its event, which is read with \
                 your samples already (each sample would count twice)"
            )),
            "{}",
            refused.stderr
        );
        assert!(!out.exists(), "nothing written on error");
    }
    let alone = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--no-seed",
        "--out",
        path(&out),
    ]);
    assert_eq!(alone.code, Some(0), "{}", alone.stderr);
    // Changed at all, it is a sample of one's own.
    fs::write(captured.join(format!("{event}.json")), format!("{text}\n")).unwrap();
    let own = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&out),
    ]);
    assert!(
        !own.stderr
            .contains("is Kustomer's published sample of its event"),
        "{}",
        own.stderr
    );
    assert_eq!(own.code, Some(1), "stale: made from the captures alone");
}

/// A capture that cannot be used stops `regenerate` and `check` with its
/// name, unless `--skip-unusable`, which the module's header then repeats.
#[test]
fn an_unusable_capture_is_named_or_skipped() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    fs::write(
        captured.join("odd.json"),
        r#"{"name": "kustomer.x.update", "data": {"type": 7}}"#,
    )
    .unwrap();

    let refused = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
    ]);
    assert_eq!(
        refused.code,
        Some(1),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("odd.json: `data.type` is a number, not a string")
            && refused.stderr.contains("pass --skip-unusable"),
        "{}",
        refused.stderr
    );
    assert!(!models.exists(), "nothing is written");

    let skipped = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
        "--skip-unusable",
    ]);
    assert_eq!(
        skipped.code,
        Some(0),
        "{}{}",
        skipped.stdout,
        skipped.stderr
    );
    assert!(
        skipped.stderr.contains("warning: ") && skipped.stderr.contains("odd.json"),
        "{}",
        skipped.stderr
    );
    assert!(
        skipped.stderr.contains(
            "warning: left out 1 unusable sample(s); inferred from 1 of yours and Kustomer's 10 \
             published samples"
        ),
        "{}",
        skipped.stderr
    );
    let customer = fs::read_to_string(models.join("customer.rs")).unwrap();
    assert!(customer.contains("pub loyalty_tier_str: Option<Str>"));
    let header = customer.lines().next().unwrap();
    assert!(header.contains(" --skip-unusable"), "{header}");

    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--samples",
            path(&captured),
            "--models",
            path(&models),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let unchecked = check(&[]);
    assert_eq!(unchecked.code, Some(1), "{}", unchecked.stderr);
    assert!(
        unchecked.stderr.contains("odd.json"),
        "{}",
        unchecked.stderr
    );
    let checked = check(&["--skip-unusable"]);
    assert_eq!(
        checked.code,
        Some(0),
        "{}{}",
        checked.stdout,
        checked.stderr
    );
}

/// A field keeps its Rust name across regenerations: a new key that maps to
/// the same name gets another one, rather than taking it.
#[test]
fn a_new_key_does_not_take_a_fields_name() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    let regenerate = || {
        run(&[
            "regenerate",
            "--samples",
            path(&captured),
            "--out",
            path(&models),
        ])
    };
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"fooBarStr": "a"}),
    );
    let first = regenerate();
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let before = fs::read_to_string(models.join("customer.rs")).unwrap();
    assert!(
        before.contains("#[json(\"fooBarStr\", nullable)]\n    pub foo_bar_str: Option<Str>,")
            || before.contains("#[json(\"fooBarStr\")]\n    pub foo_bar_str: Option<Str>,"),
        "{before}"
    );

    // `FOO_BAR_STR` sorts before `fooBarStr`, and is `foo_bar_str` too.
    capture(
        &captured,
        "6a1f00000000000000000002",
        json!({"fooBarStr": "a", "FOO_BAR_STR": "b"}),
    );
    let second = regenerate();
    assert_eq!(second.code, Some(0), "{}{}", second.stdout, second.stderr);
    assert!(
        second
            .stdout
            .contains("+ CustomerCustom.foo_bar_str_2: Option<Value> (\"FOO_BAR_STR\"): new field"),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("! "), "{}", second.stdout);
    let after = fs::read_to_string(models.join("customer.rs")).unwrap();
    assert!(
        after.contains("(\"fooBarStr\")]\n    pub foo_bar_str: Option<Str>,")
            || after.contains("(\"fooBarStr\", nullable)]\n    pub foo_bar_str: Option<Str>,"),
        "{after}"
    );
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);

    // From scratch (no models yet), key order decides.
    let fresh = tmp.path().join("fresh");
    let third = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&fresh),
    ]);
    assert_eq!(third.code, Some(0), "{}{}", third.stdout, third.stderr);
    let scratch = fs::read_to_string(fresh.join("customer.rs")).unwrap();
    assert!(
        scratch.contains("pub foo_bar_str_2: Option<Str>,"),
        "{scratch}"
    );
    assert!(
        scratch.contains(
            "a custom attribute with no known suffix, so any JSON (in 1 sample(s)).\n    \
             #[json(\"FOO_BAR_STR\", any)]\n    pub foo_bar_str: Option<Value>,"
        ),
        "{scratch}"
    );
}

#[test]
fn a_new_nested_object_does_not_take_a_types_name() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    fs::create_dir_all(&captured).unwrap();
    let sample = |id: &str, attributes: Value| {
        let event = json!({
            "id": id,
            "name": "kustomer.widget.update",
            "data": {"type": "widget", "id": "w1", "attributes": attributes},
        });
        fs::write(captured.join(format!("{id}.json")), event.to_string()).unwrap();
    };
    let regenerate = |dry: bool| {
        let mut args = vec![
            "regenerate",
            "--no-seed",
            "--samples",
            path(&captured),
            "--out",
            path(&models),
        ];
        if dry {
            args.push("--dry-run");
        }
        run(&args)
    };
    sample(
        "1",
        json!({"b": {"lvl5": {"x": 1}}, "c": {"lvl5": {"y": "s"}}}),
    );
    let first = regenerate(false);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let before = fs::read_to_string(models.join("widget.rs")).unwrap();
    assert!(before.contains("pub struct WidgetLvl52 "), "{before}");

    // A new `lvl5` under `a`, which sorts first.
    sample(
        "2",
        json!({"a": {"lvl5": {"z": true}}, "b": {"lvl5": {"x": 2}}, "c": {"lvl5": {"y": "t"}}}),
    );
    for dry in [true, false] {
        let second = regenerate(dry);
        assert_eq!(second.code, Some(0), "{}{}", second.stdout, second.stderr);
        assert!(
            second.stdout.contains("+ WidgetLvl53: new type"),
            "{}",
            second.stdout
        );
        // Nothing that code written against the models before uses moves.
        for mark in ["- ", "~ ", "! "] {
            assert!(
                !second
                    .stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(mark)),
                "{}",
                second.stdout
            );
        }
    }
    let after = fs::read_to_string(models.join("widget.rs")).unwrap();
    for kept in ["pub struct WidgetLvl5 ", "pub struct WidgetLvl52 "] {
        let fields = |text: &str| {
            let at = text.find(kept).unwrap();
            // Its fields, without the doc comments' sample counts.
            text[at..text[at..].find("\n}").unwrap() + at]
                .lines()
                .filter(|l| !l.trim_start().starts_with("///"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(fields(&after), fields(&before), "{after}");
    }
    let check = run(&[
        "check",
        "--no-seed",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
}

/// Paths a shell would split are quoted in the command the models' header
/// and `check`'s advice print, so that it can be pasted as it is.
#[test]
fn the_command_printed_to_run_again_quotes_paths_with_spaces() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("my captures"), tmp.path().join("my models"));
    capture(&captured, "6a1f00000000000000000001", json!({"aStr": "a"}));
    let args = [
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
    ];
    let first = run(&args);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let command = format!(
        "kustomer-webhooks regenerate --samples '{}' --out '{}'",
        captured.display(),
        models.display()
    );
    let header = fs::read_to_string(models.join("mod.rs")).unwrap();
    assert!(
        header.lines().next().unwrap().contains(&command),
        "{header}"
    );
    // A capture the models do not have yet: `check` says what to run.
    capture(&captured, "6a1f00000000000000000002", json!({"bStr": "b"}));
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    assert!(check.stderr.contains(&command), "{}", check.stderr);
}

/// A model that no longer parses (a merge conflict left in it) stops
/// `regenerate` with its path and line, rather than the field names it held
/// being given afresh (so that a new key could take one).
#[test]
fn a_model_that_no_longer_parses_stops_regenerate_naming_it() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"fooBarStr": "a"}),
    );
    let args = [
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
    ];
    let first = run(&args);
    assert_eq!(first.code, Some(0), "{}{}", first.stdout, first.stderr);
    let file = models.join("customer.rs");
    let text = fs::read_to_string(&file).unwrap();
    let at = text.find("pub struct CustomerCustom").unwrap();
    let line = text[..at].lines().count() + 1;
    let conflicted = format!(
        "{}<<<<<<< ours\n=======\n>>>>>>> theirs\n{}",
        &text[..at],
        &text[at..]
    );
    fs::write(&file, &conflicted).unwrap();
    capture(
        &captured,
        "6a1f00000000000000000002",
        json!({"fooBarStr": "a", "FOO_BAR_STR": "b"}),
    );
    let second = run(&args);
    assert_eq!(second.code, Some(1), "{}{}", second.stdout, second.stderr);
    let expected = format!(
        "{} was generated before but no longer parses as Rust, at line {line}, column 1",
        file.display()
    );
    assert!(second.stderr.contains(&expected), "{}", second.stderr);
    assert!(second.stderr.contains("keep one side"), "{}", second.stderr);
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        conflicted,
        "nothing written"
    );
}

/// A file of one's own with a generated file's name stops `regenerate`
/// before anything is written: the schemas stay in step with the models.
#[test]
fn a_file_of_ones_own_in_the_models_dir_stops_regenerate_before_the_schemas() {
    let tmp = TempDir::new().unwrap();
    let (captured, models, schemas) = (
        tmp.path().join("captured"),
        tmp.path().join("models"),
        tmp.path().join("schemas"),
    );
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    fs::create_dir_all(&models).unwrap();
    fs::write(models.join("customer.rs"), "// mine\n").unwrap();
    let refused = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--schemas",
        path(&schemas),
        "--out",
        path(&models),
    ]);
    assert_eq!(
        refused.code,
        Some(1),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stderr.contains("customer.rs: a file of your own"),
        "{}",
        refused.stderr
    );
    assert!(!schemas.exists(), "no schema written");
    assert_eq!(
        fs::read_dir(&models).unwrap().count(),
        1,
        "no model written"
    );
    // A dry run says so too, and `check` names it as what it is, not as a
    // stale model that the command it suggests would then refuse.
    for args in [
        ["regenerate", "--dry-run", "--out"],
        ["check", "--samples", "--models"],
    ] {
        let r = match args[0] {
            "regenerate" => run(&[
                args[0],
                args[1],
                "--samples",
                path(&captured),
                args[2],
                path(&models),
            ]),
            _ => run(&[args[0], args[1], path(&captured), args[2], path(&models)]),
        };
        assert_eq!(r.code, Some(1), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("customer.rs: a file of your own"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("differs"), "{}", r.stderr);
    }
}

/// `check` names the `regenerate` command, with its arguments, that
/// updates what is stale.
#[test]
fn check_says_which_regenerate_updates_stale_schemas_and_models() {
    let tmp = TempDir::new().unwrap();
    let (captured, models, schemas) = (
        tmp.path().join("captured"),
        tmp.path().join("models"),
        tmp.path().join("schemas"),
    );
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    let args = ["--samples", path(&captured), "--schemas", path(&schemas)];
    let written = run(&[&["regenerate"], &args[..], &["--out", path(&models)]].concat());
    assert_eq!(
        written.code,
        Some(0),
        "{}{}",
        written.stdout,
        written.stderr
    );
    // The models' header names the command as given, `--schemas` too.
    let header = fs::read_to_string(models.join("mod.rs")).unwrap();
    let given = format!(
        "kustomer-webhooks regenerate --samples {} --schemas {} --out {}",
        path(&captured),
        path(&schemas),
        path(&models)
    );
    assert!(header.lines().next().unwrap().contains(&given), "{header}");
    capture(
        &captured,
        "6a1f00000000000000000002",
        json!({"seatsNum": 3}),
    );
    let check = run(&[&["check"], &args[..], &["--models", path(&models)]].concat());
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    let fix = format!(
        "(run `kustomer-webhooks regenerate --samples {} --schemas {} --out {}` to update them):",
        path(&captured),
        path(&schemas),
        path(&models)
    );
    assert!(
        check.stderr.contains(&format!("stale schemas {fix}")),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains(&format!("stale models {fix}")),
        "{}",
        check.stderr
    );
    // And what changes in the models, field by field.
    assert!(
        check
            .stderr
            .contains("what that changes in the models:\n  + CustomerCustom.seats_num: Option<Number> (\"seatsNum\"): new field"),
        "{}",
        check.stderr
    );
    assert!(!check.stderr.contains("--no-seed"), "{}", check.stderr);

    // Stale schemas beside models that match, read by nothing (`check |
    // true`): the models' line finds stdout closed, and the status is still 1.
    let written = run(&[&["regenerate"], &args[..], &["--out", path(&models)]].concat());
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    let schema = schemas.join("customer.json");
    let text = fs::read_to_string(&schema).unwrap();
    fs::write(&schema, format!("{text}\n")).unwrap();
    let r = common::run_unread(&[&["check"], &args[..], &["--models", path(&models)]].concat());
    assert!(r.stderr.contains("stale schemas"), "{}", r.stderr);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
}

/// `regenerate | head -1`: the reader goes away after the first line, and
/// the schemas and models are still both written, so that `check` passes.
/// With stderr closed too, a stale `check` exits 1, with no panic.
#[test]
fn regenerate_with_nobody_reading_writes_schemas_and_models_alike() {
    let tmp = TempDir::new().unwrap();
    let (captured, models, schemas) = (
        tmp.path().join("captured"),
        tmp.path().join("models"),
        tmp.path().join("schemas"),
    );
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    let args = ["--samples", path(&captured), "--schemas", path(&schemas)];
    let r = common::run_unread(&[&["regenerate"], &args[..], &["--out", path(&models)]].concat());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(models.join("customer.rs").exists(), "{}", r.stderr);
    let check = run(&[&["check"], &args[..], &["--models", path(&models)]].concat());
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);

    capture(
        &captured,
        "6a1f00000000000000000002",
        json!({"seatsNum": 3}),
    );
    let stale = std::process::Command::new(common::BIN)
        .args([&["check"], &args[..], &["--models", path(&models)]].concat())
        .current_dir(ROOT)
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::open("/dev/full").unwrap())
        .status()
        .unwrap();
    assert_eq!(stale.code(), Some(1));
}

/// A resource type starting with a digit, which no Rust type name can.
#[test]
fn a_resource_type_starting_with_a_digit_gets_models_and_checks() {
    let tmp = TempDir::new().unwrap();
    let (captured, models) = (tmp.path().join("captured"), tmp.path().join("models"));
    fs::create_dir_all(&captured).unwrap();
    for (i, t) in ["3pl-shipment", "9lives", "2fa.order"].iter().enumerate() {
        fs::write(
            captured.join(format!("{i}.json")),
            json!({"name": format!("kustomer.{t}.create"), "data": {"type": t, "attributes": {"a": 1}}})
                .to_string(),
        )
        .unwrap();
    }
    let args = ["--samples", path(&captured), "--no-seed"];
    let written = run(&[&["regenerate"], &args[..], &["--out", path(&models)]].concat());
    assert_eq!(
        written.code,
        Some(0),
        "{}{}",
        written.stdout,
        written.stderr
    );
    let text = fs::read_to_string(models.join("resource_3pl_shipment.rs")).unwrap();
    assert!(text.contains("pub struct Resource3plShipment "), "{text}");
    let check = run(&[&["check"], &args[..], &["--models", path(&models)]].concat());
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
}

/// Outside this repository, the default output directories (this
/// repository's own) are not made: each command says which option to give.
#[test]
fn outside_the_repository_an_output_directory_must_be_given() {
    let tmp = TempDir::new().unwrap();
    let captured = tmp.path().join("captured");
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    for (args, flag) in [
        (vec!["regenerate", "--samples", "captured"], "--out"),
        (vec!["check", "--samples", "captured"], "--models"),
        (vec!["infer", "captured"], "--out"),
        (vec!["generate", "--schemas", "captured"], "--out"),
    ] {
        let r = common::run_in(tmp.path(), &args);
        assert_eq!(r.code, Some(1), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains(&format!("no {flag} given, and its default")),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert!(!tmp.path().join("runtime").exists());
    assert!(!tmp.path().join("schema").exists());
}

/// The repository's samples regenerated into other directories: the models'
/// header names that command, with its directories, not `generate`'s
/// default one (which writes elsewhere).
#[test]
fn models_written_elsewhere_from_the_repositorys_samples_name_the_command_that_wrote_them() {
    let dir = TempDir::new().unwrap();
    let (schemas, models) = (dir.path().join("schemas"), dir.path().join("models"));
    let r = run(&[
        "regenerate",
        "--schemas",
        path(&schemas),
        "--out",
        path(&models),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let header = fs::read_to_string(models.join("mod.rs")).unwrap();
    let want = format!(
        "// @generated by `kustomer-webhooks regenerate --schemas {} --out {}` from the samples \
         in schema/samples: do not edit by hand.\n",
        path(&schemas),
        path(&models)
    );
    assert!(header.starts_with(&want), "{header}");
    let r = run(&[
        "check",
        "--schemas",
        path(&schemas),
        "--models",
        path(&models),
    ]);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
}

/// Outside the repository, a command whose default directory is not there
/// says which option to pass, as the command takes it.
#[test]
fn outside_the_repository_each_missing_default_names_the_option_to_pass() {
    let dir = TempDir::new().unwrap();
    let models = dir.path().join("models");
    fs::create_dir_all(&models).unwrap();
    let models = path(&models);
    for (args, want) in [
        (
            &["generate", "--out", models][..],
            "error: no --schemas given, and its default, schema/schemas, is this repository's \
             own and is not here: pass --schemas DIR",
        ),
        (
            &["generate"][..],
            "error: no --out given, and its default, runtime/src/models, is this repository's \
             own and is not here: pass --out DIR",
        ),
        (
            &["check", "--models", models][..],
            "error: no sample paths given and schema/samples does not exist here; pass --samples \
             DIR",
        ),
        (
            &["regenerate", "--out", models, "--dry-run"][..],
            "pass --samples DIR",
        ),
    ] {
        let r = common::run_in(dir.path(), args);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
}

/// Models made by `infer` then `generate` hold only the resources of one's
/// samples: `check`, which reads the published samples too by default, says
/// to add `--no-seed`, with which they match.
#[test]
fn check_of_models_made_from_ones_samples_alone_names_no_seed() {
    let tmp = TempDir::new().unwrap();
    let (captured, models, schemas) = (
        tmp.path().join("captured"),
        tmp.path().join("models"),
        tmp.path().join("schemas"),
    );
    capture(
        &captured,
        "6a1f00000000000000000001",
        json!({"loyaltyTierStr": "gold"}),
    );
    let inferred = run(&["infer", path(&captured), "--out", path(&schemas)]);
    assert_eq!(inferred.code, Some(0), "{}", inferred.stderr);
    let generated = run(&[
        "generate",
        "--schemas",
        path(&schemas),
        "--out",
        path(&models),
    ]);
    assert_eq!(generated.code, Some(0), "{}", generated.stderr);
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    assert!(check.stderr.contains("add `--no-seed`"), "{}", check.stderr);
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--no-seed",
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);

    // Models made with the published samples, missing only a resource of
    // one's own new samples: no such hint (it would drop the others).
    let written = run(&[
        "regenerate",
        "--samples",
        path(&captured),
        "--out",
        path(&models),
    ]);
    assert_eq!(written.code, Some(0), "{}", written.stderr);
    let seed = fs::read_to_string(Path::new(ROOT).join("schema/samples/kustomer.team.create.json"))
        .unwrap();
    let mut widget: Value = serde_json::from_str(&seed).unwrap();
    widget["name"] = "kustomer.widget.create".into();
    widget["data"]["type"] = "widget".into();
    fs::write(captured.join("widget.json"), widget.to_string()).unwrap();
    let check = run(&[
        "check",
        "--samples",
        path(&captured),
        "--models",
        path(&models),
    ]);
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    assert!(
        check.stderr.contains("widget.rs: missing"),
        "{}",
        check.stderr
    );
    assert!(!check.stderr.contains("--no-seed"), "{}", check.stderr);
}
