//! [`RunStore`] on sled: `runs` holds each record as JSON by id (UUIDv7, so newest last),
//! `queue` the ids of queued runs, oldest first. One lock orders the transitions of this
//! process; multi-tree changes are sled transactions, so a crash leaves both trees agreeing.

use std::sync::Mutex;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError as Abort, TransactionError, TransactionalTree};

use super::{Approved, Cancelled, NewRun, Page, Recovered, RunFilter, RunRecord, RunState, RunStore, StepRecord};
use crate::store::StoreError;

/// Runs in a sled database.
pub struct SledRuns {
    db: sled::Db,
    runs: sled::Tree,
    queue: sled::Tree,
    logs: sled::Tree,
    meta: sled::Tree,
    lock: Mutex<()>,
}

impl SledRuns {
    /// The run trees of `db`.
    pub fn open(db: &sled::Db) -> Result<SledRuns, StoreError> {
        Ok(SledRuns {
            db: db.clone(),
            runs: db.open_tree("runs")?,
            queue: db.open_tree("run_queue")?,
            logs: db.open_tree("run_logs")?,
            meta: db.open_tree("run_meta")?,
            lock: Mutex::new(()),
        })
    }

    fn read(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.runs.get(id)?.map(|v| decode(&v)).transpose()
    }

    fn write(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.runs.insert(run.id.as_bytes(), encode(run))?;
        Ok(())
    }

    /// Applies `change` to the stored run `id` under the lock; `None` if there is none.
    fn update<T>(&self, id: &str, change: impl FnOnce(&mut RunRecord) -> T) -> Result<Option<T>, StoreError> {
        let _held = self.lock.lock().expect("run lock");
        let Some(mut run) = self.read(id)? else { return Ok(None) };
        let out = change(&mut run);
        self.write(&run)?;
        Ok(Some(out))
    }

    /// Writes `run` and adds it to (or removes it from) the queue in one transaction.
    fn write_queued(&self, run: &RunRecord, queued: bool) -> Result<(), StoreError> {
        let value = encode(run);
        let result = (&self.runs, &self.queue).transaction(|(runs, queue): &(TransactionalTree, TransactionalTree)| {
            runs.insert(run.id.as_bytes(), value.as_slice())?;
            if queued {
                queue.insert(run.id.as_bytes(), &[])?;
            } else {
                queue.remove(run.id.as_bytes())?;
            }
            Ok::<_, Abort<()>>(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => unreachable!("the transaction never aborts"),
        }
    }

    /// Makes everything written so far durable, on sled's own threads: an fsync must not
    /// hold one of the runtime's few workers (the intake and the steps run on them).
    async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// The inbox position up to which deliveries have been turned into runs.
    pub fn inbox_cursor(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(INBOX_CURSOR)?
            .and_then(|v| Some(u64::from_be_bytes(v.as_ref().try_into().ok()?)))
            .unwrap_or(0))
    }

    /// Records that deliveries before `seq` have been turned into runs.
    pub async fn set_inbox_cursor(&self, seq: u64) -> Result<(), StoreError> {
        self.meta.insert(INBOX_CURSOR, &seq.to_be_bytes())?;
        self.flush().await
    }
}

const INBOX_CURSOR: &[u8] = b"inbox_cursor";

fn log_key(id: &str, seq: u64) -> Vec<u8> {
    [id.as_bytes(), b"\0", &seq.to_be_bytes()].concat()
}

fn encode(run: &RunRecord) -> Vec<u8> {
    serde_json::to_vec(run).expect("a run record serializes")
}

fn decode(bytes: &[u8]) -> Result<RunRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Invalid(format!("corrupt run record: {e}")))
}

#[async_trait::async_trait]
impl RunStore for SledRuns {
    async fn append_log(&self, id: &str, lines: &[String]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for line in lines {
            batch.insert(log_key(id, self.db.generate_id()?), line.as_bytes());
        }
        self.logs.apply_batch(batch)?;
        Ok(())
    }

    async fn log(&self, id: &str, after: Option<u64>) -> Result<Vec<(u64, String)>, StoreError> {
        let start = log_key(id, after.map_or(0, |seq| seq + 1));
        let end = log_key(id, u64::MAX);
        self.logs
            .range(start..=end)
            .map(|entry| {
                let (key, value) = entry?;
                let seq = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8-byte position"));
                Ok((seq, String::from_utf8_lossy(&value).into_owned()))
            })
            .collect()
    }

    async fn create(&self, run: NewRun) -> Result<bool, StoreError> {
        let _held = self.lock.lock().expect("run lock");
        if self.runs.contains_key(&run.id)? {
            return Ok(false);
        }
        let record = RunRecord::new(run);
        self.write_queued(&record, record.state == RunState::Queued)?;
        Ok(true)
    }

    async fn claim(&self, node: &str, now_ms: u64, lease_until_ms: u64) -> Result<Option<RunRecord>, StoreError> {
        let _held = self.lock.lock().expect("run lock");
        let Some((id, _)) = self.queue.first()? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        let Some(mut run) = self.read(&id)? else {
            self.queue.remove(id.as_bytes())?;
            return Ok(None);
        };
        run.claim(node, now_ms, lease_until_ms);
        self.write_queued(&run, false)?;
        Ok(Some(run))
    }

    async fn heartbeat(&self, id: &str, node: &str, lease_until_ms: u64) -> Result<bool, StoreError> {
        Ok(self.update(id, |run| run.renew(node, lease_until_ms))?.unwrap_or(false))
    }

    async fn put_step(&self, id: &str, index: usize, step: StepRecord) -> Result<(), StoreError> {
        self.update(id, |run| run.put_step(index, step))?;
        Ok(())
    }

    async fn finish(
        &self,
        id: &str,
        node: &str,
        state: RunState,
        error: Option<String>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.update(id, |run| run.finish(node, state, error, now_ms))?;
        self.flush().await
    }

    async fn approve(&self, id: &str, now_ms: u64) -> Result<Option<Approved>, StoreError> {
        let outcome = {
            let _held = self.lock.lock().expect("run lock");
            let Some(mut run) = self.read(id)? else { return Ok(None) };
            let outcome = run.approve(now_ms);
            if outcome == Approved::Queued {
                self.write_queued(&run, true)?;
            }
            outcome
        };
        if outcome == Approved::Queued {
            self.flush().await?;
        }
        Ok(Some(outcome))
    }

    async fn cancel(&self, id: &str, now_ms: u64) -> Result<Option<Cancelled>, StoreError> {
        let outcome = {
            let _held = self.lock.lock().expect("run lock");
            let Some(mut run) = self.read(id)? else { return Ok(None) };
            let outcome = run.cancel(now_ms);
            match outcome {
                Cancelled::WasQueued => self.write_queued(&run, false)?,
                Cancelled::Requested => self.write(&run)?,
                Cancelled::AlreadyFinal(_) => {}
            }
            outcome
        };
        self.flush().await?;
        Ok(Some(outcome))
    }

    async fn recover(&self, now_ms: u64) -> Result<Recovered, StoreError> {
        let held = self.lock.lock().expect("run lock");
        let mut recovered = Recovered::default();
        for entry in self.runs.iter() {
            let (_, value) = entry?;
            let mut run = decode(&value)?;
            let expired = run.lease.as_ref().is_none_or(|l| l.until_ms < now_ms);
            if run.state != RunState::Running || !expired {
                continue;
            }
            if run.interrupt(now_ms) {
                self.write_queued(&run, true)?;
                recovered.requeued.push(run.id);
            } else {
                self.write(&run)?;
                recovered.failed.push(run.id);
            }
        }
        drop(held);
        self.flush().await?;
        Ok(recovered)
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        Ok(self.queue.len() as u64)
    }

    async fn prune(&self, ended_before_ms: u64) -> Result<Vec<String>, StoreError> {
        let held = self.lock.lock().expect("run lock");
        let mut pruned = Vec::new();
        for entry in self.runs.iter() {
            let (_, value) = entry?;
            let run = decode(&value)?;
            if run.state.is_final() && run.finished_at_ms.is_some_and(|t| t < ended_before_ms) {
                self.runs.remove(run.id.as_bytes())?;
                let mut lines = sled::Batch::default();
                for key in self.logs.scan_prefix([run.id.as_bytes(), b"\0"].concat()).keys() {
                    lines.remove(key?);
                }
                self.logs.apply_batch(lines)?;
                pruned.push(run.id);
            }
        }
        drop(held);
        self.flush().await?;
        Ok(pruned)
    }

    async fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read(id)
    }

    async fn list(&self, filter: &RunFilter, before: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let range = match before {
            Some(id) => self.runs.range(..id.as_bytes()),
            None => self.runs.range::<&[u8], _>(..),
        };
        let mut runs = Vec::new();
        for entry in range.rev() {
            let (_, value) = entry?;
            let run = decode(&value)?;
            if !filter.matches(&run) {
                continue;
            }
            if runs.len() == limit {
                let next = runs.last().map(|r: &RunRecord| r.id.clone());
                return Ok(Page { runs, next });
            }
            runs.push(run);
        }
        Ok(Page { runs, next: None })
    }
}
