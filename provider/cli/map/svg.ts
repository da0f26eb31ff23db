// The map as SVG: nested rectangles at the positions ELK gave, their text, and the
// links on top. Every node is a <g class="node" data-id=... data-urns=...> with a
// <title> (the browser's tooltip, also in a plain .svg file); the HTML page adds the
// details panel and the attention list around it.
import { Health, LinkKind, MapNode, SiteMap } from "./model";
import { Layout } from "./layout";
import { badgeWidth, esc, fontFamily, metrics } from "./text";

export const healthColour: Record<Health, string> = {
    ok: "#2e7d32",
    warn: "#e08600",
    bad: "#c62828",
    idle: "#546e7a",
    unknown: "#9e9e9e",
};

const fillOf: Record<MapNode["kind"], string> = {
    switches: "#fafafa", switch: "#263238", box: "#eceff1", guest: "#e3f2fd", host: "#f5f5f5", consul: "#f3e5f5",
    pxe: "#ffffff", array: "#ffffff", vg: "#ffffff", export: "#ffffff", osd: "#ffffff", bridge: "#fffde7",
    container: "#ffffff", keys: "#ffffff", other: "#ffffff",
};

/** The colour of a network's switch and of the bridges on it. */
export function networkColour(network: string | undefined): string {
    const known: Record<string, string> = { lan: "#1e88e5", storage: "#ef6c00", wan: "#8e24aa", ipmi: "#607d8b" };
    if (!network) return "#9e9e9e";
    if (known[network]) return known[network];
    const others = ["#00897b", "#c0ca33", "#6d4c41", "#d81b60", "#3949ab"];
    return others[[...network].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % others.length];
}

const linkStyle: Record<LinkKind, string> = {
    tunnel: "stroke:#7b1fa2;stroke-width:2;stroke-dasharray:7 4",
    nbd: "stroke:#00838f;stroke-width:1.6;stroke-dasharray:5 3",
    disk: "stroke:#8d6e63;stroke-width:1.4",
    lv: "stroke:#8d6e63;stroke-width:1.2",
    nic: "stroke:#64b5f6;stroke-width:1",
};

/** The text of a node's tooltip: its title, lines and problems. */
function tooltip(n: MapNode, problems: string[]): string {
    return [n.state ? `${n.title} (${n.state})` : n.title, ...n.lines, ...problems.map((p) => `! ${p}`)].join("\n");
}

/** A node and (unless `alone`) everything inside it, parents first so children draw on top. */
function nodeSvg(n: MapNode, layout: Layout, problems: Map<string, string[]>, dy: number, alone = false): string {
    const b = layout.boxes.get(n.id);
    if (!b) return "";
    const x = b.x;
    const y = b.y + dy;
    const own = problems.get(n.id) ?? [];
    const dark = n.kind === "switch";
    const compound = n.children.length > 0 || n.kind === "box" || n.kind === "guest" || n.kind === "host" || n.kind === "consul" || n.kind === "switches";
    const neutral = n.kind === "box" || n.kind === "consul" || n.kind === "switches" || n.kind === "host";
    const stroke = n.kind === "switch" ? networkColour(n.network) : neutral ? (n.health === "bad" ? healthColour.bad : "#78909c") : healthColour[n.health];
    const classes = ["node", `k-${n.kind}`, `h-${n.health}`, ...(own.length ? ["attn"] : [])].join(" ");
    const urns = n.resources.map((r) => r.urn).join(" ");
    const parts: string[] = [];
    parts.push(`<g class="${classes}" data-id="${n.id}"${urns ? ` data-urns="${esc(urns)}"` : ""} tabindex="0">`);
    parts.push(`<title>${esc(tooltip(n, own))}</title>`);
    const dash = n.kind === "host" ? ` stroke-dasharray="4 3"` : "";
    const width = own.length ? 3 : compound ? 1.4 : 1.6;
    parts.push(`<rect x="${x}" y="${y}" width="${b.width}" height="${b.height}" rx="${compound ? 6 : 4}" fill="${n.kind === "switch" ? networkColour(n.network) : fillOf[n.kind]}" stroke="${stroke}" stroke-width="${width}"${dash}/>`);
    // A switch and the bridges on it share a colour: a stripe down the left side.
    if (n.kind === "bridge") parts.push(`<rect x="${x}" y="${y}" width="5" height="${b.height}" rx="2" fill="${networkColour(n.network)}"/>`);
    const tx = x + metrics.pad;
    let ty = y + metrics.pad + metrics.titleSize;
    parts.push(`<text class="title" x="${tx}" y="${ty}" font-size="${metrics.titleSize}" font-weight="bold" fill="${dark ? "#ffffff" : "#212121"}">${esc(n.title)}</text>`);
    if (n.state) {
        const w = badgeWidth(n.state);
        const bx = x + b.width - metrics.pad - w;
        parts.push(`<rect class="badge" x="${bx}" y="${ty - metrics.titleSize + 1}" width="${w}" height="${metrics.titleSize + 2}" rx="7" fill="${healthColour[n.health]}"/>`);
        parts.push(`<text class="badge" x="${bx + w / 2}" y="${ty - 1}" font-size="${metrics.badgeSize}" text-anchor="middle" fill="#ffffff">${esc(n.state)}</text>`);
    }
    if (own.length) {
        parts.push(`<circle cx="${x}" cy="${y}" r="8" fill="${n.health === "warn" ? healthColour.warn : healthColour.bad}"/><text x="${x}" y="${y + 4}" font-size="11" font-weight="bold" text-anchor="middle" fill="#ffffff">!</text>`);
    }
    for (const line of n.lines) {
        ty += metrics.lineHeight;
        parts.push(`<text class="line" x="${tx}" y="${ty}" font-size="${metrics.lineSize}" fill="${dark ? "#eceff1" : "#455a64"}">${esc(line)}</text>`);
    }
    parts.push("</g>");
    return alone ? parts.join("") : parts.join("") + n.children.map((c) => nodeSvg(c, layout, problems, dy)).join("\n");
}

function linksSvg(layout: Layout, dy: number, curves: boolean): string {
    return layout.links
        .filter((l) => !!l.curve === curves)
        .map(({ link, points, curve }) => {
            const xy = (p: { x: number; y: number }) => `${Math.round(p.x * 10) / 10} ${Math.round((p.y + dy) * 10) / 10}`;
            const d = curve ? `M${xy(points[0])} C${points.slice(1).map(xy).join(" ")}` : points.map((p, i) => `${i === 0 ? "M" : "L"}${xy(p)}`).join(" ");
            const marker = link.kind === "nbd" ? ` marker-end="url(#arrow)"` : "";
            // Links between boxes cross other boxes: drawn a little transparent, so what they cross stays readable.
            const style = curve ? `${linkStyle[link.kind]};opacity:.7` : linkStyle[link.kind];
            return `<path class="link l-${link.kind}" data-from="${link.from}" data-to="${link.to}" d="${d}" fill="none" style="${style}"${marker}><title>${esc(`${link.kind}${link.label ? `: ${link.label}` : ""}`)}</title></path>`;
        })
        .join("\n");
}

export interface SvgOptions {
    /** Lines drawn above the map (the standalone SVG's heading and attention list). */
    heading?: { text: string; colour?: string; bold?: boolean }[];
}

/** The map as one <svg> element. */
export function renderSvg(site: SiteMap, layout: Layout, options: SvgOptions = {}): string {
    const problems = new Map<string, string[]>();
    for (const a of site.attention) problems.set(a.nodeId, [...(problems.get(a.nodeId) ?? []), a.text]);
    const heading = options.heading ?? [];
    const dy = heading.length ? heading.length * 18 + 16 : 0;
    const width = Math.max(layout.width, ...heading.map((h) => h.text.length * 13 * metrics.advance + 24));
    const height = layout.height + dy;
    const head = heading
        .map((h, i) => `<text x="12" y="${22 + i * 18}" font-size="13"${h.bold ? ` font-weight="bold"` : ""} fill="${h.colour ?? "#212121"}">${esc(h.text)}</text>`)
        .join("\n");
    return [
        `<svg xmlns="http://www.w3.org/2000/svg" class="site-map" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="${esc(fontFamily)}">`,
        `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#00838f"/></marker></defs>`,
        `<rect x="0" y="0" width="${Math.ceil(width)}" height="${Math.ceil(height)}" fill="#ffffff"/>`,
        head,
        // Boxes, then the links between boxes (over the boxes' backgrounds, under what is in
        // them, so a link never hides a label), then what is in the boxes, then the links inside.
        `<g class="nodes">`,
        ...site.roots.map((n) => nodeSvg(n, layout, problems, dy, true)),
        `</g>`,
        `<g class="links between" pointer-events="none">`,
        linksSvg(layout, dy, true),
        `</g>`,
        `<g class="nodes inside">`,
        ...site.roots.flatMap((n) => n.children.map((c) => nodeSvg(c, layout, problems, dy))),
        `</g>`,
        `<g class="links" pointer-events="none">`,
        linksSvg(layout, dy, false),
        `</g>`,
        `</svg>`,
    ].join("\n");
}
