#!/usr/bin/env bash
# Builds (or reuses) the pinned toolchain into a cache outside the repo and prints
# its bin directory on the last line of stdout:
#   pulumi                          the real CLI, from the Go module proxy
#   pulumi-language-nodejs          the project's language host (lab/toolchain/langhost)
#   pulumi-resource-pulumi-nodejs   the dynamic-provider plugin shipped in @pulumi/pulumi
#   pulumi-language-yaml            the Pulumi YAML language host, from the Go module proxy
#   consul                          Consul 1.8.7 unpacked from Debian's bullseye archive
# `toolchain.sh consul` makes only Consul and prints its path (the lab's build needs
# nothing else, so it can run beside the CLI's build). `toolchain.sh cli` (or, with no
# argument, BAREMETAL_TOOLCHAIN=cli in the environment, which reaches it through
# lab/setup.sh and lab/env.sh) makes all but the YAML language host, which only the tests
# and YAML programs need: the demo's program is TypeScript, and a cold build of the YAML
# host adds 85-130 s to it.
# Idempotent; safe to run concurrently (flocks). Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=versions.env
. "$here/versions.env"

cache=${PULUMI_BAREMETAL_CACHE:-$HOME/.cache/pulumi-baremetal}
mkdir -p "$cache"
say() { printf '[toolchain] %s\n' "$*" >&2; }

# The key covers every input of the build, so editing the language host or the
# pinned version builds a new directory instead of reusing a stale one.
key=$(cat "$here/versions.env" "$here/toolchain/go.mod" "$here/toolchain/go.sum" \
        "$here"/toolchain/langhost/*.go "$0" | sha256sum | cut -c1-12)
bin="$cache/toolchain/pulumi-v$PULUMI_VERSION-$key/bin"

build_pulumi() {
    local out=$1
    if command -v pulumi >/dev/null && [ "$(pulumi version 2>/dev/null)" = "v$PULUMI_VERSION" ] \
        && [ "$(command -v pulumi)" != "$out/pulumi" ]; then
        say "using pulumi v$PULUMI_VERSION from PATH: $(command -v pulumi)"
        ln -sf "$(command -v pulumi)" "$out/pulumi"
        return
    fi
    say "building pulumi v$PULUMI_VERSION with $(go version | cut -d' ' -f3) (cold: a few minutes)"
    (cd "$here/toolchain" && go build -trimpath -o "$out/pulumi" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_langhost() {
    local out=$1
    (cd "$here/toolchain" && go build -trimpath -o "$out/pulumi-language-nodejs" \
        -ldflags "-s -w -X main.version=v$PULUMI_VERSION" ./langhost)
}

# Consul comes from Debian's previous stable release. A private apt state in the
# cache reads that suite alone, so the system's own sources and packages are never
# touched; the archive's address is the one the machine's apt already uses. A lock
# of its own: the lab's build needs Consul alone and must not wait for the CLI's.
consul_dir="$cache/consul-$CONSUL_VERSION"
fetch_consul() (
    local dir=$consul_dir
    exec 8>"$cache/consul.lock"
    flock 8
    if [ ! -x "$dir/usr/bin/consul" ]; then
        local uri apt
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
        [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
        [ -n "$uri" ] || { say "no Debian archive found in the apt sources"; return 1; }
        apt="$cache/apt-$CONSUL_DEB_SUITE"
        mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/pkg"
        printf 'deb %s %s main\n' "$uri" "$CONSUL_DEB_SUITE" >"$apt/sources.list"
        local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                 -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o Dir::State::status=/dev/null
                 -o APT::Sandbox::User=root -q)
        say "fetching consul $CONSUL_VERSION from Debian $CONSUL_DEB_SUITE"
        apt-get "${o[@]}" update >&2
        (cd "$apt/pkg" && rm -f consul_*.deb && apt-get "${o[@]}" download consul >&2)
        rm -rf "$dir.tmp" && dpkg -x "$apt"/pkg/consul_*.deb "$dir.tmp"
        "$dir.tmp/usr/bin/consul" version | grep -q "Consul v$CONSUL_VERSION" || { say "expected consul $CONSUL_VERSION in $CONSUL_DEB_SUITE"; return 1; }
        mv "$dir.tmp" "$dir"
    fi
)

parts=${1:-${BAREMETAL_TOOLCHAIN:-}}
case "$parts" in ""|cli|consul) ;; *) say "usage: lab/toolchain.sh [cli|consul] (or BAREMETAL_TOOLCHAIN=cli)"; exit 2 ;; esac

# `toolchain.sh consul`: Consul only (what the lab's build needs), its path on the last line.
if [ "$parts" = consul ]; then
    fetch_consul
    echo "$consul_dir/usr/bin/consul"
    exit 0
fi

exec 9>"$cache/toolchain.lock"
flock 9

if [ ! -f "$bin/.complete" ]; then
    t0=$(date +%s)
    rm -rf "$bin" && mkdir -p "$bin"
    fetch_consul &
    consul_pid=$!
    build_pulumi "$bin"
    build_langhost "$bin"
    wait "$consul_pid"
    ln -sf "$consul_dir/usr/bin/consul" "$bin/consul"
    touch "$bin/.complete"
    say "toolchain ready in $(( $(date +%s) - t0 ))s: $bin"
fi

# The YAML language host has a cache directory of its own, keyed by its version
# alone: bumping it does not rebuild the CLI, and a CLI rebuild does not rebuild it.
# `go install` works for it (its module has no replace directives).
yaml_host() {
    local dir="$cache/toolchain/pulumi-language-yaml-v$PULUMI_YAML_VERSION"
    if [ ! -x "$dir/pulumi-language-yaml" ]; then
        local t0; t0=$(date +%s)
        say "building pulumi-language-yaml v$PULUMI_YAML_VERSION with $(go version | cut -d' ' -f3)"
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        GOBIN="$dir.tmp" go install -trimpath -ldflags "-s -w" \
            "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v$PULUMI_YAML_VERSION" >&2
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
        say "pulumi-language-yaml ready in $(( $(date +%s) - t0 ))s"
    fi
    ln -sf "$dir/pulumi-language-yaml" "$bin/pulumi-language-yaml"
}
[ "$parts" = cli ] || yaml_host

# The dynamic-provider plugin is a shell script in the npm package; it resolves
# @pulumi/pulumi from the program directory at run time, so one copy serves all.
if [ -f "$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" ]; then
    install -m 0755 "$root/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" \
        "$bin/pulumi-resource-pulumi-nodejs"
fi
echo "$bin"
