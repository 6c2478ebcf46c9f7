//! The one place generated WIT bindings live (host side of `powernode:step@0.1.3`).
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "powernode:step/full",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
    },
});

pub use self::exports::powernode::step::handler::{StepContext, StepError};
pub use self::powernode::step::types::{ProviderError, RateLimit, Repository, Trigger};
