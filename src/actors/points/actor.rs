//! `PointsActor`: one per active user. It queues what arrives, then (in `Flush`, an
//! `AtomicResponse`, so nothing interleaves) decides the whole queue in memory, hands the
//! result to the shared ledger writer and answers every sender only after the commit.
//! On a version or source conflict it reloads from the database and decides again: the
//! database is the source of truth, the state here is a cache.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::batch::{self, Answer, Command, Reply};
use super::error::PointsError;
use super::messages::*;
use super::metrics::PointsMetrics;
use super::rules::RuleCache;
use super::store;
use super::writer::{LedgerWriter, WriteOutcome};
use crate::domain::{Clock, UserPoints};
use crate::storage::Db;

/// Conflicts in a row before a batch is refused with `Busy`.
const MAX_ATTEMPTS: usize = 8;

/// Who keeps track of the live actors (the registry): told when one stops, so a later
/// message starts a fresh one. A trait, so the actor does not depend on the registry's type.
pub trait Departures: Send + Sync {
    /// The actor of `user` with this generation stopped.
    fn remove(&self, user: &str, generation: u64);
}

/// What every actor of a service shares.
pub struct Shared {
    pub db: Db,
    pub writer: LedgerWriter,
    pub rules: RuleCache,
    pub cache: crate::cache::Cache,
    pub clock: Arc<dyn Clock>,
    pub metrics: PointsMetrics,
    pub idle: Duration,
    pub max_batch: usize,
}

struct Pending {
    cmd: Command,
    reply: oneshot::Sender<Answer>,
}

pub struct PointsActor {
    user: Arc<str>,
    generation: u64,
    shared: Arc<Shared>,
    registry: Weak<dyn Departures>,
    state: Option<UserPoints>,
    pending: Vec<Pending>,
    flush_queued: bool,
    stopping: bool,
    last_active: Instant,
}

impl PointsActor {
    pub fn new(
        user: Arc<str>,
        generation: u64,
        shared: Arc<Shared>,
        registry: Weak<dyn Departures>,
    ) -> Self {
        PointsActor {
            user,
            generation,
            shared,
            registry,
            state: None,
            pending: Vec::new(),
            flush_queued: false,
            stopping: false,
            last_active: Instant::now(),
        }
    }

    fn enqueue(&mut self, cmd: Command, ctx: &mut Context<Self>) -> oneshot::Receiver<Answer> {
        let (reply, rx) = oneshot::channel();
        self.pending.push(Pending { cmd, reply });
        self.last_active = Instant::now();
        if !self.flush_queued {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
        rx
    }

    /// Takes up to `max_batch` queued commands and returns the future that settles them.
    fn next_batch(&mut self) -> impl Future<Output = Option<UserPoints>> + 'static {
        let n = self.pending.len().min(self.shared.max_batch.max(1));
        let batch: Vec<Pending> = self.pending.drain(..n).collect();
        process(
            self.shared.clone(),
            self.user.clone(),
            self.state.take(),
            batch,
        )
    }
}

impl Actor for PointsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.shared.metrics.actors_active.inc();
        let every =
            (self.shared.idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| {
            if act.pending.is_empty()
                && !act.flush_queued
                && act.last_active.elapsed() >= act.shared.idle
            {
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.shared.metrics.actors_active.dec();
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.user, self.generation);
        }
        // Anything still queued was never decided: its senders get `Unavailable` and retry.
        for p in self.pending.drain(..) {
            let _ = p
                .reply
                .send(Err(PointsError::Unavailable("points actor stopped".into())));
        }
    }
}

impl Handler<Flush> for PointsActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Flush, _ctx: &mut Context<Self>) -> Self::Result {
        let fut = self.next_batch();
        AtomicResponse::new(Box::pin(fut.into_actor(self).map(|state, act, ctx| {
            act.state = state;
            act.last_active = Instant::now();
            act.flush_queued = false;
            if !act.pending.is_empty() {
                act.flush_queued = true;
                ctx.notify(Flush);
            } else if act.stopping {
                ctx.stop();
            }
        })))
    }
}

impl Handler<StopActor> for PointsActor {
    type Result = ();

    fn handle(&mut self, _: StopActor, ctx: &mut Context<Self>) {
        self.stopping = true;
        if !self.flush_queued {
            ctx.stop();
        }
    }
}

macro_rules! command_handler {
    ($msg:ty, $variant:ident, $cmd:expr, $out:ty) => {
        impl Handler<$msg> for PointsActor {
            type Result = ResponseFuture<Result<$out, PointsError>>;

            fn handle(&mut self, msg: $msg, ctx: &mut Context<Self>) -> Self::Result {
                #[allow(clippy::redundant_closure_call)]
                let rx = self.enqueue(($cmd)(msg), ctx);
                Box::pin(async move {
                    match rx.await {
                        Ok(Ok(Reply::$variant(v))) => Ok(v),
                        Ok(Ok(_)) => Err(PointsError::Storage("mismatched reply".into())),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(PointsError::Unavailable("points actor stopped".into())),
                    }
                })
            }
        }
    };
}

command_handler!(AwardPoints, Change, Command::Award, PointsChange);
command_handler!(DeductPoints, Change, Command::Deduct, PointsChange);
command_handler!(ClawbackPoints, Change, Command::Clawback, PointsChange);
command_handler!(AdjustPoints, Change, Command::Adjust, PointsChange);
command_handler!(ExpirePoints, Expired, |_| Command::Expire, ExpireSummary);
command_handler!(GetBalance, Balance, |_| Command::Balance, BalanceView);

/// Settles one batch: load if needed, decide, commit, answer. Returns the state to keep
/// (`None` forces a reload before the next batch).
async fn process(
    shared: Arc<Shared>,
    user: Arc<str>,
    mut state: Option<UserPoints>,
    batch: Vec<Pending>,
) -> Option<UserPoints> {
    let commands: Vec<Command> = batch.iter().map(|p| p.cmd.clone()).collect();
    let mut known = HashMap::new();
    for attempt in 0..MAX_ATTEMPTS {
        let now = shared.clock.now();
        let rule = match shared.rules.current(now).await {
            Ok(rule) => rule,
            Err(e) => return fail(batch, e, state),
        };
        let mut st = match state.take() {
            Some(st) => st,
            None => match store::load_state(&shared.db, &user, now).await {
                Ok(st) => st,
                Err(e) => return fail(batch, e.into(), None),
            },
        };
        let decided = batch::decide(&user, &mut st, &rule, now, &commands, &known);
        let wrote = decided.write.is_some();
        let outcome = match decided.write {
            Some(write) => shared.writer.submit(write).await,
            None => WriteOutcome::Committed,
        };
        match outcome {
            WriteOutcome::Committed => {
                if wrote {
                    st.committed();
                }
                let view = batch::balance_view(&st, now);
                for (p, answer) in batch.into_iter().zip(decided.answers) {
                    let answer = answer.unwrap_or_else(|| Ok(Reply::Balance(view.clone())));
                    let _ = p.reply.send(answer);
                }
                return Some(st);
            }
            WriteOutcome::Conflict => {
                tracing::debug!(category = "business", user_id = %user, attempt, "ledger conflict; reloading");
                let keys: Vec<(&'static str, String)> =
                    commands.iter().filter_map(|c| c.source(&user)).collect();
                match store::find_by_sources(&shared.db, &keys).await {
                    Ok(rows) => {
                        known = rows
                            .into_iter()
                            .map(|r| ((r.source_type.clone(), r.source_id.clone()), r))
                            .collect();
                    }
                    Err(e) => return fail(batch, e.into(), None),
                }
                state = None;
            }
            WriteOutcome::Failed(e) => return fail(batch, PointsError::Storage(e), None),
        }
    }
    fail(
        batch,
        PointsError::Busy("too many concurrent writers for this user".into()),
        None,
    )
}

fn fail(batch: Vec<Pending>, e: PointsError, state: Option<UserPoints>) -> Option<UserPoints> {
    tracing::warn!(category = "business", error = %e, commands = batch.len(), "points batch refused");
    for p in batch {
        let _ = p.reply.send(Err(e.clone()));
    }
    state
}
