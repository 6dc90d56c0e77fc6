/**
 * The live status page the admin listener serves at `/`: one self-contained HTML document
 * (inline CSS and script, no external asset: it works on an air-gapped host) that polls
 * `/api/status` every two seconds and renders it. Values reach the DOM as text only
 * (`textContent`), never as markup, so a user name or hop label cannot inject anything; the
 * Content-Security-Policy allows only this response's inline style and script (by nonce) and
 * requests to the page's own origin.
 *
 * @module
 */

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1em;background:#fafafa;color:#222}
h1{font-size:1.3em;margin:0 0 .3em}h2{font-size:1.05em;margin:.2em 0 .4em}
#meta{color:#666;margin-bottom:.8em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.8em}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em .8em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:1px 6px;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#186a1d}.marked{color:#b00020;font-weight:bold}.err{color:#b00020}
svg{width:100%;height:70px;background:#f4f6f8;border-radius:4px}
.legend{font-size:12px;color:#555}
`;

const SCRIPT = `
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(1) + " G" : n >= 1e6 ? (n / 1e6).toFixed(1) + " M"
  : n >= 1e3 ? (n / 1e3).toFixed(1) + " k" : String(Math.round(n * 10) / 10);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function table(id, head, rows) {
  const t = $(id);
  t.replaceChildren();
  const tr = el("tr");
  for (const h of head) tr.append(el("th", h));
  t.append(tr);
  for (const row of rows) {
    const r = el("tr");
    row.forEach((cell, i) => {
      const c = typeof cell === "object" && cell !== null ? el("td", cell.text, cell.cls)
        : el("td", cell, typeof cell === "number" ? "n" : undefined);
      if (i === 0) c.dataset.key = String(typeof cell === "object" && cell ? cell.text : cell);
      r.append(c);
    });
    t.append(r);
  }
  if (rows.length === 0) { const r = el("tr"); r.append(el("td", "none")); t.append(r); }
}
const entries = (o) => Object.entries(o).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
function chart(id, points, series) {
  const svg = $(id);
  svg.replaceChildren();
  const w = 300, h = 70;
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("preserveAspectRatio", "none");
  let max = 0;
  for (const p of points) for (const s of series) max = Math.max(max, p[s.key]);
  const n = points.length;
  for (const s of series) {
    const d = points.map((p, i) => (n > 1 ? (i / (n - 1)) * w : w).toFixed(1) + "," +
      (h - 4 - (max > 0 ? p[s.key] / max : 0) * (h - 8)).toFixed(1)).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", d);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", s.color);
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  const last = points[points.length - 1];
  $(id + "-legend").textContent = series.map((s) => s.label + " " +
    (last ? fmt(last[s.key]) : "0") + s.unit).join(" · ") + " · peak " + fmt(max) + " · " +
    points.length + " points";
}
function since(iso) {
  if (iso === null) return "start";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return new Date(iso).toLocaleTimeString() + " (" + s + " s ago)";
}
function render(s) {
  const c = s.connections;
  $("meta").textContent = "updated " + new Date(s.generatedAt).toLocaleTimeString() +
    " · workers " + s.workers.answered + "/" + s.workers.count + " · active connections " +
    c.active + (c.max !== null ? " of " + c.max : "") + " · finished relays moved " +
    fmt(s.bytes.up) + "B up, " + fmt(s.bytes.down) + "B down";
  $("meta").dataset.generatedAt = s.generatedAt;
  table("families", ["pair", "active", "finished"], entries(c.activeByFamilies).map(([k, v]) =>
    [k, v, c.finishedByFamilies[k] || 0]));
  const cmds = new Set([...Object.keys(c.activeByCommand), ...Object.keys(c.finishedByCommand)]);
  table("commands", ["command", "active", "finished"], [...cmds].sort().map((k) =>
    [k, c.activeByCommand[k] || 0, c.finishedByCommand[k] || 0]));
  table("pairs", ["command and pair", "active"], entries(c.activeByCommandAndFamilies));
  table("outcomes", ["outcome", "finished"], entries(c.finishedByOutcome));
  table("replies", ["REP", "meaning", "sent"], s.replies.map((r) => [r.code, r.name, r.count]));
  table("refusals", ["reason", "count"], entries(s.refusals));
  const hops = [];
  for (const h of s.hops) for (const a of h.alternatives) {
    hops.push(["routes[" + h.route + "] hop " + (h.hop + 1), a.label,
      { text: a.state + (a.state === "marked" && s.workers.count > 1 ? " in " + a.markedIn : ""),
        cls: a.state }, since(a.since)]);
  }
  table("hops", ["hop", "alternative", "state", "since"], hops);
  const r = s.resolver;
  table("resolver", ["figure", "value"], [["cache entries", r.cacheEntries],
    ["lookups in flight", r.inflight], ["cache hits", r.hits], ["cache misses", r.misses],
    ["DNS queries", r.queries], ["translator sessions", s.translators.sessions]]);
  table("workers", ["worker", "finished connections"], entries(s.workers.connections)
    .map(([k, v]) => ["worker " + k, v]));
  table("users", ["user", ...s.users.columns], s.users.rows.map((u) => [u.user, ...u.values]));
  const pts = s.history;
  chart("throughput", pts, [{ key: "upPerSecond", label: "up", unit: "B/s", color: "#1565c0" },
    { key: "downPerSecond", label: "down", unit: "B/s", color: "#2e7d32" }]);
  chart("rate", pts, [{ key: "connectionsPerSecond", label: "finished", unit: "/s", color: "#6a1b9a" },
    { key: "active", label: "active", unit: "", color: "#ef6c00" }]);
  $("error").textContent = "";
}
let failures = 0;
async function poll() {
  try {
    const response = await fetch("api/status", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
    failures = 0;
  } catch (error) {
    failures++;
    $("error").textContent = "cannot update: " + error.message;
  }
  setTimeout(poll, Math.min(30000, 2000 * 2 ** Math.min(failures, 4)));
}
poll();
`;

const BODY = `
<h1>dualgate status</h1>
<div id="meta">loading…</div><div id="error" class="err"></div>
<div class="grid">
<section><h2>Connections by family pair</h2><table id="families"></table></section>
<section><h2>Connections by command</h2><table id="commands"></table>
<table id="pairs"></table></section>
<section><h2>Throughput</h2><svg id="throughput" role="img" aria-label="throughput"></svg>
<div class="legend" id="throughput-legend"></div></section>
<section><h2>Connection rate</h2><svg id="rate" role="img" aria-label="connection rate"></svg>
<div class="legend" id="rate-legend"></div></section>
<section><h2>Reply codes</h2><table id="replies"></table></section>
<section><h2>Refusals</h2><table id="refusals"></table><table id="outcomes"></table></section>
<section><h2>Hop alternatives</h2><table id="hops"></table></section>
<section><h2>Resolver and translators</h2><table id="resolver"></table></section>
<section><h2>Users</h2><table id="users"></table></section>
<section><h2>Workers</h2><table id="workers"></table></section>
</div>
`;

/** The page and the Content-Security-Policy that goes with it. */
export interface StatusPage {
  /** The HTML document. */
  readonly html: string;
  /** The `Content-Security-Policy` header value (the page's nonce inside). */
  readonly csp: string;
}

/** Renders the page with a fresh nonce. */
export function statusPage(): StatusPage {
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>dualgate status</title>
<style nonce="${nonce}">${STYLE}</style>
</head><body>${BODY}<script nonce="${nonce}">${SCRIPT}</script></body></html>
`;
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; ` +
    `connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; ` +
    `frame-ancestors 'none'`;
  return { html, csp };
}
