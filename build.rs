//! Build script: the commit `outreach --version` names, as the `OUTREACH_COMMIT` compile-time
//! variable. In order: `OUTREACH_COMMIT` from the environment (a build from a source tarball
//! says which commit it is), the git checkout's `HEAD`, the `.cargo_vcs_info.json` that
//! `cargo package` writes into a crate, else `unknown`.
//!
//! It stays cheap: one or two `git` calls, and cargo reruns it only when `HEAD` or the branch
//! it points at moves (or `OUTREACH_COMMIT` changes), not on every edit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Hex digits of the commit printed: enough to be unique in this repository for years.
const SHORT: usize = 10;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OUTREACH_COMMIT");
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let commit = std::env::var("OUTREACH_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(|| from_git(&root))
        .or_else(|| from_vcs_info(&root))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=OUTREACH_COMMIT={commit}");
}

/// `git` run in the crate's directory; its trimmed output when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The checkout's commit, and the files whose change means a new one: `HEAD` (a checkout or a
/// detached commit), the branch's ref (a commit on it), else `packed-refs` where git keeps
/// refs it has packed. `--git-path` finds them in a linked worktree too. A path that does not
/// exist is never given to cargo, which would then rerun this script on every build.
fn from_git(root: &Path) -> Option<String> {
    // Only this crate's own checkout: a source tarball unpacked inside another repository must
    // not take that repository's commit.
    let top = PathBuf::from(git(root, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    let commit = git(root, &["rev-parse", &format!("--short={SHORT}"), "HEAD"])?;
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &name]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(commit)
}

/// The commit `cargo package` recorded in the crate it made (`"sha1": "…"`).
fn from_vcs_info(root: &Path) -> Option<String> {
    let path = root.join(".cargo_vcs_info.json");
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let text = std::fs::read_to_string(path).ok()?;
    let start = text.find("\"sha1\"")?;
    let rest = &text[start + "\"sha1\"".len()..];
    let hex: String = rest
        .chars()
        .skip_while(|c| !c.is_ascii_hexdigit())
        .take_while(char::is_ascii_hexdigit)
        .take(SHORT)
        .collect();
    (hex.len() == SHORT).then_some(hex)
}
