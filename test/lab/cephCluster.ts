// Test setup for the CephOsd lab test: a minimal real Ceph cluster (one monitor,
// one manager, Debian's ceph 16.2 packages seen through the VM's 9p root) in the
// lab VM ceph1, bootstrapped by hand the way the Ceph manual deployment guide does
// it. This is a fixture, not a resource: the OSDs are what the test proves.
//
// Sized for a 2 GiB VM under TCG sharing two host cores: small caches, one op
// shard, replication across OSDs on one host (chooseleaf type 0), pools of size
// 2 with min_size 1, few PGs, no optional manager modules.
import { CephCommand, clientArgv, clientInput } from "../../provider/resources/cephOsd/client";
import type { LabShell } from "./lab";

export type { CephCommand };

export interface CephLabCluster {
    vm: string;
    fsid: string;
    /** Seconds from nothing to a monitor in quorum and an available manager. */
    bootstrapSeconds: number;
}

/** The disks the test may wipe: every virtual disk of the VM (they hold nothing else). */
export const cephDisks = ["/dev/vda", "/dev/vdb", "/dev/vdc", "/dev/vdd"];

export function cephConf(fsid: string, name: string, monAddr: string, publicCidr: string, clusterCidr: string): string {
    return [
        "[global]",
        `fsid = ${fsid}`,
        `mon_initial_members = ${name}`,
        `mon_host = [v2:${monAddr}:3300,v1:${monAddr}:6789]`,
        `public_network = ${publicCidr}`,
        `cluster_network = ${clusterCidr}`,
        "auth_cluster_required = cephx",
        "auth_service_required = cephx",
        "auth_client_required = cephx",
        "auth_allow_insecure_global_id_reclaim = false",
        "ms_bind_ipv6 = false",
        // One host: replicas go to different OSDs, not different hosts.
        "osd_crush_chooseleaf_type = 0",
        "osd_pool_default_size = 2",
        "osd_pool_default_min_size = 1",
        "osd_pool_default_pg_num = 8",
        "osd_pool_default_pgp_num = 8",
        "osd_pool_default_pg_autoscale_mode = off",
        "mon_allow_pool_size_one = true",
        "mon_allow_pool_delete = true",
        "mon_warn_on_pool_no_redundancy = false",
        // The monitor's store lives in the VM's tmpfs overlay.
        "mon_data_avail_warn = 2",
        "mon_data_avail_crit = 1",
        "",
        "[mgr]",
        // No Python modules: loading the ~30 of them takes the manager 5 minutes under TCG (measured);
        // what the test needs (PG stats, safe-to-destroy, purge) is the manager's C++ core.
        "mgr_module_path = /var/lib/ceph/mgr-modules",
        "",
        "[osd]",
        "bluestore_cache_autotune = false",
        "bluestore_cache_size = 33554432",
        "osd_op_num_shards = 1",
        "osd_op_num_threads_per_shard = 1",
        // Recovery as fast as the small box allows: the delete test waits for it.
        "osd_recovery_sleep_hdd = 0",
        "osd_max_backfills = 4",
        "",
    ].join("\n");
}

const bootstrapScript = (conf: string) => `set -eu
name=$(hostname -s)
addr=$1 fsid=$2
mkdir -p /etc/ceph /var/lib/ceph/bootstrap-osd
cat >/etc/ceph/ceph.conf <<'CONF'
${conf}CONF
umask 077
rm -f /tmp/ceph.mon.keyring /tmp/monmap
ceph-authtool --create-keyring /tmp/ceph.mon.keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool --create-keyring /var/lib/ceph/bootstrap-osd/ceph.keyring --gen-key -n client.bootstrap-osd --cap mon 'profile bootstrap-osd' --cap mgr 'allow r' >/dev/null
ceph-authtool /tmp/ceph.mon.keyring --import-keyring /etc/ceph/ceph.client.admin.keyring >/dev/null
ceph-authtool /tmp/ceph.mon.keyring --import-keyring /var/lib/ceph/bootstrap-osd/ceph.keyring >/dev/null
monmaptool --create --addv "$name" "[v2:$addr:3300,v1:$addr:6789]" --fsid "$fsid" /tmp/monmap >/dev/null
chown ceph:ceph /tmp/ceph.mon.keyring /tmp/monmap
install -d -o ceph -g ceph "/var/lib/ceph/mon/ceph-$name" "/var/lib/ceph/mgr/ceph-$name" /var/lib/ceph/mgr-modules
runuser -u ceph -- ceph-mon --mkfs -i "$name" --monmap /tmp/monmap --keyring /tmp/ceph.mon.keyring
rm -f /tmp/ceph.mon.keyring /tmp/monmap
systemctl start "ceph-mon@$name"
ceph auth get-or-create "mgr.$name" mon 'allow profile mgr' osd 'allow *' mds 'allow *' >"/var/lib/ceph/mgr/ceph-$name/keyring"
chown -R ceph:ceph "/var/lib/ceph/mgr/ceph-$name"
systemctl start "ceph-mgr@$name"
# The manager answers safe-to-destroy: wait until it is available, asking through one librados
# client (a ceph CLI call every 2 s was seconds of the one vCPU apiece, see cephCommands).
# (Health reads HEALTH_ERR MGR_MODULE_ERROR: the always-on modules are missing on purpose, see mgr_module_path.)
exec python3 -c '
import json, sys, time, rados
c = rados.Rados(conffile="/etc/ceph/ceph.conf")
c.connect(timeout=60)
for i in range(120):
    ret, buf, status = c.mon_command(json.dumps({"prefix": "mgr stat", "format": "json"}), b"", timeout=30)
    if ret == 0 and json.loads(buf).get("available"):
        sys.exit(0)
    time.sleep(2)
sys.exit("the manager did not become available within 240 s")
'
`;

/**
 * Stops every Ceph daemon, wipes what a cluster left on the VM's four disks and
 * in its tmpfs. Safe to run on a VM with no cluster (a fresh lab) and repeatedly.
 */
export const teardownScript = `
systemctl stop ceph-osd.target ceph-mgr.target ceph-mon.target 'ceph-osd@*' 'ceph-mgr@*' 'ceph-mon@*' 2>/dev/null
rm -f /etc/systemd/system/multi-user.target.wants/ceph-volume@* /run/systemd/system/ceph-osd.target.wants/ceph-osd@*
systemctl daemon-reload; systemctl reset-failed 2>/dev/null
for d in /var/lib/ceph/osd/*; do mountpoint -q "$d" && umount "$d"; done
rm -rf /var/lib/ceph/osd/* /var/lib/ceph/mon/* /var/lib/ceph/mgr/* /var/lib/ceph/mgr-modules /var/lib/ceph/bootstrap-osd/*.keyring /etc/ceph/ceph.conf /etc/ceph/ceph.client.admin.keyring
# ceph-volume's VGs on the lab disks: the start of each LV holds the bluestore label; zero it, then drop VG and PV.
for vg in $(vgs --noheadings -o vg_name 2>/dev/null); do
    case "$vg" in ceph-*) ;; *) continue ;; esac
    for lv in $(lvs --noheadings -o lv_path "$vg"); do dd if=/dev/zero of="$lv" bs=1M count=10 conv=fsync status=none; done
    vgremove -q -f "$vg"
done
for d in ${cephDisks.join(" ")}; do pvremove -q -ff -y "$d" >/dev/null 2>&1; wipefs -q -a "$d"; dd if=/dev/zero of="$d" bs=1M count=10 conv=fsync status=none; done
udevadm settle
true
`;

export async function teardownCephCluster(sh: LabShell, vm: string): Promise<void> {
    await sh.sh(vm, teardownScript, 600_000);
}

/** From nothing (after teardown) to one monitor and one manager. */
export async function bootstrapCephCluster(sh: LabShell, vm: string): Promise<CephLabCluster> {
    const v = sh.vm(vm);
    const lan = sh.lab.networks.lan?.cidr ?? "198.51.100.0/24";
    const storage = sh.lab.networks.storage?.cidr ?? "198.18.1.0/24";
    const monAddr = v.addresses.lan;
    const fsid = (await sh.sh(vm, "uuidgen")).trim();
    const conf = cephConf(fsid, vm, monAddr, lan, storage);
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const t0 = Date.now();
    await sh.sh(vm, `sh -c ${q(bootstrapScript(conf))} ceph-bootstrap ${q(monAddr)} ${q(fsid)}`, 600_000);
    return { vm, fsid, bootstrapSeconds: (Date.now() - t0) / 1000 };
}

/** What `pg stat -f json` prints (Ceph 16: the counts under pg_summary). */
interface PgStat {
    num_pgs?: number;
    pg_summary?: { num_pg_by_state?: { name: string; num: number }[]; num_pgs?: number };
}

/** Waits until every PG is active+clean (after a pool is made, or data moved); returns the seconds it took. */
export async function waitActiveClean(sh: LabShell, vm: string, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    let last = "";
    // Each poll is a Python start on ceph1's one emulated vCPU (about a second of CPU there): every 3 s
    // at first, then less often, so that the polling does not slow what it waits for.
    let pollMs = 3000;
    while (Date.now() - t0 < timeoutMs) {
        const stat = await cephJson<PgStat>(sh, vm, { prefix: "pg stat" }).catch((e: Error) => {
            last = e.message;
            return undefined;
        });
        if (stat) {
            const byState = stat.pg_summary?.num_pg_by_state ?? [];
            const total = stat.pg_summary?.num_pgs ?? stat.num_pgs ?? 0;
            const clean = byState.find((s) => s.name === "active+clean")?.num ?? 0;
            last = JSON.stringify(byState);
            if (total > 0 && clean === total) return (Date.now() - t0) / 1000;
        }
        await new Promise((r) => setTimeout(r, pollMs));
        pollMs = Math.min(pollMs * 1.5, 15_000);
    }
    throw new Error(`PGs on ${vm} did not become active+clean within ${timeoutMs / 1000}s: ${last}`);
}

// One command for the cluster's monitor (or manager), in the JSON form the ceph CLI sends: the
// provider's own type (its client, provider/resources/cephOsd/client.ts, sends the same), e.g.
// `{ prefix: "osd out", ids: ["osd.3"] }`, but `{ prefix: "pg ls-by-osd", osd: 3 }`: an OSD-name
// argument travels as its number there. A mistake is refused by the daemon ("bad or missing field").

/**
 * Runs the commands in order through the provider's own client (one librados connection for the batch,
 * stopping at the first that fails: provider/resources/cephOsd/client.ts), not a ceph CLI per command:
 * the CLI costs ceph1 seconds of its one emulated vCPU per call (measured on an idle ceph1: `ceph
 * --version` 2.3 s, `ceph osd stat` 2.9 s, the client 1.2 s), and the Ceph files lead the lab's CPU.
 * Returns what the commands printed, one document a line (a command that prints nothing adds no line).
 */
export async function cephCommands(sh: LabShell, vm: string, commands: CephCommand[], timeoutMs = 300_000): Promise<string[]> {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const out = await sh.sh(vm, `echo ${q(clientInput(commands))} | ${clientArgv("ceph").map(q).join(" ")}`, timeoutMs);
    return out.split("\n").filter((l) => l.trim() !== "");
}

/** One command whose output is JSON (format json is added), parsed. */
export async function cephJson<T>(sh: LabShell, vm: string, command: CephCommand): Promise<T> {
    const [out] = await cephCommands(sh, vm, [{ ...command, format: "json" }]);
    return JSON.parse(out) as T;
}
