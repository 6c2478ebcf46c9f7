#!/usr/bin/env bash
# Installs what building and testing Powernode needs besides Rust itself: the wasm32-wasip2
# target (plugins are built for it); with --test also componentize-py (the tests build a
# Python step) and GitHub's OpenAPI description (the GitHub client's requests are checked
# against it).
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
if [ "${1:-}" = "--test" ] && ! componentize-py --version 2>/dev/null | grep -q '0\.25\.1'; then
  python3 -m pip install --quiet 'componentize-py==0.25.1'
fi
if [ "${1:-}" = "--test" ]; then
  "$(dirname "$0")/setup-github-openapi.sh"
fi
