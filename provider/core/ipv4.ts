// IPv4 addresses and networks: the one place that knows what a dotted quad and
// a prefix length are, for validators (core/validate.ts) and for renderers that
// need a netmask or a subnet test (dnsmasq's dhcp-range). Pure: no I/O.

/** Four decimal octets, each 0-255, without leading zeros (which some tools read as octal). */
export function isIpv4Address(s: string): boolean {
    const parts = s.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** An address with a prefix length (`198.51.100.0/24`); the address part may have host bits set. */
export interface Ipv4Cidr {
    network: string;
    prefixLength: number;
}

/** `ADDRESS/PREFIX` with a prefix of 0-32 written without leading zeros, or undefined. */
export function parseCidr(s: string): Ipv4Cidr | undefined {
    const m = /^([0-9.]+)\/(0|[1-9][0-9]?)$/.exec(s);
    if (!m || !isIpv4Address(m[1]) || Number(m[2]) > 32) return undefined;
    return { network: m[1], prefixLength: Number(m[2]) };
}

export function ipv4ToNumber(s: string): number {
    return s.split(".").reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
    return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

function maskOf(prefixLength: number): number {
    return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** The dotted netmask of a prefix length (24 → 255.255.255.0). */
export function netmaskOf(prefixLength: number): string {
    return numberToIpv4(maskOf(prefixLength));
}

/** The network address of `cidr` (its host bits cleared). */
export function networkOf(cidr: Ipv4Cidr): string {
    return numberToIpv4((ipv4ToNumber(cidr.network) & maskOf(cidr.prefixLength)) >>> 0);
}

export function inSubnet(ip: string, cidr: Ipv4Cidr): boolean {
    const mask = maskOf(cidr.prefixLength);
    return ((ipv4ToNumber(ip) & mask) >>> 0) === ((ipv4ToNumber(cidr.network) & mask) >>> 0);
}
