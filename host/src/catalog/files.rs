//! The plugins directory on disk: which `<step_type>.wasm` files it holds, a file's identity
//! (so a changed file is loaded again), and a file's detached signature.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::CatalogError;
use crate::policy::{MAX_SIGNATURE_BYTES, SIGNATURE_SUFFIX};

/// A file's identity: when it changes, the file is read and checked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

/// The identity of a plugin file, and the contents of its signature file (none when absent
/// or not asked for): adding, replacing or removing either reloads the plugin. A signature
/// is a few hundred bytes, so it is compared by content, which no quick rewrite can hide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileStamp {
    wasm: Stamp,
    signature: Option<Vec<u8>>,
}

impl FileStamp {
    /// The signature file's bytes, when it was read.
    pub(super) fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }
}

/// `<step_type>.wasm` files in `dir`, by step type. A directory that does not exist holds
/// none; one that exists but cannot be read is an error, not an empty catalog.
pub(super) fn custom_files(dir: Option<&Path>) -> Result<BTreeMap<String, PathBuf>, CatalogError> {
    let Some(dir) = dir else { return Ok(BTreeMap::new()) };
    let read_err = |e: std::io::Error| read_error(dir, e);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|x| x == "wasm")
            && path.is_file()
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            files.insert(stem.to_string(), path);
        }
    }
    Ok(files)
}

/// The stamp of `path`, with its signature file's contents when `signed`.
pub(super) fn file_stamp(path: &Path, signed: bool) -> Result<FileStamp, CatalogError> {
    let wasm = stamp(path).map_err(|e| read_error(path, e))?;
    let signature = if signed { read_signature(path)? } else { None };
    Ok(FileStamp { wasm, signature })
}

/// The plugin file's bytes.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, CatalogError> {
    std::fs::read(path).map_err(|e| read_error(path, e))
}

/// The bytes of `<path>.minisig`, none when there is none; at most a little more than
/// [`MAX_SIGNATURE_BYTES`] are read (a longer file does not decode as a signature).
pub(super) fn read_signature(path: &Path) -> Result<Option<Vec<u8>>, CatalogError> {
    let sig = signature_path(path);
    let file = match std::fs::File::open(&sig) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(&sig, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_SIGNATURE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(&sig, e))?;
    Ok(Some(bytes))
}

fn signature_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        len: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        inode: m.ino(),
    })
}

fn read_error(path: &Path, e: std::io::Error) -> CatalogError {
    CatalogError::Read {
        path: path.into(),
        reason: e.to_string(),
    }
}
