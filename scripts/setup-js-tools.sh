#!/usr/bin/env bash
# Installs what building a JavaScript step needs: jco and componentize-js, at the versions
# locked in scripts/js-tools/, with npm ci into POWERNODE_JS_TOOLS_DIR (default
# ~/.cache/powernode-js-tools, outside the clone). Does nothing when that lock is already
# installed. `powernode plugin build` and the tests run `$dir/node_modules/.bin/jco`.
set -euo pipefail
src="$(cd "$(dirname "$0")/js-tools" && pwd)"
dir="${POWERNODE_JS_TOOLS_DIR:-$HOME/.cache/powernode-js-tools}"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -f "$dir/node_modules/.package-lock.json" ]; then
  exit 0
fi
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
