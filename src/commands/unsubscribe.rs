//! `outreach unsubscribe`: maps the opaque tokens of unsubscribe links back to addresses and adds
//! them to the suppression table of the state directory, so the clinic's unsubscribe page only
//! ever collects tokens and never holds patient data.
//!
//! A token is recognised anywhere in its argument or line (a bare token, the whole link, a
//! `mailto:` subject, a web server's log line). It is looked up in the ledger's index of tokens
//! (written with each email's claim); one the index lacks maps back by recomputing the token of
//! every address the campaign knows: the contacts file and the ledger (so a patient removed
//! from the CSV since still maps).

use std::collections::{BTreeMap, HashMap};

use std::path::{Path, PathBuf};

use crate::load::Loaded;
use crate::model::{Channel, mask};
use crate::store::ledger::{Ledger, LedgerError};

/// Why tokens could not be read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Reads a `--from-file` file (`-`: standard input) whose text holds tokens.
pub fn read_tokens_file(file: &Path) -> Result<String, UnsubscribeError> {
    let read = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    };
    read.map_err(|source| UnsubscribeError::Read {
        path: file.to_path_buf(),
        source,
    })
}

/// The length of a token: 128 bits in lowercase base32 without padding.
const TOKEN_LEN: usize = 26;

/// Every token found in `text`.
pub fn tokens_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == TOKEN_LEN
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        })
        .map(str::to_string)
        .collect()
}

/// What became of each token.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    /// Newly suppressed: token → (channel, masked address).
    pub suppressed: Vec<Entry>,
    /// Already on the suppression table.
    pub already: Vec<Entry>,
    /// Tokens no address of this campaign produces (another campaign, a typo, a test message).
    pub unknown: Vec<String>,
}

/// One recognised token.
#[derive(Debug, serde::Serialize)]
pub struct Entry {
    pub token: String,
    pub channel: Channel,
    /// Masked: `a***@example.com`.
    pub address: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.suppressed.len() + self.already.len() + self.unknown.len();
        writeln!(
            f,
            "{total} token{}: {} unsubscribed, {} already suppressed, {} unknown",
            if total == 1 { "" } else { "s" },
            self.suppressed.len(),
            self.already.len(),
            self.unknown.len()
        )?;
        for e in &self.suppressed {
            writeln!(
                f,
                "  unsubscribed  {} {} ({})",
                e.channel, e.address, e.token
            )?;
        }
        for e in &self.already {
            writeln!(
                f,
                "  already       {} {} ({})",
                e.channel, e.address, e.token
            )?;
        }
        for t in &self.unknown {
            writeln!(
                f,
                "  unknown       {t}: no recipient of this campaign has it"
            )?;
        }
        Ok(())
    }
}

/// Every token this campaign's addresses produce (the contacts file's and the ledger's, on every
/// channel it uses), for tokens the ledger's index does not hold: emails claimed by earlier
/// versions, and links never claimed (an SMS template's).
fn search_table(
    loaded: &Loaded,
    ledger: &Ledger,
) -> Result<HashMap<String, (Channel, String)>, LedgerError> {
    let campaign = &loaded.campaign;
    let mut known: BTreeMap<(Channel, String), ()> = BTreeMap::new();
    for contact in &loaded.contacts.contacts {
        for &channel in &campaign.channels {
            if let Some(address) = contact.address(channel) {
                known.insert((channel, address.to_string()), ());
            }
        }
    }
    ledger.each_row(&campaign.id, |row| {
        if let Ok(channel) = row.channel.parse::<Channel>() {
            known.insert((channel, row.address), ());
        }
    })?;
    Ok(known
        .into_keys()
        .map(|(channel, address)| {
            (
                loaded.key.token(&campaign.id, channel, &address),
                (channel, address),
            )
        })
        .collect())
}

/// Suppresses the addresses behind `tokens`: each looked up in the ledger's index of tokens
/// first, and only when it is not there, searched for among the campaign's addresses.
pub fn run(loaded: &Loaded, tokens: &[String]) -> Result<Outcome, LedgerError> {
    let campaign = &loaded.campaign;
    let mut ledger = Ledger::open_store(&campaign.sending.store())?;
    let mut found: HashMap<String, (Channel, String)> = HashMap::new();
    let mut missing = false;
    for token in tokens {
        match ledger.token(token)? {
            Some(row) if row.campaign == campaign.id => {
                found.insert(token.clone(), (row.channel, row.address));
            }
            _ => missing = true,
        }
    }
    let by_token = if missing {
        search_table(loaded, &ledger)?
    } else {
        HashMap::new()
    };

    let suppressed_before: std::collections::HashSet<String> = ledger
        .suppressions()?
        .into_iter()
        .map(|(address, _, _)| address)
        .collect();
    let mut outcome = Outcome {
        suppressed: Vec::new(),
        already: Vec::new(),
        unknown: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for token in tokens {
        if !seen.insert(token.clone()) {
            continue;
        }
        let Some((channel, address)) = found.get(token).or_else(|| by_token.get(token)) else {
            outcome.unknown.push(token.clone());
            continue;
        };
        let entry = Entry {
            token: token.clone(),
            channel: *channel,
            address: mask(*channel, address),
        };
        if suppressed_before.contains(address) {
            outcome.already.push(entry);
            continue;
        }
        ledger.suppress(
            address,
            "unsubscribed",
            &format!("outreach unsubscribe ({})", campaign.id),
            loaded.now,
        )?;
        tracing::info!(%channel, to = %entry.address, "unsubscribed");
        outcome.suppressed.push(entry);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tokens_in_links_subjects_and_logs() {
        let t = "abcdefghijklmnopqrstuvwxyz";
        assert_eq!(tokens_in(t), vec![t]);
        assert_eq!(
            tokens_in(&format!("https://riverside.example/unsubscribe?t={t}")),
            vec![t]
        );
        assert_eq!(tokens_in(&format!("unsubscribe {t}")), vec![t]);
        assert_eq!(
            tokens_in(&format!("1.2.3.4 - - \"POST /u?t={t} HTTP/1.1\" 200")),
            vec![t]
        );
        // Wrong length, upper case, or digits outside base32 are not tokens.
        assert!(tokens_in("abcdefghijklmnopqrstuvwxy").is_empty());
        assert!(tokens_in("ABCDEFGHIJKLMNOPQRSTUVWXYZ").is_empty());
        assert!(tokens_in("abcdefghijklmnopqrstuvwxy1").is_empty());
        assert!(tokens_in("test-message-not-a-patient").is_empty());
    }
}
