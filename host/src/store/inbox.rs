//! The durable webhook inbox: every accepted delivery is on disk before its answer is sent.
//!
//! Deliveries are appended to a log of segment files (`<dir>/<first seq, 20 digits>.log`) by a
//! single writer thread that takes whatever is queued as one batch, writes it with one vectored
//! write and makes it durable with one `fdatasync` (group commit), then acknowledges every
//! delivery of the batch. Each record carries the delivery's source and id, when it was
//! received, the normalized event, the raw body, the answer given and the runs enqueued for it,
//! framed with a length and a CRC-32 (layout in `record.rs`).
//!
//! A redelivery (same source and delivery id) gets the first delivery's stored answer and
//! writes nothing. The check and the claim happen under one lock, so of two concurrent
//! deliveries with the same id exactly one is written; the other waits for it to be durable and
//! then answers as a duplicate (or, if the write failed, tries again itself).
//!
//! Callers decide the runs (and their ids) before calling [`Inbox::accept`] and start them only
//! on [`Accepted::New`]: the runs are durable exactly when the delivery is, and a duplicate's
//! runs are simply dropped.
//!
//! On open the log is replayed into an in-memory index of `(source, delivery id)` to answer and
//! record position; bodies stay on disk and are read back on demand. A torn or corrupt record at
//! the tail of the last segment (a crash during a batch that was never acknowledged) is
//! truncated away; a bad record anywhere else stops the open with [`InboxError::Corrupt`].
//!
//! One read-write [`Inbox`] at a time owns a directory (a `LOCK` file held with `flock`);
//! [`Inbox::open_read_only`] gives a snapshot for tools and tests while the server runs.
//! [`Inbox::prune_before`] deletes whole old segments and forgets their ids; without it the log
//! and the index (about 200 bytes plus the answer JSON per delivery) grow with every delivery.

mod disk;
#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod lazy_disk;
mod log;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use disk::Disk;
use log::{Append, Loc, Msg, Segment};

/// Default size past which the writer starts a new segment file.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Deliveries queued for the writer before `accept` waits for room.
const QUEUE: usize = 1024;

/// An inbox operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Reading or writing the log failed; for `accept`, the delivery was not stored.
    #[error("inbox: {0}")]
    Io(#[from] std::io::Error),
    /// The batch holding this delivery could not be written; it was not stored (retryable).
    #[error("inbox: write failed, delivery not stored: {0}")]
    Write(String),
    /// A sync failed earlier, so the inbox accepts nothing more until it is reopened.
    #[error("inbox: stopped after a failed write ({0}); restart to replay what is on disk")]
    Failed(String),
    /// A record that is not at the tail of the log is damaged or of an unknown format.
    #[error("inbox: {}: bad record at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in it.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The delivery cannot be stored as given (empty or oversized field).
    #[error("inbox: {0}")]
    Invalid(String),
    /// The answer body could not be serialized or read back.
    #[error("inbox: answer JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Another open inbox (in this or another process) holds the directory's lock.
    #[error("inbox: {} is in use by another open inbox", .0.display())]
    Busy(PathBuf),
    /// The inbox was shut down, or opened read-only.
    #[error("inbox: shut down or read-only")]
    Closed,
}

/// The HTTP answer given for a delivery, returned again for every redelivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// JSON response body.
    pub body: serde_json::Value,
}

/// A run enqueued because of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnqueuedRun {
    /// The run's id.
    pub run_id: String,
    /// The pipeline it runs.
    pub pipeline: String,
}

/// A delivery to accept.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Which webhook source it came from (e.g. `github`); part of the dedupe key.
    pub source: String,
    /// The source's delivery id (e.g. `X-GitHub-Delivery`); part of the dedupe key.
    pub delivery_id: String,
    /// The normalized event, as JSON.
    pub event_json: Vec<u8>,
    /// The request body as received, minus what may not be kept at rest (the intake removes
    /// an old Gitea's in-body `secret`).
    pub raw_body: Vec<u8>,
    /// The answer to send for it (and for every redelivery).
    pub answer: Answer,
    /// The runs enqueued for it, recorded atomically with it.
    pub runs: Vec<EnqueuedRun>,
}

/// The outcome of [`Inbox::accept`].
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Newly stored and durable, with its sequence number in the log.
    New {
        /// Position in the log, from 0.
        seq: u64,
    },
    /// Already stored: nothing was written; answer with the first delivery's answer.
    Duplicate {
        /// The first delivery's sequence number.
        seq: u64,
        /// The first delivery's answer.
        answer: Answer,
    },
}

/// A delivery read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDelivery {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Webhook source.
    pub source: String,
    /// The source's delivery id.
    pub delivery_id: String,
    /// When the inbox accepted it, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// The normalized event, as JSON.
    pub event_json: Vec<u8>,
    /// The request body as received, minus what may not be kept at rest (the intake removes
    /// an old Gitea's in-body `secret`).
    pub raw_body: Vec<u8>,
    /// The answer that was given.
    pub answer: Answer,
    /// The runs enqueued for it.
    pub runs: Vec<EnqueuedRun>,
}

/// What opening the inbox found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Segment files replayed.
    pub segments: usize,
    /// Deliveries replayed.
    pub records: u64,
    /// Bytes of a torn tail cut off the last segment (0 after a clean stop); read-only: skipped.
    pub truncated_bytes: u64,
}

/// Counters since open: group-commit batches and the deliveries they stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxStats {
    /// Batches written (each with one `fdatasync`), failed ones included.
    pub batches: u64,
    /// Deliveries stored.
    pub records: u64,
}

/// Tunables for [`Inbox::open_with`].
#[derive(Debug, Clone, Copy)]
pub struct InboxOptions {
    /// Size past which the writer starts a new segment file.
    pub segment_bytes: u64,
}

impl Default for InboxOptions {
    fn default() -> Self {
        InboxOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// An index entry: a first delivery still being written, or a durable one.
enum Slot {
    /// Being written; these redeliveries wait for the outcome.
    Pending(Vec<oneshot::Sender<()>>),
    /// Durable at `seq` with this answer (JSON bytes).
    Durable { seq: u64, status: u16, answer: Box<[u8]> },
}

/// Everything behind the inbox lock.
struct State {
    /// source -> delivery id -> entry.
    index: HashMap<Box<str>, HashMap<Box<str>, Slot>>,
    /// Sequence number of `locs[0]`: records before it were pruned.
    base_seq: u64,
    /// Where each durable record lies, by sequence number.
    locs: VecDeque<Loc>,
    /// The number `Loc::segment` uses for `segments[0]`.
    segment_base: u32,
    segments: VecDeque<Segment>,
    failed: Option<String>,
}

impl State {
    fn next_seq(&self) -> u64 {
        self.base_seq + self.locs.len() as u64
    }

    fn slot_mut(&mut self, source: &str, delivery_id: &str) -> Option<&mut Slot> {
        self.index.get_mut(source)?.get_mut(delivery_id)
    }
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    records: AtomicU64,
}

/// State shared by the handles and the writer thread.
struct Shared {
    state: Mutex<State>,
    exited: watch::Sender<bool>,
    stats: Counters,
    /// Held (flock) while the writer may still append; released when the last user drops it.
    /// `None` for a read-only inbox.
    lock: Option<std::fs::File>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    shared: Arc<Shared>,
    dir: PathBuf,
    prune: Mutex<()>,
    /// `None` for a read-only inbox, and while dropping.
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<std::thread::JoinHandle<()>>,
    recovery: Recovery,
}

impl Drop for Inner {
    /// The last handle waits for the writer to finish what was queued, so the directory lock
    /// is free (and the log complete) as soon as the drop returns.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The durable webhook inbox; cheap to clone, all clones share one log and writer. Dropping
/// the last clone waits for deliveries already handed to the writer to be written.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

/// Removes a pending claim (waking its waiters) unless the delivery was handed to the writer.
struct PendingGuard<'a> {
    shared: &'a Shared,
    key: Option<(String, String)>,
}

impl PendingGuard<'_> {
    fn disarm(mut self) -> (String, String) {
        self.key.take().expect("guard armed")
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some((source, delivery_id)) = self.key.take() {
            let mut st = self.shared.lock();
            let removed = st
                .index
                .get_mut(source.as_str())
                .and_then(|m| m.remove(delivery_id.as_str()));
            drop(st);
            if let Some(Slot::Pending(waiters)) = removed {
                for w in waiters {
                    let _ = w.send(());
                }
            }
        }
    }
}

fn check_key(value: &str, what: &str) -> Result<(), InboxError> {
    if value.is_empty() || value.len() > record::MAX_KEY {
        return Err(InboxError::Invalid(format!(
            "{what} must be 1 to {} bytes long",
            record::MAX_KEY
        )));
    }
    Ok(())
}

fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, InboxError> {
    Ok(Answer {
        status,
        body: serde_json::from_slice(body)?,
    })
}

impl Inbox {
    /// Opens (creating) the inbox whose segment files live directly in `dir`, replaying them.
    ///
    /// `dir` is the inbox's own directory (e.g. `<data dir>/inbox`); it is locked while open.
    pub fn open(dir: &Path) -> Result<Inbox, InboxError> {
        Self::open_with(dir, InboxOptions::default())
    }

    /// [`Inbox::open`] with explicit options.
    pub fn open_with(dir: &Path, options: InboxOptions) -> Result<Inbox, InboxError> {
        Self::open_on(dir, options, disk::Os)
    }

    /// [`Inbox::open_with`] writing through `disk`: the real one, or a test's stand-in.
    fn open_on<D: Disk>(dir: &Path, options: InboxOptions, disk: D) -> Result<Inbox, InboxError> {
        let lock = log::lock_dir(dir)?;
        let (state, writer, recovery) = log::replay(dir, Some((options.segment_bytes.max(1), disk)))?;
        let writer = writer.expect("read-write replay returns a writer");
        let shared = Arc::new(Shared {
            lock: Some(lock),
            state: Mutex::new(state),
            exited: watch::Sender::new(false),
            stats: Counters::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let for_writer = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || writer.run(for_writer, rx))?;
        Ok(Inbox {
            inner: Arc::new(Inner {
                shared,
                dir: dir.to_path_buf(),
                prune: Mutex::new(()),
                tx: Some(tx),
                writer: Some(writer),
                recovery,
            }),
        })
    }

    /// Opens a read-only snapshot of the inbox in `dir`: what was stored when it was opened,
    /// even while another process has it open and appends to it. Nothing on disk is changed
    /// (a torn tail is skipped, not cut) and `accept` fails with [`InboxError::Closed`].
    pub fn open_read_only(dir: &Path) -> Result<Inbox, InboxError> {
        let (state, _, recovery) = log::replay::<disk::Os>(dir, None)?;
        let shared = Arc::new(Shared {
            lock: None,
            state: Mutex::new(state),
            exited: watch::Sender::new(true),
            stats: Counters::default(),
        });
        Ok(Inbox {
            inner: Arc::new(Inner {
                shared,
                dir: dir.to_path_buf(),
                prune: Mutex::new(()),
                tx: None,
                writer: None,
                recovery,
            }),
        })
    }

    /// Stores a delivery durably, or returns the stored answer if its id was seen before.
    ///
    /// Returns once the record is on disk. Dropping the future after the delivery was handed
    /// to the writer does not stop it from being stored.
    pub async fn accept(&self, delivery: NewDelivery) -> Result<Accepted, InboxError> {
        let NewDelivery {
            source,
            delivery_id,
            event_json,
            raw_body,
            answer,
            runs,
        } = delivery;
        check_key(&source, "source")?;
        check_key(&delivery_id, "delivery id")?;
        let Some(tx) = &self.inner.tx else {
            return Err(InboxError::Closed);
        };
        let shared = &*self.inner.shared;
        loop {
            let wait = {
                let mut st = shared.lock();
                if let Some(msg) = &st.failed {
                    return Err(InboxError::Failed(msg.clone()));
                }
                match st.slot_mut(&source, &delivery_id) {
                    Some(Slot::Durable { seq, status, answer }) => {
                        let (seq, status) = (*seq, *status);
                        let answer = answer.clone();
                        drop(st);
                        return Ok(Accepted::Duplicate {
                            seq,
                            answer: parse_answer(status, &answer)?,
                        });
                    }
                    Some(Slot::Pending(waiters)) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push(tx);
                        rx
                    }
                    None => {
                        let by_id = match st.index.get_mut(source.as_str()) {
                            Some(m) => m,
                            None => st.index.entry(source.as_str().into()).or_default(),
                        };
                        by_id.insert(delivery_id.as_str().into(), Slot::Pending(Vec::new()));
                        break;
                    }
                }
            };
            // Woken when the first delivery is durable or failed; look again either way.
            let _ = wait.await;
        }
        let guard = PendingGuard {
            shared,
            key: Some((source, delivery_id)),
        };
        let (source, delivery_id) = guard.key.as_ref().expect("armed");
        let answer_json = serde_json::to_vec(&answer.body)?;
        let received_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let fields = record::Fields {
            received_at_ms,
            status: answer.status,
            source,
            delivery_id,
            answer: &answer_json,
            runs: &runs,
        };
        let rec = record::encode(&fields, event_json, raw_body)?;
        let permit = tx.reserve().await.map_err(|_| InboxError::Closed)?;
        let (ack, done) = oneshot::channel();
        let (source, delivery_id) = guard.disarm();
        permit.send(Msg::Append(Box::new(Append {
            source,
            delivery_id,
            status: answer.status,
            answer: answer_json.into(),
            rec,
            ack,
        })));
        match done.await {
            Ok(Ok(seq)) => Ok(Accepted::New { seq }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(InboxError::Failed("the inbox writer stopped".to_string())),
        }
    }

    /// Reads back the stored delivery with this source and id, if there is one.
    pub fn get(&self, source: &str, delivery_id: &str) -> Result<Option<StoredDelivery>, InboxError> {
        let seq = match self.inner.shared.lock().slot_mut(source, delivery_id) {
            Some(Slot::Durable { seq, .. }) => *seq,
            _ => return Ok(None),
        };
        self.get_seq(seq)
    }

    /// Reads back the delivery at position `seq` of the log, if it exists.
    pub fn get_seq(&self, seq: u64) -> Result<Option<StoredDelivery>, InboxError> {
        let (loc, file, path) = {
            let st = self.inner.shared.lock();
            let index = seq.checked_sub(st.base_seq).and_then(|i| usize::try_from(i).ok());
            let Some(&loc) = index.and_then(|i| st.locs.get(i)) else {
                return Ok(None);
            };
            let segment = &st.segments[(loc.segment - st.segment_base) as usize];
            (loc, Arc::clone(&segment.file), segment.path.clone())
        };
        let corrupt = |reason| InboxError::Corrupt {
            path: path.clone(),
            offset: loc.offset,
            reason,
        };
        let payload = log::read_payload(&file, loc)?.map_err(corrupt)?;
        let d = record::decode(&payload).map_err(corrupt)?;
        Ok(Some(StoredDelivery {
            seq,
            source: d.source.to_string(),
            delivery_id: d.delivery_id.to_string(),
            received_at_ms: d.received_at_ms,
            event_json: d.event.to_vec(),
            raw_body: d.raw.to_vec(),
            answer: parse_answer(d.status, d.answer)?,
            runs: d.runs,
        }))
    }

    /// Every delivery stored so far, in log order (those stored during the walk are not seen).
    pub fn iter(&self) -> Iter {
        self.iter_from(0)
    }

    /// [`Inbox::iter`] starting at sequence number `seq` (or the oldest one kept, if later).
    pub fn iter_from(&self, seq: u64) -> Iter {
        Iter {
            inbox: self.clone(),
            next: seq,
            end: self.seq_range().end,
        }
    }

    /// The sequence numbers stored: from the oldest not pruned to the next one to be assigned.
    pub fn seq_range(&self) -> std::ops::Range<u64> {
        let st = self.inner.shared.lock();
        st.base_seq..st.next_seq()
    }

    /// How many deliveries are stored (not counting pruned ones).
    pub fn len(&self) -> usize {
        self.inner.shared.lock().locs.len()
    }

    /// Whether no delivery is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the inbox takes no more deliveries, if it does not: it is read-only, a failed
    /// sync stopped it, or its writer is gone (shut down).
    pub fn stopped(&self) -> Option<String> {
        if self.inner.tx.is_none() {
            return Some("the inbox is open read-only".into());
        }
        if let Some(failed) = self.inner.shared.lock().failed.clone() {
            return Some(failed);
        }
        (*self.inner.shared.exited.borrow()).then(|| "the inbox writer stopped".into())
    }

    /// What opening the inbox found on disk.
    pub fn recovery(&self) -> Recovery {
        self.inner.recovery
    }

    /// Batches and deliveries written since open.
    pub fn stats(&self) -> InboxStats {
        let c = &self.inner.shared.stats;
        InboxStats {
            batches: c.batches.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
        }
    }

    /// Deletes every whole segment file whose deliveries all have sequence numbers below `seq`
    /// (never the one being written) and forgets those deliveries: a redelivery of one of them
    /// is then new again, so keep at least the sources' redelivery window. Returns how many
    /// deliveries were dropped. Fails with [`InboxError::Closed`] on a read-only inbox.
    pub fn prune_before(&self, seq: u64) -> Result<u64, InboxError> {
        let shared = &*self.inner.shared;
        if shared.lock.is_none() {
            return Err(InboxError::Closed);
        }
        let _one_at_a_time = self.inner.prune.lock().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = 0;
        loop {
            // The oldest segment, if the next one starts at or before `seq`.
            let (first_seq, end_seq, file, path) = {
                let st = shared.lock();
                match (st.segments.front(), st.segments.get(1)) {
                    (Some(a), Some(b)) if b.first_seq <= seq => {
                        (a.first_seq, b.first_seq, Arc::clone(&a.file), a.path.clone())
                    }
                    _ => break,
                }
            };
            let mut keys = Vec::new();
            log::segment_keys(&file, first_seq, end_seq, |source, id, seq| {
                keys.push((source.to_string(), id.to_string(), seq));
            })
            .map_err(|reason| InboxError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason,
            })?;
            {
                let mut st = shared.lock();
                for (source, id, seq) in &keys {
                    let Some(by_id) = st.index.get_mut(source.as_str()) else {
                        continue;
                    };
                    if matches!(by_id.get(id.as_str()), Some(Slot::Durable { seq: s, .. }) if s == seq) {
                        by_id.remove(id.as_str());
                    }
                    if by_id.is_empty() {
                        st.index.remove(source.as_str());
                    }
                }
                st.segments.pop_front();
                st.segment_base += 1;
                st.locs.drain(..(end_seq - first_seq) as usize);
                st.base_seq = end_seq;
            }
            // Oldest first, each unlink made durable before the next, so a crash leaves a prefix
            // removed and replay starts from the oldest segment still there.
            std::fs::remove_file(&path)?;
            // Straight to the real disk: the writer's `Disk` lives on its thread, and the
            // crash tests that stand in for it do not prune.
            disk::Os.sync_dir(&self.inner.dir)?;
            dropped += end_seq - first_seq;
        }
        Ok(dropped)
    }

    /// Stops taking deliveries, waits until every one already handed over is written and
    /// acknowledged, and stops the writer. Reads keep working; later accepts fail with `Closed`.
    pub async fn shutdown(&self) {
        if let Some(tx) = &self.inner.tx {
            let _ = tx.send(Msg::Shutdown).await;
        }
        let mut exited = self.inner.shared.exited.subscribe();
        let _ = exited.wait_for(|gone| *gone).await;
    }
}

/// Walks stored deliveries in log order; see [`Inbox::iter`].
pub struct Iter {
    inbox: Inbox,
    next: u64,
    end: u64,
}

impl Iterator for Iter {
    type Item = Result<StoredDelivery, InboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.next >= self.end {
                return None;
            }
            let seq = self.next;
            self.next += 1;
            match self.inbox.get_seq(seq) {
                Ok(Some(d)) => return Some(Ok(d)),
                // Pruned meanwhile (or before `iter_from`'s start): go on from the oldest kept.
                Ok(None) => self.next = self.next.max(self.inbox.seq_range().start),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
