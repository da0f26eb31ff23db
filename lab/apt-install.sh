#!/usr/bin/env bash
# Installs, by name with apt-get, every Debian package listed in the given files
# (one name per line, '#' comments) that is not installed yet. Idempotent: does
# nothing, and asks no registry, when all are present. No daemon starts on this
# machine during the install (a temporary policy-rc.d answering 101); the project
# starts its own daemons, on loopback or inside the lab.
set -euo pipefail
say() { printf '[apt] %s\n' "$*" >&2; }

mapfile -t wanted < <(grep -hv '^[[:space:]]*\(#\|$\)' "$@" | awk '{print $1}' | sort -u)
# one dpkg-query for all (one per package costs seconds on a busy machine)
mapfile -t installed < <(dpkg-query -W -f='${Package} ${Status}\n' "${wanted[@]}" 2>/dev/null \
    | awk '/ install ok installed$/ {print $1}' || true)
missing=()
for p in "${wanted[@]}"; do
    [[ " ${installed[*]} " == *" $p "* ]] || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

say "installing ${#missing[@]} Debian package(s): ${missing[*]}"
policy=/usr/sbin/policy-rc.d ours=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# pulumi-baremetal: no daemon starts during the install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    ours=1
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT
exec 9>/run/lock/pulumi-baremetal-apt.lock
flock 9
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
