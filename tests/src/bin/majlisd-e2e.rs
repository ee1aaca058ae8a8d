//! Exactly `majlisd` (same entry point), built in this package for the end-to-end tests.
fn main() -> std::process::ExitCode {
    majlis_headless::main()
}
