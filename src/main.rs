//! The `lambdaflow` binary: the command line ([`lambdaflow::cli::main`]) with the built-in and
//! configured views.

use std::process::ExitCode;

/// jemalloc rather than glibc's malloc: with glibc the resident size kept growing with the
/// number of lake commits (the Delta kernel reads the log on threads of its own, and glibc kept
/// what they freed in arenas of their own); jemalloc returns unused pages within seconds. See
/// docs/robustness.md, "Memory that follows live state".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    lambdaflow::cli::main(lambdaflow::Registry::default())
}
