//! Platform (ISO/IEC 20000-1 7.5 documented information, kept only as long as needed): pruning
//! the outbox once every follower is done with its rows. Notification announcements go only
//! after the dispatcher has turned them into deliveries; `record_changed` rows go after the
//! retention period, and a search index that fell behind the pruned horizon rebuilds itself.

use crate::{App, Result};
use keel_store::kernel;

/// How long outbox rows are kept (setting `outbox.retention_days`).
pub const RETENTION_SETTING: &str = "outbox.retention_days";
pub const DEFAULT_RETENTION_DAYS: i64 = 7;
/// Rows before this instant may have been deleted; followers behind it must rebuild.
pub const PRUNED_BEFORE_SETTING: &str = "outbox.pruned_before";
const PRUNE_BATCH: i64 = 5_000;

impl App {
    /// Deletes outbox rows older than the retention period in batches (each its own short
    /// transaction, so SQLite's writer is never held long). Returns how many rows went.
    pub async fn prune_outbox(&self) -> Result<u64> {
        let days = {
            let mut c = self.read().await?;
            kernel::get_setting(&mut c, RETENTION_SETTING)
                .await?
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(DEFAULT_RETENTION_DAYS)
        };
        let before = self.now() - days.max(1) * 86_400_000;
        // The dispatcher re-reads a window behind its cursor; what it may still read stays.
        let cursor = {
            let mut c = self.read().await?;
            crate::notifications::dispatch_cursor(&mut c).await?
        };
        let announcements_before = before.min(cursor - crate::notifications::DISPATCH_WINDOW_MS);
        let mut total = 0;
        loop {
            let mut tx = self.db.begin().await?;
            if total == 0 {
                let previous = kernel::get_setting(&mut tx, PRUNED_BEFORE_SETTING).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                kernel::set_setting(&mut tx, PRUNED_BEFORE_SETTING, &before.max(previous).to_string(), self.now()).await?;
            }
            let n = kernel::prune_outbox(&mut tx, before, announcements_before, PRUNE_BATCH).await?;
            tx.commit().await.map_err(keel_store::StoreError::from)?;
            total += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
        if total > 0 {
            tracing::info!(rows = total, "outbox pruned");
        }
        Ok(total)
    }

    /// The instant before which outbox rows may be gone (0 when nothing was pruned yet).
    pub async fn outbox_pruned_before(&self) -> Result<i64> {
        let mut c = self.read().await?;
        Ok(kernel::get_setting(&mut c, PRUNED_BEFORE_SETTING).await?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
    }
}
