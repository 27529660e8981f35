//! Paths as people read them: relative to the working directory where possible, with `..`
//! folded lexically (`campaigns/../contacts/x.csv` → `contacts/x.csv`). Bottom layer.

use std::path::{Path, PathBuf};

/// `campaigns/../contacts/x.csv` → `contacts/x.csv`, lexically (reports read better; the file
/// system is not consulted, so a symlinked directory keeps its `..`).
pub fn fold_parents(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

fn relative(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// A path as reports show it: relative to the working directory where possible, `..` folded.
pub fn show_path(path: &Path) -> String {
    relative(&fold_parents(path))
}
