//! One run at a time per campaign: an exclusive lock on `state_dir/<campaign>.lock`, held for
//! the whole run and released by the OS when the process ends however it ends. The file says who
//! holds it, so a second run can name the holder.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another run of campaign {campaign} is in progress ({holder}); lock file {path}")]
    Held {
        campaign: String,
        holder: String,
        path: PathBuf,
    },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl LockError {
    /// Another run holds `campaign`'s lock in the ledger's database (`store::Ledger::
    /// hold_run_lock`), perhaps on another host.
    pub fn held_in_store(campaign: &str, store: &str) -> LockError {
        LockError::Held {
            campaign: campaign.to_string(),
            holder: format!("it holds the campaign's lock in {store}, perhaps from another host"),
            path: PathBuf::from(store),
        }
    }

    /// A run of `campaign` holds a live lease in the ledger's database (`store/lease.rs`),
    /// perhaps from another host, or died less than a lease ago.
    pub fn leased_in_store(campaign: &str, store: &str) -> LockError {
        LockError::Held {
            campaign: campaign.to_string(),
            holder: format!(
                "a run holds a live lease in {store}, perhaps from another host, or died less \
                 than {} s ago",
                crate::store::lease::lease().as_secs()
            ),
            path: PathBuf::from(store),
        }
    }
}

/// Takes the campaign's lock without waiting.
pub fn acquire(state_dir: &Path, campaign: &str) -> Result<RunLock, LockError> {
    let path = state_dir.join(format!("{campaign}.lock"));
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    crate::private::create_dir(state_dir).map_err(io)?;
    let mut file = crate::private::open(&path, crate::private::Open::ReadWrite).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            let holder = format!(
                "pid {}, started {}",
                std::process::id(),
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            );
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(holder.as_bytes()).map_err(io)?;
            Ok(RunLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(LockError::Held {
                campaign: campaign.to_string(),
                holder: if holder.trim().is_empty() {
                    "holder unknown".into()
                } else {
                    holder.trim().to_string()
                },
                path,
            })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}
