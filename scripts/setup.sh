#!/usr/bin/env bash
# Installs what building and testing Powernode needs besides Rust itself: the wasm32-wasip2
# target (plugins are built for it) and bubblewrap (commands steps run are confined with it);
# with --test also componentize-py (the tests build a Python step), jco with componentize-js
# (they build a JavaScript step), PostgreSQL's server programs (the PostgreSQL backend is
# tested against a throwaway cluster), s3s-fs from crates.io (artifacts are tested in an
# S3-compatible server on loopback), GitHub's OpenAPI description (the GitHub client's
# requests are checked against it) and Debian's chromium and chromium-driver (the dashboard
# is tested in headless Chromium over WebDriver).
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_install() {
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null; }
}
if ! command -v bwrap >/dev/null 2>&1; then
  apt_install bubblewrap
fi
if [ "${1:-}" = "--test" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt_install postgresql
fi
if [ "${1:-}" = "--test" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  apt_install chromium chromium-driver
fi
if [ "${1:-}" = "--test" ] && ! s3s-fs --version 2>/dev/null | grep -q '0\.14\.1'; then
  cargo install --quiet s3s-fs@0.14.1 --features binary --locked
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
