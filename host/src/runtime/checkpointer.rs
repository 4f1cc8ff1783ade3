//! The SQLite checkpointer: copies the write-ahead log into the database
//! file when commits have grown it past
//! [`crate::storage::sqlite::CHECKPOINT_FRAMES`], on a connection of its
//! own, so that the bulk of the copying happens while writers go on
//! instead of inside the turn every other writer waits for (that constant
//! says what it was measured to cost; [`SqliteDb::checkpoint`] what is
//! still done within the turn). Nothing to do on PostgreSQL.

use std::{sync::Arc, time::Duration};

use super::{
    Runtime,
    background::{Backoff, FailureLog, StopSignal},
};
use crate::storage::{Database, sqlite::SqliteDb};

/// Least time between two checkpoints. A passive checkpoint cannot copy
/// frames a reader may still need, so while one reads, every commit could
/// ask again; each checkpoint costs two `fsync`s and takes the writers'
/// turn for its second pass.
const CHECKPOINT_GAP: Duration = Duration::from_millis(50);
/// Longest wait for the writers' turn to finish a checkpoint in (see
/// [`SqliteDb::checkpoint`]): as long as a writer waits for it.
const TURN_WAIT: Duration = crate::config::DATABASE_ACQUIRE_TIMEOUT;
/// First and longest wait after a checkpoint failed.
const RETRY_BASE: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(30);
/// The checkpointer's name in logs and health.
const CHECKPOINTER: &str = "sqlite checkpointer";

impl Runtime {
    /// Start the checkpointer on a SQLite database; it stops with the
    /// host's other background work.
    pub fn spawn_checkpointer(self: &Arc<Self>) {
        let Database::Sqlite(sqlite) = self.database() else {
            return;
        };
        let runtime = Arc::downgrade(self);
        let report = move |problem: Option<String>| {
            if let Some(runtime) = runtime.upgrade() {
                runtime.background.report(CHECKPOINTER, problem);
            }
        };
        self.background.spawn(
            CHECKPOINTER,
            checkpoint_until_stopped(sqlite.clone(), self.background.signal(), report),
        );
    }
}

/// Checkpoint `sqlite` whenever its log has grown, at most once per
/// [`CHECKPOINT_GAP`], until `stop`; `report` hears of failures (with
/// `None` once it works again).
async fn checkpoint_until_stopped(
    sqlite: SqliteDb,
    stop: StopSignal,
    report: impl Fn(Option<String>) + Send,
) {
    let mut backoff = Backoff::new(RETRY_BASE, RETRY_CAP);
    let mut failures = FailureLog::new("checkpointing the SQLite write-ahead log");
    loop {
        tokio::select! {
            biased;
            () = stop.stopped() => return,
            () = sqlite.wal_grown() => {}
        }
        // A checkpoint may wait for the writers' turn: stopping must not.
        let checkpointed = tokio::select! {
            biased;
            () = stop.stopped() => return,
            checkpointed = sqlite.checkpoint(TURN_WAIT) => checkpointed,
        };
        let pause = match checkpointed {
            Ok(outcome) => {
                tracing::debug!(?outcome, "checkpointed the SQLite write-ahead log");
                failures.succeeded();
                report(None);
                backoff.reset();
                CHECKPOINT_GAP
            }
            Err(error) => {
                failures.failed(&format!("{error:#}"));
                report(Some(format!("{error:#}")));
                backoff.next_delay()
            }
        };
        tokio::select! {
            biased;
            () = stop.stopped() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{
        runtime::background::Background,
        storage::sqlite::{CHECKPOINT_FRAMES, tests},
    };

    /// The checkpointer copies a log grown past the mark into the database
    /// file (the writer no longer does, see `storage::sqlite`'s tests), and
    /// ends when the host stops.
    #[tokio::test]
    async fn a_grown_log_is_checkpointed_and_the_checkpointer_stops_with_the_host() {
        let (_dir, file, sqlite) = tests::fresh_file().await;
        let background = Background::new();
        background.spawn(
            CHECKPOINTER,
            checkpoint_until_stopped(sqlite.clone(), background.signal(), |_| {}),
        );
        let before = std::fs::metadata(&file).unwrap().len();
        tests::write_frames(&sqlite, CHECKPOINT_FRAMES + 100).await;
        let copied = async {
            while std::fs::metadata(&file).unwrap().len() < before + CHECKPOINT_FRAMES * 4096 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), copied)
            .await
            .expect("the log was checkpointed into the database file");
        assert!(background.stop_and_join(Duration::from_secs(5)).await);
    }

    /// The second pass waits for the writers' turn; a host stopping
    /// meanwhile does not wait with it.
    #[tokio::test]
    async fn the_checkpointer_stops_while_waiting_for_the_writers_turn() {
        let (_dir, _file, sqlite) = tests::fresh_file().await;
        tests::write_frames(&sqlite, CHECKPOINT_FRAMES + 100).await;
        let held = sqlite.begin_write(Duration::from_secs(5)).await.unwrap();
        let background = Background::new();
        background.spawn(
            CHECKPOINTER,
            checkpoint_until_stopped(sqlite.clone(), background.signal(), |_| {}),
        );
        // Long enough for the first pass; the second waits up to TURN_WAIT.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            background.stop_and_join(TURN_WAIT / 5).await,
            "stopped on its own"
        );
        held.rollback().await.unwrap();
    }
}
