#!/usr/bin/env bash
# Sets everything up, runs the benchmark (gangmig bench, arguments passed through) and
# plots the results. Takes tens of minutes; results/ holds raw JSON, CSV, summary, PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-matplotlib
fi
guest/build-guest.sh --flavour alt   # the second guest flavour of the hetero scenario
build/gangmig bench "$@"
/usr/bin/python3 bench/plot.py results
