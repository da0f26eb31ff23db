#!/usr/bin/env bash
# The main job: `npm run demo` brings the example up with `pulumi up` and prints
# a summary; `npm run demo -- down` destroys it and stops what it started.
#
# Today the example is examples/consul-keys against a local Consul agent; it
# grows into the lab data center as the lab and the resources land.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
action=${1:-up}

bash lab/setup.sh
. lab/env.sh
npx tsc -p .

demo="$PULUMI_BAREMETAL_CACHE/demo"
mkdir -p "$demo/state" "$demo/consul"
# State: a local file backend; secrets: a passphrase generated once, mode 0600.
export PULUMI_BACKEND_URL="file://$demo/state"
if [ ! -s "$demo/passphrase" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 >"$demo/passphrase")
fi
export PULUMI_CONFIG_PASSPHRASE_FILE="$demo/passphrase"
unset PULUMI_CONFIG_PASSPHRASE
consul_addr=127.0.0.1:18500
program=examples/consul-keys
stack=demo

consul_up() {
    curl -fsS "http://$consul_addr/v1/status/leader" 2>/dev/null | grep -q :
}

start_consul() {
    consul_up && return
    echo "[demo] starting consul (dev mode) on $consul_addr"
    setsid consul agent -dev -bind 127.0.0.1 -client 127.0.0.1 -http-port 18500 -dns-port -1 -grpc-port -1 \
        -serf-lan-port 18301 -serf-wan-port 18302 -server-port 18300 -node demo \
        >"$demo/consul/consul.log" 2>&1 </dev/null &
    echo $! >"$demo/consul/pid"
    for _ in $(seq 100); do consul_up && return; sleep 0.2; done
    echo "[demo] consul did not start; see $demo/consul/consul.log" >&2
    exit 1
}

stop_consul() {
    if [ -f "$demo/consul/pid" ]; then
        kill "$(cat "$demo/consul/pid")" 2>/dev/null || true
        rm -f "$demo/consul/pid"
    fi
}

cd "$program"
pulumi stack select --create "$stack" --non-interactive >/dev/null
case "$action" in
up)
    start_consul
    pulumi config set consulAddress "$consul_addr" --stack "$stack"
    pulumi config get tsigKey --stack "$stack" >/dev/null 2>&1 ||
        pulumi config set --secret tsigKey "$(head -c 18 /dev/urandom | base64)" --stack "$stack"
    pulumi up --yes --stack "$stack" --non-interactive
    echo
    echo "=== summary"
    echo "consul:  http://$consul_addr (dev agent, log: $demo/consul/consul.log)"
    echo "state:   $PULUMI_BACKEND_URL (passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE)"
    pulumi stack output --stack "$stack" --json
    echo "keys in consul:"
    curl -fsS "http://$consul_addr/v1/kv/config/?keys" && echo
    echo "tear down with: npm run demo -- down"
    ;;
down)
    if consul_up; then
        pulumi destroy --yes --stack "$stack" --non-interactive
    else
        echo "[demo] consul is not running, so there is nothing left to destroy in it; forgetting the stack's resources"
    fi
    pulumi stack rm --yes --force --stack "$stack" --non-interactive
    stop_consul
    ;;
*)
    echo "usage: npm run demo [-- up|down]" >&2
    exit 2
    ;;
esac
