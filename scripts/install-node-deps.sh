#!/usr/bin/env bash
# Installs the Node packages of the server's integration tests (tests/integration:
# the openai client and playwright-core) from the npm registry. Idempotent: npm skips
# what is already in node_modules. Without node or npm it says so and exits 0; the
# integration test then skips.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/tests/integration"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: node or npm not found; the integration tests will be skipped" >&2
  exit 0
fi
cd "$dir"
npm install --no-audit --no-fund --loglevel=error
