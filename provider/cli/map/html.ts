// The map as one self-contained HTML page: the heading, the attention list, the SVG,
// and a details panel with each node's outputs (secrets as `[secret]`: the state
// reader replaced them before anything else saw the state). Everything is inline;
// a Content-Security-Policy forbids the page to fetch anything, so it behaves the
// same from file://, a chat attachment or a web server. The only script shows the
// details of the node under the pointer (or clicked, or chosen in the attention list).
import { AttentionItem, MapNode, NodeResource, SiteMap, allNodes } from "./model";
import { Layout } from "./layout";
import { healthColour, renderSvg } from "./svg";
import { Redacted, StateValue } from "./state";
import { esc, fontFamily } from "./text";

/** Longest text shown for one value in the details (a boot script, a profile's overlay ...). */
const maxValueChars = 1500;

function valueText(v: StateValue): string {
    if (v instanceof Redacted) return "[secret]";
    const text = typeof v === "string" ? v : JSON.stringify(v, null, 1);
    return text.length > maxValueChars ? `${text.slice(0, maxValueChars)}… (${text.length - maxValueChars} more characters)` : text;
}

/** An object's fields as rows, nested objects flattened to dotted names (`connection.host`); lists stay whole. */
function rowsOf(value: Record<string, StateValue>, prefix = "", depth = 0): [string, StateValue][] {
    return Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .flatMap(([k, v]): [string, StateValue][] => {
            const isObject = v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Redacted);
            return isObject && depth < 2 && Object.keys(v).length > 0 ? rowsOf(v, `${prefix}${k}.`, depth + 1) : [[`${prefix}${k}`, v]];
        });
}

function resourceDetails(r: NodeResource): string {
    const rows = rowsOf(r.outputs)
        .map(([k, v]) => `<tr><th>${esc(k)}</th><td><pre>${esc(valueText(v))}</pre></td></tr>`)
        .join("");
    return [
        `<h3>${esc(r.kind)} <span class="name">${esc(r.name)}</span></h3>`,
        `<p class="urn">${esc(r.urn)}${r.id ? `<br>id ${esc(r.id)}` : ""}</p>`,
        `<table>${rows}</table>`,
    ].join("");
}

function nodeDetails(n: MapNode, attention: AttentionItem[]): string {
    const own = attention.filter((a) => a.nodeId === n.id);
    const problems = own.length ? `<ul class="problems">${own.map((a) => `<li class="${a.severity}">${esc(a.text)}</li>`).join("")}</ul>` : "";
    const body = n.resources.length
        ? n.resources.map(resourceDetails).join("")
        : `<p>${esc(n.lines.join(" · ") || "Not a resource of the stack: drawn to show what the resources connect to.")}</p>`;
    return `<section class="detail" data-for="${n.id}" hidden><h2>${esc(n.title)}${n.state ? ` <span class="state" style="background:${healthColour[n.health]}">${esc(n.state)}</span>` : ""}</h2>${problems}${body}</section>`;
}

function attentionList(site: SiteMap): string {
    if (site.attention.length === 0) return `<p id="attention" class="none">Nothing needs attention: no array degraded, no guest or container stopped, no OSD down or out, no tunnel failed, and a PXE server is active.</p>`;
    const items = site.attention
        .map((a) => `<li class="${a.severity}" data-node="${a.nodeId}" tabindex="0"><b>${esc(a.where)}</b>: ${esc(a.text)}</li>`)
        .join("");
    return `<section id="attention"><h2>Needs attention (${site.attention.length})</h2><ol>${items}</ol></section>`;
}

function summary(site: SiteMap): string {
    const order = ["Machine", "PxeServer", "RaidArray", "VolumeGroup", "NbdVolume", "CephOsd", "OvsBridge", "KvmGuest", "LxcContainer", "ConsulKeys"];
    const kinds = Object.keys(site.kindCounts).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
    return kinds.map((k) => `${site.kindCounts[k]} ${k}`).join(" · ");
}

const css = `
body{margin:0;font-family:${fontFamily};font-size:13px;color:#212121;background:#fafafa}
header{padding:10px 16px;background:#263238;color:#fff}
header h1{font-size:17px;margin:0 0 4px}
header p{margin:0;color:#cfd8dc;font-size:12px}
#attention{margin:10px 16px;padding:8px 12px;background:#fff;border:1px solid #e0e0e0;border-left:5px solid ${healthColour.bad};border-radius:4px}
#attention.none{border-left-color:${healthColour.ok}}
#attention h2{font-size:14px;margin:0 0 6px;color:${healthColour.bad}}
#attention ol{margin:0;padding-left:22px}
#attention li{margin:2px 0;cursor:pointer}
#attention li.bad::marker{color:${healthColour.bad}}
#attention li.warn::marker{color:${healthColour.warn}}
#attention li.warn b{color:${healthColour.warn}}
#attention li.bad b{color:${healthColour.bad}}
main{display:flex;align-items:flex-start;gap:0}
#map{flex:1;min-width:0;max-height:calc(100vh - 8px);overflow:auto;padding:0 8px 8px 16px}
#details{position:sticky;top:0;width:400px;max-height:100vh;overflow:auto;background:#fff;border-left:1px solid #e0e0e0;padding:8px 12px;box-sizing:border-box;font-size:12px}
#details h2{font-size:14px;margin:4px 0}
#details h3{font-size:12px;margin:10px 0 2px;color:#37474f}
#details .name{font-weight:normal}
#details .urn{color:#78909c;word-break:break-all;margin:0 0 4px;font-size:11px}
#details .state{color:#fff;border-radius:7px;padding:0 6px;font-size:11px;font-weight:normal}
#details table{border-collapse:collapse;width:100%;table-layout:fixed}
#details th{width:40%;text-align:left;vertical-align:top;padding:2px 6px 2px 0;color:#546e7a;font-weight:normal;overflow-wrap:anywhere}
#details td{padding:2px 0;border-top:1px solid #f0f0f0}
#details pre{margin:0;white-space:pre-wrap;word-break:break-all;font:inherit}
#details .problems li.bad{color:${healthColour.bad}}
#details .problems li.warn{color:${healthColour.warn}}
#legend{font-size:11px;color:#cfd8dc}
#legend span{display:inline-block;margin-right:10px}
#legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:3px;vertical-align:-1px}
g.node{cursor:pointer;outline:none}
g.node.selected>rect:first-of-type{stroke:#1565c0;stroke-width:3}
g.node:focus-visible>rect:first-of-type{stroke:#1565c0}
`;

/** Shows the details of the node under the pointer; a click (or Enter) keeps them; Escape lets go. */
const script = `
(function () {
  var panel = document.getElementById("details");
  var hint = document.getElementById("hint");
  var svg = document.querySelector("svg.site-map");
  var pinned = null;
  function show(id) {
    var sections = panel.querySelectorAll("section.detail");
    for (var i = 0; i < sections.length; i++) sections[i].hidden = sections[i].getAttribute("data-for") !== id;
    hint.hidden = id !== null;
  }
  function nodeOf(el) { return el && el.closest ? el.closest("g.node") : null; }
  function pin(id) {
    var old = svg.querySelector("g.node.selected");
    if (old) old.classList.remove("selected");
    pinned = id;
    if (id !== null) {
      var g = svg.querySelector('g.node[data-id="' + id + '"]');
      if (g) g.classList.add("selected");
    }
    show(id);
  }
  svg.addEventListener("mouseover", function (e) { var g = nodeOf(e.target); if (g && pinned === null) show(g.getAttribute("data-id")); });
  svg.addEventListener("mouseleave", function () { if (pinned === null) show(null); });
  svg.addEventListener("click", function (e) { var g = nodeOf(e.target); pin(g ? g.getAttribute("data-id") : null); });
  svg.addEventListener("keydown", function (e) { var g = nodeOf(e.target); if (g && e.key === "Enter") pin(g.getAttribute("data-id")); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") pin(null); });
  var items = document.querySelectorAll("#attention li[data-node]");
  for (var i = 0; i < items.length; i++) {
    items[i].addEventListener("click", function () {
      var id = this.getAttribute("data-node");
      pin(id);
      var g = svg.querySelector('g.node[data-id="' + id + '"]');
      if (g) g.scrollIntoView({ block: "center", inline: "center" });
    });
  }
})();
`;

/** The whole page. */
export function renderHtml(site: SiteMap, layout: Layout): string {
    const title = `${site.project} / ${site.stack}`;
    const legend = (["ok", "warn", "bad", "idle", "unknown"] as const)
        .map((h) => `<span><i style="background:${healthColour[h]}"></i>${{ ok: "fine", warn: "degraded service", bad: "needs attention", idle: "standby", unknown: "not read" }[h]}</span>`)
        .join("");
    const details = allNodes(site).map((n) => nodeDetails(n, site.attention)).join("\n");
    return [
        "<!DOCTYPE html>",
        `<html lang="en"><head><meta charset="utf-8">`,
        // Nothing may be fetched: no network, no file next to the page.
        `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
        `<meta name="viewport" content="width=device-width, initial-scale=1">`,
        `<title>${esc(`${title}: data center map`)}</title>`,
        `<style>${css}</style></head><body>`,
        `<header><h1>${esc(title)}: data center map</h1>`,
        `<p>${site.resourceCount} resources: ${esc(summary(site))}${site.time ? ` · state of ${esc(site.time)}` : ""}</p>`,
        `<p id="legend">${legend}</p></header>`,
        attentionList(site),
        `<main><div id="map">`,
        renderSvg(site, layout),
        `</div><aside id="details"><p id="hint">Point at an object (or click it) for its details. Secrets show as [secret].</p>`,
        details,
        `</aside></main>`,
        `<script>${script}</script>`,
        `</body></html>`,
    ].join("\n");
}
