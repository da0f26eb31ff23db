#!/usr/bin/env bash
# Benchmarks: print figures, never pass/fail on time. Small by default (CI runs
# this); BENCH_FULL=1 bash bench/run.sh for the larger sizes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash lab/setup.sh
. lab/env.sh
npx tsc -p .
for b in dist/bench/*.js; do
    echo "=== bench: $(basename "$b" .js)"
    node "$b"
done
