//! End-to-end tests: the real runtime with real components (built-in plugins, the SDK
//! example, adversarial guests, a Python step), on real files and loopback sockets.

mod builtins;
mod catalog;
mod claude_api;
mod cluster;
mod deploy;
mod fakes;
mod forge_app;
mod forge_gitea;
mod forge_github;
mod forge_gitlab;
mod forge_runtime;
mod git;
mod git_server;
mod grants;
mod harness;
mod hostile;
mod js;
mod python;
mod runner;
mod sandbox;
mod seed;
mod steps;
mod trust;
mod worlds;
