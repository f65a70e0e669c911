//! The group-commit engine both hot paths use (the order writer and the ledger writer).
//! Committing each change alone makes the database's commit rate (an fsync each) the
//! ceiling; here jobs wait in a queue, a writer task takes the first one and gathers
//! whatever else arrives within a short window (up to a bounded batch), and hands the batch
//! to the committer, which writes it in one transaction and answers each job. Several
//! writer tasks may commit side by side; each job is in exactly one batch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};

/// One unit of work in a batch.
pub trait Batched: Send + 'static {
    /// How much of the batch bound this job takes (rows it writes).
    fn weight(&self) -> usize {
        1
    }
}

/// Writes one batch (one transaction, or each job alone when the batch fails as a whole)
/// and answers every job in it. It must answer each job, success or failure.
pub trait Committer<J>: Clone + Send + Sync + 'static {
    fn commit(&self, jobs: Vec<J>) -> impl Future<Output = ()> + Send;
}

/// How batches are formed.
#[derive(Debug, Clone)]
pub struct BatchPolicy {
    /// How long a batch waits for company once its first job is in.
    pub window: Duration,
    /// The batch is closed once its jobs' weights reach this.
    pub max_weight: usize,
    /// Writer tasks (at least one).
    pub tasks: usize,
}

/// The queue in front of the writer tasks (cheap clone).
pub struct GroupCommit<J> {
    tx: mpsc::UnboundedSender<J>,
}

impl<J> Clone for GroupCommit<J> {
    fn clone(&self) -> Self {
        GroupCommit {
            tx: self.tx.clone(),
        }
    }
}

impl<J: Batched> GroupCommit<J> {
    /// Starts the writer tasks on the current tokio runtime. Each returned receiver resolves
    /// when its task has committed everything it took and stopped (once every clone of the
    /// handle is dropped).
    pub fn start<C: Committer<J>>(
        policy: BatchPolicy,
        committer: C,
    ) -> (GroupCommit<J>, Vec<oneshot::Receiver<()>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let mut done = Vec::new();
        for _ in 0..policy.tasks.max(1) {
            let (done_tx, done_rx) = oneshot::channel();
            done.push(done_rx);
            let (rx, policy, committer) = (rx.clone(), policy.clone(), committer.clone());
            tokio::spawn(async move {
                while let Some(jobs) = collect(&rx, &policy).await {
                    committer.commit(jobs).await;
                }
                let _ = done_tx.send(());
            });
        }
        (GroupCommit { tx }, done)
    }

    /// Queues a job; gives it back when the writer tasks have stopped.
    pub fn send(&self, job: J) -> Result<(), J> {
        self.tx.send(job).map_err(|e| e.0)
    }
}

/// Waits for the first job, then gathers more for up to `window` or `max_weight`.
async fn collect<J: Batched>(
    rx: &Mutex<mpsc::UnboundedReceiver<J>>,
    policy: &BatchPolicy,
) -> Option<Vec<J>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut weight = first.weight();
    let mut jobs = vec![first];
    let deadline = tokio::time::Instant::now() + policy.window;
    while weight < policy.max_weight {
        let job = match rx.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) | Err(_) => break,
                }
            }
        };
        weight += job.weight();
        jobs.push(job);
    }
    Some(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    struct Item(usize, oneshot::Sender<usize>);

    impl Batched for Item {
        fn weight(&self) -> usize {
            self.0
        }
    }

    /// Records each batch's weights and answers every job with its batch's size.
    #[derive(Clone, Default)]
    struct Recorder(Arc<StdMutex<Vec<Vec<usize>>>>);

    impl Committer<Item> for Recorder {
        async fn commit(&self, jobs: Vec<Item>) {
            let n = jobs.len();
            if let Ok(mut b) = self.0.lock() {
                b.push(jobs.iter().map(|j| j.0).collect());
            }
            for job in jobs {
                let _ = job.1.send(n);
            }
        }
    }

    fn policy(window_ms: u64, max_weight: usize) -> BatchPolicy {
        BatchPolicy {
            window: Duration::from_millis(window_ms),
            max_weight,
            tasks: 1,
        }
    }

    #[tokio::test]
    async fn jobs_queued_together_commit_together_and_each_is_answered() {
        let rec = Recorder::default();
        let (gc, done) = GroupCommit::start(policy(50, 100), rec.clone());
        let mut answers = Vec::new();
        for _ in 0..10 {
            let (tx, rx) = oneshot::channel();
            assert!(gc.send(Item(1, tx)).is_ok());
            answers.push(rx);
        }
        for rx in answers {
            assert_eq!(rx.await.unwrap(), 10);
        }
        drop(gc);
        for d in done {
            d.await.unwrap();
        }
        assert_eq!(rec.0.lock().unwrap().as_slice(), &[vec![1; 10]]);
    }

    #[tokio::test]
    async fn a_batch_closes_at_its_weight_bound() {
        let rec = Recorder::default();
        let (gc, done) = GroupCommit::start(policy(50, 5), rec.clone());
        let mut answers = Vec::new();
        for w in [3, 3, 3, 1] {
            let (tx, rx) = oneshot::channel();
            assert!(gc.send(Item(w, tx)).is_ok());
            answers.push(rx);
        }
        for rx in answers {
            rx.await.unwrap();
        }
        drop(gc);
        for d in done {
            d.await.unwrap();
        }
        // 3+3 reaches 5: closed; then 3+1 within the window.
        assert_eq!(rec.0.lock().unwrap().as_slice(), &[vec![3, 3], vec![3, 1]]);
    }

    #[tokio::test]
    async fn the_tasks_commit_what_is_queued_before_they_stop() {
        let rec = Recorder::default();
        let (gc, done) = GroupCommit::start(policy(1, 2), rec.clone());
        let mut answers = Vec::new();
        for _ in 0..5 {
            let (tx, rx) = oneshot::channel();
            assert!(gc.send(Item(1, tx)).is_ok());
            answers.push(rx);
        }
        drop(gc);
        for d in done {
            d.await.unwrap();
        }
        for rx in answers {
            assert!(rx.await.is_ok(), "every queued job answered");
        }
        let batches = rec.0.lock().unwrap().clone();
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 5);
        assert!(batches.iter().all(|b| b.len() <= 2), "{batches:?}");
    }
}
