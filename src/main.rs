//! The `secret-portal` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

/// glibc raises its mmap threshold after the first large free (up to 32 MiB), after which
/// argon2id's working areas (12 MiB each, 19 MiB when this was measured) come from per-thread
/// arenas that keep the memory resident: 50 concurrent sign-ins then reached 1 GiB. With a fixed
/// threshold they are mapped and unmapped each time, and memory stays at (hashes in flight) x
/// 12 MiB (BENCHMARKS.md). Limiting the number of arenas as well was tried and dropped: it
/// halved the page throughput.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_allocations_to_the_system() {
    // SAFETY: mallopt only changes allocator tuning; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations_to_the_system() {}

fn main() -> ExitCode {
    return_large_allocations_to_the_system();
    let cli = secret_portal::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(secret_portal::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain; no panic, no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
