// The HTML report: ONE self-contained file (uPlot, its CSS, the chart code and the data inlined; a
// Content-Security-Policy that forbids every network request), readable offline and archivable.
// Tables, events and the scenario are plain HTML, so they show without scripts; the charts are
// drawn by chartsRuntime (charts.ts) from the inlined data. Every string that came from a scenario
// is escaped (escapeHtml for HTML, scriptJson for data inside <script>). Browser-safe.
import { chartsRuntime } from "./charts.js";
import type { Cell, ReportData } from "./data.js";

/** uPlot's browser build and stylesheet, as text (Node: src/cli/assets.ts; a bundler: `?raw`). */
export interface ReportAssets {
  uplotJs: string;
  uplotCss: string;
}

/** VMs that get their own chart cards (the tables list every VM). */
export const MAX_VM_CARDS = 64;

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** JSON that is safe inside <script>: no "</script", "<!--" or U+2028/9 can end or bend it. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Inlined code: "</script" inside it would end the element early. */
function scriptText(code: string): string {
  return code.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

function fmtTime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

function fmt(v: Cell | undefined): string {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  return v;
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
.chart { margin: 6px 0 12px; }
.vm-card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 12px; margin: 12px 0; break-inside: avoid; }
.vm-grid { display: grid; grid-template-columns: repeat(2, 560px); gap: 4px 16px; }
.u-title { font-size: 14px !important; font-weight: 600 !important; }
.u-legend { font-size: 12.5px !important; }
.state-legend { font-size: 12.5px; color: #333; margin: 2px 0 0 62px; }
.state-legend .state-item { margin-left: 12px; white-space: nowrap; }
.state-legend i { display: inline-block; width: 14px; height: 12px; margin-right: 4px; vertical-align: -1px; border: 1px solid #bbb; }
table.data { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
table.data th { background: #f4f4f4; } table.data .name { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 10px; overflow: auto; max-height: 520px; font-size: 12px; }
.note { color: #666; font-size: 12.5px; }
`;

function table(head: string[], rows: string[][], nameCols = 1): string {
  const th = head.map((h, i) => `<th${i < nameCols ? ' class="name"' : ""}>${escapeHtml(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${i < nameCols ? ' class="name"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`).join("\n");
  return `<div class="scroll"><table class="data"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table></div>`;
}

/** The report as one HTML document. */
export function reportHtml(data: ReportData, assets: ReportAssets): string {
  const hostKeys = Object.keys(data.final.host).filter((k) => k !== "time");
  const hostRows = hostKeys.map((k) => [k, fmt(data.final.host[k]), fmt(data.final.hostMean[k])]);
  const vmKeys = [...new Set(data.final.vms.flatMap((v) => Object.keys(v.final)))].filter((k) => k !== "time" && k !== "vm");
  const vmFinal = data.final.vms.map((v) => [v.name, ...vmKeys.map((k) => fmt(v.final[k]))]);
  const vmMean = data.final.vms.map((v) => [v.name, ...vmKeys.map((k) => fmt(v.mean[k]))]);
  const events = data.events.map((e) => [fmtTime(e.time), e.kind, e.vm ?? "", e.ok ? "applied" : "refused", e.message]);
  const hostMem = data.host["PMEM.total"]?.[0];
  const cards = Math.min(data.vms.length, MAX_VM_CARDS);
  const wall = data.wall ? `; ran in ${data.wall.seconds} s wall (${data.wall.simulatedPerWallSecond} simulated s per s)` : "";
  const title = `vmemsim report: ${data.name}`;
  // __name: some TypeScript runners (esbuild with keepNames: tsx) wrap functions in __name(...)
  const boot = `(function () {
  var __name = function (f) { return f; };
  var rt = (${chartsRuntime.toString()})();
  var data = JSON.parse(document.getElementById("vmemsim-data").textContent);
  window.vmemsimCharts = rt.renderReport(uPlot, data, document, ${MAX_VM_CARDS});
})();`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vmemsim ${escapeHtml(data.vmemsim)}">
<title>${escapeHtml(title)}</title>
<style>${scriptText(assets.uplotCss)}</style>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${escapeHtml(`${fmtTime(data.simulatedSeconds)} simulated, seed ${data.seed}, ${data.vms.length} VMs, ${data.time.length} samples${typeof hostMem === "number" ? `, host ${hostMem} MB` : ""}; vmemsim ${data.vmemsim}${wall}`)}</p>
</header>
<main>
<h2>Host</h2>
<p class="note">Memory in MB (= MiB) as esxtop shows it; time in h:mm of simulated time. A counter whose mechanism has not landed reads 0.</p>
<div id="host-charts"></div>
<h2>VMs</h2>
${cards < data.vms.length ? `<p class="note">Charts for the first ${cards} of ${data.vms.length} VMs; the tables below list all.</p>` : ""}
<div id="vm-charts"></div>
<h2>Final and mean counters</h2>
<h3>Host</h3>
${table(["counter", "final", "mean"], hostRows)}
<h3>VMs: final</h3>
${table(["VM", ...vmKeys], vmFinal)}
<h3>VMs: mean over the samples</h3>
${table(["VM", ...vmKeys], vmMean)}
<h2>Events</h2>
${events.length ? table(["time", "kind", "VM", "", "message"], events, 5) : '<p class="note">No events.</p>'}
<h2>Scenario</h2>
<p class="note">Normalized: sizes in bytes, times in seconds, every default filled in.</p>
<pre id="scenario">${escapeHtml(data.scenarioYaml)}</pre>
</main>
<script>${scriptText(assets.uplotJs)}</script>
<script type="application/json" id="vmemsim-data">${scriptJson({ time: data.time, host: data.host, vms: data.vms })}</script>
<script>${scriptText(boot)}</script>
</body>
</html>
`;
}
