//! Attacks on the host's own resources and on later steps, one per `attack` in the config,
//! written as a stranger would (raw WASI 0.2 calls, not the SDK's helpers). Each reports how
//! far it got: `Ok` with a count when nothing stopped it, `Failed` with the error that did.
use powernode_sdk::wit::wasi::http::types::Fields;
use powernode_sdk::{Context, Error, Info, Output, Step, artifacts, kv, log};
use serde::Deserialize;
use wasi::filesystem::preopens::get_directories;
use wasi::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    attack: String,
    /// How many times to try (files, values, handles); each attack has a default.
    #[serde(default)]
    count: Option<u64>,
}

struct Hostile;

impl Step for Hostile {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            "Attacks the host's resources (test: host-side limits)",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let count = ctx.config.count;
        match ctx.config.attack.as_str() {
            "sparse_artifact" => sparse_artifact(count.unwrap_or(5 << 30)),
            "kv_flood" => kv_flood(count.unwrap_or(6_000)),
            "dir_streams" => dir_streams(count.unwrap_or(400)),
            "open_files" => open_files(count.unwrap_or(20_000)),
            "http_fields" => http_fields(120 << 10, count.unwrap_or(100_000)),
            "http_handles" => http_fields(16, count.unwrap_or(100_000)),
            "escape_link" => escape_link(),
            "shadow_stack" => Ok(Output::new(format!(
                "returned {}",
                shadow(std::hint::black_box(100_000))
            ))),
            "terminal_escapes" => {
                log::info("\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\u{1b}[0m\rall tests passed");
                Ok(Output::new(
                    "\u{1b}]8;;https://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\",
                ))
            }
            other => Err(Error::config(format!("unknown attack `{other}`"))),
        }
    }
}

fn workspace() -> Descriptor {
    get_directories()
        .into_iter()
        .find(|(_, name)| name == ".")
        .map(|(d, _)| d)
        .expect("the workspace is preopened as `.`")
}

fn create(dir: &Descriptor, name: &str) -> Result<Descriptor, Error> {
    let flags = DescriptorFlags::READ | DescriptorFlags::WRITE;
    dir.open_at(PathFlags::empty(), name, OpenFlags::CREATE, flags)
        .map_err(|e| Error::failed(format!("creating {name}: {e:?}")))
}

/// A file of `size` bytes that takes no disk, then stored as an artifact.
fn sparse_artifact(size: u64) -> Result<Output, Error> {
    let file = create(&workspace(), "big.bin")?;
    file.set_size(size)
        .map_err(|e| Error::failed(format!("set-size: {e:?}")))?;
    drop(file);
    let stored = artifacts::store("big", "big.bin").map_err(|e| Error::failed(format!("artifact refused: {e}")))?;
    Ok(Output::new(format!("stored {} bytes", stored.size)))
}

/// Values of 1 MiB until the host says no.
fn kv_flood(count: u64) -> Result<Output, Error> {
    let value = vec![7u8; 1 << 20];
    for i in 0..count {
        kv::set(&format!("k{i}"), &value).map_err(|e| Error::failed(format!("kv refused after {i} values: {e}")))?;
    }
    Ok(Output::new(format!("stored {count} values")))
}

/// Many files, then many listings of them held open at once.
fn dir_streams(count: u64) -> Result<Output, Error> {
    let ws = workspace();
    ws.create_directory_at("many")
        .map_err(|e| Error::failed(format!("mkdir: {e:?}")))?;
    let many = ws
        .open_at(PathFlags::empty(), "many", OpenFlags::DIRECTORY, DescriptorFlags::READ)
        .map_err(|e| Error::failed(format!("open many: {e:?}")))?;
    for i in 0..2_000 {
        create(&many, &format!("file-with-a-long-name-to-cost-memory-{i:05}"))?;
    }
    let mut held = Vec::new();
    for i in 0..count {
        match many.read_directory() {
            Ok(stream) => held.push(stream),
            Err(e) => return Err(Error::failed(format!("listing refused after {i} open listings: {e:?}"))),
        }
    }
    Ok(Output::new(format!("held {} listings", held.len())))
}

/// The same file opened again and again, every descriptor kept.
fn open_files(count: u64) -> Result<Output, Error> {
    let ws = workspace();
    drop(create(&ws, "f")?);
    let mut held = Vec::new();
    for i in 0..count {
        match ws.open_at(PathFlags::empty(), "f", OpenFlags::empty(), DescriptorFlags::READ) {
            Ok(d) => held.push(d),
            Err(e) => return Err(Error::failed(format!("open refused after {i} open files: {e:?}"))),
        }
    }
    Ok(Output::new(format!("held {} open files", held.len())))
}

/// Header-field objects of `size` bytes each, every one kept.
fn http_fields(size: usize, count: u64) -> Result<Output, Error> {
    let value = vec![b'x'; size];
    let mut held = Vec::new();
    for i in 0..count {
        match Fields::from_list(&[("x-field".to_string(), value.clone())]) {
            Ok(f) => held.push(f),
            Err(e) => return Err(Error::failed(format!("fields refused after {i}: {e:?}"))),
        }
    }
    Ok(Output::new(format!("held {} fields of {size} bytes", held.len())))
}

/// A link whose target climbs out of the workspace, for the next step to write through.
fn escape_link() -> Result<Output, Error> {
    let ws = workspace();
    ws.create_directory_at("logs")
        .map_err(|e| Error::failed(format!("mkdir: {e:?}")))?;
    ws.symlink_at("../../../../../../../../tmp/powernode-escape-link", "logs/build.log")
        .map_err(|e| Error::failed(format!("symlink refused: {e:?}")))?;
    Ok(Output::new("created logs/build.log"))
}

/// Recursion whose frames live on the shadow stack in linear memory (an address-taken
/// buffer), so the shadow stack runs out long before wasm's own call stack does.
#[inline(never)]
fn shadow(depth: u32) -> u32 {
    let mut buf = [0u8; 8 << 10];
    std::hint::black_box(&mut buf);
    buf[0] = depth as u8;
    if depth == 0 {
        return u32::from(buf[0]);
    }
    shadow(depth - 1).wrapping_add(u32::from(std::hint::black_box(&buf)[1]))
}

powernode_sdk::step!(Hostile);
