//! What a `send` run is asked to do.

use crate::model::Channel;

/// How a run was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Plan and render; record and send nothing.
    pub dry_run: bool,
    /// At most this many messages in this run, all channels together.
    pub limit: Option<usize>,
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Resend messages whose outcome is unknown.
    pub resend_unknown: bool,
    /// Retry messages that failed permanently.
    pub retry_failed: bool,
    /// Show progress bars (a terminal, not quiet, not JSON).
    pub progress: bool,
}
