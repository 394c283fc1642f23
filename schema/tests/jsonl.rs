//! A JSON Lines file of many samples: each sample's line is counted on from
//! the one before, not from the start of the file again (which made reading
//! one quadratic in its size: 53 s for 10,000 samples, 0.5 s from separate
//! files). The counting itself is unit-tested in `infer.rs`; this reads a
//! file long enough that counting from the start for every sample would
//! scan some 60 GB, and checks the line an error names.

use kustomer_schema::Inferrer;

#[test]
fn a_long_json_lines_file_is_read_with_each_samples_line() {
    let line = r#"{"name":"kustomer.thing.create","data":{"type":"thing","attributes":{"a":1}}}"#;
    let mut text = String::new();
    for _ in 0..40_000 {
        text.push_str(line);
        text.push('\n');
    }
    let mut inferrer = Inferrer::default();
    assert_eq!(
        inferrer.add_json(text.as_bytes(), "big.jsonl").unwrap(),
        40_000
    );

    // The line of a sample is still named in its error.
    text.push_str(r#"{"name":"kustomer.thing.create","data":{}}"#);
    let err = Inferrer::default()
        .add_json(text.as_bytes(), "big.jsonl")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("big.jsonl: sample 40001 (line 40001): the sample has no `data.type`"),
        "{err}"
    );
}
