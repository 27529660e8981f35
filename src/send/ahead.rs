//! Where runs of one campaign share the work (PostgreSQL), what another run already took is
//! passed over without being made. Each run walks the whole list from its own place
//! (`start_apart`), so the first to finish its share walks on into messages the other has
//! claimed; each one would be rendered, built and claimed only to be refused. Once a lane has
//! had a claim refused, it asks the ledger about the messages ahead of it a window at a time
//! (one look for [`WINDOW`] messages, read after the writer's next commit) and passes over those
//! `sent` or in flight. A message the look saw free still goes through the claim, which stays
//! the only judge of never-twice: the look only saves the work of a refusal.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::deliver::Outbound;
use super::lane::Run;

/// Messages one look asks about.
const WINDOW: usize = 256;

/// A lane's looks ahead: one per window of its list, made when the first of its messages is
/// reached after the lane met another run's claim.
pub(super) struct Ahead {
    windows: Vec<tokio::sync::OnceCell<Vec<bool>>>,
    /// A claim of the lane was refused: another run works the same list.
    met: AtomicBool,
    /// Messages passed over.
    passed: AtomicUsize,
}

impl Ahead {
    /// Looks ahead over a list of `len` messages, or not at all when `shared` is false (one run
    /// at a time: nothing else claims).
    pub fn new(len: usize, shared: bool) -> Option<Self> {
        shared.then(|| Ahead {
            windows: (0..len.div_ceil(WINDOW))
                .map(|_| tokio::sync::OnceCell::new())
                .collect(),
            met: AtomicBool::new(false),
            passed: AtomicUsize::new(0),
        })
    }

    /// Notes that a claim of the lane was refused.
    pub fn met_another(&self) {
        self.met.store(true, Ordering::Relaxed);
    }

    /// Whether the message at `place` of `items` (contact indexes) is taken by another run,
    /// by the look at its window. A look that fails passes over nothing: the claim decides.
    pub async fn taken<M: Outbound>(&self, run: &Run, items: &[usize], place: usize) -> bool {
        let Some(writer) = run
            .writer
            .as_ref()
            .filter(|_| self.met.load(Ordering::Relaxed))
        else {
            return false;
        };
        let window = place / WINDOW;
        let start = window * WINDOW;
        let look = self.windows[window]
            .get_or_init(|| async {
                let channel = M::lane(run).channel;
                let contacts = &run.loaded.contacts.contacts;
                let end = (start + WINDOW).min(items.len());
                let addresses = items[start..end]
                    .iter()
                    .map(|&i| {
                        contacts[i]
                            .address(channel)
                            .expect("a due message has an address")
                            .to_string()
                    })
                    .collect();
                writer.taken(channel, addresses).await.unwrap_or_else(|e| {
                    tracing::debug!(%channel, "looking ahead: {e}");
                    Vec::new()
                })
            })
            .await;
        let taken = look.get(place - start).copied().unwrap_or(false);
        if taken {
            self.passed.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// How many messages were passed over.
    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::Relaxed)
    }
}
