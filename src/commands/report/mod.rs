//! `outreach report`: the campaign's per-recipient CSV ([`crate::recipients`]) written to
//! `--out`, or by default to `STATE_DIR/reports/CAMPAIGN-report.csv`.

use std::path::{Path, PathBuf};

use crate::load::Loaded;
use crate::recipients::{self, ReportError};
use crate::store::ledger::{self, Ledger};

/// A report written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// Its rows (one per contact and channel, and per ledger row whose contact left the file).
    pub rows: usize,
}

/// Writes the report of `loaded` to `out`, else to the state directory's `reports/` folder.
pub fn run(loaded: &Loaded, out: Option<&Path>) -> Result<Written, ReportError> {
    let state_dir = &loaded.campaign.sending.state_dir;
    let ledger = if state_dir.join(ledger::FILE).exists() {
        Some(Ledger::open(state_dir)?)
    } else {
        None
    };
    let path = match out {
        Some(out) => out.to_path_buf(),
        None => {
            let dir = state_dir.join("reports");
            let path = dir.join(format!("{}-report.csv", loaded.campaign.id));
            crate::private::create_dir(&dir).map_err(|source| ReportError::Io {
                path: path.clone(),
                source,
            })?;
            path
        }
    };
    let rows = recipients::write(&path, loaded, ledger.as_ref())?;
    Ok(Written { path, rows })
}
