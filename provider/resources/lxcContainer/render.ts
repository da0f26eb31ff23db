// LxcContainer, part render: the container's config (the managed block, the
// config of a given rootfs, the created marker), the scripts that write them,
// and its lock (no I/O).
import { objectLock } from "../../host";
import type { ObjectLockName } from "../../host";
import { managedBegin, managedEnd, managedNetKeys } from "../../parsers/lxc";
import type { LxcContainerInputs } from "./spec";

export function configPath(name: string): string {
    return `/var/lib/lxc/${name}/config`;
}

/** The managed block: network, mounts, autostart, limits; every value validated in check. */
export function managedBlock(c: LxcContainerInputs): string {
    const lines = [managedBegin];
    c.network.forEach((n, i) => {
        lines.push(`lxc.net.${i}.type = veth`, `lxc.net.${i}.link = ${n.bridge}`, `lxc.net.${i}.flags = up`, `lxc.net.${i}.name = eth${i}`);
        if (n.hwaddr) lines.push(`lxc.net.${i}.hwaddr = ${n.hwaddr}`);
        if (n.ipv4) lines.push(`lxc.net.${i}.ipv4.address = ${n.ipv4}`);
        if (n.gateway) lines.push(`lxc.net.${i}.ipv4.gateway = ${n.gateway}`);
    });
    // LXC takes the target relative to the container's root.
    for (const m of c.mounts) lines.push(`lxc.mount.entry = ${m.source} ${m.target.slice(1)} ${m.type} ${m.options} 0 0`);
    lines.push(`lxc.start.auto = ${c.autostart ? 1 : 0}`);
    if (c.limits.memoryMiB !== undefined) lines.push(`lxc.cgroup2.memory.max = ${c.limits.memoryMiB}M`);
    if (c.limits.cpuWeight !== undefined) lines.push(`lxc.cgroup2.cpu.weight = ${c.limits.cpuWeight}`);
    if (c.limits.pids !== undefined) lines.push(`lxc.cgroup2.pids.max = ${c.limits.pids}`);
    lines.push(managedEnd, "");
    return lines.join("\n");
}

/**
 * The awk program of configScript: the first file is the new block, the second
 * the config. It prints the config without its managed block and without the
 * lines outside it that the new block sets again (the block's NIC indexes'
 * modelled keys, autostart, the limits it sets, mounts it lists), so that a
 * container someone else configured is taken over without duplicate keys. Lines
 * the block does not set stay as they are.
 */
const configAwk = [
    String.raw`function mnt(l, f) { sub(/^[ \t]*lxc\.mount\.entry[ \t]*=[ \t]*/, "", l); split(l, f, /[ \t]+/); return f[1] " " f[2] " " f[3] " " f[4] }`,
    String.raw`function key(l) { sub(/^[ \t]+/, "", l); sub(/[ \t]*=.*$/, "", l); return l }`,
    String.raw`FNR == NR { k = key($0); if (k == "lxc.mount.entry") mounts[mnt($0)] = 1; else if (k != "") set[k] = 1; next }`,
    "$0 == b { skip = 1 }",
    "skip { if ($0 == e) skip = 0; next }",
    "{ k = key($0) }",
    String.raw`k == "lxc.mount.entry" && (mnt($0) in mounts) { next }`,
    String.raw`k ~ /^lxc\.(net\.[0-9]+\.(` + managedNetKeys.map((x) => x.replace(/\./g, "\\.")).join("|") + String.raw`)|start\.auto|cgroup2\.(memory\.max|cpu\.weight|pids\.max))$/ && (k in set) { next }`,
    "{ print }",
].join("\n");

// Replaces the managed block at the end of config $1 with stdin (see configAwk); reports unchanged.
export const configScript = [
    "set -eu",
    'conf=$1',
    '[ -f "$conf" ] || { echo "no container config $conf" >&2; exit 3; }',
    'tmp=$(mktemp "$conf.XXXXXX")',
    'blk=$(mktemp "$conf.XXXXXX")',
    'cat >"$blk"',
    `awk -v b="${managedBegin}" -v e="${managedEnd}" '${configAwk}' "$blk" "$conf" >"$tmp"`,
    'cat "$blk" >>"$tmp"',
    'rm -f "$blk"',
    'if cmp -s "$tmp" "$conf"; then rm -f "$tmp"; echo =baremetal-unchanged=; else mv "$tmp" "$conf"; fi',
].join("\n");

/** The config of a container made from an existing rootfs (no template writes one). */
export function rootfsConfig(c: LxcContainerInputs): string {
    return [
        createdMarker(c.name),
        `# Container ${c.name} on the root file system ${c.rootfs}, written by pulumi-baremetal.`,
        "lxc.include = /usr/share/lxc/config/common.conf",
        `lxc.rootfs.path = dir:${c.rootfs}`,
        `lxc.uts.name = ${c.name}`,
        "",
    ].join("\n");
}

/**
 * The first line of every config this resource makes (lxc-create copies the
 * comments of its -f file into the container's config). A create cut off before
 * the managed block was written finds this line on its re-run and carries on
 * with its own container instead of refusing it as someone else's.
 */
export function createdMarker(name: string): string {
    return `# pulumi-baremetal container ${name}: the managed block is written next`;
}

/**
 * The container's lock, held (in this process and by flock on the box) around
 * lxc-create and lxc-destroy and around the looks that create and delete act on:
 * a re-run after a cut connection waits for an lxc-create or lxc-destroy still
 * running on the box instead of finding the container half made or half gone.
 * (Named after lxc-create, its first use; the name is the lock file's on the box.)
 */
export function createLock(name: string): ObjectLockName {
    return objectLock("lxc-create", name);
}

// Writes stdin to $1 inside the container with mode $2 (runs under lxc-attach).
export const fileScript = 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"';
