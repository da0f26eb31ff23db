#!/usr/bin/env bash
# The main job: `npm run demo` installs what is needed, starts the lab (if it is
# not running), brings the lab data center (examples/lab, the repository's
# Pulumi.yaml) up with `pulumi up`, and prints a summary.
# `npm run demo -- down` destroys it, data included (it says so first), and stops the lab.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
action=${1:-up}
case "$action" in up|down) ;; *) echo "usage: npm run demo [-- up|down]" >&2; exit 2 ;; esac
say() { printf '[demo] %s\n' "$*" >&2; }
# The demo's program is TypeScript: the toolchain without the YAML language host (setup and
# env.sh below both build what is missing of it).
export BAREMETAL_TOOLCHAIN=cli

# The lab needs only this machine's packages and Consul: it is built (cold: about ten
# minutes) and started beside the rest of the setup (a cold build of the Pulumi CLI:
# about seven). Its progress lines ([lab]) come between the setup's.
lab_pid=
if [ "$action" = up ]; then
    bash lab/apt-install.sh lab/host-packages.txt
    bash lab/toolchain.sh consul >/dev/null
    t0=$(date +%s)
    bash lab/lab.sh start >/dev/null &
    lab_pid=$!
    # (if the setup fails, the lab's start still ends cleanly before this script does)
    trap 'wait "$lab_pid" 2>/dev/null || true' EXIT
fi
bash lab/setup.sh
. lab/env.sh
npx tsc -p .

demo="$PULUMI_BAREMETAL_CACHE/demo"
mkdir -p "$demo/state"
# State: a local file backend; secrets: a passphrase generated once, mode 0600.
export PULUMI_BACKEND_URL="file://$demo/state"
if [ ! -s "$demo/passphrase" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 >"$demo/passphrase")
fi
export PULUMI_CONFIG_PASSPHRASE_FILE="$demo/passphrase"
unset PULUMI_CONFIG_PASSPHRASE
stack=lab
lab_json="$PULUMI_BAREMETAL_CACHE/lab/run/lab.json"
p() { pulumi "$@" --stack "$stack" --non-interactive; }

pulumi stack select --create "$stack" --non-interactive >/dev/null

# A run that died mid-`up` (power lost, terminal killed) leaves its lock behind:
# cleared when its pulumi is gone from this machine, otherwise reported with the
# command to run (dist/lab/staleLocks.js says which).
locks=$(node dist/lab/staleLocks.js "$demo/state" "$stack") || exit 1
if [ "$locks" = clear ]; then
    p cancel --yes >/dev/null
    say "cleared the lock left by an interrupted run; its pending operations are refreshed by this run"
fi

lab_running() { ip netns list 2>/dev/null | grep -qw '^bmlab' && [ -f "$lab_json" ]; }

case "$action" in
up)
    wait "$lab_pid" || { say "the lab did not start (its messages are above); bash lab/lab.sh status shows each VM"; exit 1; }
    trap - EXIT
    say "lab running ($(( $(date +%s) - t0 ))s); pulumi up of the lab data center"
    # A stack made on VMs of an earlier lab build (new build, new VMs, new host keys):
    # nothing of it is left, and every refresh would refuse the new keys. Its state is
    # kept aside and the stack starts afresh (dist/lab/staleStack.js says when).
    verdict=$(p stack export | node dist/lab/staleStack.js "$lab_json")
    if [ "${verdict%% *}" = stale ]; then
        read -r _ n keys <<<"$verdict"
        kept="$demo/stale-stack-$(date -u +%Y%m%dT%H%M%SZ).json"
        (umask 077; p stack export >"$kept")
        say "the stack's $n resource(s) were made on lab VMs that no longer exist (the lab was rebuilt: $keys pinned host key(s) are not the lab's now), so there is nothing of them to refresh or destroy; starting the stack afresh (old state kept in $kept)"
        p stack rm --yes --force >/dev/null
        pulumi stack init "$stack" --non-interactive >/dev/null
    fi
    # --refresh: the lab's VMs keep only their disks across a stop, so what the
    # state remembers is checked against the hosts before anything is decided.
    p up --yes --skip-preview --refresh
    echo
    echo "=== the lab data center ($(( $(date +%s) - t0 ))s)"
    p stack output summaryText
    echo
    # The picture of it, next to the state (baremetal map: one self-contained page).
    node bin/baremetal map --stack "$stack" --out "$demo/map.html" && echo "map:    file://$demo/map.html (open it in a browser)" || say "no map: node bin/baremetal map --stack $stack failed"
    echo "state:  $PULUMI_BACKEND_URL (stack $stack; passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE)"
    echo "lab:    bash lab/lab.sh status | ssh: bash lab/lab.sh ssh <vm>"
    echo "again:  pulumi preview / up at the repository root (. lab/env.sh and the two exports above)"
    echo "down:   npm run demo -- down   (destroys the data center, its data included, and stops the lab)"
    ;;
down)
    if lab_running; then
        say "destroying the lab data center: the RAID array, volume group and volumes are wiped (allowDataLoss=true)"
        # The opt-in must be in the state before destroy reads it, hence the up.
        p config set allowDataLoss true
        p up --yes --skip-preview --refresh
        p destroy --yes --skip-preview
    else
        say "the lab is not running: nothing to destroy on it; forgetting the stack's resources"
    fi
    p stack rm --yes --force >/dev/null
    bash lab/lab.sh stop
    ;;
esac
