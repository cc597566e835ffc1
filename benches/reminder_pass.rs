//! One reminder pass over 100,000 secrets on Postgres.
//!
//!     BENCH_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres cargo bench --bench reminder_pass
//!
//! Creates a fresh database, seeds 33,334 applications with 3 secrets each (expiration dates spread
//! over the next 400 days), then times the first pass (which records every notice due today) and a
//! second pass the same day (the steady state: everything due is already recorded). Drops the
//! database afterwards.

use std::time::Instant;

use chrono::{TimeZone, Utc};
use secret_portal::domain::BaseUrl;
use secret_portal::jobs::reminders::run_once;
use secret_portal::store::{DatabaseUrl, PoolSettings, Store};
use sqlx::Connection as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("sp_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("create database {name}")).execute(&mut conn).await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&format!("/{name}"));
    let result = bench(url.as_ref()).await;
    sqlx::query(&format!("drop database {name} with (force)")).execute(&mut conn).await?;
    result
}

async fn bench(url: &str) -> anyhow::Result<()> {
    let store = Store::connect(&DatabaseUrl::parse(url)?, PoolSettings::default()).await?;
    store.migrate().await?;
    let now = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let secret_portal::store::Backend::Postgres(pool) = store.backend() else { anyhow::bail!("Postgres only") };
    let seeded = Instant::now();
    sqlx::query(
        "insert into organisation (id, display_name, country_code, code, created_at)
         select gen_random_uuid(), 'Bench ' || i, 'NL', 'Bench' || i, $1 from generate_series(1, 33334) i",
    )
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into application (id, organisation_id, kind, api, name, client_id, created_at)
         select gen_random_uuid(), o.id, 'Partner', 'DM', 'Partner-NL-' || o.code || '-DM', gen_random_uuid(), $1 from organisation o",
    )
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into client_secret (id, application_id, name, hint, secret_hash, expires_on, expires_at, created_at)
         select gen_random_uuid(), a.id, 'Secret ' || k, 'abc', sha256((a.id::text || k)::bytea),
                ($1::date + ((abs(hashtext(a.id::text || k)) % 400))), ($1::date + ((abs(hashtext(a.id::text || k)) % 400)) + 1)::timestamp at time zone 'UTC',
                $2
         from application a cross join generate_series(1, 3) k",
    )
    .bind(now.date_naive())
    .bind(now - chrono::Duration::days(30))
    .execute(pool)
    .await?;
    sqlx::query("analyze").execute(pool).await?;
    let count: i64 = sqlx::query_scalar("select count(*) from client_secret").fetch_one(pool).await?;
    println!("seeded {count} secrets in {:.1} s", seeded.elapsed().as_secs_f64());
    let base = BaseUrl::parse("https://portal.example")?;
    for label in ["first pass (records every notice due today)", "second pass (steady state)"] {
        let started = Instant::now();
        let report = run_once(&store, &base, now, false).await?;
        println!(
            "{label}: {:.3} s, {} due, {} recorded",
            started.elapsed().as_secs_f64(),
            report.due.len(),
            report.recorded
        );
    }
    let started = Instant::now();
    let report = run_once(&store, &base, now, true).await?;
    println!("dry run: {:.3} s, {} due", started.elapsed().as_secs_f64(), report.due.len());
    store.close().await;
    Ok(())
}
