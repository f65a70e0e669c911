//! Admin routes of trade-bill reconciliation: run a day now, list runs, one run with its
//! differences. A run is made by the payment actors; an admin's run and each of its repairs
//! are written to the audit log.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::actor;
use super::extract::AdminUser;
use super::page::PageQuery;
use super::payments::payment_error;
use super::{AppState, error::ApiError};
use crate::actors::payments::reconcile::{RunOutcome, Trigger, parse_bill_date};
use crate::app::audit::{Actor, Audit};
use crate::app::reconciliation::{RunDetail, RunView, detail};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The bill's day, `YYYY-MM-DD` (China Standard Time): not in the future, at most 90 days
    /// back.
    pub date: String,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub items: Vec<RunView>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/admin/reconciliation/runs", tag = "admin", security(("bearer" = [])),
    request_body = StartRun,
    responses(
        (status = 201, body = RunDetail, description = "The run, finished: `succeeded` with the differences found (orders paid at WeChat but not here were re-queried and paid through the payment path), or `failed` with the error when WeChat's bill could not be had or verified (nothing changed). A second run of a day is a new run and repairs nothing twice."),
        (status = 401), (status = 403),
        (status = 422, description = "VALIDATION_FAILED: a malformed date, a future date, or one older than 90 days"),
        (status = 503, description = "PAYMENTS_UNAVAILABLE: retry")))]
pub async fn start_run(
    req: HttpRequest,
    admin: AdminUser,
    body: web::Json<StartRun>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let date = parse_bill_date(&body.date, chrono::Utc::now())
        .map_err(|e| ApiError::validation(e.to_string()))?;
    let who = actor(&req, &admin);
    let (payments, audit) = (state.payments.clone(), state.app.audit.clone());
    // The run and its audit records finish even if the caller goes away meanwhile.
    let task = crate::telemetry::Trace::current().run(async move {
        let outcome = payments
            .reconcile_day(date, Trigger::Admin(who.id.clone()))
            .await
            .map_err(payment_error)?;
        record(&audit, &who, &outcome).await?;
        Ok::<_, ApiError>(outcome)
    });
    let outcome = actix_web::rt::spawn(task)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reconciliation task: {e}")))??;
    let run = &outcome.run;
    Ok(HttpResponse::Created().json(detail(run, &outcome.discrepancies)))
}

/// Audits an admin's run, and each repair it made.
async fn record(audit: &Audit, who: &Actor, outcome: &RunOutcome) -> Result<(), ApiError> {
    let run = &outcome.run;
    audit
        .record(
            who,
            "reconciliation.run",
            ("reconciliation_run", &run.id),
            serde_json::json!({"bill_date": run.bill_date}),
            serde_json::json!({
                "status": run.status, "bill_rows": run.bill_rows, "matched": run.matched,
                "missing_here": run.missing_here, "missing_at_wechat": run.missing_at_wechat,
                "amount_mismatches": run.amount_mismatches, "status_mismatches": run.status_mismatches,
                "repaired": run.repaired, "error": run.error,
            }),
        )
        .await?;
    for d in outcome
        .discrepancies
        .iter()
        .filter(|d| d.repaired_at.is_some())
    {
        audit
            .record(
                who,
                "reconciliation.repair",
                ("order", &d.order_no),
                serde_json::json!({"status": d.our_status, "run_id": run.id, "discrepancy_id": d.id}),
                serde_json::json!({"note": d.repair_note}),
            )
            .await?;
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/admin/reconciliation/runs", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = RunList, description = "Runs, newest first"), (status = 400, description = "INVALID_QUERY / INVALID_CURSOR"), (status = 401), (status = 403)))]
pub async fn list_runs(
    _admin: AdminUser,
    page: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let runs = state.app.reconciliation.runs(&page.page()?).await?;
    Ok(HttpResponse::Ok().json(RunList {
        items: runs.items,
        next_cursor: runs.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/admin/reconciliation/runs/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = RunDetail), (status = 401), (status = 403), (status = 404)))]
pub async fn get_run(
    _admin: AdminUser,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if path.len() > 64 {
        return Err(ApiError::not_found("no such reconciliation run"));
    }
    let run = state
        .app
        .reconciliation
        .run(&path)
        .await?
        .ok_or_else(|| ApiError::not_found("no such reconciliation run"))?;
    Ok(HttpResponse::Ok().json(run))
}
