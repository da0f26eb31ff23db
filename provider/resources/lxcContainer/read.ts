// LxcContainer, part read: lxc-info and the config in one read, the state
// they give, and whether create made the container it finds.
import { Remote } from "../../host";
import { configValues, effectiveConfig, LxcInfo, parseLxcInfo, parseManagedBlock } from "../../parsers/lxc";
import { parseSections } from "../../parsers/sections";
import { configPath, createdMarker, createLock } from "./render";
import { LxcContainerInputs, LxcContainerState } from "./spec";

// lxc-info, then the config after a separator; exit 3 when there is no such container.
export const containerReadScript = ['[ -f "/var/lib/lxc/$1/config" ] || exit 3', 'lxc-info -n "$1" || exit 3', "echo ==config==", 'cat "/var/lib/lxc/$1/config"'].join("\n");

export interface LiveContainer {
    info: LxcInfo;
    config: string;
}

export function parseRead(text: string): LiveContainer {
    const { preamble: info, parts } = parseSections(text, ["config"] as const);
    return { info: parseLxcInfo(info), config: parts.config ?? "" };
}

/**
 * The container as lxc-info and its config show it. `underContainerLock` for the
 * looks create and delete act on: they wait (as long as an lxc-create may take)
 * for an lxc-create or lxc-destroy of a cut run that still runs on the box.
 */
export async function readLive(host: Remote, name: string, underContainerLock = false): Promise<LiveContainer | undefined> {
    const lock = underContainerLock ? { lock: createLock(name), timeoutMs: 31 * 60_000 } : { timeoutMs: 60_000 };
    const out = await host.run(["sh", "-c", containerReadScript, "baremetal-lxc-read", name], { okExitCodes: [0, 3], what: `read container ${name}`, ...lock });
    return out.exitCode === 0 ? parseRead(out.stdout) : undefined;
}

/** The state: declared values, with what the config and lxc-info say overlaid (drift). */
export function stateOf(c: LxcContainerInputs, live: LiveContainer): LxcContainerState {
    // The whole config, not only the managed block: an adopted container's settings may live outside it.
    const block = effectiveConfig(live.config, c.mounts);
    const state: LxcContainerState = {
        ...c,
        state: live.info.state,
        addresses: live.info.ips.filter((ip) => ip.includes(".")),
        configPath: configPath(c.name),
    };
    if (live.info.pid !== undefined) state.pid = live.info.pid;
    state.network = block.network;
    state.mounts = block.mounts;
    state.autostart = block.autostart;
    state.limits = block.limits;
    return state;
}

/**
 * Whether create made this container: its managed block, or the marker of a
 * create that was cut off before writing it, and the declared rootfs or template.
 */
export function madeByCreate(c: LxcContainerInputs, config: string): boolean {
    const marked = parseManagedBlock(config) !== undefined || config.split("\n").includes(createdMarker(c.name));
    return marked && sameSource(c, config);
}

/** Whether the config's rootfs is the one declared. */
function sameSource(c: LxcContainerInputs, config: string): boolean {
    const rootfs = configValues(config, "lxc.rootfs.path")[0] ?? "";
    return c.rootfs ? rootfs === `dir:${c.rootfs}` : rootfs === `dir:/var/lib/lxc/${c.name}/rootfs` && config.includes(`/lxc-${c.template}\n`);
}
