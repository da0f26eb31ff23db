#!/usr/bin/env bash
# Runs inside a lab VM, as root (lab/rgw.sh sends it over SSH): an S3 endpoint for
# Pulumi state on a Ceph cluster of its own. One monitor, one OSD, one radosgw
# (Debian's ceph-mon, ceph-osd, radosgw), a user and a bucket; prints the endpoint
# and the user's keys as JSON on stdout. Idempotent: when everything already runs,
# it only prints them again; a half-made cluster is removed and made again.
#
# Its own cluster, not the one the Ceph tests make and tear down on the same VM:
# its files live under $dir (never under /var/lib/ceph/{mon,osd,mgr}, which that
# teardown wipes), it reads its own ceph.conf (-c, never /etc/ceph/ceph.conf), its
# daemons are transient units named bmlab-state-* (not ceph-*@, which the teardown
# stops), its monitor listens on the STORAGE address (the tests' on the LAN one).
# The OSD is a memstore OSD: its objects live in the daemon's memory (saved under
# $dir when it stops), so the VM's disks stay the tests'. State objects are a few
# KiB; the store's size is capped by memstore_device_bytes.
#
# Paused (`pause`): its three daemons stopped with SIGSTOP, their memory (the OSD's objects
# included) kept. An idle cluster still costs about a tenth of ceph1's one emulated vCPU
# (timers, heartbeats, radosgw's threads; measured), which the Ceph tests want while no
# test keeps its state there; `start` resumes them and waits until an S3 request works.
#
# Usage: rgw-vm.sh start|pause MON_ADDR RGW_ADDR RGW_PORT BUCKET [DIR]
set -euo pipefail
op=${1:?start or pause}
shift
mon_addr=${1:?mon address} rgw_addr=${2:?rgw address} rgw_port=${3:?rgw port} bucket=${4:?bucket}
dir=${5:-/var/lib/bmlab-state}
conf=$dir/ceph.conf
region=us-east-1
units=(bmlab-state-rgw bmlab-state-osd bmlab-state-mon)
say() { printf '[rgw %s] %s\n' "$(hostname -s)" "$*" >&2; }
ceph_() { ceph -c "$conf" -n client.admin "$@"; }

# Daemons: transient systemd units where systemd runs, else plain background processes
# (the same script then serves a quick trial on a machine without systemd).
if [ -d /run/systemd/system ]; then
    daemon() { local unit=$1; shift; systemd-run --quiet --unit="$unit" --property=Restart=no "$@" >/dev/null; }
    daemon_alive() { systemctl is-active --quiet "$1"; }
    daemon_pid() { systemctl show -p MainPID --value "$1" 2>/dev/null | grep -v '^0$'; }
    daemon_stop() { daemon_signal "$1" CONT; systemctl stop "$1" 2>/dev/null || true; systemctl reset-failed "$1" 2>/dev/null || true; }
else
    daemon() { local unit=$1; shift; mkdir -p "$dir/run"; setsid "$@" </dev/null >>"$dir/log/$unit.out" 2>&1 & echo $! >"$dir/run/$unit.pid"; }
    daemon_alive() { local p; p=$(cat "$dir/run/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }
    daemon_pid() { cat "$dir/run/$1.pid" 2>/dev/null; }
    daemon_stop() { local p; daemon_signal "$1" CONT; p=$(cat "$dir/run/$1.pid" 2>/dev/null) && kill "$p" 2>/dev/null || true; rm -f "$dir/run/$1.pid"; }
fi
daemon_signal() { local p; p=$(daemon_pid "$1") && [ -n "$p" ] && kill "-$2" "$p" 2>/dev/null || true; }
# A daemon stopped by `pause` (state T in ps).
daemon_paused() { local p; p=$(daemon_pid "$1") && [ -n "$p" ] && [ "$(ps -o stat= -p "$p" | cut -c1)" = T ]; }

credentials() { cat "$dir/credentials.json"; }

# Polls `cond` every 0.5 s until it holds; fails naming `what` after `secs` seconds.
wait_for() {
    local what=$1 secs=$2; shift 2
    local until=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$until" ] || { say "gave up waiting for $what after ${secs}s"; tail -n 5 "$dir"/log/*.log >&2 2>/dev/null || true; return 1; }
        sleep 0.5
    done
}

all_alive() { local u; for u in "${units[@]}"; do daemon_alive "$u" || return 1; done; }
rgw_answers() { curl -fsS -o /dev/null --max-time 5 "http://$rgw_addr:$rgw_port/"; }
# A signed request that reaches the OSD (the bucket's index): the cluster works, not only radosgw's socket.
bucket_answers() {
    jq -r '"user = \"\(.accessKey):\(.secretKey)\""' "$dir/credentials.json" \
        | curl -fsS -K - --max-time 20 --aws-sigv4 "aws:amz:$region:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
            -o /dev/null "http://$rgw_addr:$rgw_port/$bucket?max-keys=1"
}
osd_up() { ceph_ osd stat -f json | grep -q '"num_up_osds": *1'; }

if [ "$op" = pause ]; then
    [ -f "$dir/.complete" ] && all_alive || { say "not running: nothing to pause"; exit 0; }
    # radosgw first, the monitor last (the reverse of their start)
    for u in "${units[@]}"; do daemon_signal "$u" STOP; done
    say "paused (SIGSTOP: ${units[*]}); lab/rgw.sh resumes it"
    exit 0
fi
[ "$op" = start ] || { say "unknown operation $op (start or pause)"; exit 2; }

if [ -f "$dir/.complete" ] && all_alive; then
    paused=
    for u in "${units[@]}"; do daemon_paused "$u" && paused=1; done
    if [ -n "$paused" ]; then
        # the monitor first; after a long pause it may mark the OSD down until its next
        # report, and cephx renews the daemons' tickets: wait until a bucket request works
        for ((i = ${#units[@]} - 1; i >= 0; i--)); do daemon_signal "${units[$i]}" CONT; done
        if wait_for "the OSD to be up after the pause" 180 osd_up && wait_for "the bucket to answer after the pause" 180 bucket_answers; then
            say "resumed after a pause"; credentials; exit 0
        fi
        say "did not come back from the pause: making it again"
    elif rgw_answers; then
        say "already running"; credentials; exit 0
    fi
fi

# From nothing (or over a half-made one).
for u in "${units[@]}"; do daemon_stop "$u"; done
rm -rf "$dir"
mkdir -p "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/log" "$dir/run"
chmod 0700 "$dir"
fsid=$(cat /proc/sys/kernel/random/uuid)
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:$mon_addr:3300,v1:$mon_addr:6789]
public_addr = $mon_addr
cluster_addr = $mon_addr
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
ms_bind_ipv6 = false
keyring = $dir/\$name.keyring
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
mon_cluster_log_file = $dir/log/cluster.log
# one OSD: pools of one replica, few placement groups, no manager to scale them
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 1
osd_pool_default_pgp_num = 1
osd_pool_default_pg_autoscale_mode = off
rgw_rados_pool_pg_num_min = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon]
mon_data = $dir/mon

[osd]
osd_data = $dir/osd
osd_objectstore = memstore
memstore_device_bytes = 268435456
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 1

[client.rgw.state]
rgw_frontends = beast endpoint=$rgw_addr:$rgw_port
rgw_data = $dir/rgw
rgw_dns_name = $rgw_addr
rgw_enable_usage_log = false
EOF

umask 077
ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/client.admin.keyring" >/dev/null
monmaptool --create --addv state "[v2:$mon_addr:3300,v1:$mon_addr:6789]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i state --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
daemon bmlab-state-mon ceph-mon -c "$conf" -f -i state
wait_for "the monitor" 120 ceph_ --connect-timeout 5 mon stat

# The OSD: registered with its key, then made (memstore) and started.
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_key=$(ceph-authtool --gen-print-key)
osd_id=$(printf '{"cephx_secret": "%s"}' "$osd_key" | ceph_ osd new "$osd_uuid" -i -)
ceph-authtool --create-keyring "$dir/osd.$osd_id.keyring" --name "osd.$osd_id" --add-key "$osd_key" >/dev/null
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 \
    || { say "ceph-osd --mkfs failed"; tail -n 20 "$dir/log/osd.$osd_id.log" >&2; exit 1; }
daemon bmlab-state-osd ceph-osd -c "$conf" -f -i "$osd_id"
wait_for "the OSD to be up" 180 osd_up

# radosgw: it makes its pools on its first start.
ceph_ auth get-or-create client.rgw.state mon 'allow rw' osd 'allow rwx' -o "$dir/client.rgw.state.keyring"
daemon bmlab-state-rgw radosgw -c "$conf" -f -n client.rgw.state
wait_for "radosgw to answer on $rgw_addr:$rgw_port" 300 rgw_answers

# A user for Pulumi and its keys (generated here), then the bucket (SigV4-signed PUT; the
# keys go to curl on stdin, not on its command line).
radosgw-admin -c "$conf" -n client.admin user create --uid=pulumi --display-name="Pulumi state" >"$dir/user.json" 2>"$dir/log/user-create.err"
access=$(jq -r '.keys[0].access_key' "$dir/user.json")
secret=$(jq -r '.keys[0].secret_key' "$dir/user.json")
printf 'user = "%s:%s"\n' "$access" "$secret" \
    | curl -fsS -K - --aws-sigv4 "aws:amz:$region:s3" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "http://$rgw_addr:$rgw_port/$bucket" -o /dev/null
jq -n --arg endpoint "http://$rgw_addr:$rgw_port" --arg bucket "$bucket" --arg region "$region" \
    --arg accessKey "$access" --arg secretKey "$secret" \
    '{endpoint: $endpoint, bucket: $bucket, region: $region, accessKey: $accessKey, secretKey: $secretKey}' >"$dir/credentials.json"
rm -f "$dir/user.json"
touch "$dir/.complete"
credentials
