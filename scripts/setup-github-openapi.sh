#!/usr/bin/env bash
# Installs what scripts/check-github-openapi.mjs needs: GitHub's REST OpenAPI description
# (@octokit/openapi) and ajv, at the versions locked in scripts/github-openapi/, with npm ci
# into POWERNODE_OPENAPI_DIR (default ~/.cache/powernode-github-openapi, outside the clone:
# the package unpacks to about 400 MB). Does nothing when that lock is already installed.
set -euo pipefail
src="$(cd "$(dirname "$0")/github-openapi" && pwd)"
dir="${POWERNODE_OPENAPI_DIR:-$HOME/.cache/powernode-github-openapi}"
if cmp -s "$src/package-lock.json" "$dir/package-lock.json" && [ -f "$dir/node_modules/.package-lock.json" ]; then
  exit 0
fi
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
