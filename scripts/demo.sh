#!/usr/bin/env bash
# The main job on a fresh Debian bookworm machine (as root): installs what is missing, builds
# sysrunc, starts sysrunc-mgr and a private dockerd with sysrunc registered, runs containers with
# `docker run --runtime=sysrunc`, prints what they show, and stops everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-host.sh
exec node --import tsx scripts/demo.ts "$@"
