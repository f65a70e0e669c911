//! Request signatures: `X-Signature` = hex HMAC-SHA256(sign_key,
//! `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nhex_sha256(BODY)\n`), a 300 s window, and a
//! nonce store (Redis `SET NX EX` when configured, else in-process) that refuses replays.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bb8_redis::redis;

use super::crypto::{sha256_hex, verify_hmac_hex};
use crate::cache::RedisPool;

/// How far a request's timestamp may be from the server clock.
pub const SIGNATURE_WINDOW_SECS: i64 = 300;
/// Each nonce is kept until its request's own window has passed (one second more), so a
/// replay is either refused as seen or refused as expired; never accepted.
pub fn nonce_keep_secs(timestamp: i64, now: i64) -> u64 {
    timestamp
        .checked_add(SIGNATURE_WINDOW_SECS + 1)
        .and_then(|end| end.checked_sub(now))
        .and_then(|left| u64::try_from(left).ok())
        .unwrap_or(1)
        .max(1)
}

/// The string that is signed.
pub fn canonical_string(
    method: &str,
    path_with_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n",
        method.to_ascii_uppercase(),
        path_with_query,
        timestamp,
        nonce,
        sha256_hex(body)
    )
}

pub fn sign(sign_key: &str, canonical: &str) -> String {
    super::crypto::hmac_hex(sign_key.as_bytes(), canonical.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// Headers missing or malformed, or the MAC does not match.
    Invalid(&'static str),
    /// Outside the 300 s window.
    Expired,
    /// The nonce was seen before.
    Replayed,
}

/// The signed parts of a request, as received.
pub struct SignedParts<'a> {
    pub method: &'a str,
    pub path_with_query: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub body: &'a [u8],
    pub signature: &'a str,
}

/// Checks headers and MAC (not the nonce). `now` is unix seconds. Answers how long the
/// nonce must then be remembered ([`nonce_keep_secs`]).
pub fn verify(sign_key: &str, parts: &SignedParts<'_>, now: i64) -> Result<u64, SignatureError> {
    let SignedParts {
        method,
        path_with_query,
        timestamp,
        nonce,
        body,
        signature,
    } = *parts;
    if !(16..=64).contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SignatureError::Invalid(
            "X-Nonce must be 16-64 characters [A-Za-z0-9_-]",
        ));
    }
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Invalid("X-Timestamp must be unix seconds"))?;
    // Checked: a timestamp near i64::MIN or MAX is far outside the window, not a wrap.
    let skew = now.checked_sub(ts).and_then(i64::checked_abs);
    if skew.is_none_or(|d| d > SIGNATURE_WINDOW_SECS) {
        return Err(SignatureError::Expired);
    }
    let canonical = canonical_string(method, path_with_query, timestamp, nonce, body);
    if verify_hmac_hex(sign_key.as_bytes(), canonical.as_bytes(), signature) {
        Ok(nonce_keep_secs(ts, now))
    } else {
        Err(SignatureError::Invalid("signature does not match"))
    }
}

/// Remembers nonces so a request is accepted once, on any instance when Redis is shared.
pub struct NonceStore {
    redis: Option<(RedisPool, String)>,
    breaker: crate::cache::Breaker,
    /// Nonce -> until when it is remembered.
    memory: Mutex<HashMap<String, Instant>>,
}

impl NonceStore {
    pub fn new(redis: Option<RedisPool>, prefix: &str) -> Self {
        NonceStore {
            redis: redis.map(|p| (p, prefix.to_string())),
            breaker: crate::cache::Breaker::default(),
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// True when the nonce is new (and is now remembered for `keep_secs`), false when seen
    /// before.
    pub async fn remember(
        &self,
        scope: &str,
        nonce: &str,
        keep_secs: u64,
    ) -> Result<bool, crate::cache::CacheError> {
        let key = format!("nonce:{scope}:{nonce}");
        if let Some((pool, prefix)) = self.redis.as_ref().filter(|_| self.breaker.allow()) {
            let shared = async {
                let mut conn = pool.get().await?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}:{key}"))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(keep_secs.max(1))
                    .query_async(&mut *conn)
                    .await?;
                Ok::<bool, crate::cache::CacheError>(set.is_some())
            };
            match tokio::time::timeout(Duration::from_secs(1), shared).await {
                Ok(Ok(new)) => return Ok(new),
                // Redis down: replay protection degrades to this instance (docs/operations.md,
                // PointsAppRedisDown) instead of refusing every signed request.
                Ok(Err(e)) => {
                    if self.breaker.trip() {
                        tracing::warn!(category = "security", error = %e, "nonce store unavailable; checking nonces on this instance only")
                    }
                }
                Err(_) => {
                    if self.breaker.trip() {
                        tracing::warn!(
                            category = "security",
                            "nonce store timed out; checking nonces on this instance only"
                        )
                    }
                }
            }
        }
        let now = Instant::now();
        let until = now + Duration::from_secs(keep_secs.max(1));
        let mut map = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, kept_until| *kept_until > now);
        }
        match map.get(&key) {
            Some(kept_until) if *kept_until > now => Ok(false),
            _ => {
                map.insert(key, until);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_the_window_only() {
        let key = "k".repeat(64);
        let body = br#"{"a":1}"#;
        let canonical = canonical_string("post", "/api/x?y=1", "1000", "n0123456789abcdef", body);
        assert!(canonical.starts_with("POST\n/api/x?y=1\n1000\n"));
        let sig = sign(&key, &canonical);
        let check = |sig: &str, now: i64, nonce: &str, body: &[u8]| {
            let parts = SignedParts {
                method: "POST",
                path_with_query: "/api/x?y=1",
                timestamp: "1000",
                nonce,
                body,
                signature: sig,
            };
            verify(&key, &parts, now)
        };
        assert_eq!(check(&sig, 1000, "n0123456789abcdef", body), Ok(301));
        assert_eq!(check(&sig, 1300, "n0123456789abcdef", body), Ok(1));
        assert_eq!(
            check(&sig, 1301, "n0123456789abcdef", body),
            Err(SignatureError::Expired)
        );
        assert!(matches!(
            check(&sig, 1000, "short", body),
            Err(SignatureError::Invalid(_))
        ));
        assert!(matches!(
            check(&sig, 1000, "n0123456789abcdef", b"{}"),
            Err(SignatureError::Invalid(_))
        ));
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_expired_not_a_wrap() {
        let key = "k".repeat(64);
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, 1000 - (1 << 62)] {
            let ts_text = ts.to_string();
            let canonical = canonical_string("POST", "/p", &ts_text, "n0123456789abcdef", b"");
            let parts = SignedParts {
                method: "POST",
                path_with_query: "/p",
                timestamp: &ts_text,
                nonce: "n0123456789abcdef",
                body: b"",
                signature: &sign(&key, &canonical),
            };
            assert_eq!(
                verify(&key, &parts, 1000),
                Err(SignatureError::Expired),
                "{ts}"
            );
        }
    }

    #[test]
    fn a_nonce_is_kept_until_its_own_window_has_passed() {
        // Timestamped 300 s ahead: accepted now, and valid until now + 600; kept past that.
        assert_eq!(nonce_keep_secs(1300, 1000), 601);
        assert_eq!(nonce_keep_secs(1000, 1000), 301);
        assert_eq!(nonce_keep_secs(700, 1000), 1);
        assert_eq!(nonce_keep_secs(i64::MAX, 0), 1, "no overflow");
        assert_eq!(nonce_keep_secs(0, i64::MIN), 1, "no overflow");
    }

    #[tokio::test]
    async fn memory_nonce_store_refuses_a_second_use() {
        let store = NonceStore::new(None, "p");
        assert!(store.remember("s", "nonce-1", 600).await.unwrap());
        assert!(!store.remember("s", "nonce-1", 600).await.unwrap());
        assert!(store.remember("other", "nonce-1", 600).await.unwrap());
    }
}
