//! Merchant staff: the owner invites managers and cashiers by one-time codes, lists them,
//! changes their role or removes them; a signed-in user redeems a code to join. Every
//! change is audited in its own transaction. Also what authorization reads: a user's
//! memberships (for the access token) and one membership (re-checked before changes).

use chrono::{DateTime, Duration, Utc};
use rand::RngExt as _;
use serde::Serialize;
use utoipa::ToSchema;

use super::audit::{self, Actor, Audit};
use super::error::{AppError, ErrorCode};
use crate::domain::staff::{MerchantRole, format_invite_code, normalize_invite_code};
use crate::security::crypto::sha256_hex;
use crate::security::tokens::{MAX_TOKEN_MEMBERSHIPS, Membership};
use crate::storage::Db;
use crate::storage::merchants as merchant_store;
use crate::storage::staff::{self as store, InviteInsert, InviteRow, Redeemed};
use crate::storage::users::now;

/// How long an invite code can be redeemed.
pub const INVITE_TTL_HOURS: i64 = 72;
/// Pending invites one merchant may have at once: bounds what a leaked owner session can
/// spray, and keeps the list readable.
pub const MAX_PENDING_INVITES: i64 = 20;

/// A new invite: the code is shown this once (only its hash is kept).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvite {
    pub id: String,
    /// `XXXX-XXXX-XXXX` (Crockford base32, 60 random bits); case, spaces and dashes are
    /// ignored when redeeming, and O/I/L read as 0/1/1.
    pub code: String,
    /// `manager` or `cashier`.
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

/// A pending invite as its merchant's owner lists it (without the code).
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingInvite {
    pub id: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<InviteRow> for PendingInvite {
    fn from(i: InviteRow) -> Self {
        PendingInvite {
            id: i.id,
            role: i.role,
            created_by: i.created_by,
            created_at: i.created_at.and_utc(),
            expires_at: i.expires_at.and_utc(),
        }
    }
}

/// A staff member as the owner sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffMember {
    pub user_id: String,
    pub nickname: Option<String>,
    /// `manager` or `cashier`.
    pub role: String,
    pub invited_by: String,
    pub joined_at: DateTime<Utc>,
}

/// What redeeming a code gives: the merchant joined and the role there.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinedMerchant {
    pub merchant_id: String,
    pub merchant_name: String,
    /// `manager` or `cashier`.
    pub role: String,
}

fn invite_invalid() -> AppError {
    AppError::new(
        ErrorCode::InviteInvalid,
        "no such invite code, or it was used, revoked or expired",
    )
}

fn staff_not_found() -> AppError {
    AppError::new(ErrorCode::StaffNotFound, "no such staff member")
}

/// The stored form of a code: SHA-256 of its canonical form, under a purpose tag.
fn code_hash(normalized: &str) -> String {
    sha256_hex(format!("points-app/staff-invite/v1:{normalized}").as_bytes())
}

fn role_of_row(role: &str) -> Result<MerchantRole, AppError> {
    MerchantRole::parse_staff(role).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "merchant_staff holds an unknown role {role}"
        ))
    })
}

#[derive(Clone)]
pub struct Staff {
    db: Db,
}

impl Staff {
    pub fn new(db: Db) -> Staff {
        Staff { db }
    }

    /// The staff role of `user_id` at `merchant_id`, read now (not the owner: that is the
    /// merchant's row). One primary-key lookup.
    pub async fn role(
        &self,
        merchant_id: &str,
        user_id: &str,
    ) -> Result<Option<MerchantRole>, AppError> {
        match store::role_of(&self.db, merchant_id, user_id).await? {
            Some(r) => Ok(Some(role_of_row(&r)?)),
            None => Ok(None),
        }
    }

    /// What the user's access token carries: the merchants they own, then those they work
    /// at (oldest first), at most [`MAX_TOKEN_MEMBERSHIPS`].
    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>, AppError> {
        let owned = merchant_store::list_by_owner(&self.db, user_id).await?;
        let mut out: Vec<Membership> = owned
            .into_iter()
            .map(|m| (m.id, MerchantRole::Owner))
            .take(MAX_TOKEN_MEMBERSHIPS)
            .collect();
        let room = MAX_TOKEN_MEMBERSHIPS.saturating_sub(out.len());
        if room > 0 {
            let limit = i64::try_from(room).unwrap_or(0);
            for (merchant_id, role) in store::memberships(&self.db, user_id, limit).await? {
                out.push((merchant_id, role_of_row(&role)?));
            }
        }
        Ok(out)
    }

    /// The merchants `user_id` works at as staff, with their role (the owned ones come from
    /// `Merchants::of_owner`).
    pub async fn merchants_of_member(
        &self,
        user_id: &str,
    ) -> Result<Vec<(crate::storage::merchants::MerchantRow, MerchantRole)>, AppError> {
        store::merchants_of_member(&self.db, user_id)
            .await?
            .into_iter()
            .map(|(m, r)| Ok((m, role_of_row(&r)?)))
            .collect()
    }

    /// A new invite for `role` (manager or cashier) at the owner's merchant.
    pub async fn invite(
        &self,
        actor: &Actor,
        merchant_id: &str,
        role: MerchantRole,
    ) -> Result<CreatedInvite, AppError> {
        if role == MerchantRole::Owner {
            return Err(AppError::validation("role must be manager or cashier"));
        }
        let random: u64 = rand::rng().random::<u64>() >> 4;
        let code = format_invite_code(random);
        let normalized = normalize_invite_code(&code)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a made code is not a code")))?;
        let t = now();
        let row = InviteRow {
            id: uuid::Uuid::now_v7().to_string(),
            code_hash: code_hash(&normalized),
            merchant_id: merchant_id.to_string(),
            role: role.as_str().to_string(),
            created_by: actor.id.clone(),
            created_at: t,
            expires_at: t + Duration::hours(INVITE_TTL_HOURS),
            redeemed_by: None,
            redeemed_at: None,
            revoked_at: None,
        };
        let target = ("merchant", merchant_id);
        let audit_row = Audit::row(actor, "staff.invite", target);
        match store::insert_invite(&self.db, &row, MAX_PENDING_INVITES, t, audit_row).await? {
            InviteInsert::Inserted => {
                audit::logged(actor, "staff.invite", target);
                Ok(CreatedInvite {
                    id: row.id,
                    code,
                    role: row.role,
                    expires_at: row.expires_at.and_utc(),
                })
            }
            InviteInsert::AtCap => Err(AppError::new(
                ErrorCode::TooManyInvites,
                format!(
                    "this merchant has {MAX_PENDING_INVITES} pending invites; revoke one first"
                ),
            )),
        }
    }

    /// The merchant's pending invites, newest first.
    pub async fn pending(&self, merchant_id: &str) -> Result<Vec<PendingInvite>, AppError> {
        Ok(store::pending_invites(&self.db, merchant_id, now())
            .await?
            .into_iter()
            .map(PendingInvite::from)
            .collect())
    }

    /// Revokes a pending invite of the merchant (404 when there is no pending one).
    pub async fn revoke(
        &self,
        actor: &Actor,
        merchant_id: &str,
        invite_id: &str,
    ) -> Result<(), AppError> {
        let target = ("merchant", merchant_id);
        let audit_row = Audit::row(actor, "staff.invite_revoke", target);
        if invite_id.len() > 64
            || !store::revoke_invite(&self.db, merchant_id, invite_id, now(), audit_row).await?
        {
            return Err(AppError::new(
                ErrorCode::InviteNotFound,
                "no pending invite with this id",
            ));
        }
        audit::logged(actor, "staff.invite_revoke", target);
        Ok(())
    }

    /// Redeems a code for the actor (a user): they join the merchant with the invite's role.
    /// Redeeming the same code again while still staff through it answers the same (a retry
    /// after a lost answer).
    /// Any code that does not admit them (malformed, unknown, used, revoked, expired) is the
    /// same `INVITE_INVALID`; their own merchant's code, or one of a merchant they already
    /// work at, is 409 `ALREADY_STAFF` and the invite stays pending.
    pub async fn redeem(&self, actor: &Actor, typed: &str) -> Result<JoinedMerchant, AppError> {
        let normalized = normalize_invite_code(typed).ok_or_else(invite_invalid)?;
        let audit_row = Audit::row(actor, "staff.join", ("merchant", ""));
        let outcome = match store::redeem(
            &self.db,
            &code_hash(&normalized),
            &actor.id,
            now(),
            audit_row,
        )
        .await
        {
            Ok(o) => o,
            Err(e) if e.is_unique_violation() => {
                return Err(AppError::new(
                    ErrorCode::AlreadyStaff,
                    "you already work at this merchant",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let invite = match outcome {
            Redeemed::Invalid => return Err(invite_invalid()),
            Redeemed::Again(invite) => return self.joined(invite).await,
            Redeemed::Owner(_) => {
                return Err(AppError::new(
                    ErrorCode::AlreadyStaff,
                    "you own this merchant; pass the code to the person joining",
                ));
            }
            Redeemed::AlreadyStaff(_, role) => {
                return Err(AppError::new(
                    ErrorCode::AlreadyStaff,
                    format!("you already work at this merchant as {role}"),
                ));
            }
            Redeemed::Joined(invite) => invite,
        };
        audit::logged(actor, "staff.join", ("merchant", &invite.merchant_id));
        self.joined(invite).await
    }

    async fn joined(&self, invite: InviteRow) -> Result<JoinedMerchant, AppError> {
        let merchant_name = merchant_store::find(&self.db, &invite.merchant_id)
            .await?
            .map(|m| m.merchant_name)
            .unwrap_or_default();
        Ok(JoinedMerchant {
            merchant_id: invite.merchant_id,
            merchant_name,
            role: invite.role,
        })
    }

    /// The merchant's staff, oldest first.
    pub async fn list(&self, merchant_id: &str) -> Result<Vec<StaffMember>, AppError> {
        Ok(store::list(&self.db, merchant_id)
            .await?
            .into_iter()
            .map(|(s, nickname)| StaffMember {
                user_id: s.user_id,
                nickname,
                role: s.role,
                invited_by: s.invited_by,
                joined_at: s.created_at.and_utc(),
            })
            .collect())
    }

    /// Gives a staff member another role (manager or cashier); 404 when not staff here.
    pub async fn change_role(
        &self,
        actor: &Actor,
        merchant_id: &str,
        user_id: &str,
        role: MerchantRole,
    ) -> Result<(), AppError> {
        if role == MerchantRole::Owner {
            return Err(AppError::validation("role must be manager or cashier"));
        }
        let target = ("merchant", merchant_id);
        let audit_row = Audit::row(actor, "staff.role", target);
        store::change_role(
            &self.db,
            merchant_id,
            user_id,
            role.as_str(),
            now(),
            audit_row,
        )
        .await?
        .ok_or_else(staff_not_found)?;
        audit::logged(actor, "staff.role", target);
        Ok(())
    }

    /// Removes a staff member; 404 when not staff here.
    pub async fn remove(
        &self,
        actor: &Actor,
        merchant_id: &str,
        user_id: &str,
    ) -> Result<(), AppError> {
        let target = ("merchant", merchant_id);
        let audit_row = Audit::row(actor, "staff.remove", target);
        store::remove(&self.db, merchant_id, user_id, audit_row)
            .await?
            .ok_or_else(staff_not_found)?;
        audit::logged(actor, "staff.remove", target);
        Ok(())
    }
}
