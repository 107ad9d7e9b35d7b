#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the local demo gang migration.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/gangmig demo "$@"
