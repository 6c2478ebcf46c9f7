//! Paths a plugin names, resolved inside the run's workspace and nowhere else.

mod size;

use std::path::{Component, Path, PathBuf};

pub use size::{Usage, usage};

/// A path a plugin gave that would leave the workspace or does not exist.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Absolute, or climbs out with `..`.
    #[error("path `{0}` must be relative to the workspace and must not contain `..`")]
    NotRelative(String),
    /// Resolves (through a symlink) to somewhere outside the workspace.
    #[error("path `{0}` leads outside the workspace")]
    Escapes(String),
    /// Does not exist or cannot be read.
    #[error("path `{0}`: {1}")]
    Io(String, String),
}

/// Resolves `rel` inside `workspace`, following symlinks, and refuses anything that ends
/// up outside it. The path must exist.
pub fn resolve(workspace: &Path, rel: &str) -> Result<PathBuf, PathError> {
    let (root, full) = join(workspace, rel)?;
    let full = full
        .canonicalize()
        .map_err(|e| PathError::Io(rel.into(), e.to_string()))?;
    inside(&root, full, rel)
}

/// Resolves `rel` inside `workspace` for something about to be created there: the path
/// need not exist, but whatever part of it exists must stay inside the workspace.
pub fn resolve_new(workspace: &Path, rel: &str) -> Result<PathBuf, PathError> {
    let (root, full) = join(workspace, rel)?;
    let existing = full.ancestors().find(|p| p.exists()).unwrap_or(&root);
    let existing = existing
        .canonicalize()
        .map_err(|e| PathError::Io(rel.into(), e.to_string()))?;
    inside(&root, existing, rel)?;
    Ok(full)
}

/// The canonical workspace root and `rel` joined to it, once `rel` is known to be relative
/// with no `..` (`/workspace/...`, the guest's name for the root, is accepted too).
fn join(workspace: &Path, rel: &str) -> Result<(PathBuf, PathBuf), PathError> {
    let rel_path = Path::new(rel.strip_prefix("/workspace/").unwrap_or(rel));
    if rel_path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(PathError::NotRelative(rel.into()));
    }
    let root = workspace
        .canonicalize()
        .map_err(|e| PathError::Io(workspace.display().to_string(), e.to_string()))?;
    let full = root.join(rel_path);
    Ok((root, full))
}

/// A workspace that holds, or lies inside, a directory no plugin may write: the plugins
/// directory (a plugin could plant a step with more grants), the data directory (the compile
/// cache, the store) or the config file's folder.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "workspace `{workspace}` {relation} the {what} `{dir}`: steps could write there; use a workspace outside it (or leave out --workspace for a fresh temporary one)"
)]
pub struct Overlap {
    /// The workspace, as resolved.
    pub workspace: PathBuf,
    /// "contains" or "is inside".
    pub relation: &'static str,
    /// What the protected directory is, e.g. "data directory".
    pub what: &'static str,
    /// The protected directory, as resolved.
    pub dir: PathBuf,
}

/// Refuses a workspace that contains or is inside any of the `protected` directories
/// (named for the message). Paths need not exist yet; symlinks in existing parts are resolved.
pub fn check_apart(workspace: &Path, protected: &[(&'static str, &Path)]) -> Result<(), Overlap> {
    let ws = resolved(workspace);
    for (what, dir) in protected {
        let dir = resolved(dir);
        let relation = if dir.starts_with(&ws) {
            "contains"
        } else if ws.starts_with(&dir) {
            "is inside"
        } else {
            continue;
        };
        return Err(Overlap {
            workspace: ws,
            relation,
            what,
            dir,
        });
    }
    Ok(())
}

/// `path` made absolute, with its longest existing ancestor canonicalized and the rest
/// appended as written (minus `.` parts).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let existing = absolute.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let base = existing.canonicalize().unwrap_or_else(|_| existing.to_path_buf());
    let rest = absolute.strip_prefix(existing).unwrap_or(Path::new(""));
    let mut out = base;
    for part in rest.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

/// A symbolic link in the workspace that led outside it, removed between steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedLink {
    /// The link, relative to the workspace.
    pub path: PathBuf,
    /// Where it pointed.
    pub target: PathBuf,
}

/// Removes every symbolic link under `workspace` whose target lies outside it (followed when
/// it exists, resolved by its text when it dangles): a plugin with no grants can create such
/// a link through WASI, and the next step's native command would write through it. Walks
/// without following links and without recursion, so no tree a step builds can loop it or
/// overflow the host's stack.
pub fn remove_escaping_links(workspace: &Path) -> std::io::Result<Vec<RemovedLink>> {
    let root = workspace.canonicalize()?;
    let mut removed = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_symlink() && !link_stays_inside(&root, &path)? {
                let target = std::fs::read_link(&path)?;
                std::fs::remove_file(&path)?;
                let path = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
                removed.push(RemovedLink { path, target });
            }
        }
    }
    Ok(removed)
}

fn link_stays_inside(root: &Path, link: &Path) -> std::io::Result<bool> {
    if let Ok(real) = link.canonicalize() {
        return Ok(real.starts_with(root));
    }
    let target = std::fs::read_link(link)?;
    let mut at = link.parent().unwrap_or(root).to_path_buf();
    for part in target.components() {
        match part {
            Component::RootDir => at = PathBuf::from("/"),
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(p) => at.push(p),
            Component::CurDir | Component::Prefix(_) => {}
        }
        if !at.starts_with(root) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn inside(root: &Path, path: PathBuf, rel: &str) -> Result<PathBuf, PathError> {
    if path.starts_with(root) {
        Ok(path)
    } else {
        Err(PathError::Escapes(rel.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        std::fs::create_dir(ws.path().join("sub")).unwrap();
        std::fs::write(ws.path().join("sub/f.txt"), "x").unwrap();
        assert!(resolve(ws.path(), "sub/f.txt").unwrap().ends_with("sub/f.txt"));
        assert!(resolve(ws.path(), "/workspace/sub/f.txt").is_ok());
        assert_eq!(
            resolve(ws.path(), "../etc/passwd"),
            Err(PathError::NotRelative("../etc/passwd".into()))
        );
        assert_eq!(
            resolve(ws.path(), "/etc/passwd"),
            Err(PathError::NotRelative("/etc/passwd".into()))
        );
        std::os::unix::fs::symlink("/etc", ws.path().join("link")).unwrap();
        assert_eq!(
            resolve(ws.path(), "link/passwd"),
            Err(PathError::Escapes("link/passwd".into()))
        );
    }

    #[test]
    fn a_workspace_holding_or_inside_a_protected_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("powernode-data");
        let plugins = root.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        let protected = [
            ("data directory", data.as_path()),
            ("plugins directory", plugins.as_path()),
        ];
        let err = check_apart(root.path(), &protected).unwrap_err();
        assert_eq!((err.relation, err.what), ("contains", "data directory"));
        let err = check_apart(&plugins.join("sub"), &protected).unwrap_err();
        assert_eq!((err.relation, err.what), ("is inside", "plugins directory"));
        // `.` spelled through a symlink and `..` are seen through.
        std::os::unix::fs::symlink(root.path(), root.path().join("alias")).unwrap();
        let err = check_apart(&root.path().join("alias/x/.."), &protected).unwrap_err();
        assert_eq!(err.relation, "contains");
        assert!(err.to_string().contains("use a workspace outside it"), "{err}");
        assert_eq!(check_apart(&root.path().join("ws"), &protected), Ok(()));
    }

    #[test]
    fn links_leading_out_are_removed_and_others_kept() {
        use std::os::unix::fs::symlink;
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/file"), "x").unwrap();
        symlink("../../../../tmp/x", root.join("a/b/build.log")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink("b/../../..", root.join("a/up")).unwrap();
        symlink("../file", root.join("a/b/ok")).unwrap();
        symlink("missing/inside", root.join("dangling_ok")).unwrap();
        symlink(root.join("a"), root.join("abs_inside")).unwrap();
        let mut removed: Vec<_> = remove_escaping_links(root)
            .unwrap()
            .into_iter()
            .map(|l| l.path.display().to_string())
            .collect();
        removed.sort();
        assert_eq!(removed, ["a/b/build.log", "a/up", "etc"]);
        for kept in ["a/b/ok", "dangling_ok", "abs_inside"] {
            assert!(root.join(kept).symlink_metadata().is_ok(), "{kept} was removed");
        }
    }

    #[test]
    fn new_paths_stay_inside_the_workspace() {
        let ws = tempfile::tempdir().unwrap();
        assert!(resolve_new(ws.path(), "src/repo").unwrap().ends_with("src/repo"));
        assert!(resolve_new(ws.path(), ".").is_ok());
        assert!(matches!(resolve_new(ws.path(), "../x"), Err(PathError::NotRelative(_))));
        std::os::unix::fs::symlink("/tmp", ws.path().join("out")).unwrap();
        assert_eq!(
            resolve_new(ws.path(), "out/repo"),
            Err(PathError::Escapes("out/repo".into()))
        );
    }
}
