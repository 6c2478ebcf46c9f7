//! A bound on WASI directory listings. wasmtime-wasi reads a whole directory into host memory
//! when a guest opens a listing, so a guest holding many listings of a large directory grows
//! the host without touching its own memory cap. `read-directory` is wrapped to refuse more
//! than `max_dir_streams` open at once.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::ReaddirIterator;
use wasmtime_wasi::p2::bindings::filesystem::types::{Descriptor, ErrorCode, HostDescriptor};

use crate::runtime::state::StepState;
use crate::runtime::{Level, Stream};

/// The filesystem interface as wasmtime-wasi 48 registers it in the linker.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

type Listing = Result<Resource<ReaddirIterator>, ErrorCode>;

/// Replaces `[method]descriptor.read-directory` with one that counts the step's open listings.
pub fn bound_directory_streams(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.read-directory",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let table = &state.table;
                // A closed listing's slot is gone or holds something else now.
                state
                    .dir_streams
                    .retain(|rep| table.get(&Resource::<ReaddirIterator>::new_borrow(*rep)).is_ok());
                if state.dir_streams.len() >= state.limits.max_dir_streams {
                    let message = format!(
                        "directory listing refused: this step already holds {} open listings (the limit); close one first",
                        state.limits.max_dir_streams
                    );
                    let _ = state.log.line(Level::Warn, Stream::Log, &message);
                    return Ok((Err(ErrorCode::InsufficientMemory) as Listing,));
                }
                let listing = state.filesystem().read_directory(fd).await;
                match listing {
                    Ok(stream) => {
                        state.dir_streams.push(stream.rep());
                        Ok((Ok(stream),))
                    }
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
