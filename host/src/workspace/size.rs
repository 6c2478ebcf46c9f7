//! How much a workspace holds, measured between steps against `max_workspace_mb`.

use std::path::Path;

/// What a workspace holds, counted up to a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Within the limit: the total, in bytes.
    Within(u64),
    /// Over the limit: what had been counted when counting stopped (at least this much).
    Over(u64),
}

/// Adds up the apparent size (the length, so a sparse file counts in full) of every file and
/// symbolic link under `root`, without following links (a link counts as its own length, not
/// its target's), and stops as soon as the total is over `limit`: the cost is bounded by the
/// limit, not by what a step wrote. Iterative, so no tree a step builds can overflow the
/// host's stack. An entry removed while it is being counted is skipped; a directory that
/// cannot be read is an error (a step must not hide what it wrote by locking a folder).
pub fn usage(root: &Path, limit: u64) -> std::io::Result<Usage> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mut total: u64 = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            // `DirEntry::metadata` does not follow a symbolic link.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
                if total > limit {
                    return Ok(Usage::Over(total));
                }
            }
        }
    }
    Ok(Usage::Within(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_count_by_length_links_are_not_followed_and_counting_stops_over_the_limit() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ws.path().join("a/b")).unwrap();
        std::fs::write(ws.path().join("a/b/one"), vec![0u8; 1000]).unwrap();
        // Sparse: 1 MiB long, almost nothing allocated; it counts as 1 MiB.
        let sparse = std::fs::File::create(ws.path().join("sparse")).unwrap();
        sparse.set_len(1 << 20).unwrap();
        // A link to a big file outside counts as the link, not as the file.
        let big = outside.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
        std::os::unix::fs::symlink(&big, ws.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.path().join("dir-link")).unwrap();
        let links = big.as_os_str().len() + outside.path().as_os_str().len();
        let expected = 1000 + (1 << 20) + links as u64;
        assert_eq!(usage(ws.path(), 2 << 20).unwrap(), Usage::Within(expected));
        assert_eq!(usage(ws.path(), expected).unwrap(), Usage::Within(expected));
        match usage(ws.path(), 1000).unwrap() {
            Usage::Over(n) => assert!(n > 1000 && n <= expected, "{n}"),
            within => panic!("{within:?}"),
        }
    }
}
