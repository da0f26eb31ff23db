// discover, part survey: what one box holds, read through a read-only host.
// One constant script lists everything at once (NICs, disks, md arrays, LVM,
// nbd-server configs, the qemu/nbd-server/dnsmasq processes with their cgroups,
// containers, OVS bridges, dnsmasq configs, Ceph OSDs); then each object found
// is read the way its kind reads it (the md read of RaidArray, the container read
// of LxcContainer, the guest queries of KvmGuest through QMP).
import type { OsFacts, Remote } from "../../host";
import { DhcpHost, parseDhcpHosts } from "../../parsers/dnsmasq";
import { CephVolumeLv, parseCephVolumeList } from "../../parsers/ceph";
import { GuestLive, guestQueries, parseGuestReplies } from "../../parsers/qmp";
import { lvFields, LvReport, parseLvs, parsePvs, parseVgs, PvReport, pvFields, reportOptions, VgReport, vgFields } from "../../parsers/lvm";
import { containerReadScript, LiveContainer, parseRead as parseContainerRead } from "../../resources/lxcContainer";
import { LiveArray, readLive as readArray } from "../../resources/raidArray";
import { NbdConfig, parseAuthfile, parseNbdConfig } from "../../parsers/nbd";
import { parseSections } from "../../parsers/sections";
import { qmpCall } from "../../qmp/client";

const sectionNames = ["hostname", "links", "addrs", "byid", "blocks", "mdstat", "vgs", "pvs", "lvs", "nbd", "procs", "lxc", "ovs", "dnsmasq", "ceph", "end"] as const;

/** The one listing command (constant; read-only by construction: see provider/host/readOnly.ts). */
/** How long each ovs-vsctl call of the survey waits for ovsdb-server (a loaded box answers in seconds). */
const ovsTimeoutSeconds = 30;

export const surveyScript = [
    "echo ==hostname==; hostname",
    "echo ==links==; ip -o -d link show",
    "echo ==addrs==; ip -o -4 addr show",
    'echo ==byid==; for f in /dev/disk/by-id/*; do [ -e "$f" ] && echo "$f $(readlink -f "$f")"; done',
    "echo ==blocks==; lsblk -b -d -n -o NAME,SIZE,TYPE 2>/dev/null",
    "echo ==mdstat==; cat /proc/mdstat 2>/dev/null",
    `echo ==vgs==; vgs ${reportOptions.join(" ")} -o ${vgFields} 2>/dev/null`,
    `echo ==pvs==; pvs ${reportOptions.join(" ")} -o ${pvFields} 2>/dev/null`,
    `echo ==lvs==; lvs ${reportOptions.join(" ")} -o ${lvFields} 2>/dev/null`,
    'echo ==nbd==; for f in /etc/nbd-server/config /etc/nbd-server/conf.d/* /etc/nbd-server/baremetal/*.conf; do [ -f "$f" ] && { echo "--- file $f"; cat "$f"; }; done',
    "echo ==procs==",
    'for p in $(pgrep -f "qemu-system|nbd-server|dnsmasq|openvpn"); do',
    '  [ -r "/proc/$p/cmdline" ] || continue',
    '  echo "--- proc $p"; tr "\\000" "\\n" <"/proc/$p/cmdline" 2>/dev/null',
    '  echo "--- cgroup"; cat "/proc/$p/cgroup" 2>/dev/null',
    "done",
    "echo ==lxc==; lxc-ls -1 2>/dev/null",
    "echo ==ovs==",
    "if command -v ovs-vsctl >/dev/null 2>&1; then",
    // A database that does not answer is said so (`--- error`), never read as "no bridges":
    // the inventory would leave a live bridge out and the program would not declare it.
    // Stderr is read again only on a quick failure (a stopped database says so at once).
    `  if brs=$(ovs-vsctl --timeout=${ovsTimeoutSeconds} list-br 2>/dev/null); then`,
    "    for b in $brs; do",
    `      if ports=$(ovs-vsctl --timeout=${ovsTimeoutSeconds} list-ports "$b" 2>/dev/null); then echo "--- bridge $b"; echo "$ports";`,
    '      else rc=$?; echo "--- error list-ports $b exit $rc"; [ $rc = 142 ] || ovs-vsctl --timeout=5 list-ports "$b" 2>&1 >/dev/null; fi',
    "    done",
    '  else rc=$?; echo "--- error list-br exit $rc"; [ $rc = 142 ] || ovs-vsctl --timeout=5 list-br 2>&1 >/dev/null; fi',
    "fi",
    // Only the settings: Debian's dnsmasq.conf is some 700 lines of comments.
    'echo ==dnsmasq==; for f in /etc/dnsmasq.conf /etc/dnsmasq.d/*; do [ -f "$f" ] && { echo "--- file $f"; grep -v -E "^[[:space:]]*(#|$)" "$f"; }; done',
    "echo ==ceph==",
    // ceph-volume takes seconds to start: only where an LV carries an OSD's tags.
    'if command -v ceph-volume >/dev/null 2>&1 && lvs --noheadings -o lv_tags 2>/dev/null | grep -q "ceph.osd_id="; then ceph-volume lvm list --format json 2>/dev/null; fi',
    "echo ==end==",
    "exit 0",
].join("\n");

export interface Nic {
    name: string;
    mac: string;
    /** IPv4 addresses with prefix length. */
    addresses: string[];
    /** The bridge (or bond) it is a port of, from `ip link`'s master. */
    master?: string;
    /** virtual: a veth, tap, bridge, OVS port, bond or VLAN (`ip -d link` says which); physical otherwise. */
    kind: "physical" | "virtual";
}

export interface Process {
    pid: number;
    argv: string[];
    /** The init-system service that runs it (`myvm.service`), from its cgroup; undefined when none. */
    service?: string;
}

export interface ConfigFile {
    path: string;
    text: string;
}

/** What the survey script printed, parsed. */
export interface Survey {
    hostname: string;
    nics: Nic[];
    /** Kernel device (`/dev/vdb`) to its by-id links. */
    byId: Map<string, string[]>;
    /** Whole disks (not partitions, md, dm, loop): kernel name and size. */
    disks: { name: string; sizeBytes: number }[];
    mdDevices: string[];
    vgs: VgReport[];
    pvs: PvReport[];
    lvs: LvReport[];
    nbdConfigs: (ConfigFile & { config: NbdConfig })[];
    processes: Process[];
    containers: string[];
    /** OVS bridge name to its ports. */
    ovsBridges: Map<string, string[]>;
    /** ovs-vsctl calls that failed or got no answer: the bridges above are then incomplete. */
    ovsErrors: OvsError[];
    dnsmasqConfigs: (ConfigFile & { hosts: DhcpHost[] })[];
    osds: CephVolumeLv[];
}

/** Everything read from one box. */
export interface BoxReport {
    /** How it was reached (its connection's host). */
    address: string;
    facts: OsFacts;
    survey: Survey;
    arrays: { device: string; live: LiveArray }[];
    containers: { name: string; live: LiveContainer }[];
    /** qemu processes with what QMP says (undefined when it has no QMP socket or none answered). */
    guests: { process: Process; qmpSocket?: string; live?: GuestLive }[];
    /** The allowed clients in each nbd-server authfile the configs name, by path. */
    nbdAuth: Map<string, string[]>;
    /** Commands sent to the box. */
    commands: number;
}

export function parseSurvey(text: string): Survey {
    const { parts } = parseSections(text, sectionNames);
    if (parts.end === undefined) throw new Error("the survey script's output ends early (no ==end== line)");
    const p = (n: (typeof sectionNames)[number]) => parts[n] ?? "";
    return {
        hostname: p("hostname").trim(),
        nics: parseNics(p("links"), p("addrs")),
        byId: parseById(p("byid")),
        disks: parseBlocks(p("blocks")),
        mdDevices: parseMdstat(p("mdstat")),
        vgs: lvmReport(p("vgs"), parseVgs),
        pvs: lvmReport(p("pvs"), parsePvs),
        lvs: lvmReport(p("lvs"), parseLvs),
        nbdConfigs: blocks(p("nbd"), "file").map(([path, text]) => ({ path, text, config: parseNbdConfig(text) })),
        processes: parseProcesses(p("procs")),
        containers: p("lxc").split("\n").map((l) => l.trim()).filter((l) => /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(l)),
        ovsBridges: new Map(blocks(p("ovs"), "bridge").map(([name, text]) => [name, text.split("\n").map((l) => l.trim()).filter((l) => l !== "")])),
        ovsErrors: blocks(p("ovs"), "error").map(([head, text]) => parseOvsError(head, text)),
        dnsmasqConfigs: blocks(p("dnsmasq"), "file").map(([path, text]) => ({ path, text, hosts: dhcpHostLines(text) })),
        osds: p("ceph").trim() === "" ? [] : parseCephVolumeList(p("ceph")),
    };
}

/** A failed ovs-vsctl call of the survey: which call, and what it said. */
export interface OvsError {
    /** `ovs-vsctl list-br` or `ovs-vsctl list-ports BRIDGE`. */
    call: string;
    /** Its message, or "no answer in 30 s" when its --timeout killed it. */
    message: string;
}

/** An `--- error CALL exit N` block of the ovs section. */
function parseOvsError(head: string, text: string): OvsError {
    const m = /^(.*) exit (\d+)$/.exec(head);
    const call = `ovs-vsctl ${m ? m[1] : head}`;
    // 142: killed by SIGALRM, which is how ovs-vsctl's own --timeout ends it.
    if (m && Number(m[2]) === 142) return { call, message: `no answer in ${ovsTimeoutSeconds} s` };
    const said = text.split("\n").map((l) => l.trim()).filter((l) => l !== "").join("; ");
    return { call, message: said === "" ? `exit status ${m ? m[2] : "unknown"}` : said };
}

function lvmReport<T>(text: string, parse: (t: string) => T[]): T[] {
    return text.trim() === "" ? [] : parse(text);
}

/** `--- WORD NAME` headed blocks inside a section: [NAME, text] pairs. */
function blocks(text: string, word: string): [string, string][] {
    const out: [string, string][] = [];
    let current: [string, string[]] | undefined;
    for (const line of text.split("\n")) {
        const m = new RegExp(`^--- ${word} (.+)$`).exec(line);
        if (m) {
            if (current) out.push([current[0], current[1].join("\n")]);
            current = [m[1], []];
        } else if (current) current[1].push(line);
    }
    if (current) out.push([current[0], current[1].join("\n")]);
    return out;
}

/** `ip -o link show` and `ip -o -4 addr show`. */
export function parseNics(links: string, addrs: string): Nic[] {
    const nics: Nic[] = [];
    for (const line of links.split("\n")) {
        const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$/.exec(line.trim());
        if (!m || m[1] === "lo") continue;
        const mac = /link\/ether ([0-9a-f:]{17})/.exec(m[3])?.[1];
        if (!mac) continue;
        const master = /\smaster (\S+)/.exec(m[3])?.[1];
        // `ip -d` names the driver of every virtual device: taps, veths, bridges, OVS's own ports ...
        const virtual = /\b(veth|bridge|openvswitch|tun|vxlan|bond|vlan|dummy|macvlan|ipvlan|gre|gretap)\b/.test(m[3]);
        const nic: Nic = { name: m[1], mac, addresses: [], kind: virtual ? "virtual" : "physical" };
        if (master) nic.master = master;
        nics.push(nic);
    }
    for (const line of addrs.split("\n")) {
        const m = /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(line.trim());
        const nic = m && nics.find((n) => n.name === m[1]);
        if (nic) nic.addresses.push(m[2]);
    }
    return nics;
}

function parseById(text: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const line of text.split("\n")) {
        const [link, kernel] = line.trim().split(/\s+/);
        if (!link?.startsWith("/dev/disk/by-id/") || !kernel) continue;
        out.set(kernel, [...(out.get(kernel) ?? []), link]);
    }
    return out;
}

function parseBlocks(text: string): { name: string; sizeBytes: number }[] {
    return text
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter(([name, size, type]) => name && type === "disk" && /^[0-9]+$/.test(size ?? "") && !/^(loop|ram|zram|sr|nbd|md|dm-)/.test(name))
        .map(([name, size]) => ({ name, sizeBytes: Number(size) }));
}

/** md devices of /proc/mdstat (`md20 : active raid1 vdc[1] vdb[0]`). */
export function parseMdstat(text: string): string[] {
    return text
        .split("\n")
        .map((l) => /^(md\d+)\s*:/.exec(l)?.[1])
        .filter((d): d is string => d !== undefined)
        .map((d) => `/dev/${d}`);
}

function parseProcesses(text: string): Process[] {
    return blocks(text, "proc").map(([pid, body]) => {
        const [cmdline, cgroup = ""] = body.split("\n--- cgroup\n");
        const proc: Process = { pid: Number(pid), argv: cmdline.split("\n").filter((a, i, all) => a !== "" || i < all.length - 1) };
        const service = serviceOfCgroup(cgroup);
        if (service) proc.service = service;
        return proc;
    });
}

/** The unit (systemd) or service (OpenRC) a process's cgroup names. */
export function serviceOfCgroup(text: string): string | undefined {
    for (const line of text.split("\n")) {
        const path = line.split(":").slice(2).join(":");
        const unit = /\/([^/]+\.service)(?:\/|$)/.exec(path)?.[1];
        if (unit) return unit;
        const openrc = /\/openrc\.([^/]+)/.exec(path)?.[1];
        if (openrc) return openrc;
    }
    return undefined;
}

/** The static hosts of a dnsmasq config file (`dhcp-host=` lines). */
function dhcpHostLines(text: string): DhcpHost[] {
    const lines = text
        .split("\n")
        .map((l) => /^\s*dhcp-host\s*=\s*(.*)$/.exec(l)?.[1])
        .filter((l): l is string => l !== undefined);
    return parseDhcpHosts(lines.join("\n"));
}

/** The program name of a process (`qemu-system-x86_64` for `/usr/bin/qemu-system-x86_64`). */
export function programOf(p: Process): string {
    return (p.argv[0] ?? "").split("/").pop() ?? "";
}

/**
 * The QMP socket of a qemu command line: `-qmp unix:PATH,server...`, or a
 * `-chardev socket,id=ID,path=PATH` that a `-mon chardev=ID,mode=control` uses.
 */
export function qmpSocketOf(argv: string[]): string | undefined {
    const after = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);
    const direct = after("-qmp").map((v) => /^unix:([^,]+)/.exec(v)?.[1]).find((x) => x !== undefined);
    if (direct) return direct;
    for (const mon of after("-mon").filter((v) => /\bmode=control\b/.test(v))) {
        const id = /\bchardev=([^,]+)/.exec(mon)?.[1];
        const dev = after("-chardev").find((c) => c.startsWith("socket,") && c.split(",").includes(`id=${id}`));
        const path = dev && /\bpath=([^,]+)/.exec(dev)?.[1];
        if (path) return path;
    }
    return undefined;
}

/** Reads one box: the survey, then each array, container and guest the way its kind does. */
export async function surveyBox(host: Remote & { sent?: number }, address: string): Promise<BoxReport> {
    const facts = await host.facts();
    const out = await host.run(["sh", "-c", surveyScript, "baremetal-discover"], { what: "list what the box holds", timeoutMs: 180_000 });
    const survey = parseSurvey(out.stdout);
    const arrays: BoxReport["arrays"] = [];
    for (const device of survey.mdDevices) {
        const live = await readArray(host, device);
        if (live) arrays.push({ device, live });
    }
    const containers: BoxReport["containers"] = [];
    for (const name of survey.containers) {
        const r = await host.run(["sh", "-c", containerReadScript, "baremetal-lxc-read", name], { okExitCodes: [0, 3], what: `read container ${name}`, timeoutMs: 60_000 });
        if (r.exitCode === 0) containers.push({ name, live: parseContainerRead(r.stdout) });
    }
    const guests: BoxReport["guests"] = [];
    for (const process of survey.processes.filter((p) => programOf(p).startsWith("qemu-system"))) {
        const qmpSocket = qmpSocketOf(process.argv);
        const replies = qmpSocket ? await qmpCall(host, qmpSocket, [...guestQueries]) : undefined;
        const guest: BoxReport["guests"][number] = { process };
        if (qmpSocket) guest.qmpSocket = qmpSocket;
        if (replies) guest.live = parseGuestReplies(JSON.stringify(replies));
        guests.push(guest);
    }
    const nbdAuth = new Map<string, string[]>();
    for (const file of new Set(survey.nbdConfigs.flatMap((c) => Object.values(c.config).flatMap((k) => (k.authfile ? [k.authfile] : []))))) {
        nbdAuth.set(file, parseAuthfile((await host.readFile(file)) ?? ""));
    }
    return { address, facts, survey, arrays, containers, guests, nbdAuth, commands: host.sent ?? 0 };
}
