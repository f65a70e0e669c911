//! Notification deliveries: signed, encrypted, retried on WeChat's schedule (scaled), never
//! blocking request handling, with a bound on deliveries in flight.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::RngExt as _;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

use crate::wechat::aead::ApiV3Key;
use crate::wechat::sign::{PlatformSigner, new_nonce};
use crate::wechat::types::{EncryptedResource, NotificationBody};

/// Seconds between attempts after the first, as WeChat documents (about 24 h in all).
pub const RETRY_SCHEDULE_SECS: [u64; 15] = [
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// What one delivery did, for `GET /sandbox/notifications`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub delivery_id: u64,
    pub notification_id: String,
    pub event_type: String,
    pub url: String,
    pub out_trade_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_refund_no: Option<String>,
    pub attempts: Vec<Attempt>,
    /// `pending`, `delivered` or `gave_up`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub at: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The receiver's answer body (first 200 bytes) or the transport error.
    pub answer: String,
}

/// One notification to deliver (possibly several times when duplicates are asked for).
#[derive(Debug, Clone)]
pub struct Notice {
    pub event_type: &'static str,
    pub summary: &'static str,
    pub original_type: &'static str,
    pub url: String,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    /// The resource plaintext (JSON).
    pub resource: Vec<u8>,
    /// Extra independent deliveries of the same notification (same id), racing each other.
    pub duplicates: u32,
    /// Wait before the first attempt (to let a query overtake the notification).
    pub delay: Duration,
}

struct Job {
    delivery_id: u64,
    url: String,
    body: Vec<u8>,
    delay: Duration,
}

#[derive(Clone)]
pub struct Deliverer {
    tx: mpsc::UnboundedSender<Job>,
    log: Arc<Mutex<Vec<DeliveryRecord>>>,
    apiv3_key: ApiV3Key,
}

impl Deliverer {
    /// Starts the dispatcher on the current runtime.
    pub fn start(
        signer: PlatformSigner,
        apiv3_key: ApiV3Key,
        time_scale: f64,
        max_in_flight: usize,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let ctx = Arc::new(Ctx {
            signer,
            http,
            log: log.clone(),
            time_scale: sane_time_scale(time_scale),
            in_flight: Semaphore::new(max_in_flight.max(1)),
        });
        tokio::spawn(dispatch(rx, ctx));
        Self { tx, log, apiv3_key }
    }

    /// Encrypts and queues a notification; returns the notification id.
    pub fn send(&self, notice: Notice) -> Result<String, String> {
        let notification_id = uuid::Uuid::now_v7().to_string();
        let nonce: String = new_nonce().chars().take(12).collect();
        let associated_data = notice.original_type;
        let ciphertext = self
            .apiv3_key
            .encrypt(&nonce, associated_data, &notice.resource)
            .map_err(|e| e.to_string())?;
        let body = NotificationBody {
            id: notification_id.clone(),
            create_time: super::ledger::rfc3339_cn(Utc::now()),
            event_type: notice.event_type.into(),
            resource_type: "encrypt-resource".into(),
            summary: notice.summary.into(),
            resource: EncryptedResource {
                algorithm: "AEAD_AES_256_GCM".into(),
                ciphertext,
                associated_data: associated_data.into(),
                nonce,
                original_type: notice.original_type.into(),
            },
        };
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut log = self
            .log
            .lock()
            .map_err(|_| "delivery log poisoned".to_string())?;
        for copy in 0..=notice.duplicates {
            let delivery_id = u64::try_from(log.len())
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            log.push(DeliveryRecord {
                delivery_id,
                notification_id: notification_id.clone(),
                event_type: notice.event_type.into(),
                url: notice.url.clone(),
                out_trade_no: notice.out_trade_no.clone(),
                out_refund_no: notice.out_refund_no.clone(),
                attempts: Vec::new(),
                status: "pending",
            });
            // Copies start a little apart, in random order, like WeChat's racing retries.
            let jitter = if copy == 0 {
                0
            } else {
                rand::rng().random_range(0..50)
            };
            let job = Job {
                delivery_id,
                url: notice.url.clone(),
                body: body.clone(),
                delay: notice.delay + Duration::from_millis(jitter),
            };
            self.tx
                .send(job)
                .map_err(|_| "delivery dispatcher stopped".to_string())?;
        }
        Ok(notification_id)
    }

    pub fn records(&self) -> Vec<DeliveryRecord> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

struct Ctx {
    signer: PlatformSigner,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<DeliveryRecord>>>,
    time_scale: f64,
    in_flight: Semaphore,
}

async fn dispatch(mut rx: mpsc::UnboundedReceiver<Job>, ctx: Arc<Ctx>) {
    while let Some(job) = rx.recv().await {
        tokio::spawn(deliver(job, ctx.clone()));
    }
}

/// Attempts until the receiver answers 200/204 or the schedule runs out.
async fn deliver(job: Job, ctx: Arc<Ctx>) {
    tokio::time::sleep(job.delay).await;
    let mut waits = RETRY_SCHEDULE_SECS.iter();
    loop {
        let ok = {
            // The permit bounds requests in flight, not deliveries waiting for their next try.
            let Ok(_permit) = ctx.in_flight.acquire().await else {
                return;
            };
            attempt(&job, &ctx).await
        };
        if ok {
            set_status(&ctx, job.delivery_id, "delivered");
            return;
        }
        match waits.next() {
            Some(secs) => {
                tokio::time::sleep(Duration::from_secs(*secs).mul_f64(ctx.time_scale)).await
            }
            None => {
                set_status(&ctx, job.delivery_id, "gave_up");
                return;
            }
        }
    }
}

async fn attempt(job: &Job, ctx: &Ctx) -> bool {
    let (http_status, answer, ok) = match ctx.signer.headers(Utc::now().timestamp(), &job.body) {
        Ok(headers) => send(job, ctx, headers).await,
        // Recorded like a failed send: the schedule tries again.
        Err(e) => (None, e.to_string(), false),
    };
    if let Ok(mut log) = ctx.log.lock()
        && let Some(record) = record_mut(&mut log, job.delivery_id)
    {
        record.attempts.push(Attempt {
            at: super::ledger::rfc3339_cn(Utc::now()),
            http_status,
            answer,
        });
    }
    ok
}

/// One signed POST: the receiver's status, the start of its answer, and whether it accepted.
async fn send(
    job: &Job,
    ctx: &Ctx,
    headers: Vec<(&'static str, String)>,
) -> (Option<u16>, String, bool) {
    let mut request = ctx
        .http
        .post(&job.url)
        .header("Content-Type", "application/json")
        .header("Request-Id", uuid::Uuid::now_v7().to_string())
        .body(job.body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (
                Some(status),
                text.chars().take(200).collect(),
                status == 200 || status == 204,
            )
        }
        Err(e) => (None, e.without_url().to_string(), false),
    }
}

fn set_status(ctx: &Ctx, delivery_id: u64, status: &'static str) {
    if let Ok(mut log) = ctx.log.lock()
        && let Some(record) = record_mut(&mut log, delivery_id)
    {
        record.status = status;
    }
}

/// Delivery ids are 1-based positions in the log.
fn record_mut(log: &mut [DeliveryRecord], delivery_id: u64) -> Option<&mut DeliveryRecord> {
    let index = usize::try_from(delivery_id.checked_sub(1)?).ok()?;
    log.get_mut(index)
}

/// Between 0 (retry at once) and 1000 (slower than WeChat); anything else means real time.
fn sane_time_scale(scale: f64) -> f64 {
    if scale.is_finite() && (0.0..=1000.0).contains(&scale) {
        scale
    } else {
        1.0
    }
}
