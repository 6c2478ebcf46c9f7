//! The calls through which the log is changed and made durable, behind a small trait so a
//! test can stand in for the disk (`lazy_disk.rs`: keep only what was synced, fail a sync,
//! crash at a chosen point). The writer is generic over it: the real disk costs no indirection,
//! and each call covers a whole batch, not a record.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::Path;

/// What the inbox asks of the disk when it writes. `path` names `file` for implementations
/// that track files; the real one ignores it.
pub(super) trait Disk: Send + Sync + 'static {
    /// Writes a prefix of `bufs` at `file`'s position, like [`Write::write_vectored`].
    fn write_vectored(&self, file: &File, path: &Path, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Makes `file`'s data and size durable (`fdatasync`).
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (files created or removed in it) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real disk.
pub(super) struct Os;

impl Disk for Os {
    fn write_vectored(&self, mut file: &File, _: &Path, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        file.write_vectored(bufs)
    }

    fn sync_data(&self, file: &File, _: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
