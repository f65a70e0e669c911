//! Merchants: registration (capped per user), the owner's merchants and payment codes, what
//! a shopper sees after scanning, and the admin's review.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::audit::{self, Actor, Audit};
use super::error::{AppError, ErrorCode};
use super::page::{PageRequest, Paged};
use super::users::stale_plaintext;
use crate::cache::{Cache, Kind, L1};
use crate::security::{MerchantAccess, Phone, SecurityState};
use crate::storage::Db;
use crate::storage::merchants::{
    self as store, CODE_ACTIVE, CappedInsert, MerchantRow, PaymentCodeRow, Reviewed,
};
use crate::storage::users::now;

pub use crate::storage::merchants::{MERCHANT_APPROVED, MERCHANT_DISABLED, MERCHANT_PENDING};

/// The largest fixed amount a payment code may carry: 1,000,000 yuan (the rules' order cap).
pub const MAX_CODE_AMOUNT_FEN: i64 = 100_000_000;
/// How many merchants one user may register: bounds what one account can create.
pub const MAX_MERCHANTS_PER_USER: i64 = 20;

/// A merchant as its owner and admins see it (the contact phone masked).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MerchantView)]
pub struct Merchant {
    pub id: String,
    pub owner_user_id: String,
    pub merchant_name: String,
    pub contact_name: String,
    /// Masked.
    pub contact_phone: String,
    pub business_license: String,
    pub address: String,
    /// `pending`, `approved` or `disabled`.
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub reviewed_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<MerchantRow> for Merchant {
    fn from(m: MerchantRow) -> Self {
        Merchant {
            id: m.id,
            owner_user_id: m.owner_user_id,
            merchant_name: m.merchant_name,
            contact_name: m.contact_name,
            contact_phone: m.contact_phone_masked,
            business_license: m.business_license,
            address: m.address,
            status: m.status,
            created_at: m.created_at.and_utc(),
            reviewed_at: m.reviewed_at.map(|t| t.and_utc()),
        }
    }
}

/// A merchant of the caller's, with their role there (`owner`, `manager` or `cashier`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MyMerchant {
    #[serde(flatten)]
    pub merchant: Merchant,
    pub role: String,
}

/// A registration, its fields already checked.
#[derive(Debug)]
pub struct NewMerchant {
    pub merchant_name: String,
    pub contact_name: String,
    pub contact_phone: Phone,
    pub business_license: String,
    pub address: String,
}

/// A payment code of a merchant.
#[derive(Debug)]
pub struct PaymentCode {
    pub id: String,
    pub merchant_id: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<PaymentCodeRow> for PaymentCode {
    fn from(c: PaymentCodeRow) -> Self {
        PaymentCode {
            id: c.id,
            merchant_id: c.merchant_id,
            label: c.label,
            amount_fen: c.amount_fen,
            status: c.status,
            created_at: c.created_at.and_utc(),
        }
    }
}

/// What a shopper sees after scanning.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScannedCode {
    pub code_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    /// False when the code or its merchant is disabled: no payment possible.
    pub active: bool,
}

/// An admin's review decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Pending or disabled to approved.
    Approve,
    /// Pending or approved to disabled.
    Disable,
}

impl Review {
    fn allowed_from(self) -> &'static [&'static str] {
        match self {
            Review::Approve => &[MERCHANT_PENDING, MERCHANT_DISABLED],
            Review::Disable => &[MERCHANT_PENDING, MERCHANT_APPROVED],
        }
    }

    fn to_status(self) -> &'static str {
        match self {
            Review::Approve => MERCHANT_APPROVED,
            Review::Disable => MERCHANT_DISABLED,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Review::Approve => "approve",
            Review::Disable => "disable",
        }
    }
}

fn merchant_not_found() -> AppError {
    AppError::new(ErrorCode::MerchantNotFound, "no such merchant")
}

/// The scan cache's key (the merchant kind's L1 also holds merchant ids).
fn scan_key(code_id: &str) -> String {
    format!("code:{code_id}")
}

fn code_not_found() -> AppError {
    AppError::new(ErrorCode::PaymentCodeNotFound, "no such payment code")
}

pub(crate) fn contact_aad(merchant_id: &str) -> String {
    format!("merchants.contact_phone:{merchant_id}")
}

/// The audit record of a review: the status before and after.
fn review_audit_json(m: &MerchantRow) -> String {
    serde_json::json!({"status": m.status}).to_string()
}

#[derive(Clone)]
pub struct Merchants {
    db: Db,
    security: Arc<SecurityState>,
    /// Scanned codes by code id (L1, the merchant kind's TTL): every shopper's first call.
    /// Dropped on every instance when the code is disabled or its merchant reviewed; the
    /// payment itself always reads the code and merchant afresh.
    scans: Arc<L1<ScannedCode>>,
}

impl Merchants {
    pub fn new(db: Db, security: Arc<SecurityState>, cache: &Cache) -> Merchants {
        Merchants {
            db,
            security,
            scans: Arc::new(cache.l1(Kind::Merchant)),
        }
    }

    /// Forgets the cached scans of these codes, here and on the other instances.
    async fn forget_scans(&self, code_ids: impl IntoIterator<Item = String>) {
        for id in code_ids {
            self.scans.invalidate(&scan_key(&id)).await;
        }
    }

    /// Registers a merchant (pending review) for `owner`, unless they already have
    /// [`MAX_MERCHANTS_PER_USER`]: the count and the insert are one transaction holding the
    /// owner's lock, so concurrent registrations cannot pass the cap together.
    pub async fn register(&self, owner: &str, m: NewMerchant) -> Result<Merchant, AppError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (key_id, cipher) = self
            .security
            .fields
            .encrypt(m.contact_phone.as_str(), &contact_aad(&id))
            .map_err(AppError::internal)?;
        let t = now();
        let row = MerchantRow {
            id,
            owner_user_id: owner.to_string(),
            merchant_name: m.merchant_name,
            contact_name: m.contact_name,
            contact_phone_cipher: cipher,
            contact_phone_key_id: key_id,
            contact_phone_masked: m.contact_phone.masked(),
            business_license: m.business_license,
            address: m.address,
            status: MERCHANT_PENDING.to_string(),
            reviewed_by: None,
            reviewed_at: None,
            created_at: t,
            updated_at: t,
        };
        match store::insert_capped(&self.db, &row, MAX_MERCHANTS_PER_USER).await? {
            CappedInsert::Inserted => {
                tracing::info!(category = "business", merchant_id = %row.id, "merchant registered");
                Ok(Merchant::from(row))
            }
            CappedInsert::AtCap => Err(AppError::new(
                ErrorCode::TooManyMerchants,
                "this account has registered the most merchants allowed",
            )),
        }
    }

    /// Re-encrypts a contact phone stored under a retired key (lazy rotation).
    async fn rotate_contact(&self, m: &MerchantRow) -> Result<(), AppError> {
        let fields = &self.security.fields;
        let aad = contact_aad(&m.id);
        let Some(plain) = stale_plaintext(
            fields,
            &m.contact_phone_key_id,
            &m.contact_phone_cipher,
            &aad,
        )?
        else {
            return Ok(());
        };
        let (key_id, cipher) = fields.encrypt(&plain, &aad).map_err(AppError::internal)?;
        store::rekey_contact_phone(
            &self.db,
            &m.id,
            (&m.contact_phone_key_id, &m.contact_phone_cipher),
            &key_id,
            &cipher,
        )
        .await?;
        Ok(())
    }

    /// The owner's merchants (at most 100, newest first).
    pub async fn of_owner(&self, owner: &str) -> Result<Vec<Merchant>, AppError> {
        let rows = store::list_by_owner(&self.db, owner).await?;
        for m in &rows {
            self.rotate_contact(m).await?;
        }
        Ok(rows.into_iter().map(Merchant::from).collect())
    }

    /// The merchants the user owns (first, newest first) or works at (newest first), each
    /// with their role there.
    pub async fn of_member(&self, user_id: &str) -> Result<Vec<MyMerchant>, AppError> {
        let owned = self.of_owner(user_id).await?;
        let staffed = crate::storage::staff::merchants_of_member(&self.db, user_id).await?;
        let mut out: Vec<MyMerchant> = owned
            .into_iter()
            .map(|merchant| MyMerchant {
                merchant,
                role: crate::domain::staff::MerchantRole::Owner
                    .as_str()
                    .to_string(),
            })
            .collect();
        for (m, role) in staffed {
            self.rotate_contact(&m).await?;
            out.push(MyMerchant {
                merchant: Merchant::from(m),
                role,
            });
        }
        Ok(out)
    }

    /// Owner and status of a merchant, for authorization.
    pub async fn access(&self, merchant_id: &str) -> Result<Option<MerchantAccess>, AppError> {
        Ok(store::find(&self.db, merchant_id)
            .await?
            .map(|m| MerchantAccess {
                owner_user_id: m.owner_user_id,
                status: m.status,
            }))
    }

    /// Merchants for the admin, optionally of one status, newest first.
    pub async fn list(
        &self,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Paged<Merchant>, AppError> {
        if let Some(s) = status
            && ![MERCHANT_PENDING, MERCHANT_APPROVED, MERCHANT_DISABLED].contains(&s)
        {
            return Err(AppError::validation(
                "status must be pending, approved or disabled",
            ));
        }
        let rows = store::list_by_status(&self.db, status, page.cursor(), page.fetch()).await?;
        Ok(Paged::from_rows(rows, page, |m| m.id.clone()).map(Merchant::from))
    }

    /// Approves or disables a merchant. The change and its audit record commit together;
    /// authorization on this instance sees the new status at once.
    pub async fn review(
        &self,
        actor: &Actor,
        merchant_id: &str,
        review: Review,
    ) -> Result<Merchant, AppError> {
        let action = format!("merchant.{}", review.verb());
        let target = ("merchant", merchant_id);
        let outcome = store::transition_audited(
            &self.db,
            merchant_id,
            review.allowed_from(),
            review.to_status(),
            &actor.id,
            Audit::row(actor, &action, target),
            review_audit_json,
        )
        .await?;
        match outcome {
            Reviewed::NotFound => Err(merchant_not_found()),
            Reviewed::Refused(status) => Err(AppError::new(
                ErrorCode::InvalidMerchantStatus,
                format!("the merchant is {status}; cannot {}", review.verb()),
            )),
            Reviewed::Done(after) => {
                self.security.merchant_access.invalidate(merchant_id).await;
                // The review is done: a failed read only leaves scans to their TTL.
                match store::code_ids(&self.db, merchant_id).await {
                    Ok(ids) => self.forget_scans(ids).await,
                    Err(e) => {
                        tracing::warn!(category = "system", merchant_id, error = %e, "cached scans left to expire");
                    }
                }
                audit::logged(actor, &action, target);
                Ok(Merchant::from(*after))
            }
        }
    }

    /// One of the merchant's own codes with its merchant name (to print it). Another
    /// merchant's code answers like a missing one: ids are not confirmed.
    pub async fn owned_code(
        &self,
        merchant_id: &str,
        code_id: &str,
    ) -> Result<ScannedCode, AppError> {
        let code = self.scan(code_id).await?;
        if code.merchant_id != merchant_id {
            return Err(code_not_found());
        }
        Ok(code)
    }

    /// A new payment code of an approved merchant (the caller checked the label).
    pub async fn create_code(
        &self,
        merchant_id: &str,
        label: String,
        amount_fen: Option<i64>,
    ) -> Result<PaymentCode, AppError> {
        if amount_fen.is_some_and(|a| !(1..=MAX_CODE_AMOUNT_FEN).contains(&a)) {
            return Err(AppError::validation(format!(
                "amount_fen must be 1..{MAX_CODE_AMOUNT_FEN}"
            )));
        }
        let t = now();
        let row = PaymentCodeRow {
            id: uuid::Uuid::now_v7().to_string(),
            merchant_id: merchant_id.to_string(),
            label,
            amount_fen,
            status: CODE_ACTIVE.to_string(),
            created_at: t,
            updated_at: t,
        };
        store::insert_code(&self.db, &row).await?;
        Ok(PaymentCode::from(row))
    }

    /// A merchant's payment codes, newest first.
    pub async fn codes(
        &self,
        merchant_id: &str,
        page: &PageRequest,
    ) -> Result<Paged<PaymentCode>, AppError> {
        let rows = store::list_codes(&self.db, merchant_id, page.cursor(), page.fetch()).await?;
        Ok(Paged::from_rows(rows, page, |c| c.id.clone()).map(PaymentCode::from))
    }

    /// Disables one of the merchant's codes (404 when it is not theirs).
    pub async fn disable_code(
        &self,
        merchant_id: &str,
        code_id: &str,
    ) -> Result<PaymentCode, AppError> {
        if !store::disable_code(&self.db, merchant_id, code_id).await? {
            return Err(code_not_found());
        }
        self.forget_scans([code_id.to_string()]).await;
        let row = store::find_code(&self.db, code_id)
            .await?
            .ok_or_else(code_not_found)?;
        Ok(PaymentCode::from(row))
    }

    /// What a shopper sees after scanning a code.
    pub async fn scan(&self, code_id: &str) -> Result<ScannedCode, AppError> {
        if code_id.len() > 64 {
            return Err(code_not_found());
        }
        // A scan is one of every shopper's calls: cached, else one query.
        let key = scan_key(code_id);
        if let Some(scanned) = self.scans.get(&key) {
            return Ok(scanned);
        }
        let (code, merchant) = store::find_code_with_merchant(&self.db, code_id)
            .await?
            .ok_or_else(code_not_found)?;
        let scanned = ScannedCode {
            active: code.status == CODE_ACTIVE && merchant.status == MERCHANT_APPROVED,
            code_id: code.id,
            merchant_id: merchant.id,
            merchant_name: merchant.merchant_name,
            label: code.label,
            amount_fen: code.amount_fen,
        };
        self.scans.put(&key, scanned.clone());
        Ok(scanned)
    }
}
