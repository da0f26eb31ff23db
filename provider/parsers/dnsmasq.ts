// Parsers of dnsmasq's files and log. Fixtures in test/unit/fixtures/dnsmasq/ are
// captured from real runs in the lab.

/** One static lease: a line of a --dhcp-hostsdir file (dhcp-host syntax without "dhcp-host="). */
export interface DhcpHost {
    mac: string;
    ip?: string;
    hostname?: string;
}

/**
 * Parses a dhcp-hostsdir file: `MAC[,MAC...][,set:tag][,IP][,NAME][,LEASETIME]`,
 * `#` comments. Only the first MAC of a line is kept (we write one per line).
 */
export function parseDhcpHosts(text: string): DhcpHost[] {
    const out: DhcpHost[] = [];
    for (const raw of text.split("\n")) {
        const line = raw.replace(/#.*/, "").trim();
        if (line === "") continue;
        const fields = line.split(",").map((f) => f.trim());
        const mac = fields.find((f) => /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(f));
        if (!mac) continue;
        const host: DhcpHost = { mac: mac.toLowerCase().replace(/-/g, ":") };
        for (const f of fields) {
            if (f === mac || /^(set|tag):/.test(f) || /^id:/.test(f)) continue;
            if (/^[0-9]+(\.[0-9]+){3}$/.test(f)) host.ip = f;
            else if (/^([0-9]+[smhdw]?|infinite)$/.test(f)) continue;
            else if (/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(f) && !/^([0-9a-fA-F]{2}[:-]){5}/.test(f)) host.hostname ??= f;
        }
        out.push(host);
    }
    return out;
}

/** One line of dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENTID`. */
export interface DhcpLease {
    /** Unix time the lease ends (0: infinite). */
    expires: number;
    mac: string;
    ip: string;
    /** "*" in the file when the client sent none. */
    hostname?: string;
}

export function parseLeases(text: string): DhcpLease[] {
    const out: DhcpLease[] = [];
    for (const line of text.split("\n")) {
        const f = line.trim().split(/\s+/);
        if (f.length < 4 || !/^[0-9]+$/.test(f[0]) || !/^[0-9.]+$/.test(f[2])) continue; // IPv6 "duid" lines and junk
        const lease: DhcpLease = { expires: Number(f[0]), mac: f[1].toLowerCase(), ip: f[2] };
        if (f[3] !== "*") lease.hostname = f[3];
        out.push(lease);
    }
    return out;
}

/** A DHCP exchange the log recorded (with log-dhcp). */
export interface DhcpLogEvent {
    kind: "DHCPDISCOVER" | "DHCPOFFER" | "DHCPREQUEST" | "DHCPACK" | "DHCPNAK";
    interface: string;
    ip?: string;
    mac: string;
    hostname?: string;
}

/**
 * Picks DHCP events out of dnsmasq's log (log-facility file):
 * `Nov 25 10:00:01 dnsmasq-dhcp[123]: 456 DHCPACK(eth0) 198.51.100.20 52:54:00:b0:00:14 pxeclient1`.
 */
export function parseDhcpLog(text: string): DhcpLogEvent[] {
    const out: DhcpLogEvent[] = [];
    const re = /(DHCPDISCOVER|DHCPOFFER|DHCPREQUEST|DHCPACK|DHCPNAK)\(([^)]+)\)\s+(?:([0-9.]+)\s+)?((?:[0-9a-f]{2}:){5}[0-9a-f]{2})(?:\s+(\S+))?/i;
    for (const line of text.split("\n")) {
        const m = re.exec(line);
        if (!m) continue;
        const e: DhcpLogEvent = { kind: m[1].toUpperCase() as DhcpLogEvent["kind"], interface: m[2], mac: m[4].toLowerCase() };
        if (m[3]) e.ip = m[3];
        if (m[5] && !/^(no|unknown|ignored)$/i.test(m[5])) e.hostname = m[5];
        out.push(e);
    }
    return out;
}

/** Files sent by dnsmasq's TFTP server: `sent /srv/.../boot.ipxe to 198.51.100.20`. */
export function parseTftpSent(text: string): { file: string; to: string }[] {
    return [...text.matchAll(/dnsmasq-tftp\[[0-9]+\]: (?:[0-9]+ )?sent (\S+) to ([0-9.]+)/g)].map((m) => ({ file: m[1], to: m[2] }));
}
