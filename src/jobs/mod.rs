//! Background jobs: `run_once(store, now) -> Report` plus a thin loop that stops on shutdown.
//! Running a pass twice, or on two replicas at once, changes nothing; mail leaves through the
//! outbox, never from a job.

pub mod outbox;
pub mod password_resets;
pub mod reminders;
pub mod throttle_counts;
