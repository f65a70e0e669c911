//! Time per SHA256withRSA signature and verification with the vector key (2048 bits):
//!
//!   cargo test --release --lib wechat::tests::timing -- --ignored --nocapture

use std::time::Instant;

use super::super::keys::{self, RsaSigner, RsaVerifier};
use super::testdata;

const ROUNDS: u32 = 1000;

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn sign_and_verify_timing() {
    let pem = keys::read_pem(&testdata("merchant_test_key.pem")).unwrap();
    let key = keys::private_key_from_pem(&pem).unwrap();
    let verifier = RsaVerifier::new(key.to_public_key().unwrap());
    let signer = RsaSigner::new(key);
    // A request message of typical size.
    let message = format!(
        "POST\n/v3/pay/transactions/jsapi\n1624523846\nNONCE123\n{}\n",
        "x".repeat(400)
    )
    .into_bytes();

    let started = Instant::now();
    let mut signature = String::new();
    for _ in 0..ROUNDS {
        signature = signer.sign_base64(&message).unwrap();
    }
    let sign = started.elapsed();

    let started = Instant::now();
    for _ in 0..ROUNDS {
        assert!(verifier.verify_base64(&message, &signature));
    }
    let verify = started.elapsed();

    println!(
        "{ROUNDS} rounds: {:.1} µs per sign, {:.1} µs per verify",
        sign.as_secs_f64() * 1e6 / f64::from(ROUNDS),
        verify.as_secs_f64() * 1e6 / f64::from(ROUNDS)
    );
}
