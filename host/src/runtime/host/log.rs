//! `powernode:step/log` → the step log.

use crate::runtime::bindings::powernode::step::log::{Host, Level as WitLevel};
use crate::runtime::log::{Level, Stream};
use crate::runtime::state::StepState;

impl Host for StepState {
    async fn log(&mut self, level: WitLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            WitLevel::Trace => Level::Trace,
            WitLevel::Debug => Level::Debug,
            WitLevel::Info => Level::Info,
            WitLevel::Warn => Level::Warn,
            WitLevel::Error => Level::Error,
        };
        self.log
            .line(level, Stream::Log, &message)
            .map_err(wasmtime::Error::new)
    }
}
