// `baremetal map`: a picture of what a stack manages, from its state, as one
// self-contained HTML page (or an SVG). Read-only: it reads the state (a file, or
// `pulumi stack export` without --show-secrets) and writes one file.
import * as fs from "fs";
import * as path from "path";
import type { Subcommand } from "../subcommand";
import { renderHtml } from "./html";
import { layoutSite } from "./layout";
import { buildSiteMap, SiteMap } from "./model";
import { exportStack, readStateFile, secretSignatureKey, StackState, StateError } from "./state";
import { renderSvg } from "./svg";

export type MapFormat = "html" | "svg";

export interface RenderedMap {
    text: string;
    site: SiteMap;
    /** Milliseconds spent building the model, laying it out and writing the text. */
    timings: { model: number; layout: number; render: number };
}

/** Renders a state as a page or an SVG. */
export async function renderMap(state: StackState, format: MapFormat = "html"): Promise<RenderedMap> {
    const t0 = performance.now();
    const site = buildSiteMap(state);
    const t1 = performance.now();
    const layout = await layoutSite(site);
    const t2 = performance.now();
    const text = format === "html" ? renderHtml(site, layout) : renderSvg(site, layout, { heading: svgHeading(site) });
    // The state reader replaced every secret; if one ever slipped through, fail rather than publish it.
    if (text.includes(secretSignatureKey)) throw new Error("internal error: a secret value of the state reached the map; nothing was written");
    return { text, site, timings: { model: t1 - t0, layout: t2 - t1, render: performance.now() - t2 } };
}

function svgHeading(site: SiteMap): { text: string; colour?: string; bold?: boolean }[] {
    const lines: { text: string; colour?: string; bold?: boolean }[] = [
        { text: `${site.project} / ${site.stack}: ${site.resourceCount} resources${site.time ? `, state of ${site.time}` : ""}`, bold: true },
    ];
    if (site.attention.length === 0) lines.push({ text: "Nothing needs attention.", colour: "#2e7d32" });
    for (const a of site.attention) lines.push({ text: `! ${a.where}: ${a.text}`, colour: a.severity === "bad" ? "#c62828" : "#e08600" });
    return lines;
}

const usage = `usage: baremetal map (--stack NAME | --state FILE) [--out FILE] [--format html|svg]

Draws what a stack manages: switches, boxes with their BMC, role and profile,
PXE servers, RAID arrays, volume groups, NBD exports and their owners, guests and
their containers, Ceph OSDs, OVS bridges and OpenVPN tunnels. What needs attention
is listed at the top. Secrets are never read: they show as [secret].

  --stack NAME     read the state with \`pulumi stack export --stack NAME\` (the
                   Pulumi CLI on PATH, with this environment's backend settings)
  --state FILE     read the output of \`pulumi stack export\` from FILE
  --out FILE       write the map to FILE (default: standard output)
  --format FMT     html (default: one self-contained page) or svg`;

interface MapOptions {
    stack?: string;
    state?: string;
    out?: string;
    format: MapFormat;
}

function parseArgs(args: string[]): MapOptions | "help" {
    const o: MapOptions = { format: "html" };
    for (let i = 0; i < args.length; i++) {
        const [flag, inline] = args[i].startsWith("--") && args[i].includes("=") ? [args[i].slice(0, args[i].indexOf("=")), args[i].slice(args[i].indexOf("=") + 1)] : [args[i], undefined];
        const value = () => {
            const v = inline ?? args[++i];
            if (v === undefined || v === "") throw new StateError(`${flag} needs a value`);
            return v;
        };
        switch (flag) {
            case "--stack": o.stack = value(); break;
            case "--state": o.state = value(); break;
            case "--out": o.out = value(); break;
            case "--format": {
                const f = value();
                if (f !== "html" && f !== "svg") throw new StateError(`--format: "${f}" is not html or svg`);
                o.format = f;
                break;
            }
            case "--help": case "-h": return "help";
            default: throw new StateError(`unknown option "${args[i]}"`);
        }
    }
    if (!o.stack === !o.state) throw new StateError("give exactly one of --stack NAME or --state FILE");
    return o;
}

async function run(args: string[]): Promise<number> {
    let options: MapOptions | "help";
    try {
        options = parseArgs(args);
    } catch (err) {
        process.stderr.write(`baremetal map: ${(err as Error).message}\n\n${usage}\n`);
        return 2;
    }
    if (options === "help") {
        process.stdout.write(`${usage}\n`);
        return 0;
    }
    return write(options);
}

async function write(options: MapOptions): Promise<number> {
    try {
        const started = performance.now();
        const state = options.state ? readStateFile(options.state) : await exportStack(options.stack!);
        const map = await renderMap(state, options.format);
        if (!options.out) {
            process.stdout.write(map.text);
            return 0;
        }
        const out = path.resolve(options.out);
        const tmp = `${out}.tmp-${process.pid}`;
        fs.writeFileSync(tmp, map.text, { mode: 0o644 });
        fs.renameSync(tmp, out);
        const attention = map.site.attention.length;
        process.stderr.write(
            `baremetal map: ${map.site.resourceCount} resources of stack ${state.stack}${attention ? `, ${attention} need attention` : ""}` +
                ` (${Math.round(performance.now() - started)} ms) -> ${out}\n`,
        );
        return 0;
    } catch (err) {
        if (err instanceof StateError) {
            process.stderr.write(`baremetal map: ${err.message}\n`);
            return 1;
        }
        throw err;
    }
}

export const command: Subcommand = {
    summary: "draw a stack's data center as a self-contained HTML page (or SVG) from its state",
    run,
};
