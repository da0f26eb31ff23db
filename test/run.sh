#!/usr/bin/env bash
# The test command: `npm test` (every tier) or `npm test -- unit e2e` (some).
# Sets up what each tier needs: Debian and npm packages, the pinned toolchain
# (Pulumi CLI, language host, Consul), a build of the TypeScript, and for the lab
# tier the lab itself, started once from nothing (in the background while the
# other tiers run) and stopped at the end. With CI=true a tier that cannot set
# itself up fails instead of skipping.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

all_tiers=(unit host e2e lab)
tiers=("$@")
[ ${#tiers[@]} -gt 0 ] || tiers=("${all_tiers[@]}")
for t in "${tiers[@]}"; do
    case " ${all_tiers[*]} " in *" $t "*) ;; *) echo "unknown test tier: $t (tiers: ${all_tiers[*]})" >&2; exit 2 ;; esac
done
wants() { case " ${tiers[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

burners=()
cleanup() {
    [ ${#burners[@]} -eq 0 ] || kill "${burners[@]}" 2>/dev/null || true
    if wants lab; then bash lab/lab.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

lab_log=$(mktemp /tmp/baremetal-lab-start.XXXXXX)
lab_pid=
if wants lab; then
    # The lab needs only this machine's packages and Consul, so it is built (cold: about
    # ten minutes) and started beside the rest of the setup (a cold build of the Pulumi CLI:
    # about seven) and the unit and host tiers. From nothing: fresh disks and BMC state,
    # then every VM answering SSH; then the S3 endpoint for Pulumi state in ceph1 that the
    # teams tests use (lab/rgw.sh): made while ceph1 is idle (about a minute), not beside
    # the Ceph tests' own cluster (eight minutes when it was, on its one vCPU).
    bash lab/apt-install.sh lab/host-packages.txt
    bash lab/toolchain.sh consul >/dev/null
    ( bash lab/lab.sh reset && bash lab/lab.sh start && bash lab/lab.sh rgw ) >"$lab_log" 2>&1 &
    lab_pid=$!
fi

bash lab/setup.sh
. lab/env.sh
npx tsc -p .

# BAREMETAL_TEST_BURN=N starts N processes that keep the CPUs busy for this run
# only: the proof that the suite passes on a loaded machine (no test may depend
# on how fast the machine is). They stop with the run.
for _ in $(seq 1 "${BAREMETAL_TEST_BURN:-0}"); do
    sh -c 'while :; do :; done' &
    burners+=($!)
done
[ ${#burners[@]} -eq 0 ] || echo "=== ${#burners[@]} CPU burner(s) running beside the tests"

status=0
mocha_tier() {
    local name=$1; shift
    echo "=== tier: $name"
    local start; start=$(date +%s)
    npx mocha --config test/.mocharc.json "$@" || status=1
    echo "=== tier $name: $(( $(date +%s) - start ))s"
}

for tier in unit host; do
    wants "$tier" && mocha_tier "$tier" "dist/test/$tier/**/*.test.js"
done

# The e2e tier (loopback only) runs beside the lab's tests when both are wanted:
# on 2 cores the lab is mostly one busy VM at a time. Its output comes at the end.
e2e_pid=
e2e_log=$(mktemp /tmp/baremetal-e2e.XXXXXX)
if wants e2e; then
    if wants lab; then
        ( status=0; mocha_tier "e2e (beside the lab)" "dist/test/e2e/**/*.test.js"; exit $status ) >"$e2e_log" 2>&1 &
        e2e_pid=$!
    else
        mocha_tier e2e "dist/test/e2e/**/*.test.js"
    fi
fi

if wants lab; then
    start=$(date +%s)
    if ! wait "$lab_pid"; then
        echo "=== tier lab: the lab did not start:" >&2
        cat "$lab_log" >&2
        exit 1
    fi
    echo "=== lab started ($(( $(date +%s) - start ))s after the other tiers; log: $lab_log)"
    grep -E '^\[lab\] lab up in|^\[rgw\].*ready' "$lab_log" || true
    # Resource tests share the running lab: two at once, never two that hold a common part of
    # it (a VM, or svc1's Open vSwitch), the next chosen by the measured times so that the
    # longest chains run side by side (test/lab/schedule.ts; `node dist/test/lab/schedule.js
    # plan` prints the order). Each file leaves its disks as it found them (blankDisksScript),
    # so no file depends on which ran before it.
    # The smoke test runs last: it proves a start from nothing and a clean stop.
    mapfile -t lab_tests < <(ls dist/test/lab/*.test.js | grep -v '/smoke\.test\.js$')
    echo "=== tier: lab (resources, two lanes by test/lab/schedule.ts)"
    lab_start=$(date +%s)
    node dist/test/lab/schedule.js run "${lab_tests[@]}" || status=1
    echo "=== tier lab (resources): $(( $(date +%s) - lab_start ))s"
    mocha_tier "lab (smoke)" dist/test/lab/smoke.test.js
fi
if [ -n "$e2e_pid" ]; then
    wait "$e2e_pid" || status=1
    cat "$e2e_log"
fi
exit $status
