//! Authorization in one place: a route states who may call it by the extractor it takes.
//!
//! - [`AuthUser`]: a valid user access token of an active user.
//! - [`AdminUser`]: a valid admin access token of an active admin.
//! - [`Member<N>`]: an [`AuthUser`] who owns or works at the merchant `{id}` of the path,
//!   whose role allows what the marker `N` ([`Need`]) names, e.g. `Member<CanRefund>` (the
//!   role table: `domain::staff`).
//! - [`Signed`]: the request carries a valid signature with a fresh nonce (mutating calls).
//!
//! Statuses come from the database through a 2 s cache, so a disable or an approval takes
//! effect without a new login.

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

use super::{AppState, JSON_LIMIT, error::ApiError, error::ErrorCode};
use crate::app::AppError;
use crate::app::identity::ADMIN_ACTIVE;
use crate::app::merchants::MERCHANT_APPROVED;
use crate::app::users::USER_ACTIVE;
use crate::domain::staff::{MerchantRole, Permission};
use crate::security::signing::{self, SignatureError, SignedParts};
use crate::security::tokens::{Claims, Role, TokenError};
use crate::security::{MerchantAccess, RateLimited, RateLimiter};

pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))
}

/// The peer address. Proxies' `X-Forwarded-For` is not trusted (it is the caller's to forge).
/// The client's address, as the request middleware worked it out once ([`remember_client_ip`]).
pub fn client_ip(req: &HttpRequest) -> String {
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
        return ip.clone();
    }
    find_client_ip(req)
}

/// The client's address found for a request, kept in its extensions.
#[derive(Clone)]
struct ClientIp(String);

/// Works out the client's address once and keeps it for the handlers; returns it.
pub fn remember_client_ip(req: &HttpRequest) -> String {
    let ip = find_client_ip(req);
    req.extensions_mut().insert(ClientIp(ip.clone()));
    ip
}

/// The socket peer, or behind a trusted proxy (`APP_TRUSTED_PROXIES`) the address it
/// forwarded for. What rate limits, risk rules, audit rows and access logs use.
fn find_client_ip(req: &HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return "unknown".into();
    };
    let Some(trusted) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| &s.security.trusted_proxies)
        .filter(|t| !t.is_empty())
    else {
        return crate::security::proxies::canonical(peer).to_string();
    };
    let headers = req.headers();
    // Several X-Forwarded-For headers are one list, in order.
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let real_ip = headers.get("x-real-ip").and_then(|v| v.to_str().ok());
    trusted
        .client_ip(peer, forwarded.as_deref(), real_ip)
        .to_string()
}

/// The verified claims of the bearer token, verified once per request.
fn claims(req: &HttpRequest, state: &AppState) -> Result<Claims, ApiError> {
    if let Some(c) = req.extensions().get::<Claims>() {
        return Ok(c.clone());
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("sign in: Authorization: Bearer <access_token>"))?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <access_token>"))?;
    let claims = state.security.tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => {
            state.security.event("expired_token", "");
            ApiError::new(
                ErrorCode::TokenExpired,
                "the access token expired; refresh it",
            )
        }
        TokenError::Invalid(_) => {
            state.security.event("bad_token", "");
            ApiError::new(ErrorCode::TokenInvalid, "the access token is not valid")
        }
    })?;
    req.extensions_mut().insert(claims.clone());
    Ok(claims)
}

fn user_disabled() -> ApiError {
    ApiError::new(ErrorCode::UserDisabled, "this account is disabled")
}

/// Runs a database read as its own task. actix polls a handler's extractors together and
/// drops the rest when one fails; dropping an in-flight SQLite query (diesel-async's
/// `SyncConnectionWrapper`) calls `block_in_place`, which panics on actix's single-threaded
/// workers. A spawned task is not cancelled by dropping its handle, so it finishes cleanly.
async fn detached<T: 'static>(
    fut: impl std::future::Future<Output = Result<T, AppError>> + 'static,
) -> Result<T, ApiError> {
    actix_web::rt::spawn(fut)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// The owner and status of a merchant (cached briefly).
pub async fn merchant_access(
    state: &AppState,
    merchant_id: &str,
) -> Result<Option<MerchantAccess>, ApiError> {
    if let Some(a) = state.security.merchant_access.get(merchant_id) {
        return Ok(Some(a));
    }
    let (app, id) = (state.app.clone(), merchant_id.to_string());
    let access = detached(async move { app.merchants.access(&id).await }).await?;
    if let Some(a) = &access {
        state.security.merchant_access.put(merchant_id, a.clone());
    }
    Ok(access)
}

/// A user's status (`None`: no such user) and whether the session `sid` was revoked, from
/// the caches (the status and session kinds' 2 s) or else in one read that fills both: every
/// signed-in shopper's request needs the two.
async fn user_and_session(
    state: &AppState,
    user_id: &str,
    sid: &str,
) -> Result<(Option<String>, bool), ApiError> {
    let security = &state.security;
    if let (Some(status), Some(revoked)) = (
        security.user_status.get(user_id),
        security.session_revoked.get(sid),
    ) {
        return Ok((Some(status), revoked));
    }
    let (app, user, session) = (state.app.clone(), user_id.to_string(), sid.to_string());
    let read = detached(async move { app.users.auth_state(&user, &session).await }).await?;
    let Some((status, revoked)) = read else {
        return Ok((None, false));
    };
    security.user_status.put(user_id, status.clone());
    security.session_revoked.put(sid, revoked);
    Ok((Some(status), revoked))
}

fn session_revoked() -> ApiError {
    ApiError::new(
        ErrorCode::SessionRevoked,
        "this session was revoked; sign in again",
    )
}

/// Refuses access tokens of a revoked session (a reused refresh token revokes the session).
async fn check_session(state: &AppState, sid: &str) -> Result<(), ApiError> {
    let revoked = match state.security.session_revoked.get(sid) {
        Some(r) => r,
        None => {
            let (app, id) = (state.app.clone(), sid.to_string());
            let r = detached(async move { app.identity.session_revoked(&id).await }).await?;
            state.security.session_revoked.put(sid, r);
            r
        }
    };
    if revoked {
        return Err(session_revoked());
    }
    Ok(())
}

/// A signed-in user whose account is active.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub sid: String,
}

impl AuthUser {
    async fn extract(req: HttpRequest) -> Result<AuthUser, ApiError> {
        let state = state(&req)?;
        let claims = claims(&req, &state)?;
        if claims.role != Role::User {
            return Err(ApiError::forbidden("this route is for users"));
        }
        // The account's status first: a disabled user (whose sessions ended with the
        // disable) is told so, not just that the session ended.
        let (status, revoked) = user_and_session(&state, &claims.sub, &claims.sid).await?;
        match status.as_deref() {
            Some(USER_ACTIVE) => {
                if revoked {
                    return Err(session_revoked());
                }
                // Every later log line of the request carries the user (span field).
                tracing::Span::current().record("user_id", claims.sub.as_str());
                Ok(AuthUser {
                    user_id: claims.sub,
                    sid: claims.sid,
                })
            }
            Some(_) => {
                state.security.event("disabled_user_refused", &claims.sub);
                Err(user_disabled())
            }
            None => Err(ApiError::unauthorized("the account no longer exists")),
        }
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(AuthUser::extract(req.clone()))
    }
}

/// The session of a valid access token (user or admin), revoked or not: what signing out
/// needs, and nothing more.
#[derive(Debug, Clone)]
pub struct SessionOf {
    pub sid: String,
}

impl FromRequest for SessionOf {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            state(req).and_then(|state| claims(req, &state).map(|c| SessionOf { sid: c.sid })),
        )
    }
}

/// A signed-in admin whose account is active.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub admin_id: String,
}

impl AdminUser {
    async fn extract(req: HttpRequest) -> Result<AdminUser, ApiError> {
        let state = state(&req)?;
        let claims = claims(&req, &state)?;
        if claims.role != Role::Admin {
            state.security.event("forbidden", &claims.sub);
            return Err(ApiError::forbidden("this route is for admins"));
        }
        check_session(&state, &claims.sid).await?;
        let status = match state.security.admin_status.get(&claims.sub) {
            Some(s) => Some(s),
            None => {
                let (app, id) = (state.app.clone(), claims.sub.clone());
                let s = detached(async move { app.identity.admin_status(&id).await }).await?;
                if let Some(s) = &s {
                    state.security.admin_status.put(&claims.sub, s.clone());
                }
                s
            }
        };
        match status.as_deref() {
            Some(ADMIN_ACTIVE) => Ok(AdminUser {
                admin_id: claims.sub,
            }),
            Some(_) => Err(ApiError::forbidden("this admin account is disabled")),
            None => Err(ApiError::unauthorized("the account no longer exists")),
        }
    }
}

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(AdminUser::extract(req.clone()))
    }
}

/// What a merchant route needs: the permission of the role table
/// (`domain::staff::MerchantRole::allows`), whether it changes something, and whether the
/// merchant must be approved. One marker type per kind of route, named in its extractor:
/// `Member<CanRefund>`.
pub trait Need: 'static {
    const PERMISSION: Permission;
    /// Changes something or moves money: a staff member's role is read from the database
    /// now, not taken from the access token, so a removal or demotion takes effect at once.
    const CHANGES: bool;
    /// Only an approved merchant (403 `MERCHANT_NOT_APPROVED` otherwise).
    const APPROVED: bool;
}

macro_rules! needs {
    ($($(#[$doc:meta])* $name:ident = ($perm:ident, changes: $changes:literal, approved: $approved:literal);)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Need for $name {
                const PERMISSION: Permission = Permission::$perm;
                const CHANGES: bool = $changes;
                const APPROVED: bool = $approved;
            }
        )*
    };
}

needs! {
    /// The orders list (a cashier's is today's only).
    CanReadOrders = (Orders, changes: false, approved: true);
    CanRefund = (Refund, changes: true, approved: true);
    CanCreateCodes = (Codes, changes: true, approved: true);
    /// List and print payment codes, whatever the merchant's status.
    CanReadCodes = (Codes, changes: false, approved: false);
    CanChangeCodes = (Codes, changes: true, approved: false);
    CanReadStats = (Stats, changes: false, approved: true);
    /// Settlements: a disabled merchant still reads what it was paid.
    CanReadSettlements = (Settlements, changes: false, approved: false);
    CanReadStaff = (Staff, changes: false, approved: false);
    CanManageStaff = (Staff, changes: true, approved: false);
}

/// A member of the merchant named by the path's `{id}` whose role allows what `N` needs.
///
/// The owner is the merchant's `owner_user_id` (read through the 2 s status cache; ownership
/// never moves). A staff member's role comes from the access token's memberships for reads,
/// and from the database, read now, for changes ([`Need::CHANGES`]); a merchant the token
/// does not list (joined after sign-in, or beyond the token's cap) is looked up in the
/// database. Someone who is not a member is answered like a missing merchant (404
/// `MERCHANT_NOT_FOUND`: ids are not confirmed); a member whose role does not allow the
/// route is 403 `FORBIDDEN`.
#[derive(Debug, Clone)]
pub struct Member<N: Need> {
    pub user: AuthUser,
    pub merchant_id: String,
    pub status: String,
    pub role: MerchantRole,
    _need: PhantomData<N>,
}

impl<N: Need> Member<N> {
    async fn extract(req: HttpRequest) -> Result<Member<N>, ApiError> {
        let user = AuthUser::extract(req.clone()).await?;
        let state = state(&req)?;
        let claims = claims(&req, &state)?;
        let merchant_id = req.match_info().get("id").unwrap_or_default().to_string();
        let not_found = || ApiError::new(ErrorCode::MerchantNotFound, "no such merchant");
        let Some(access) = merchant_access(&state, &merchant_id).await? else {
            return Err(not_found());
        };
        let role = if access.owner_user_id == user.user_id {
            Some(MerchantRole::Owner)
        } else {
            let listed = claims
                .merchant_role(&merchant_id)
                .filter(|r| *r != MerchantRole::Owner);
            match listed {
                Some(r) if !N::CHANGES => Some(r),
                _ => {
                    let (app, m, u) =
                        (state.app.clone(), merchant_id.clone(), user.user_id.clone());
                    detached(async move { app.staff.role(&m, &u).await }).await?
                }
            }
        };
        let Some(role) = role else {
            state.security.event("forbidden", &merchant_id);
            return Err(not_found());
        };
        if !role.allows(N::PERMISSION) {
            state.security.event("forbidden", &merchant_id);
            return Err(ApiError::forbidden(format!(
                "your role at this merchant ({}) does not allow this",
                role.as_str()
            )));
        }
        if N::APPROVED && access.status != MERCHANT_APPROVED {
            return Err(ApiError::new(
                ErrorCode::MerchantNotApproved,
                format!("the merchant is {}, not approved", access.status),
            ));
        }
        tracing::Span::current().record("merchant_id", merchant_id.as_str());
        Ok(Member {
            user,
            merchant_id,
            status: access.status,
            role,
            _need: PhantomData,
        })
    }
}

impl<N: Need> FromRequest for Member<N> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Member::<N>::extract(req.clone()))
    }
}

/// A request signed with the session's `sign_key`, its nonce not seen before. Holds the body.
pub struct Signed {
    body: Bytes,
}

impl Signed {
    /// The body as JSON of type `T`, with the API's error codes.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let err = if e.is_data() {
                ApiError::validation(format!("invalid field: {e}"))
            } else {
                ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {e}"))
            };
            err.with_cause(anyhow::anyhow!("{e}"))
        })
    }

    async fn extract(
        req: HttpRequest,
        body: Result<Bytes, actix_web::Error>,
    ) -> Result<Signed, ApiError> {
        let state = state(&req)?;
        let claims = claims(&req, &state)?;
        let body = body.map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {JSON_LIMIT} bytes"),
            )
        })?;
        if !body.is_empty() {
            let json = req
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "expected Content-Type: application/json",
                ));
            }
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (timestamp, nonce, signature) = (
            header("x-timestamp"),
            header("x-nonce"),
            header("x-signature"),
        );
        let path_with_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| req.path().to_string());
        let parts = SignedParts {
            method: req.method().as_str(),
            path_with_query: &path_with_query,
            timestamp: &timestamp,
            nonce: &nonce,
            body: &body,
            signature: &signature,
        };
        let sign_key = state.security.tokens.sign_key(&claims.sid);
        let now = chrono::Utc::now().timestamp();
        let keep_secs = match signing::verify(&sign_key, &parts, now) {
            Ok(keep) => keep,
            Err(SignatureError::Expired) => {
                state.security.event("expired_signature", &claims.sub);
                return Err(ApiError::new(
                    ErrorCode::SignatureExpired,
                    "X-Timestamp is more than 300 s from the server clock",
                ));
            }
            Err(SignatureError::Invalid(why)) => {
                state.security.event("bad_signature", &claims.sub);
                return Err(ApiError::new(ErrorCode::SignatureInvalid, why));
            }
            Err(SignatureError::Replayed) => return Err(replayed()),
        };
        let fresh = state
            .security
            .nonces
            .remember(&claims.sid, &nonce, keep_secs)
            .await
            .map_err(|e| {
                ApiError::new(ErrorCode::NonceStoreUnavailable, "retry shortly").with_cause(e)
            })?;
        if !fresh {
            state.security.event("replayed_nonce", &claims.sub);
            return Err(replayed());
        }
        Ok(Signed { body })
    }
}

fn replayed() -> ApiError {
    ApiError::new(ErrorCode::ReplayedRequest, "this nonce was used before")
}

impl FromRequest for Signed {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_body(&mut payload).await;
            Signed::extract(req, body).await
        })
    }
}

async fn read_body(payload: &mut Payload) -> Result<Bytes, actix_web::Error> {
    use futures_util::StreamExt;
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > JSON_LIMIT {
            return Err(actix_web::error::ErrorPayloadTooLarge("too large"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Applies a rate limit for `key`; a refusal is a 429 `RATE_LIMITED` with `Retry-After`, and a
/// security event.
pub async fn rate_limit(
    state: &AppState,
    limiter: &RateLimiter,
    key: &str,
) -> Result<(), ApiError> {
    limiter.check(key).await.map_err(|limited: RateLimited| {
        state.security.event("rate_limited", limited.limit);
        ApiError::new(
            ErrorCode::RateLimited,
            format!("too many requests; retry in {} s", limited.retry_after_secs),
        )
        .with_retry_after(limited.retry_after_secs)
    })
}

/// A display text field of a request body (a name, a label, a reason): trimmed, 1..=`max`
/// characters, no control or bidirectional formatting characters (422 otherwise).
pub fn text_field(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    crate::domain::text::display_text(value, max)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "{name} must be 1-{max} characters without control or bidirectional formatting characters"
            ))
        })
}
