#!/usr/bin/env bash
# The test command: installs what the tests need, then checks formatting, lints and runs
# the tests of every cargo workspace in the repository: the host's (unit, end-to-end with
# real wasm components and fake forges, doc tests; the API and scheduler server tests on
# both stores; artifacts in a folder and in S3), the built-in plugins', the test guests'
# and the SDK example's; and checks the requests the GitHub client sent against GitHub's
# OpenAPI description.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# The wasm workspaces are built for wasm32-wasip2 by build scripts; their unit tests,
# formatting and lints run here on the host's target.
wasm_workspaces=(plugins/Cargo.toml tests/guests/Cargo.toml sdk/examples/hello/Cargo.toml)
cargo fmt --all -- --check
for manifest in "${wasm_workspaces[@]}"; do
  cargo fmt --manifest-path "$manifest" --all -- --check
done
cargo clippy --workspace --all-targets --locked -- -D warnings
# The SDK's test kit is behind a feature the workspace build does not turn on.
cargo clippy -p powernode-sdk --features testing --all-targets --locked -- -D warnings
for manifest in "${wasm_workspaces[@]}"; do
  cargo clippy --manifest-path "$manifest" --workspace --all-targets --locked -- -D warnings
done
for manifest in "${wasm_workspaces[@]}"; do
  cargo test --manifest-path "$manifest" --workspace --locked
done
cargo test -p powernode-sdk --features testing --locked
# The SDK builds and verifies as a package on its own, outside the workspace.
cargo package -p powernode-sdk --locked --allow-dirty
requests="$(mktemp -d)"
trap 'rm -rf "$requests"' EXIT
POWERNODE_GITHUB_REQUEST_LOG="$requests" cargo test --workspace --locked
# The API, artifact and scheduler server tests once more, each server on a PostgreSQL and
# an S3-compatible artifact store of its own.
POWERNODE_TEST_STORE=postgres cargo test -p powernode --test serve --locked -- api:: runs:: approval:: resources::
node scripts/check-github-openapi.mjs "$requests"
