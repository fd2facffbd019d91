//! The `udts-exporter` binary; everything lives in the library.

/// jemalloc rather than glibc's malloc: the exporter's memory is a few large structures rebuilt
/// on every render by threads of tokio's blocking pool, and glibc keeps each thread's freed
/// blocks in an arena of its own, so the resident size grew to twice the live heap. jemalloc,
/// with the settings in `.cargo/config.toml`, gives them back (BENCHMARKS.md, "Idle memory").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    udts_exporter::cli::main()
}
