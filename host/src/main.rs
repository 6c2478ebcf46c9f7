//! The `powernode` command.

fn main() -> std::process::ExitCode {
    powernode::cli::main()
}
