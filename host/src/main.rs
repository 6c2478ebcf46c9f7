//! The `powernode` command.

/// mimalloc: webhook intake parses many mid-sized JSON bodies; the system allocator's
/// malloc/free showed up as about a tenth of the server's profile.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    powernode::cli::main()
}
