//! A stand-in disk for tests that keeps only what was synced, after Jepsen's LazyFS.
//!
//! Writes go to the real files, which play the page cache (reads see them, as they would).
//! Each successful `fdatasync` copies its file into the durable image; each directory sync
//! records which segment files exist. A crash, at a chosen sync, keeps what the files held at
//! that moment and fails that call and every later one, as a dead machine acknowledges nothing.
//! [`LazyDisk::reboot`] then rewrites the directory as the images say: files created since the
//! last directory sync are gone, and each file holds its synced bytes plus at most `keep` bytes
//! written after them (the kernel may have written some pages back on its own). An injected
//! `fdatasync` failure loses the pages it failed to write even if a later sync succeeds, as
//! Linux does.
//!
//! No real sync is made: the model, not the disk, decides what survives.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;

use super::disk::Disk;

/// A disk that loses what was not synced; clones share one model.
#[derive(Clone)]
pub(super) struct LazyDisk(Arc<Mutex<Model>>);

struct Model {
    /// The one directory it serves.
    dir: PathBuf,
    /// Durable bytes of each file.
    synced: HashMap<PathBuf, Vec<u8>>,
    /// Segment files whose directory entry is durable.
    entries: BTreeSet<PathBuf>,
    /// Byte ranges whose sync failed: those pages were dropped and no later sync stores them.
    dropped: Vec<(PathBuf, Range<usize>)>,
    /// Successful syncs so far.
    syncs: u64,
    /// Crash at the first sync once this many have succeeded.
    crash_at: Option<u64>,
    /// What the files held (the page cache) when the crash came; `Some` once crashed.
    at_crash: Option<HashMap<PathBuf, Vec<u8>>>,
    /// Fail the next `fdatasync`, once, without crashing.
    fail_next_fdatasync: bool,
    /// Bytes the disk still takes before writes fail with ENOSPC; `None`: no limit.
    space: Option<usize>,
}

fn segment_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            files.push(path);
        }
    }
    Ok(files)
}

fn contents(dir: &Path) -> io::Result<HashMap<PathBuf, Vec<u8>>> {
    segment_files(dir)?
        .into_iter()
        .map(|p| std::fs::read(&p).map(|bytes| (p, bytes)))
        .collect()
}

fn crashed() -> io::Error {
    io::Error::other("the disk crashed (test)")
}

impl Model {
    /// Called first by every sync: fails after a crash, or crashes now if it is time.
    fn sync_point(&mut self) -> io::Result<()> {
        if self.at_crash.is_some() {
            return Err(crashed());
        }
        if self.crash_at.is_some_and(|n| self.syncs >= n) {
            self.at_crash = Some(contents(&self.dir)?);
            return Err(crashed());
        }
        Ok(())
    }

    /// `bytes` with every dropped range of `path` zeroed: what the disk holds there.
    fn without_dropped(&self, path: &Path, mut bytes: Vec<u8>) -> Vec<u8> {
        for (p, range) in &self.dropped {
            if p == path {
                let end = range.end.min(bytes.len());
                bytes[range.start.min(end)..end].fill(0);
            }
        }
        bytes
    }
}

impl LazyDisk {
    /// A disk for `dir`, whose present segment files count as durable.
    pub(super) fn new(dir: &Path) -> LazyDisk {
        let synced = contents(dir).expect("read the directory");
        LazyDisk(Arc::new(Mutex::new(Model {
            dir: dir.to_path_buf(),
            entries: synced.keys().cloned().collect(),
            synced,
            dropped: Vec::new(),
            syncs: 0,
            crash_at: None,
            at_crash: None,
            fail_next_fdatasync: false,
            space: None,
        })))
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Crashes at the first sync after `n` more have succeeded.
    pub(super) fn crash_after_syncs(&self, n: u64) {
        let mut m = self.model();
        m.crash_at = Some(m.syncs + n);
    }

    /// Whether the crash has come.
    pub(super) fn crashed(&self) -> bool {
        self.model().at_crash.is_some()
    }

    /// Makes the next `fdatasync` fail with EIO (once; later ones succeed).
    pub(super) fn fail_next_fdatasync(&self) {
        self.model().fail_next_fdatasync = true;
    }

    /// Lets writes take `bytes` more before they fail with ENOSPC; `None`: no limit.
    pub(super) fn set_space(&self, bytes: Option<usize>) {
        self.model().space = bytes;
    }

    /// Crashes now if the crash has not come, then leaves on disk only what survives it, with
    /// up to `keep` unsynced bytes of each file written back. Returns the bytes lost. Call it
    /// once the inbox is dropped; the disk then works again, with no crash planned.
    pub(super) fn reboot(&self, keep: usize) -> io::Result<u64> {
        let mut m = self.model();
        let cache = match m.at_crash.take() {
            Some(cache) => cache,
            None => contents(&m.dir)?,
        };
        let mut lost = 0;
        for path in segment_files(&m.dir)? {
            if !m.entries.contains(&path) {
                lost += cache.get(&path).map_or(0, Vec::len) as u64;
                std::fs::remove_file(&path)?;
            }
        }
        for path in m.entries.clone() {
            let mut image = m.synced.get(&path).cloned().unwrap_or_default();
            let cached = cache.get(&path).map_or(&[][..], Vec::as_slice);
            let end = cached.len().min(image.len().saturating_add(keep));
            if end > image.len() {
                image.extend_from_slice(&cached[image.len()..end]);
            }
            let image = m.without_dropped(&path, image);
            lost += cached.len().saturating_sub(image.len()) as u64;
            std::fs::write(&path, &image)?;
            m.synced.insert(path, image);
        }
        m.dropped.clear();
        m.crash_at = None;
        m.fail_next_fdatasync = false;
        m.space = None;
        Ok(lost)
    }
}

impl Disk for LazyDisk {
    fn write_vectored(&self, mut file: &File, _: &Path, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut m = self.model();
        if m.at_crash.is_some() {
            return Err(crashed());
        }
        let Some(space) = m.space else {
            return file.write_vectored(bufs);
        };
        let Some(buf) = bufs.iter().find(|b| !b.is_empty()) else {
            return Ok(0);
        };
        if space == 0 {
            return Err(Errno::ENOSPC.into());
        }
        let n = file.write(&buf[..buf.len().min(space)])?;
        m.space = Some(space - n);
        Ok(n)
    }

    fn sync_data(&self, _: &File, path: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.sync_point()?;
        let now = std::fs::read(path)?;
        if std::mem::take(&mut m.fail_next_fdatasync) {
            let from = m.synced.get(path).map_or(0, Vec::len);
            m.dropped.push((path.to_path_buf(), from..now.len()));
            return Err(Errno::EIO.into());
        }
        let image = m.without_dropped(path, now);
        m.synced.insert(path.to_path_buf(), image);
        m.syncs += 1;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut m = self.model();
        m.sync_point()?;
        if dir != m.dir {
            return Err(io::Error::other(format!(
                "LazyDisk serves {}, not {}",
                m.dir.display(),
                dir.display()
            )));
        }
        m.entries = segment_files(dir)?.into_iter().collect();
        m.syncs += 1;
        Ok(())
    }
}
