//! Access tokens (JWT, HS256, short-lived), refresh tokens (random, stored hashed) and the
//! per-session request signing key, which any instance recomputes from the session id.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::crypto::{hmac_hex, hmac_sha256, random_token, sha256_hex};
use crate::domain::staff::MerchantRole;

/// Access tokens live 15 minutes; the refresh token renews them.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// Refresh tokens live 30 days (each use replaces it).
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// The most merchant memberships an access token carries; a user with more is looked up
/// in the database for the merchants not listed.
pub const MAX_TOKEN_MEMBERSHIPS: usize = 50;

/// One merchant the user owns or works at, and their role there: `[merchant_id, role]`.
pub type Membership = (String, MerchantRole);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id or admin id.
    pub sub: String,
    pub role: Role,
    /// Session id: the refresh token family. Keys the request signatures.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The user's merchants and roles when the token was issued (sign-in or refresh), at
    /// most [`MAX_TOKEN_MEMBERSHIPS`]. Absent for admins and users of no merchant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mer: Vec<Membership>,
}

impl Claims {
    /// The role the token names for `merchant_id`, if it lists it.
    pub fn merchant_role(&self, merchant_id: &str) -> Option<MerchantRole> {
        self.mer
            .iter()
            .find(|(id, _)| id == merchant_id)
            .map(|(_, role)| *role)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid: {0}")]
    Invalid(String),
}

/// Signs and checks tokens; derives the sign keys.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    sign_key_root: [u8; 32],
}

impl TokenKeys {
    pub fn new(jwt_secret: &SecretString) -> Self {
        let secret = jwt_secret.expose_secret().as_bytes();
        // Separate keys for separate purposes, all from the one configured secret.
        let jwt_key = hmac_sha256(secret, b"points-app/jwt/v1");
        TokenKeys {
            encoding: EncodingKey::from_secret(&jwt_key),
            decoding: DecodingKey::from_secret(&jwt_key),
            sign_key_root: hmac_sha256(secret, b"points-app/sign-key/v1"),
        }
    }

    /// An access token for `sub` in session `sid` with its merchant memberships (at most
    /// [`MAX_TOKEN_MEMBERSHIPS`] are kept); returns (token, expires_in seconds).
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        sid: &str,
        mut mer: Vec<Membership>,
    ) -> Result<(String, i64), TokenError> {
        mer.truncate(MAX_TOKEN_MEMBERSHIPS);
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            mer,
            sub: sub.to_string(),
            role,
            sid: sid.to_string(),
            iat: now,
            exp: now + ACCESS_TTL_SECS,
            jti: uuid::Uuid::now_v7().simple().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, ACCESS_TTL_SECS))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })
    }

    /// The session's request signing key: hex HMAC-SHA256(root, sid). No storage needed.
    pub fn sign_key(&self, sid: &str) -> String {
        hmac_hex(&self.sign_key_root, sid.as_bytes())
    }
}

/// A new refresh token and the hash that is stored for it.
pub fn new_refresh_token() -> (String, String) {
    let token = random_token(32);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let keys = TokenKeys::new(&"secret-one".to_string().into());
        let (token, ttl) = keys.issue("u1", Role::User, "s1", Vec::new()).unwrap();
        assert_eq!(ttl, ACCESS_TTL_SECS);
        let claims = keys.verify(&token).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role, claims.sid.as_str()),
            ("u1", Role::User, "s1")
        );
        let other = TokenKeys::new(&"secret-two".to_string().into());
        assert!(other.verify(&token).is_err());
        assert!(keys.verify("not.a.token").is_err());
        assert_eq!(keys.sign_key("s1"), keys.sign_key("s1"));
        assert_ne!(keys.sign_key("s1"), keys.sign_key("s2"));
        assert_eq!(keys.sign_key("s1").len(), 64);
        assert!(claims.mer.is_empty());
        assert!(!token.contains("mer"));
    }

    #[test]
    fn memberships_ride_in_the_token_capped() {
        let keys = TokenKeys::new(&"secret-one".to_string().into());
        let mer: Vec<Membership> = (0..MAX_TOKEN_MEMBERSHIPS + 10)
            .map(|i| (format!("m{i}"), MerchantRole::Cashier))
            .chain([("late".to_string(), MerchantRole::Owner)])
            .collect();
        let (token, _) = keys.issue("u1", Role::User, "s1", mer).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.mer.len(), MAX_TOKEN_MEMBERSHIPS);
        assert_eq!(claims.merchant_role("m3"), Some(MerchantRole::Cashier));
        assert_eq!(claims.merchant_role("late"), None);
        assert!(token.len() < 4096, "{}", token.len());
    }
}
