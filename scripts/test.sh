#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints and runs
# every test of the workspace (unit, end-to-end with real wasm components, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
