/// mimalloc, as every Majlis binary: sled's node copies and the per-message records made
/// glibc's malloc a quarter of the event loop's time (docs/benchmarks.md, session 61).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    majlis_headless::main()
}
