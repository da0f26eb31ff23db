// Parsers of LXC output: `lxc-info -n NAME` and the container's config file,
// whose managed block (written by LxcContainer) is read back for drift.
// Fixtures in test/unit/fixtures/lxc/ are captured in the lab (LXC 5.0.2).

/** A NIC of the managed block (`lxc.net.N.*`): a veth on a bridge of the box. */
export interface LxcNic {
    bridge: string;
    hwaddr?: string;
    ipv4?: string;
    gateway?: string;
}

/** A mount of the managed block (`lxc.mount.entry`). */
export interface LxcMount {
    source: string;
    target: string;
    type: string;
    options: string;
}

/** The cgroup v2 limits of the managed block. */
export interface LxcLimits {
    memoryMiB?: number;
    cpuWeight?: number;
    pids?: number;
}

export const managedBegin = "# --- pulumi-baremetal managed: begin (changes made here are overwritten) ---";
export const managedEnd = "# --- pulumi-baremetal managed: end ---";

export interface LxcInfo {
    name: string;
    /** RUNNING, STOPPED, STARTING, STOPPING, FROZEN ... */
    state: string;
    pid?: number;
    ips: string[];
    links: string[];
    memoryUse?: string;
}

/** `lxc-info -n NAME`: "Key:   value" lines; IP and Link repeat per address and NIC. */
export function parseLxcInfo(text: string): LxcInfo {
    const info: LxcInfo = { name: "", state: "UNKNOWN", ips: [], links: [] };
    for (const line of text.split("\n")) {
        const m = /^([A-Za-z][A-Za-z ]*?):\s+(.*)$/.exec(line.trimEnd());
        if (!m) continue;
        const [, key, value] = m;
        if (key === "Name") info.name = value;
        else if (key === "State") info.state = value;
        else if (key === "PID") info.pid = Number(value);
        else if (key === "IP") info.ips.push(value);
        else if (key === "Link") info.links.push(value);
        else if (key === "Memory use") info.memoryUse = value;
    }
    return info;
}

/** Every value of `key` in an LXC config ("key = value" lines), in order. */
export function configValues(config: string, key: string): string[] {
    const out: string[] = [];
    for (const line of config.split("\n")) {
        const m = /^\s*([a-z0-9_.]+)\s*=\s*(.*?)\s*$/.exec(line);
        if (m && m[1] === key) out.push(m[2]);
    }
    return out;
}

export interface ManagedConfig {
    network: LxcNic[];
    mounts: LxcMount[];
    autostart: boolean;
    limits: LxcLimits;
}

/** The managed block read back into the resource's terms; undefined when there is none. */
export function parseManagedBlock(config: string): ManagedConfig | undefined {
    const start = config.indexOf(managedBegin);
    const end = config.indexOf(managedEnd);
    if (start < 0 || end < start) return undefined;
    const block = config.slice(start, end);
    const nics = new Map<number, LxcNic>();
    const out: ManagedConfig = { network: [], mounts: [], autostart: false, limits: {} };
    for (const line of block.split("\n")) {
        const m = /^\s*([a-z0-9_.]+)\s*=\s*(.*?)\s*$/.exec(line);
        if (!m) continue;
        const [, key, value] = m;
        const net = /^lxc\.net\.(\d+)\.(link|hwaddr|ipv4\.address|ipv4\.gateway)$/.exec(key);
        if (net) {
            const i = Number(net[1]);
            const nic = nics.get(i) ?? { bridge: "" };
            if (net[2] === "link") nic.bridge = value;
            else if (net[2] === "hwaddr") nic.hwaddr = value;
            else if (net[2] === "ipv4.address") nic.ipv4 = value;
            else nic.gateway = value;
            nics.set(i, nic);
        } else if (key === "lxc.mount.entry") {
            const [source, target, type, options] = value.split(/\s+/);
            out.mounts.push({ source, target: `/${target}`, type, options });
        } else if (key === "lxc.start.auto") out.autostart = value === "1";
        else if (key === "lxc.cgroup2.memory.max") out.limits.memoryMiB = Number(value.replace(/M$/, ""));
        else if (key === "lxc.cgroup2.cpu.weight") out.limits.cpuWeight = Number(value);
        else if (key === "lxc.cgroup2.pids.max") out.limits.pids = Number(value);
    }
    out.network = [...nics.entries()].sort(([a], [b]) => a - b).map(([, n]) => n);
    return out;
}

/** The keys of `lxc.net.N.*` that the managed block writes (others are left to whoever wrote them). */
export const managedNetKeys = ["type", "link", "flags", "name", "hwaddr", "ipv4.address", "ipv4.gateway"] as const;

/** A mount entry's first four fields (`source target type options`): how two entries are the same mount. */
export function mountKey(entry: string): string {
    return entry.trim().split(/\s+/).slice(0, 4).join(" ");
}

/**
 * What the container starts with, in the managed block's terms, from the whole
 * config: lines outside the block count too (a container someone else made has
 * only those), the block's win where both set a key. Of the mounts outside the
 * block only those in `declared` count: the others are the template's or the
 * operator's own, not the resource's to manage.
 */
export function effectiveConfig(config: string, declared: LxcMount[]): ManagedConfig {
    const start = config.indexOf(managedBegin);
    const end = config.indexOf(managedEnd);
    const inBlock = start >= 0 && end > start;
    const outside = inBlock ? config.slice(0, start) + config.slice(end + managedEnd.length) : config;
    const block = inBlock ? parseManagedBlock(config) : undefined;
    const nics = new Map<number, LxcNic & { type?: string }>();
    const out: ManagedConfig = { network: [], mounts: [], autostart: false, limits: {} };
    const wanted = new Set(declared.map((m) => mountKey(`${m.source} ${m.target.slice(1)} ${m.type} ${m.options}`)));
    for (const line of outside.split("\n")) {
        const m = /^\s*([a-z0-9_.]+)\s*=\s*(.*?)\s*$/.exec(line);
        if (!m) continue;
        const [, key, value] = m;
        const net = /^lxc\.net\.(\d+)\.(type|link|hwaddr|ipv4\.address|ipv4\.gateway)$/.exec(key);
        if (net) {
            const nic = nics.get(Number(net[1])) ?? { bridge: "" };
            if (net[2] === "type") nic.type = value;
            else if (net[2] === "link") nic.bridge = value;
            else if (net[2] === "hwaddr") nic.hwaddr = value.toLowerCase();
            else if (net[2] === "ipv4.address") nic.ipv4 = value;
            else if (value !== "auto") nic.gateway = value;
            nics.set(Number(net[1]), nic);
        } else if (key === "lxc.mount.entry" && wanted.has(mountKey(value))) {
            const [source, target, type, options] = value.split(/\s+/);
            out.mounts.push({ source, target: `/${target}`, type, options });
        } else if (key === "lxc.start.auto") out.autostart = value === "1";
        else if (key === "lxc.cgroup2.memory.max" && /^[0-9]+M$/.test(value)) out.limits.memoryMiB = Number(value.slice(0, -1));
        else if (key === "lxc.cgroup2.cpu.weight") out.limits.cpuWeight = Number(value);
        else if (key === "lxc.cgroup2.pids.max") out.limits.pids = Number(value);
    }
    // Only veth NICs are the block's kind; an `empty` or absent type is no NIC.
    out.network = [...nics.entries()]
        .sort(([a], [b]) => a - b)
        .filter(([, n]) => n.type === "veth")
        .map(([, { type: _type, ...n }]) => n);
    if (!block) return out;
    block.network.forEach((n, i) => (out.network[i] = n));
    return { network: out.network, mounts: [...out.mounts, ...block.mounts], autostart: block.autostart, limits: { ...out.limits, ...block.limits } };
}
