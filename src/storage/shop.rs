//! Read-only lookups the payment path needs about codes, merchants and payers.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{merchants, payment_codes, users};
use super::{Db, StorageError};
use crate::with_conn;

/// A payment code as the payment path sees it.
#[derive(Debug, Clone)]
pub struct CodeForPayment {
    pub merchant_id: String,
    pub merchant_name: String,
    pub label: String,
    pub amount_fen: Option<i64>,
    pub code_active: bool,
    pub merchant_active: bool,
}

/// What the create step reads before it writes.
pub struct PaymentContext {
    pub code: CodeForPayment,
    pub openid: Option<String>,
    pub ip_known: bool,
    pub retry: bool,
}

/// Everything the create step reads before it writes, in one round trip: the code with its
/// merchant, the payer's openid (an active user only), whether the payer has logged in from
/// `ip` before, and whether `idempotency_key` already made an order (a retry). `None` when
/// the code does not exist.
pub async fn payment_context(
    db: &Db,
    code_id: &str,
    user_id: &str,
    ip: &str,
    idempotency_key: &str,
) -> Result<Option<PaymentContext>, StorageError> {
    use super::schema::{payment_orders, user_login_ips};
    use diesel::dsl::exists;
    type Row = (CodeColumns, Option<String>, bool, bool);
    let mut conn = db.conn().await?;
    let row: Option<Row> = with_conn!(&mut conn, |c| {
        payment_codes::table
            .inner_join(merchants::table.on(merchants::id.eq(payment_codes::merchant_id)))
            .filter(payment_codes::id.eq(code_id))
            .select((
                (
                    payment_codes::merchant_id,
                    merchants::merchant_name,
                    payment_codes::label,
                    payment_codes::amount_fen,
                    payment_codes::status,
                    merchants::status,
                ),
                users::table
                    .filter(users::id.eq(user_id))
                    .filter(users::status.eq("active"))
                    .select(users::openid)
                    .single_value(),
                exists(
                    user_login_ips::table
                        .filter(user_login_ips::user_id.eq(user_id))
                        .filter(user_login_ips::ip.eq(ip)),
                ),
                exists(
                    payment_orders::table
                        .filter(payment_orders::user_id.eq(user_id))
                        .filter(payment_orders::idempotency_key.eq(idempotency_key)),
                ),
            ))
            .first(c)
            .await
            .optional()
    })?;
    Ok(row.map(|(code, openid, ip_known, retry)| PaymentContext {
        code: code_for_payment(code),
        openid,
        ip_known,
        retry,
    }))
}

type CodeColumns = (String, String, String, Option<i64>, String, String);

fn code_for_payment(
    (merchant_id, merchant_name, label, amount_fen, code_status, merchant_status): CodeColumns,
) -> CodeForPayment {
    CodeForPayment {
        merchant_id,
        merchant_name,
        label,
        amount_fen,
        code_active: code_status == "active",
        merchant_active: merchant_status == "approved",
    }
}

/// The payer's openid, for an active user only.
pub async fn openid_of(db: &Db, user_id: &str) -> Result<Option<String>, StorageError> {
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        users::table
            .filter(users::id.eq(user_id))
            .filter(users::status.eq("active"))
            .select(users::openid)
            .first(c)
            .await
            .optional()
    })?)
}

/// Merchant names by id, for order listings (one query for a page).
pub async fn merchant_names(
    db: &Db,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, StorageError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let mut conn = db.conn().await?;
    let rows: Vec<(String, String)> = with_conn!(&mut conn, |c| {
        merchants::table
            .filter(merchants::id.eq_any(ids))
            .select((merchants::id, merchants::merchant_name))
            .load(c)
            .await
    })?;
    Ok(rows.into_iter().collect())
}

/// Points awarded per order number (the ledger's award rows; `source_type = 'order'`).
pub async fn points_for_orders(
    db: &Db,
    order_nos: &[String],
) -> Result<std::collections::HashMap<String, i64>, StorageError> {
    use super::schema::points_records;
    if order_nos.is_empty() {
        return Ok(Default::default());
    }
    let mut conn = db.conn().await?;
    let rows: Vec<(String, i64)> = with_conn!(&mut conn, |c| {
        points_records::table
            .filter(points_records::source_type.eq("order"))
            .filter(points_records::source_id.eq_any(order_nos))
            .select((points_records::source_id, points_records::points_change))
            .load(c)
            .await
    })?;
    Ok(rows.into_iter().collect())
}

/// Orders a user created since `since` (for the payment velocity rule).
pub async fn payments_since(
    db: &Db,
    user_id: &str,
    since: chrono::NaiveDateTime,
) -> Result<i64, StorageError> {
    use super::schema::payment_orders;
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        payment_orders::table
            .filter(payment_orders::user_id.eq(user_id))
            .filter(payment_orders::created_at.ge(since))
            .count()
            .get_result(c)
            .await
    })?)
}

/// The enabled risk rules as stored: (name, condition JSON, action, priority).
pub async fn risk_rules(db: &Db) -> Result<Vec<(String, String, String, i32)>, StorageError> {
    use super::schema::risk_rules;
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        risk_rules::table
            .filter(risk_rules::enabled.eq(true))
            .select((
                risk_rules::name,
                risk_rules::condition_json,
                risk_rules::action,
                risk_rules::priority,
            ))
            .load(c)
            .await
    })?)
}

/// A stored risk rule, as the admin sees and edits it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::risk_rules)]
pub struct RiskRuleRow {
    pub id: String,
    pub name: String,
    pub condition_json: String,
    pub action: String,
    pub priority: i32,
    pub enabled: bool,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

/// Every risk rule, enabled or not, by priority.
pub async fn all_risk_rules(db: &Db) -> Result<Vec<RiskRuleRow>, StorageError> {
    use super::schema::risk_rules;
    let mut conn = db.conn().await?;
    Ok(with_conn!(&mut conn, |c| {
        risk_rules::table
            .select(RiskRuleRow::as_select())
            .order((risk_rules::priority.asc(), risk_rules::name.asc()))
            .load(c)
            .await
    })?)
}

/// Replaces a rule's condition, action, priority and switch with `next` (checked by the
/// caller against what it read in `decide`) and writes the audit row, in one transaction;
/// `None` when there is no such rule. `decide` gets the row as it is under the lock and
/// answers the new values or a refusal.
pub async fn change_risk_rule_audited<E>(
    db: &Db,
    id: &str,
    mut audit: super::admins::AuditRow,
    describe: fn(&RiskRuleRow) -> String,
    decide: impl Fn(&RiskRuleRow) -> Result<RiskRuleRow, E> + Send + Sync,
) -> Result<Option<Result<RiskRuleRow, E>>, StorageError>
where
    E: Send,
{
    use super::schema::{audit_log, risk_rules};
    let mut conn = db.write_conn().await?;
    let t = super::users::now();
    Ok(with_conn!(&mut conn, |c| {
        c.transaction::<_, diesel::result::Error, _>(async |c| {
            // Lock first (the row on MySQL, the database on SQLite).
            diesel::update(risk_rules::table.find(id))
                .set(risk_rules::updated_at.eq(risk_rules::updated_at))
                .execute(c)
                .await?;
            let before: Option<RiskRuleRow> = risk_rules::table
                .find(id)
                .select(RiskRuleRow::as_select())
                .first(c)
                .await
                .optional()?;
            let Some(before) = before else {
                return Ok(None);
            };
            let next = match decide(&before) {
                Ok(next) => next,
                Err(e) => return Ok(Some(Err(e))),
            };
            diesel::update(risk_rules::table.find(id))
                .set((
                    risk_rules::condition_json.eq(&next.condition_json),
                    risk_rules::action.eq(&next.action),
                    risk_rules::priority.eq(next.priority),
                    risk_rules::enabled.eq(next.enabled),
                    risk_rules::updated_at.eq(t),
                ))
                .execute(c)
                .await?;
            let after: RiskRuleRow = risk_rules::table
                .find(id)
                .select(RiskRuleRow::as_select())
                .first(c)
                .await?;
            audit.before_json = Some(describe(&before));
            audit.after_json = Some(describe(&after));
            diesel::insert_into(audit_log::table)
                .values(&audit)
                .execute(c)
                .await?;
            Ok(Some(Ok(after)))
        })
        .await
    })?)
}
