// PxeServer, part plan: the steps that put the files in place, start or restart
// the services, and remove the instance, and which restarts a run needs. No I/O.
import { distributionOf, Plan, Secret, step } from "../../host";
import type { OsFamily, PlanResult, Step } from "../../host";
import { pxeLayout } from "../../pxe/shared";
import { configFiles, generatedFiles, ipxeDir, overlays, pxeServices, serviceFile } from "./render";
import { FileSource, PxeServerInputs } from "./spec";

// Constant scripts: values arrive as "$1"..., never spliced into the text.

/** Creates missing directories; reports unchanged when all exist. */
const mkdirsScript = 'c=; for d; do [ -d "$d" ] || { mkdir -p "$d"; c=1; }; done; [ -n "$c" ] || echo =baremetal-unchanged=';

/**
 * Puts a profile file in place from a path on the box or a URL; $1 target, $2 path|url,
 * $3 source, $4 sha256 or "". A download is skipped when the recorded source matches.
 */
export const fetchScript = [
    "set -eu",
    't=$1 how=$2 src=$3 sum=$4',
    'mkdir -p "$(dirname "$t")"',
    'if [ "$how" = path ]; then',
    '  [ -f "$src" ] || { echo "no such file on the PXE box: $src" >&2; exit 3; }',
    '  if cmp -s "$src" "$t"; then echo =baremetal-unchanged=; exit 0; fi',
    '  tmp=$(mktemp "$t.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    '  cp "$src" "$tmp"',
    "else",
    '  if [ -f "$t" ] && [ "$(cat "$t.source" 2>/dev/null)" = "$src $sum" ]; then echo =baremetal-unchanged=; exit 0; fi',
    '  tmp=$(mktemp "$t.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    '  if command -v wget >/dev/null; then wget -q -O "$tmp" "$src"; else curl -fsSL -o "$tmp" "$src"; fi',
    '  if [ -n "$sum" ]; then got=$(sha256sum "$tmp" | cut -d" " -f1); [ "$got" = "$sum" ] || { echo "sha256 of $src is $got, expected $sum" >&2; exit 4; }; fi',
    '  printf "%s %s\\n" "$src" "$sum" >"$t.source"',
    "fi",
    'chmod 0644 "$tmp"; mv -f "$tmp" "$t"; trap - EXIT',
].join("\n");

/** Writes binary content that arrives base64-encoded on stdin; $1 target. */
export const writeBase64Script = [
    "set -eu",
    'mkdir -p "$(dirname "$1")"',
    'tmp=$(mktemp "$1.XXXXXX"); trap \'rm -f "$tmp"\' EXIT',
    'base64 -d >"$tmp"',
    'if cmp -s "$tmp" "$1"; then echo =baremetal-unchanged=; exit 0; fi',
    'chmod 0644 "$tmp"; mv -f "$tmp" "$1"; trap - EXIT',
].join("\n");

function fetchStep(target: string, src: FileSource, what: string) {
    const [how, from, sum] = "path" in src ? ["path", src.path, ""] : ["url", src.url, src.sha256 ?? ""];
    return step.run(["sh", "-c", fetchScript, "baremetal-fetch", target, how, from, sum], { what: `${what} from ${from}`, timeoutMs: 20 * 60_000 });
}

/**
 * The steps apply asks about: whether what DHCP (dnsmasq's config, its service,
 * the Consul token) or HTTP (its service) starts with changed in this run.
 */
export type PxeFileStep = "dhcp-config" | "dhcp-service" | "consul-token" | "http-service";

/** The steps that put every file in place (nothing is started or restarted here). */
export function planFiles(inputs: PxeServerInputs, family: OsFamily, removedProfiles: string[] = []): Plan<PxeFileStep> {
    const layout = pxeLayout(inputs.name);
    const plan: Step<PxeFileStep>[] = [
        step.ensurePackages(...(distributionOf(family) === "alpine" ? ["dnsmasq"] : ["dnsmasq", "python3"]), ...(inputs.ipxeBootloaders ? ["ipxe"] : [])),
        step.run(["sh", "-c", mkdirsScript, "baremetal-mkdirs", layout.hostsDir, layout.bootDir, layout.tftpRoot, layout.leaseFile.replace(/\/[^/]+$/, "")], { what: `create the directories of PXE server ${inputs.name}` }),
    ];
    for (const [n, p] of Object.entries(inputs.profiles)) {
        const dir = `${layout.httpRoot}/profiles/${n}`;
        plan.push(fetchStep(`${dir}/vmlinuz`, p.kernel, `put the kernel of profile ${n}`));
        plan.push(fetchStep(`${dir}/initramfs`, p.initramfs, `put the initramfs of profile ${n}`));
        if (p.modloop) plan.push(fetchStep(`${dir}/modloop`, p.modloop, `put the modloop of profile ${n}`));
    }
    for (const [path, bytes] of overlays(inputs)) {
        plan.push(step.run(["sh", "-c", writeBase64Script, "baremetal-write-b64", path], { stdin: bytes.toString("base64"), what: `write apkovl ${path.replace(/^.*\//, "")} (${bytes.length} bytes)` }));
    }
    for (const n of removedProfiles) plan.push(step.run(["rm", "-rf", "--", `${layout.httpRoot}/profiles/${n}`], { what: `remove profile ${n}` }));
    if (inputs.ipxeBootloaders) {
        for (const f of ["undionly.kpxe", "ipxe.efi"]) plan.push(fetchStep(`${layout.tftpRoot}/${f}`, { path: `${ipxeDir(family)}/${f}` }, `put iPXE's ${f} in the TFTP root`));
    }
    for (const [path, content] of configFiles(inputs)) {
        plan.push(step.writeFile(path, content, path === layout.dnsmasqConf ? { tag: "dhcp-config" } : {}));
    }
    const services = pxeServices(inputs, family);
    plan.push(step.installService(services.dhcp, { tag: "dhcp-service" }), step.installService(services.http, { tag: "http-service" }));
    if (inputs.standby?.token) plan.push(step.writeFile(layout.consulEnv, new Secret(`CONSUL_HTTP_TOKEN=${inputs.standby.token}\n`), { mode: "0600", tag: "consul-token" }));
    else plan.push(step.removeFile(layout.consulEnv, { tag: "consul-token" }));
    plan.push(step.persist());
    return plan;
}

/** Enables and starts both services; restarts those whose files changed. */
export function planServices(inputs: PxeServerInputs, restart: { dhcp: boolean; http: boolean }): Plan {
    const layout = pxeLayout(inputs.name);
    const plan: Plan[number][] = [];
    for (const [svc, again] of [[layout.httpService, restart.http], [layout.dhcpService, restart.dhcp]] as const) {
        plan.push(step.service("enable", svc));
        plan.push(step.service(again ? "restart" : "start", svc));
    }
    plan.push(step.persist());
    return plan;
}

export function planDelete(state: Pick<PxeServerInputs, "name">): Plan {
    const layout = pxeLayout(state.name);
    const plan: Plan[number][] = [];
    for (const svc of [layout.dhcpService, layout.httpService]) plan.push(step.uninstallService({ name: svc }));
    plan.push(step.run(["rm", "-rf", "--", layout.configDir, layout.dataDir, layout.leaseFile.replace(/\/[^/]+$/, ""), layout.logFile], { what: `remove the files of PXE server ${state.name}` }));
    plan.push(step.persist());
    return plan;
}

/** Which services must restart because their files changed in this run. */
export function restartsFrom(result: PlanResult<PxeFileStep>): { dhcp: boolean; http: boolean } {
    return {
        dhcp: result.stepChanged("dhcp-config", "dhcp-service", "consul-token"),
        http: result.stepChanged("http-service"),
    };
}

/**
 * Which services must restart because their files differ between the last applied
 * inputs and the new ones. An update cut after the files were written but before
 * the restart leaves the old state in place; its re-run finds the files already so
 * (restartsFrom sees nothing changed), and only this keeps the daemons from running
 * the old configuration for good.
 */
export function restartsBetween(olds: PxeServerInputs, news: PxeServerInputs, family: OsFamily): { dhcp: boolean; http: boolean } {
    const layout = pxeLayout(news.name);
    let before: Map<string, string>;
    try {
        before = generatedFiles(olds, family);
    } catch {
        // a state this version cannot render: restarting is the safe side
        return { dhcp: true, http: true };
    }
    const after = generatedFiles(news, family);
    const differs = (path: string) => before.get(path) !== after.get(path);
    return {
        dhcp: differs(layout.dnsmasqConf) || differs(serviceFile(family, layout.dhcpService)) || (olds.standby?.token ?? "") !== (news.standby?.token ?? ""),
        http: differs(serviceFile(family, layout.httpService)),
    };
}
