//! Verification: any body, any signature header, any custom header. Never
//! panics, accepts exactly the deliveries signed with an accepted token that
//! carry the right custom header, and says the signature is wrong, whatever
//! the header, when it is.
//!
//! The first byte chooses how the delivery is signed; the rest is the body
//! (for a fuzzer-chosen signature, its first 70 bytes are the signature).
#![no_main]

use kustomer_webhooks::verify::{SIGNATURE_HEADER, Verifier, VerifyError, sign};
use libfuzzer_sys::fuzz_target;

const TOKEN: &[u8] = b"token-2026";
const OLD: &[u8] = b"token-2025";
const SECRET: &[u8] = b"s3cret";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let verifier = Verifier::new(TOKEN)
        .with_token(OLD)
        .with_header("X-App-Secret", SECRET);
    let good = sign(TOKEN, body);
    assert!(
        good.len() == 64 && good.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "a signature is 64 lowercase hex digits: {good}"
    );
    let old = sign(OLD, body);
    let (signature, signed_ok): (Option<Vec<u8>>, bool) = match mode & 0b111 {
        0 => (Some(good.clone().into_bytes()), true),
        1 => (Some(old.into_bytes()), true),
        2 => (Some(good.to_uppercase().into_bytes()), true),
        3 => (Some(sign(b"another token", body).into_bytes()), false),
        4 => (None, false),
        5 => {
            let raw = body[..body.len().min(70)].to_vec();
            let trimmed = raw.trim_ascii().to_ascii_lowercase();
            let ok = trimmed == good.as_bytes() || trimmed == old.as_bytes();
            (Some(raw), ok)
        }
        6 => {
            // One digit changed.
            let mut s = good.clone().into_bytes();
            let i = usize::from(mode >> 3) % 64;
            s[i] = if s[i] == b'0' { b'1' } else { b'0' };
            (Some(s), false)
        }
        _ => (Some(format!(" {good}\t").into_bytes()), true),
    };
    let (secret, secret_ok): (Option<&[u8]>, bool) = match (mode >> 3) & 0b11 {
        0 | 1 => (Some(SECRET), true),
        2 => (None, false),
        _ => (Some(&body[..body.len().min(6)]), body.starts_with(SECRET)),
    };
    let result = verifier.verify(body, |name| match name {
        SIGNATURE_HEADER => signature.as_deref(),
        "x-app-secret" => secret,
        _ => None,
    });
    // The signature is checked first: a wrong one is the error whatever
    // the custom header, which is judged only under a right signature.
    match (&result, secret_ok, signed_ok) {
        (Ok(()), true, true) => {}
        (Err(VerifyError::MissingHeader { .. } | VerifyError::BadHeader { .. }), false, true) => {}
        (
            Err(
                VerifyError::MissingSignature
                | VerifyError::MalformedSignature
                | VerifyError::BadSignature,
            ),
            _,
            false,
        ) => {}
        _ => panic!(
            "verify gave {result:?} for a signature that is {} and a header that is {}",
            if signed_ok { "right" } else { "wrong" },
            if secret_ok { "right" } else { "wrong" },
        ),
    }
    // The signature alone, whatever bytes it is.
    let _ = verifier.verify_signature(body, body);
});
