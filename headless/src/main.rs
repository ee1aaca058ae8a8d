fn main() -> std::process::ExitCode {
    majlis_headless::main()
}
