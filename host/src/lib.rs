//! Powernode: a CI/CD orchestration server whose pipeline steps are sandboxed
//! WebAssembly components. See ARCHITECTURE.md for the map of the parts.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod exec;
pub mod git;
pub mod intake;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod policy;
pub mod printable;
pub mod provider;
pub mod registry;
pub mod rerun;
pub mod runner;
pub mod runtime;
pub mod sandbox;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod services;
pub mod setup;
pub mod show;
pub mod store;
pub mod webhook;
pub mod workspace;
