#!/usr/bin/env bash
# Installs what building and testing Powernode needs besides Rust itself: the wasm32-wasip2
# target (plugins are built for it) and bubblewrap (commands steps run are confined with it);
# with --test also componentize-py (the tests build a Python step), jco with componentize-js
# (they build a JavaScript step) and GitHub's OpenAPI description (the GitHub client's
# requests are checked against it).
set -euo pipefail
if ! command -v bwrap >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -q bubblewrap >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q bubblewrap >/dev/null; }
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
if [ "${1:-}" = "--test" ] && ! componentize-py --version 2>/dev/null | grep -q '0\.25\.1'; then
  python3 -m pip install --quiet 'componentize-py==0.25.1'
fi
if [ "${1:-}" = "--test" ]; then
  "$(dirname "$0")/setup-github-openapi.sh"
  "$(dirname "$0")/setup-js-tools.sh"
fi
