#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite: unit and replay
# tests, then the end-to-end scenarios against real QEMU guests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure --timeout 900 "$@"
