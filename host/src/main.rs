//! The `powernode` command.

/// mimalloc: webhook intake parses many mid-sized JSON bodies; the system allocator's
/// malloc/free showed up as about a tenth of the server's profile. Built without transparent
/// huge pages (`no_thp`): with them its first arena alone kept 42 MB resident at idle.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    powernode::cli::main()
}
