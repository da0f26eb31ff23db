// PxeServer, part render: every text the server puts on its box (dnsmasq.conf,
// iPXE scripts, the descriptor, the services, the apkovls) and their digests. No I/O.
import { createHash } from "crypto";
import { netmaskOf, parseCidr } from "../../core/ipv4";
import { distributionOf, renderService, serviceFilePath } from "../../host";
import type { OsFamily, ServiceSpec } from "../../host";
import { buildApkovl } from "../../pxe/apkovl";
import { managedMarker, PxeDescriptor, PxeLayout, pxeLayout } from "../../pxe/shared";
import { PxeProfile, PxeServerInputs } from "./spec";

// ---- what goes on the box --------------------------------------------------------------

export function baseUrlOf(inputs: Pick<PxeServerInputs, "address" | "httpPort">): string {
    return `http://${inputs.address}${inputs.httpPort === 80 ? "" : `:${inputs.httpPort}`}`;
}

/** Where iPXE's bootloaders are installed by the `ipxe` package. */
export function ipxeDir(family: OsFamily): string {
    return distributionOf(family) === "alpine" ? "/usr/share/ipxe" : "/usr/lib/ipxe";
}

export function dnsmasqConf(inputs: PxeServerInputs, layout: PxeLayout): string {
    const net = parseCidr(inputs.subnet);
    if (!net) throw new Error(`subnet ${inputs.subnet} is not a CIDR`);
    const base = baseUrlOf(inputs);
    const lines = [
        `# ${managedMarker}: PXE server ${inputs.name}`,
        "# No DNS: this dnsmasq only does DHCP and TFTP.",
        "port=0",
        `interface=${inputs.interface}`,
        "bind-dynamic",
        // "static": only machines with a dhcp-host entry (a Machine) get an address
        `dhcp-range=${net.network},static,${netmaskOf(net.prefixLength)},${inputs.leaseSeconds}`,
        "dhcp-authoritative",
        ...(inputs.gateway ? [`dhcp-option=option:router,${inputs.gateway}`] : []),
        ...(inputs.dnsServers.length > 0 ? [`dhcp-option=option:dns-server,${inputs.dnsServers.join(",")}`] : []),
        ...(inputs.domain ? [`domain=${inputs.domain}`] : []),
        `dhcp-hostsdir=${layout.hostsDir}`,
        `dhcp-leasefile=${layout.leaseFile}`,
        // iPXE says so in its user class and option 175; firmware without iPXE gets iPXE first
        "dhcp-userclass=set:ipxe,iPXE",
        "dhcp-match=set:ipxe,175",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        `dhcp-boot=tag:ipxe,${base}/boot.ipxe`,
        `dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi,,${inputs.address}`,
        `dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,${inputs.address}`,
        "enable-tftp",
        `tftp-root=${layout.tftpRoot}`,
        "log-dhcp",
        `log-facility=${layout.logFile}`,
        `pid-file=${layout.pidFile}`,
        "",
    ];
    return lines.join("\n");
}

/** The first script every client runs: it chains to the per-MAC script a Machine wrote. */
export function rootBootScript(inputs: PxeServerInputs): string {
    return [
        "#!ipxe",
        `# ${managedMarker}: PXE server ${inputs.name}`,
        `echo pulumi-baremetal ${inputs.name}: \${mac} \${ip}`,
        `chain --autofree ${baseUrlOf(inputs)}/boot/\${mac:hexhyp}.ipxe || goto unknown`,
        ":unknown",
        `echo no boot entry for \${mac} on PXE server ${inputs.name}; trying the next boot device in 10 s`,
        "sleep 10",
        "exit",
        "",
    ].join("\n");
}

/** Kernel arguments of a profile, before the machine's own (`${bm_args}`, set by its per-MAC script). */
export function profileKernelArgs(name: string, p: PxeProfile, baseUrl: string): string[] {
    const dir = `${baseUrl}/profiles/${name}`;
    const alpine =
        p.kind === "alpine"
            ? [
                  "ip=dhcp",
                  "modules=loop,squashfs",
                  ...(p.repository ? [`alpine_repo=${p.repository}`] : []),
                  ...(p.modloop ? [`modloop=${dir}/modloop`] : []),
                  ...(Object.keys(p.overlay).length > 0 ? [`apkovl=${dir}/${name}.apkovl.tar.gz`] : []),
              ]
            : [];
    // initrd= names the image for EFI kernels' stub; baremetal.profile lets the box know its profile
    return ["initrd=initramfs", ...alpine, ...p.cmdline, `baremetal.profile=${name}`];
}

export function profileBootScript(name: string, p: PxeProfile, baseUrl: string): string {
    const dir = `${baseUrl}/profiles/${name}`;
    return [
        "#!ipxe",
        `# ${managedMarker}: profile ${name} (${p.kind})`,
        `kernel ${dir}/vmlinuz ${profileKernelArgs(name, p, baseUrl).join(" ")} \${bm_args}`,
        `initrd ${dir}/initramfs`,
        "boot",
        "",
    ].join("\n");
}

export function descriptorOf(inputs: PxeServerInputs): PxeDescriptor {
    return {
        instance: inputs.name,
        baseUrl: baseUrlOf(inputs),
        profiles: Object.fromEntries(Object.entries(inputs.profiles).map(([n, p]) => [n, p.kind])),
    };
}

/** dnsmasq in the foreground, directly or as the child of `consul lock` in standby mode. */
export function dhcpCommand(inputs: PxeServerInputs, layout: PxeLayout): string[] {
    const dnsmasq = ["/usr/sbin/dnsmasq", "--keep-in-foreground", `--conf-file=${layout.dnsmasqConf}`];
    if (!inputs.standby) return dnsmasq;
    const s = inputs.standby;
    return [s.consulBinary, "lock", `-http-addr=http://${s.consulAddress}`, `-name=baremetal-pxe-${inputs.name}`, "-shell=false", s.lockKey, ...dnsmasq];
}

export function httpCommand(inputs: PxeServerInputs, layout: PxeLayout, family: OsFamily): string[] {
    return distributionOf(family) === "alpine"
        ? ["/bin/busybox", "httpd", "-f", "-v", "-p", `${inputs.address}:${inputs.httpPort}`, "-h", layout.httpRoot]
        : ["/usr/bin/python3", "-m", "http.server", "--bind", inputs.address, "--directory", layout.httpRoot, String(inputs.httpPort)];
}

/** The server's two daemons, supervised by the box's init system and restarted 2 s after they end. */
export function pxeServices(inputs: PxeServerInputs, family: OsFamily): { dhcp: ServiceSpec; http: ServiceSpec } {
    const layout = pxeLayout(inputs.name);
    const what = `pulumi-baremetal PXE server ${inputs.name}`;
    const restart = { when: "always", delaySeconds: 2 } as const;
    return {
        dhcp: {
            name: layout.dhcpService,
            description: `${what}: DHCP and TFTP${inputs.standby ? " (while holding the Consul lock)" : ""}`,
            command: dhcpCommand(inputs, layout),
            // dnsmasq will not start without its lease file's directory and TFTP root. On a
            // diskless box both are gone after a reboot (only /etc is kept): DHCP must come back
            // by itself; the boot files come back with the next update (found by a power cycle
            // of the lab's OpenRC box, where dnsmasq then restarted for ever).
            preStart: [{ argv: ["mkdir", "-p", layout.leaseFile.replace(/\/[^/]+$/, ""), layout.tftpRoot] }],
            // The ACL token for `consul lock`, when there is one.
            ...(inputs.standby?.token ? { environmentFile: { path: layout.consulEnv, optional: false } } : {}),
            reloadSignal: "HUP",
            restart,
        },
        http: { name: layout.httpService, description: `${what}: HTTP`, command: httpCommand(inputs, layout, family), restart },
    };
}

export function serviceFile(family: OsFamily, service: string): string {
    return serviceFilePath({ name: service }, family);
}

/** Every generated text file with its content: what the plan writes and what drift is measured against. */
export function generatedFiles(inputs: PxeServerInputs, family: OsFamily): Map<string, string> {
    const files = configFiles(inputs);
    for (const spec of Object.values(pxeServices(inputs, family))) files.set(serviceFilePath(spec, family), renderService(spec, family));
    return files;
}

/** The generated files other than the services' definitions. */
export function configFiles(inputs: PxeServerInputs): Map<string, string> {
    const layout = pxeLayout(inputs.name);
    const base = baseUrlOf(inputs);
    const files = new Map<string, string>();
    files.set(layout.dnsmasqConf, dnsmasqConf(inputs, layout));
    files.set(layout.descriptor, JSON.stringify(descriptorOf(inputs), null, 2) + "\n");
    files.set(`${layout.httpRoot}/boot.ipxe`, rootBootScript(inputs));
    files.set(`${layout.tftpRoot}/boot.ipxe`, rootBootScript(inputs));
    for (const [n, p] of Object.entries(inputs.profiles)) files.set(`${layout.httpRoot}/profiles/${n}/boot.ipxe`, profileBootScript(n, p, base));
    return files;
}

/** Each profile's apkovl, as bytes. */
export function overlays(inputs: PxeServerInputs): Map<string, Buffer> {
    const layout = pxeLayout(inputs.name);
    const out = new Map<string, Buffer>();
    for (const [n, p] of Object.entries(inputs.profiles)) {
        if (Object.keys(p.overlay).length > 0) out.set(`${layout.httpRoot}/profiles/${n}/${n}.apkovl.tar.gz`, buildApkovl(p.overlay));
    }
    return out;
}

export function sha256(content: string | Buffer): string {
    return createHash("sha256").update(content).digest("hex");
}

/** What `files` should read when the box holds exactly what these inputs generate. */
export function expectedDigests(inputs: PxeServerInputs, family: OsFamily): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [p, c] of generatedFiles(inputs, family)) out[p] = sha256(c);
    for (const [p, c] of overlays(inputs)) out[p] = sha256(c);
    return out;
}
