//! Paths a plugin names, resolved inside the run's workspace and nowhere else.

use std::path::{Component, Path, PathBuf};

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
