//! Logging (tracing) and metrics (the `metrics` facade with a Prometheus recorder).

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Installs the global tracing subscriber: `RUST_LOG` filters (default `info`, sqlx at `warn`),
/// text or JSON lines on standard error. A second call does nothing, so tests may call it freely.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // Standard output is for what a command prints (links, demo users); logs go to stderr.
    let subscriber = log_subscriber(format, filter, std::io::stderr, std::io::stderr().is_terminal());
    let _already_installed = tracing::subscriber::set_global_default(subscriber);
}

/// The portal's log format on any writer (tests capture it in memory): one line per event; JSON
/// lines carry the event's fields at the top level, the current span as `span` and every
/// enclosing span as `spans`, so an event inside a request carries the request's `request_id`
/// (issue 8). Nothing here logs request headers or bodies.
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_span_events(FmtSpan::NONE).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
        LogFormat::Json => {
            Box::new(builder.json().with_current_span(true).with_span_list(true).flatten_event(true).finish())
        }
    }
}

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide Prometheus recorder's handle, installed on first use.
///
/// The `metrics` facade has one global recorder per process; every module records through the
/// facade and `/metrics` renders this handle. Several applications in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; this handle then renders what it saw.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            handle
        })
        .clone()
}

/// Gives every metric its `# HELP` text (the README's operations section explains them too) and
/// starts the counters an alert would watch at zero, so a series exists before its first event.
fn describe_metrics() {
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("http_requests_total", "HTTP requests answered, by method, route template and status.");
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time from request to response head, by method and route template."
    );
    describe_counter!("tokens_issued_total", "Access tokens issued by POST /oauth2/token.");
    describe_counter!(
        "tokens_refused_total",
        "Token requests refused, by error: RFC 6749 5.2 (invalid_client, invalid_request, invalid_scope, \
         unsupported_grant_type), slow_down (429 with Retry-After: the per client ID and address failure limit; \
         the code RFC 8628 3.5 registers for token responses) and temporarily_unavailable."
    );
    describe_counter!(
        "client_secrets_malformed_total",
        "Presented client secrets that start with wmdacs_ but have the wrong length, alphabet or checksum, refused as \
         invalid_client before any database query or throttle count (DESIGN.md section 7)."
    );
    describe_counter!(
        "leak_reports_total",
        "Values reported to POST /api/v1/leaks, by label: true_positive (a live secret, now marked exposed) or \
         false_positive (DESIGN.md section 7)."
    );
    describe_counter!("sign_ins_total", "Sign-in steps, by result (success, failure) and step (password, mfa).");
    describe_counter!("sign_in_throttled_total", "Sign-in requests answered 429, by scope (account, ip).");
    describe_counter!(
        "reminders_queued_total",
        "Expiry reminder notices recorded with their emails queued, by notice (6w, 3w, 1w, d6..d0, expired, rotation)."
    );
    describe_counter!(
        "emails_sent_total",
        "Emails handed to the SMTP server (or written to files), by email (invitation, password_reset, \
         mfa_reenrolment, reminder, second_factor_locked)."
    );
    describe_counter!(
        "emails_failed_total",
        "Failed deliveries, by email and failure (transient: retried with backoff; permanent: not retried)."
    );
    describe_counter!(
        "link_emails_suppressed_total",
        "Password-reset emails not queued because the account had 3 within the hour, by email; the answer to the \
         request is unchanged (issue 12)."
    );
    describe_counter!(
        "password_reset_requests_dropped_total",
        "Password-reset requests dropped because the queue of the job that handles them was full (1,024)."
    );
    describe_counter!(
        "throttle_failures_unwritten_total",
        "Throttle failures not written to the shared counts (a replica's pending map at its cap of 100,000 keys, \
         or a batch the database refused); the replica's own count still holds them (issue 12)."
    );
    describe_gauge!("outbox_emails", "Outbox rows by state (queued, retrying, failed), read when /metrics is scraped.");
    describe_gauge!(
        "db_pool_connections",
        "Database pool connections by state (idle, in_use), read when /metrics is scraped."
    );
    counter!("tokens_issued_total").increment(0);
    counter!("tokens_refused_total", "error" => "invalid_client").increment(0);
    counter!("client_secrets_malformed_total").increment(0);
    counter!("sign_ins_total", "result" => "success", "step" => "mfa").increment(0);
    for step in ["password", "mfa"] {
        counter!("sign_ins_total", "result" => "failure", "step" => step).increment(0);
    }
    counter!("emails_sent_total", "email" => "reminder").increment(0);
    for failure in ["transient", "permanent"] {
        counter!("emails_failed_total", "email" => "reminder", "failure" => failure).increment(0);
    }
}
