#!/usr/bin/env bash
# Sets up a fresh Debian bookworm machine (as root) and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
npm run --silent typecheck
./scripts/lint-shell.sh
node scripts/gen-spec.mjs --check
node scripts/gen-validators.mjs --check
node scripts/gen-containerd-api.mjs --check
node scripts/run-tests.mjs all
