#!/usr/bin/env bash
# Shared Pulumi state on the lab's own Ceph: an S3 endpoint (radosgw) in the lab VM
# ceph1, a bucket for state, and a user whose keys are generated here, at the first
# call after a lab start. Idempotent and safe to call from several tests at once (a
# lock in the run directory): a second call finds it running and only writes the
# files again. `lab/lab.sh rgw` runs this script.
#
#   lab/rgw.sh [start]   make or find it (resumed when paused); print the path of rgw.env
#   lab/rgw.sh pause     stop its daemons (SIGSTOP) until the next start: the lab's test
#                        runner pauses it while no running test keeps state there
#   lab/rgw.sh env       print the path of rgw.env (fails when not started)
#
# What it writes, mode 0600, in the lab's run directory (never in the repository):
#   rgw.json   {endpoint, bucket, region, accessKey, secretKey, backendUrl, seconds}
#   rgw.env    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, PULUMI_BACKEND_URL
#              (and the AWS SDK's checksum settings RGW 16 needs): `. "$(lab/rgw.sh)"`
# The run directory goes with `lab.sh reset`; the cluster (in the VM's memory) with
# `lab.sh stop`. How it is made: lab/rgw-vm.sh.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}
run=$cache/lab/run
lab_json=$run/lab.json
vm=${LAB_RGW_VM:-ceph1}
port=${LAB_RGW_PORT:-7480}
bucket=${LAB_RGW_BUCKET:-pulumi-state}
say() { printf '[rgw] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ -f "$lab_json" ] || die "no lab.json at $lab_json: start the lab first (lab/lab.sh start)"
case "${1:-start}" in
    env) [ -f "$run/rgw.env" ] || die "not started: run lab/rgw.sh"; echo "$run/rgw.env"; exit 0 ;;
    start|pause) op=${1:-start} ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

exec 8>"$run/rgw.lock"
flock 8
t0=$(date +%s.%N)
# The monitor and the OSD on ceph1's STORAGE address; radosgw where workstations are: the LAN.
read -r host key_path known mon_addr rgw_addr < <(jq -r --arg vm "$vm" \
    '[.vms[$vm].ssh.host, .ssh.privateKeyPath, .ssh.knownHostsPath, .vms[$vm].addresses.storage, .vms[$vm].addresses.lan] | @tsv' "$lab_json")
[ "$host" != null ] || die "no VM $vm in $lab_json"
[[ "$port" =~ ^[0-9]+$ && "$bucket" =~ ^[a-z0-9][a-z0-9.-]{2,62}$ ]] || die "LAB_RGW_PORT must be a number and LAB_RGW_BUCKET a bucket name (a-z, 0-9, '.', '-')"
# The script goes over stdin into a file in the VM, then runs from it (its commands get no stdin of ours).
remote="sh -c $(printf %q 'f=$(mktemp) && cat >"$f" && bash "$f" "$@"; rc=$?; rm -f "$f"; exit $rc') rgw-vm $op $mon_addr $rgw_addr $port $bucket"
if [ "$op" = pause ]; then
    [ -f "$run/rgw.json" ] || { say "not started: nothing to pause"; exit 0; }
    ssh -i "$key_path" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o "UserKnownHostsFile=$known" -o ConnectTimeout=10 -o LogLevel=ERROR "root@$host" \
        "$remote" <"$here/rgw-vm.sh" || die "could not pause radosgw in $vm (its output is above)"
    exit 0
fi
creds=$(ssh -i "$key_path" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o "UserKnownHostsFile=$known" -o ConnectTimeout=10 -o LogLevel=ERROR "root@$host" \
    "$remote" <"$here/rgw-vm.sh") \
    || die "could not start radosgw in $vm (its output is above)"
seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
endpoint=$(jq -r .endpoint <<<"$creds")
# Pulumi's S3 backend: the endpoint, path-style addressing (no bucket name in the host name).
backend="s3://$bucket?endpoint=$endpoint&s3ForcePathStyle=true"
umask 077
jq --arg backend "$backend" --argjson s "$seconds" '. + {backendUrl: $backend, seconds: $s}' <<<"$creds" >"$run/rgw.json.tmp"
mv "$run/rgw.json.tmp" "$run/rgw.json"
jq -r '"export AWS_ACCESS_KEY_ID=\(.accessKey | @sh)",
       "export AWS_SECRET_ACCESS_KEY=\(.secretKey | @sh)",
       "export AWS_REGION=\(.region | @sh)",
       "export PULUMI_BACKEND_URL=\(.backendUrl | @sh)",
       "# RGW 16 sends no checksums; the AWS SDK would warn at every response",
       "export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
       "export AWS_REQUEST_CHECKSUM_CALCULATION=when_required"' "$run/rgw.json" >"$run/rgw.env.tmp"
mv "$run/rgw.env.tmp" "$run/rgw.env"
say "radosgw in $vm at $endpoint, bucket $bucket: ready in ${seconds}s"
echo "$run/rgw.env"
