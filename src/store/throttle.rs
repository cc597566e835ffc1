//! Throttle counts shared by replicas (issue 12, point 3): one row per (scope, key) holding a
//! [`WindowCount`] and the block it implies, so every replica refuses what one would.

use chrono::{DateTime, Utc};

use super::{Backend, BeginWrite, Store, StoreError, on_pool};
use crate::domain::throttle::{ThrottleKey, ThrottleRule, WindowCount};

/// Rows per insert statement: 6 binds each, far below SQLite's 32,766 and Postgres's 65,535.
const INSERT_CHUNK: usize = 1_000;
const UPDATE: &str = "update throttle_window
     set window_start = $3, failures = $4, blocked_until = $5, expires_at = $6
     where scope = $1 and throttle_key = $2";

impl Store {
    /// Adds each key's failures (counted as of the time given with them, the first of the
    /// batch) to its shared count, in one transaction (keys in order,
    /// so two replicas flushing at once never deadlock), and returns each key's block end, if
    /// it is blocked after the addition.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn add_throttle_failures(
        &self,
        rule: ThrottleRule,
        batch: &[(ThrottleKey, u32, DateTime<Utc>)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(ThrottleKey, Option<DateTime<Utc>>)>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = batch.to_vec();
        batch.sort_by_key(|(key, _, _)| *key);
        let select = match &self.backend {
            Backend::Postgres(_) => {
                "select window_start, failures from throttle_window
                 where scope = $1 and throttle_key = $2 for update"
            }
            // BEGIN IMMEDIATE holds the database's write lock already.
            Backend::Sqlite(_) => {
                "select window_start, failures from throttle_window
                 where scope = $1 and throttle_key = $2"
            }
        };
        let scope = rule.scope;
        // What a key without a row gets: a window starting at its first pending failure.
        let fresh = |failures: u32, at: DateTime<Utc>| WindowCount { start: at, failures: 0 }.add(failures, at, &rule);
        on_pool!(self, |pool| {
            async {
            let mut tx = pool.begin_write().await?;
            let mut blocks = Vec::with_capacity(batch.len());
            // Keys without a row (most of a flood of random client IDs) are inserted with their
            // count, a chunk of rows a statement; the others are read under lock and updated.
            let mut inserted = std::collections::HashSet::new();
            for chunk in batch.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "insert into throttle_window (scope, throttle_key, window_start, failures, blocked_until, expires_at) ",
                );
                insert.push_values(chunk, |mut row, (key, failures, at)| {
                    let count = fresh(*failures, *at);
                    row.push_bind(scope)
                        .push_bind(key.as_bytes().to_vec())
                        .push_bind(count.start)
                        .push_bind(i32::try_from(count.failures).unwrap_or(i32::MAX))
                        .push_bind(count.blocked_until(&rule, now))
                        .push_bind(count.expires_at(&rule));
                });
                insert.push(" on conflict (scope, throttle_key) do nothing returning throttle_key");
                let keys: Vec<Vec<u8>> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
                inserted.extend(keys.iter().filter_map(|k| ThrottleKey::from_slice(k)));
            }
            for (key, failures, at) in &batch {
                if inserted.contains(key) {
                    blocks.push((*key, fresh(*failures, *at).blocked_until(&rule, now)));
                    continue;
                }
                let bytes = key.as_bytes().as_slice();
                let (start, counted): (DateTime<Utc>, i32) =
                    sqlx::query_as(select).bind(scope).bind(bytes).fetch_one(&mut *tx).await?;
                let count = WindowCount { start, failures: i64::from(counted) }.add(*failures, *at, &rule);
                let blocked_until = count.blocked_until(&rule, now);
                sqlx::query(UPDATE)
                    .bind(scope)
                    .bind(bytes)
                    .bind(count.start)
                    .bind(i32::try_from(count.failures).unwrap_or(i32::MAX))
                    .bind(blocked_until)
                    .bind(count.expires_at(&rule))
                    .execute(&mut *tx)
                    .await?;
                blocks.push((*key, blocked_until));
            }
            tx.commit().await?;
            Ok::<_, StoreError>(blocks)
        }
        .await
        })
    }

    /// The end of `key`'s block in `scope`, when it is blocked at `now`: one primary-key lookup.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn throttle_block(
        &self,
        scope: &str,
        key: &ThrottleKey,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "select blocked_until from throttle_window
             where scope = $1 and throttle_key = $2 and blocked_until > $3"
        )
        .bind(scope)
        .bind(key.as_bytes().as_slice())
        .bind(now)
        .fetch_optional(pool)
        .await)?)
    }

    /// Deletes the count of `key` in `scope` (a success ends a run of consecutive failures).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn clear_throttle_count(&self, scope: &str, key: &ThrottleKey) -> Result<(), StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query("delete from throttle_window where scope = $1 and throttle_key = $2")
            .bind(scope)
            .bind(key.as_bytes().as_slice())
            .execute(pool)
            .await
            .map(|_| ()))?)
    }

    /// Deletes the counts that no longer matter at `now` (their window and block passed);
    /// returns how many.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn prune_throttle_counts(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query("delete from throttle_window where expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
