//! The manual pages and shell completions, generated from [`crate::cli`]'s definitions so that
//! they say what `--help` says and cannot drift from it. `outreach completions SHELL` prints a
//! completion script; the hidden `outreach man --dir DIR` writes `outreach.1` and one page per
//! command (`outreach-send.1`, `outreach-suppressions-list.1`, …). The packages run the binary
//! they ship to make both (`scripts/package`), so there is no second build.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// Writing a manual page failed.
#[derive(Debug, thiserror::Error)]
#[error("writing the manual page {}: {source}", crate::paths::show_path(path))]
pub struct ManError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes `shell`'s completion script for `outreach` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "outreach", out);
}

/// Writes the manual pages into `dir` (made if missing); returns the paths written, sorted.
/// Hidden commands (`man` itself) get no page, and neither does clap's `help`.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, ManError> {
    std::fs::create_dir_all(dir).map_err(|source| ManError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut top = Cli::command().disable_help_subcommand(true);
    // Gives each command its full name (`outreach-suppressions-list`), which names its page.
    top.build();
    let mut written = Vec::new();
    let mut pending = vec![top];
    while let Some(command) = pending.pop() {
        let children = command.get_subcommands().filter(|c| !c.is_hide_set());
        pending.extend(children.cloned());
        // Every page's footer names the version and commit (clap gives only the top one its
        // version).
        let page = clap_mangen::Man::new(command)
            .manual("outreach manual")
            .source(format!("outreach {}", crate::cli::VERSION));
        let path = dir.join(page.get_filename());
        let mut bytes = Vec::new();
        page.render(&mut bytes)
            .and_then(|()| std::fs::write(&path, &bytes))
            .map_err(|source| ManError {
                path: path.clone(),
                source,
            })?;
        written.push(path);
    }
    written.sort();
    Ok(written)
}
