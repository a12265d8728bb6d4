//! Service desk and incident management: group commit of new tickets. Tickets logged at the
//! same moment (a burst of API calls, the mail gateway, a monitoring feed) are written one
//! after another in one database transaction, each inside its own savepoint, and committed
//! together. Each caller gets its answer only once the transaction holding its ticket has
//! committed; a ticket refused by its checks is rolled back to its savepoint and leaves the
//! others untouched.
//!
//! Why: on SQLite every transaction waits for the single writer and writes the pages it
//! touched to the WAL at commit; tickets created together touch the same index pages, so one
//! commit for sixteen tickets writes far fewer pages than sixteen commits. On PostgreSQL one
//! commit is one WAL flush instead of sixteen.

use crate::writer::Writer;
use crate::{App, AppError, Result};
use futures_util::future::BoxFuture;
use keel_domain::identity::Principal;
use keel_store::{Db, Tx};
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// At most this many tickets share one transaction, so a long queue still commits often.
const MAX_GROUP: usize = 32;

/// The commit outcome a job's caller is told: `Ok` or the commit's error as text.
type Committed = std::result::Result<(), String>;

/// What running one job left: the transaction, whether the transaction can go on (a failed
/// savepoint statement leaves it in an unknown state), and how to answer the caller once the
/// group's commit is known.
struct Ran {
    tx: Tx,
    usable: bool,
    answer: Box<dyn FnOnce(Committed) + Send>,
}

trait Job: Send {
    fn run(self: Box<Self>, tx: Tx) -> BoxFuture<'static, Ran>;
    /// The group could not start (no transaction): the job never ran.
    fn refuse(self: Box<Self>, why: String);
}

struct TicketJob<F, T> {
    app: App,
    actor: Principal,
    work: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<F, Fut, T> Job for TicketJob<F, T>
where
    F: FnOnce(App, Writer) -> Fut + Send + 'static,
    Fut: Future<Output = (Writer, Result<T>)> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, mut tx: Tx) -> BoxFuture<'static, Ran> {
        Box::pin(async move {
            let TicketJob { app, actor, work, reply } = *self;
            if let Err(e) = sqlx::query("SAVEPOINT keel_group").execute(&mut *tx).await {
                let e = AppError::from(keel_store::StoreError::from(e));
                return Ran { tx, usable: false, answer: Box::new(move |_| drop(reply.send(Err(e)))) };
            }
            let now = app.now();
            let (w, out) = work(app, Writer::in_group(tx, &actor, now)).await;
            let (mut tx, out) = w.release_to_group(out).await;
            let end: &[&str] = if out.is_ok() {
                &["RELEASE SAVEPOINT keel_group"]
            } else {
                &["ROLLBACK TO SAVEPOINT keel_group", "RELEASE SAVEPOINT keel_group"]
            };
            let mut usable = true;
            for sql in end {
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await {
                    tracing::error!(error = %e, "savepoint of a grouped ticket write failed; the group is rolled back");
                    usable = false;
                    break;
                }
            }
            let answer = Box::new(move |committed: Committed| {
                let answer = match (out, committed) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(why)) => Err(AppError::Internal(why)),
                    (Ok(v), Ok(())) => Ok(v),
                };
                let _ = reply.send(answer);
            });
            Ran { tx, usable, answer }
        })
    }

    fn refuse(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(AppError::Internal(why)));
    }
}

/// The queue of grouped writes of one process, with its writer task started on first use.
#[derive(Default)]
pub struct CommitGroup {
    queue: Mutex<Option<mpsc::UnboundedSender<Box<dyn Job>>>>,
}

impl std::fmt::Debug for CommitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitGroup")
    }
}

impl CommitGroup {
    fn send(&self, db: &Db, job: Box<dyn Job>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let job = match queue.as_ref() {
            Some(q) => match q.send(job) {
                Ok(()) => return,
                // The task ended (a panic inside a job): start another.
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(job);
        tokio::spawn(write_groups(db.clone(), rx));
        *queue = Some(tx);
    }
}

async fn write_groups(db: Db, mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    while let Some(first) = queue.recv().await {
        let mut tx = match db.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                first.refuse(e.to_string());
                continue;
            }
        };
        let mut answers = Vec::new();
        let mut usable = true;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let ran = job.run(tx).await;
            tx = ran.tx;
            answers.push(ran.answer);
            usable = ran.usable;
            // Jobs that arrived while this one ran join the same transaction.
            if usable && answers.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        let committed = if usable {
            tx.commit().await.map_err(|e| e.to_string())
        } else {
            drop(tx);
            Err("the grouped write was rolled back".to_string())
        };
        for answer in answers {
            answer(committed.clone());
        }
    }
}

impl App {
    /// Runs `work` in the process's group transaction (see the module) and returns its result
    /// once that transaction has committed. `work` gets the `Writer` and must hand it back;
    /// outbox messages are written at the end of the job, as `Writer::commit` does.
    pub(crate) async fn write_in_group<F, Fut, T>(&self, actor: &Principal, work: F) -> Result<T>
    where
        F: FnOnce(App, Writer) -> Fut + Send + 'static,
        Fut: Future<Output = (Writer, Result<T>)> + Send + 'static,
        T: Send + 'static,
    {
        if actor.is_read_only() {
            return Err(AppError::Forbidden);
        }
        let (reply, answer) = oneshot::channel();
        let job = TicketJob { app: self.clone(), actor: actor.clone(), work, reply };
        self.commit_group.send(&self.db, Box::new(job));
        answer.await.map_err(|_| AppError::Internal("the grouped write was abandoned".into()))?
    }
}
