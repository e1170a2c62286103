//! The `errand` binary: everything lives in the `errand-cli` library.

fn main() -> std::process::ExitCode {
    errand_cli::main()
}
