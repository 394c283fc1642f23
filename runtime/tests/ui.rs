//! Compile-time diagnostics of `#[kustomer_webhook]`, one scenario per file
//! under `tests/ui/`, each with its reviewed `.stderr`.
//!
//! The cases that must not compile and the ones that must build and run are
//! two sets: trybuild checks a set with no passing case in one `cargo check`
//! of every case together, where a set with one builds and links a binary
//! per case, one after the other.

#[test]
fn ui_compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/unknown-event-name.rs");
    t.compile_fail("tests/ui/parameter-not-an-event.rs");
    t.compile_fail("tests/ui/event-contradicts-parameter.rs");
    t.compile_fail("tests/ui/no-parameters.rs");
    t.compile_fail("tests/ui/too-many-parameters.rs");
    t.compile_fail("tests/ui/generic-handler.rs");
    t.compile_fail("tests/ui/not-a-function.rs");
    t.compile_fail("tests/ui/handler-body-syntax-error.rs");
    t.compile_fail("tests/ui/malformed-arguments.rs");
    t.compile_fail("tests/ui/non-send-future.rs");
    t.compile_fail("tests/ui/second-parameter-not-state.rs");
    t.compile_fail("tests/ui/second-parameter-another-state.rs");
    t.compile_fail("tests/ui/wrong-return-type.rs");
    t.compile_fail("tests/ui/unsafe-handler.rs");
    t.compile_fail("tests/ui/event-by-reference.rs");
    t.compile_fail("tests/ui/state-before-event.rs");
    t.compile_fail("tests/ui/state-without-type.rs");
    t.compile_fail("tests/ui/unknown-type-in-signature.rs");
    t.compile_fail("tests/ui/boxed-error-not-send.rs");
    t.compile_fail("tests/ui/impl-trait-in-signature.rs");
    t.compile_fail("tests/ui/generic-parameters.rs");
    t.compile_fail("tests/ui/state-not-send.rs");
    t.compile_fail("tests/ui/const-handler.rs");
    t.compile_fail("tests/ui/event-not-of-parameter-type.rs");
    t.compile_fail("tests/ui/builder-handler-not-send.rs");
    t.compile_fail("tests/ui/crate-path-not-a-path.rs");
    t.compile_fail("tests/ui/model-duplicate-key.rs");
    t.compile_fail("tests/ui/model-cfg-field.rs");
    t.compile_fail("tests/ui/model-any-not-value.rs");
    t.compile_fail("tests/ui/model-string-field.rs");
    t.compile_fail("tests/ui/model-not-pub.rs");
    t.compile_fail("tests/ui/model-extra-of-another-type.rs");
    t.compile_fail("tests/ui/model-private-field.rs");
}

#[test]
fn ui_pass() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/every-form-compiles.rs");
    t.pass("tests/ui/generated-models-in-a-binary.rs");
    t.pass("tests/ui/generated-models-with-string-dates.rs");
}
