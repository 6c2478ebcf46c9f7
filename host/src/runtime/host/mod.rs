//! Host sides of the WIT interfaces. Each file only converts WIT types and delegates to a
//! domain module (store, exec, workspace); policy checks happen at load time and in hooks.

mod artifacts;
mod checks;
mod forge;
pub mod fs;
mod git;
pub mod http;
mod http_send;
mod kv;
mod log;
mod process;
mod templates;

use super::bindings::powernode::step::types;
use super::state::StepState;

impl types::Host for StepState {}
