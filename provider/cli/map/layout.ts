// Where each node and link of the map goes, computed by ELK (elkjs: the Eclipse
// Layout Kernel's layered algorithm, compiled to JavaScript) at map time, in Node:
// the page carries fixed SVG coordinates and no layout code. ELK lays out nested
// graphs in one pass (boxes holding guests holding containers, with links that
// cross from a box into another box's guest), which is what a site is.
import ELK from "elkjs/lib/elk.bundled.js";
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api";
import { MapLink, MapNode, SiteMap } from "./model";
import { badgeWidth, metrics, textWidth } from "./text";

export interface Box {
    x: number;
    y: number;
    width: number;
    height: number;
}

export interface PlacedLink {
    link: MapLink;
    /** An orthogonal route by ELK (a link inside a box), or for `curve` a start, two control points and an end. */
    points: { x: number; y: number }[];
    /** A link between two boxes: drawn as a curve over the map (see layoutSite). */
    curve?: boolean;
}

export interface Layout {
    width: number;
    height: number;
    /** Absolute position of every node, by node id. */
    boxes: Map<string, Box>;
    links: PlacedLink[];
}

/** The height of a node's own text: its title line and its lines. */
export function headerHeight(n: MapNode): number {
    return metrics.pad + metrics.titleHeight + n.lines.length * metrics.lineHeight + metrics.pad / 2;
}

/** The width a node needs for its own text. */
export function headerWidth(n: MapNode): number {
    const title = textWidth(n.title, metrics.titleSize, true) + (n.state ? metrics.pad + badgeWidth(n.state) : 0);
    const lines = n.lines.map((l) => textWidth(l, metrics.lineSize));
    return Math.ceil(Math.max(title, ...lines, 60) + 2 * metrics.pad);
}

function elkNode(n: MapNode): ElkNode {
    const header = headerHeight(n);
    const width = headerWidth(n);
    if (n.children.length === 0) return { id: n.id, width, height: header + metrics.pad / 2 };
    return {
        id: n.id,
        children: n.children.map(elkNode),
        edges: [],
        layoutOptions: {
            ...levelOptions,
            "elk.padding": `[top=${header},left=${metrics.pad},bottom=${metrics.pad},right=${metrics.pad}]`,
            "elk.nodeSize.constraints": "MINIMUM_SIZE",
            "elk.nodeSize.minimum": `(${width}, ${header + metrics.pad})`,
        },
    };
}

/**
 * Options for the whole graph: each box laid out left to right (arrays, then the guests
 * they feed, then what runs inside), orthogonal links; the boxes themselves, separate
 * components, packed into rows (ELK lays out each level of the nesting by itself, from
 * the inside out, and packs the top level's components to the aspect ratio).
 */
const levelOptions: Record<string, string> = {
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.separateConnectedComponents": "true",
    "elk.layered.considerModelOrder.components": "MODEL_ORDER",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    "elk.edgeRouting": "ORTHOGONAL",
    "elk.spacing.componentComponent": "14",
    "elk.spacing.nodeNode": "12",
    "elk.layered.spacing.nodeNodeBetweenLayers": "28",
    "elk.spacing.edgeNode": "10",
    "elk.spacing.edgeEdge": "6",
};

const rootOptions: Record<string, string> = {
    ...levelOptions,
    "elk.aspectRatio": "1.7",
    "elk.spacing.componentComponent": "24",
    "elk.json.shapeCoords": "ROOT",
    "elk.json.edgeCoords": "ROOT",
    "elk.padding": "[top=12,left=12,bottom=12,right=12]",
};

/** Lays out the map. The ELK instance is made on first use and kept (its code takes a while to load). */
export async function layoutSite(site: SiteMap): Promise<Layout> {
    const root: ElkNode = { id: "root", layoutOptions: rootOptions, children: site.roots.map(elkNode), edges: [] };
    const byId = new Map<string, ElkNode>();
    const parent = new Map<string, ElkNode>();
    const index = (n: ElkNode) => {
        byId.set(n.id, n);
        for (const c of n.children ?? []) {
            parent.set(c.id, n);
            index(c);
        }
    };
    index(root);
    // Links between siblings go to ELK, which routes them inside their box or guest.
    // Links between boxes (tunnels, NBD exports to their owners) would chain the boxes
    // into one long row; they, and the few that cross into a guest, are drawn as curves
    // between the placed nodes.
    const between: MapLink[] = [];
    for (const l of site.links) {
        if (!byId.has(l.from) || !byId.has(l.to)) continue;
        const common = parent.get(l.from);
        if (!common || common === root || common !== parent.get(l.to)) {
            between.push(l);
            continue;
        }
        const edge: ElkExtendedEdge = { id: l.id, sources: [l.from], targets: [l.to] };
        (common.edges ??= []).push(edge);
    }
    const laid = await elk().layout(root);
    const boxes = new Map<string, Box>();
    const edges = new Map<string, ElkExtendedEdge>();
    const collect = (n: ElkNode) => {
        boxes.set(n.id, { x: n.x ?? 0, y: n.y ?? 0, width: n.width ?? 0, height: n.height ?? 0 });
        for (const e of n.edges ?? []) edges.set(e.id, e);
        (n.children ?? []).forEach(collect);
    };
    collect(laid);
    boxes.delete("root");
    const links: PlacedLink[] = [];
    for (const l of site.links) {
        const e = edges.get(l.id);
        const points = (e?.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]);
        if (points.length >= 2) links.push({ link: l, points });
    }
    for (const l of between) links.push({ link: l, points: curveBetween(boxes.get(l.from)!, boxes.get(l.to)!), curve: true });
    return { width: Math.ceil(laid.width ?? 0), height: Math.ceil(laid.height ?? 0), boxes, links };
}

/** A cubic curve from the side of `a` that faces `b` to the side of `b` that faces `a`. */
function curveBetween(a: Box, b: Box): { x: number; y: number }[] {
    const ca = { x: a.x + a.width / 2, y: a.y + a.height / 2 };
    const cb = { x: b.x + b.width / 2, y: b.y + b.height / 2 };
    const horizontal = Math.abs(cb.x - ca.x) > Math.abs(cb.y - ca.y);
    const sx = Math.sign(cb.x - ca.x) || 1;
    const sy = Math.sign(cb.y - ca.y) || 1;
    const start = horizontal ? { x: ca.x + (sx * a.width) / 2, y: ca.y } : { x: ca.x, y: ca.y + (sy * a.height) / 2 };
    const end = horizontal ? { x: cb.x - (sx * b.width) / 2, y: cb.y } : { x: cb.x, y: cb.y - (sy * b.height) / 2 };
    const reach = Math.min(160, Math.hypot(end.x - start.x, end.y - start.y) / 3);
    // A sideways link bows upwards, a vertical one leftwards: off the straight line, where
    // the text of the nodes between its ends usually is.
    const bow = Math.min(60, reach / 2);
    const c1 = horizontal ? { x: start.x + sx * reach, y: start.y - bow } : { x: start.x - bow, y: start.y + sy * reach };
    const c2 = horizontal ? { x: end.x - sx * reach, y: end.y - bow } : { x: end.x - bow, y: end.y - sy * reach };
    return [start, c1, c2, end];
}

let instance: InstanceType<typeof ELK> | undefined;
function elk(): InstanceType<typeof ELK> {
    instance ??= new ELK();
    return instance;
}
