//! Paths of the test guest components, built by `build.rs` for wasm32-wasip2.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
