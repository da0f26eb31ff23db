#!/usr/bin/env bash
# Installs what the project needs on this machine, idempotently: Debian packages
# for the host tier (lab/host-packages.txt), npm packages (from package-lock.json,
# skipped when unchanged) and the pinned toolchain (BAREMETAL_TOOLCHAIN=cli: without
# the YAML language host, see lab/toolchain.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash lab/apt-install.sh lab/host-packages.txt
stamp=node_modules/.baremetal-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[setup] npm ci" >&2
    npm ci --no-audit --no-fund >&2
    echo "$want" >"$stamp"
fi
node lab/link-self.js
bash lab/toolchain.sh >/dev/null
