//! The log files: segment naming, replay on open (with torn-tail truncation), and the writer
//! thread that appends batches and makes each durable with one `fdatasync`.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, IoSlice, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::disk::Disk;
use super::record::{self, Encoded, FRAME_HEADER, MAX_PAYLOAD};
use super::{InboxError, Recovery, Shared, Slot, State};

/// Largest number of records written and synced as one batch.
const MAX_BATCH_RECORDS: usize = 1024;
/// Batch size in bytes past which no more records are added to it.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Granularity for dropping written pages; with larger pages the kernel drops only the whole
/// pages inside the range, so this stays safe.
const PAGE: u64 = 4096;

/// One log file, named after the sequence number of its first record.
pub(super) struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
}

/// Where a durable record lies: segment number (see `State::segment_base`), offset of its
/// frame, payload length.
#[derive(Clone, Copy)]
pub(super) struct Loc {
    pub segment: u32,
    pub len: u32,
    pub offset: u64,
}

/// A message to the writer thread.
pub(super) enum Msg {
    /// Append one record and acknowledge it once durable.
    Append(Box<Append>),
    /// Stop taking messages; finish those already queued, then exit.
    Shutdown,
}

/// One delivery for the writer: its key and answer (for the index) and the encoded record.
pub(super) struct Append {
    pub source: String,
    pub delivery_id: String,
    pub status: u16,
    pub answer: Box<[u8]>,
    pub rec: Encoded,
    pub ack: oneshot::Sender<Result<u64, InboxError>>,
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(create).open(path)
}

/// Takes the directory's lock file, so one inbox at a time appends to it.
pub(super) fn lock_dir(dir: &Path) -> Result<File, InboxError> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // A lock just released may still be held for a moment: a child this process forks
    // (a step's command, git) shares the lock's open file until it execs, which closes it.
    // So a held lock is asked for again for up to a second before the directory is busy.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(InboxError::Busy(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => return Err(InboxError::Io(e)),
        }
    }
}

/// How long a held directory lock is waited for before the inbox is refused as busy.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Replays every segment under `dir` into a fresh state. With `write` (read-write: segment size
/// and the disk to write through) a torn tail of the last segment is truncated and a writer
/// positioned at the end is returned; without, nothing on disk is touched and a bad tail is
/// only skipped.
pub(super) fn replay<D: Disk>(
    dir: &Path,
    write: Option<(u64, D)>,
) -> Result<(State, Option<Writer<D>>, Recovery), InboxError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            found.push((first, entry.path()));
        }
    }
    found.sort();
    if let (true, Some((_, disk))) = (found.is_empty(), &write) {
        let path = dir.join(segment_name(0));
        drop(open_rw(&path, true)?);
        disk.sync_dir(dir)?;
        found.push((0, path));
    }

    let mut state = State {
        index: HashMap::new(),
        base_seq: found.first().map_or(0, |f| f.0),
        locs: VecDeque::new(),
        segment_base: 0,
        segments: VecDeque::new(),
        failed: None,
    };
    let mut recovery = Recovery {
        segments: found.len(),
        records: 0,
        truncated_bytes: 0,
    };
    let last = found.len().saturating_sub(1);
    let mut end = 0;
    for (i, (first_seq, path)) in found.into_iter().enumerate() {
        let corrupt = |offset: u64, reason: String| InboxError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        if first_seq != state.next_seq() {
            return Err(corrupt(
                0,
                format!(
                    "segment starts at record {first_seq} but the one before it ends at {}",
                    state.next_seq()
                ),
            ));
        }
        let file = match write {
            Some(_) => open_rw(&path, false)?,
            None => File::open(&path)?,
        };
        let scan = scan_segment(&file, i as u32, &mut state).map_err(|e| match e {
            ScanError::Io(e) => InboxError::Io(e),
            ScanError::Format { offset, reason } => corrupt(offset, reason),
        })?;
        if let Some((good, reason)) = scan.torn {
            if i != last {
                return Err(corrupt(good, format!("{reason} in a segment that is not the last")));
            }
            recovery.truncated_bytes = scan.file_len - good;
            if let Some((_, disk)) = &write {
                file.set_len(good)?;
                disk.sync_data(&file, &path)?;
            }
        }
        end = scan.good_end;
        state.segments.push_back(Segment {
            first_seq,
            path,
            file: Arc::new(file),
        });
    }
    recovery.records = state.locs.len() as u64;
    let Some((segment_bytes, disk)) = write else {
        return Ok((state, None, recovery));
    };
    let current = state.segments.back().expect("at least one segment");
    let (file, path) = (Arc::clone(&current.file), current.path.clone());
    (&*file).seek(SeekFrom::Start(end))?;
    let writer = Writer {
        disk,
        dir: dir.to_path_buf(),
        path,
        segment_bytes,
        segment: state.segment_base + (state.segments.len() - 1) as u32,
        file,
        end,
        next_seq: state.next_seq(),
        failed: None,
    };
    Ok((state, Some(writer), recovery))
}

struct Scan {
    file_len: u64,
    good_end: u64,
    /// Offset of the first bad record and why it is bad, if the segment does not end cleanly.
    torn: Option<(u64, String)>,
}

enum ScanError {
    Io(io::Error),
    /// A record with a good CRC that this build cannot decode: never truncated away.
    Format {
        offset: u64,
        reason: String,
    },
}

fn scan_segment(file: &File, segment: u32, state: &mut State) -> Result<Scan, ScanError> {
    let file_len = file.metadata().map_err(ScanError::Io)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    let mut payload = Vec::new();
    let torn = |offset: u64, reason: &str| Scan {
        file_len,
        good_end: offset,
        torn: Some((offset, reason.to_string())),
    };
    while offset < file_len {
        if file_len - offset < FRAME_HEADER as u64 {
            return Ok(torn(offset, "partial record header"));
        }
        let mut header = [0; FRAME_HEADER];
        reader.read_exact(&mut header).map_err(ScanError::Io)?;
        let (len, crc) = record::frame(&header);
        if len > MAX_PAYLOAD || offset + (FRAME_HEADER + len) as u64 > file_len {
            return Ok(torn(offset, "record length runs past the end of the file"));
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).map_err(ScanError::Io)?;
        if !record::crc_ok(len, crc, &payload) {
            return Ok(torn(offset, "CRC mismatch"));
        }
        let d = record::decode(&payload).map_err(|reason| ScanError::Format { offset, reason })?;
        let seq = state.next_seq();
        state.locs.push_back(Loc {
            segment,
            len: len as u32,
            offset,
        });
        let by_id = state.index.entry(d.source.into()).or_default();
        // A key can only repeat if an older build let it through; the first record wins.
        by_id.entry(d.delivery_id.into()).or_insert_with(|| Slot::Durable {
            seq,
            status: d.status,
            answer: d.answer.into(),
        });
        offset += (FRAME_HEADER + len) as u64;
    }
    Ok(Scan {
        file_len,
        good_end: offset,
        torn: None,
    })
}

/// Reads and checks the payload of the record at `loc` in `file`.
pub(super) fn read_payload(file: &File, loc: Loc) -> io::Result<Result<Vec<u8>, String>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; FRAME_HEADER + loc.len as usize];
    file.read_exact_at(&mut buf, loc.offset)?;
    let header: [u8; FRAME_HEADER] = buf[..FRAME_HEADER].try_into().expect("header length");
    let (len, crc) = record::frame(&header);
    if len != loc.len as usize || !record::crc_ok(len, crc, &buf[FRAME_HEADER..]) {
        return Ok(Err("record no longer matches its CRC".to_string()));
    }
    buf.drain(..FRAME_HEADER);
    Ok(Ok(buf))
}

/// The single appender: owns the current segment's write position.
pub(super) struct Writer<D> {
    disk: D,
    dir: PathBuf,
    /// The current segment's file.
    path: PathBuf,
    segment_bytes: u64,
    segment: u32,
    file: Arc<File>,
    end: u64,
    next_seq: u64,
    /// Set when a sync failed: what is on disk is unknown, so nothing more is accepted.
    failed: Option<String>,
}

/// Marks the writer gone when its thread ends, however it ends.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut st = self.0.lock();
            st.failed
                .get_or_insert_with(|| "the inbox writer thread panicked".to_string());
            // Wake everyone waiting on a pending first delivery; they will see the failure.
            for by_id in st.index.values_mut() {
                by_id.retain(|_, slot| !matches!(slot, Slot::Pending(_)));
            }
        }
        self.0.exited.send_replace(true);
    }
}

impl<D: Disk> Writer<D> {
    /// Runs the writer loop until every sender is gone or a shutdown is asked for.
    pub(super) fn run(mut self, shared: Arc<Shared>, mut rx: mpsc::Receiver<Msg>) {
        let _exit = ExitGuard(Arc::clone(&shared));
        let mut batch: Vec<Append> = Vec::new();
        while let Some(msg) = rx.blocking_recv() {
            let mut bytes = 0;
            let mut next = Some(msg);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(a) => {
                        bytes += a.rec.len();
                        batch.push(*a);
                    }
                    // Queued messages (and permits already reserved) are still received.
                    Msg::Shutdown => rx.close(),
                }
                if batch.len() < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(&shared, &mut batch);
            }
        }
    }

    fn commit(&mut self, shared: &Shared, batch: &mut Vec<Append>) {
        let result = match &self.failed {
            Some(msg) => Err(InboxError::Failed(msg.clone())),
            None => self.write_and_sync(shared, batch),
        };
        let mut acks = Vec::with_capacity(batch.len());
        let mut wake = Vec::new();
        {
            let mut st = shared.lock();
            let segment = self.segment;
            let mut offset = self.end;
            for a in batch.iter_mut() {
                let seq = st.next_seq();
                let by_id = st.index.get_mut(a.source.as_str());
                let previous = if result.is_ok() {
                    let durable = Slot::Durable {
                        seq,
                        status: a.status,
                        answer: std::mem::take(&mut a.answer),
                    };
                    match by_id.and_then(|m| m.get_mut(a.delivery_id.as_str())) {
                        Some(slot) => Some(std::mem::replace(slot, durable)),
                        None => {
                            // Only a panic guard clears pending slots; put the record back anyway.
                            let by_id = st.index.entry(std::mem::take(&mut a.source).into()).or_default();
                            by_id.insert(std::mem::take(&mut a.delivery_id).into(), durable);
                            None
                        }
                    }
                } else {
                    by_id.and_then(|m| m.remove(a.delivery_id.as_str()))
                };
                if let Some(Slot::Pending(waiters)) = previous {
                    wake.extend(waiters);
                }
                if result.is_ok() {
                    let len = (a.rec.len() - FRAME_HEADER) as u32;
                    st.locs.push_back(Loc { segment, len, offset });
                    offset += a.rec.len() as u64;
                    acks.push(Ok(seq));
                } else {
                    acks.push(Err(()));
                }
            }
            if let Err(InboxError::Failed(msg)) = &result {
                st.failed.get_or_insert_with(|| msg.clone());
            }
            if result.is_ok() {
                self.end = offset;
                self.next_seq = st.next_seq();
            }
        }
        shared.stats.batches.fetch_add(1, Ordering::Relaxed);
        if result.is_ok() {
            shared.stats.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        for w in wake {
            let _ = w.send(());
        }
        for (a, ack) in batch.drain(..).zip(acks) {
            let reply = match (ack, &result) {
                (Ok(seq), _) => Ok(seq),
                (Err(()), Err(InboxError::Failed(m))) => Err(InboxError::Failed(m.clone())),
                (Err(()), Err(e)) => Err(InboxError::Write(e.to_string())),
                (Err(()), Ok(())) => unreachable!("acks fail only with the batch"),
            };
            let _ = a.ack.send(reply);
        }
    }

    /// Writes the batch at the end of the current segment and syncs it.
    fn write_and_sync(&mut self, shared: &Shared, batch: &[Append]) -> Result<(), InboxError> {
        if self.end >= self.segment_bytes {
            self.roll(shared)?;
        }
        let mut slices = Vec::with_capacity(batch.len() * 5);
        for a in batch {
            let r = &a.rec;
            slices.extend([
                IoSlice::new(&r.head),
                IoSlice::new(&r.event_len),
                IoSlice::new(&r.event),
                IoSlice::new(&r.raw_len),
                IoSlice::new(&r.raw),
            ]);
        }
        if let Err(e) = self.write_all_vectored(&mut slices) {
            // Take back whatever part of the batch reached the file, so the tail stays clean.
            let undo = self
                .file
                .set_len(self.end)
                .and_then(|()| (&*self.file).seek(SeekFrom::Start(self.end)));
            if let Err(u) = undo {
                let msg = format!("append failed ({e}) and could not be undone ({u})");
                self.failed = Some(msg.clone());
                return Err(InboxError::Failed(msg));
            }
            return Err(InboxError::Io(e));
        }
        if let Err(e) = self.disk.sync_data(&self.file, &self.path) {
            // After a failed fdatasync the kernel may have dropped the dirty pages: what the file
            // holds is unknown, so stop; a restart replays what actually reached the disk.
            let msg = format!("fdatasync failed: {e}");
            self.failed = Some(msg.clone());
            return Err(InboxError::Failed(msg));
        }
        // The log is written once and read rarely: drop the now clean pages rather than
        // growing the page cache by every byte received. Whole pages only: the last one is
        // partly written and the next batch appends to it, which must not read it back first.
        let written: u64 = batch.iter().map(|a| a.rec.len() as u64).sum();
        let (start, end) = (self.end / PAGE * PAGE, (self.end + written) / PAGE * PAGE);
        if end > start {
            let _ = nix::fcntl::posix_fadvise(
                &*self.file,
                start as i64,
                (end - start) as i64,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
        }
        Ok(())
    }

    /// Starts a new segment named after the next sequence number.
    fn roll(&mut self, shared: &Shared) -> Result<(), InboxError> {
        let path = self.dir.join(segment_name(self.next_seq));
        // A failed earlier roll may have left this (empty) file behind.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.metadata()?.len() != 0 {
            return Err(InboxError::Write(format!(
                "new segment {} is not empty",
                path.display()
            )));
        }
        let file = Arc::new(file);
        self.disk.sync_dir(&self.dir)?;
        let mut st = shared.lock();
        st.segments.push_back(Segment {
            first_seq: self.next_seq,
            path: path.clone(),
            file: Arc::clone(&file),
        });
        self.path = path;
        self.segment = st.segment_base + (st.segments.len() - 1) as u32;
        self.file = file;
        self.end = 0;
        Ok(())
    }

    fn write_all_vectored(&self, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        while !slices.is_empty() {
            match self.disk.write_vectored(&self.file, &self.path, slices) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "log file accepted no bytes")),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Calls `f(source, delivery_id, seq)` for each record of a segment whose first record is
/// `first_seq`, stopping before `end_seq`.
pub(super) fn segment_keys(
    file: &File,
    first_seq: u64,
    end_seq: u64,
    mut f: impl FnMut(&str, &str, u64),
) -> Result<(), String> {
    let mut reader = BufReader::with_capacity(1 << 20, ReadAt { file, pos: 0 });
    let mut payload = Vec::new();
    for seq in first_seq..end_seq {
        let mut header = [0; FRAME_HEADER];
        reader.read_exact(&mut header).map_err(|e| e.to_string())?;
        let (len, crc) = record::frame(&header);
        if len > MAX_PAYLOAD {
            return Err(format!("record {seq} has a bad length"));
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
        if !record::crc_ok(len, crc, &payload) {
            return Err(format!("record {seq} no longer matches its CRC"));
        }
        let d = record::decode(&payload)?;
        f(d.source, d.delivery_id, seq);
    }
    Ok(())
}

/// Reads a file from the start with `pread`, leaving the shared file position to the writer.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
