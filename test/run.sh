#!/usr/bin/env bash
# The test command: `npm test` (all tiers) or `npm test -- unit e2e` (some).
# Sets up what each tier needs: npm packages, the pinned toolchain (Pulumi CLI,
# language host, Consul), a build of the TypeScript. With CI=true a tier that
# cannot set itself up fails instead of skipping.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

all_tiers=(unit host e2e)
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=("${all_tiers[@]}")

bash lab/setup.sh
. lab/env.sh
npx tsc -p .

status=0
for tier in "${tiers[@]}"; do
    [ -d "dist/test/$tier" ] || { echo "unknown test tier: $tier (tiers: ${all_tiers[*]})" >&2; exit 2; }
    echo "=== tier: $tier"
    start=$(date +%s)
    npx mocha --config test/.mocharc.json "dist/test/$tier/**/*.test.js" || status=1
    echo "=== tier $tier: $(( $(date +%s) - start ))s"
done
exit $status
