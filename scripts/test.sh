#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints, runs every
# test of the workspace (unit, end-to-end with real wasm components and fake forges, doc
# tests) and checks the requests the GitHub client sent against GitHub's OpenAPI description.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
requests="$(mktemp -d)"
trap 'rm -rf "$requests"' EXIT
POWERNODE_GITHUB_REQUEST_LOG="$requests" cargo test --workspace --locked
node scripts/check-github-openapi.mjs "$requests"
