// The vmemsim demo page: pick or edit a scenario, run it in a Web Worker, watch host and VM memory
// move, change knobs mid-run, read an esxtop-like table, download the HTML report of the run.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import uplotJs from "uplot/dist/uPlot.iife.min.js?raw";
import uplotCss from "uplot/dist/uPlot.min.css?raw";
import wasmUrl from "../build/vmemsim.wasm?url";
import { DEFAULT_SCENARIO_YAML } from "../src/scenario/default.js";
import { parseScenarioText } from "../src/scenario/load.js";
import type { Scenario } from "../src/scenario/types.js";
import type { Sample } from "../src/sim/simulation.js";
import { esxtopScreen, formatTime } from "../src/outputs/table.js";
import { SimulationWorker } from "../src/browser/client.js";
import { chartsRuntime, type ChartKind, type VmemsimChart } from "../src/report/charts.js";
import { ReportBuilder } from "../src/report/data.js";
import { reportHtml } from "../src/report/html.js";
import { VERSION } from "../src/version.js";
import "./style.css";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const rt = chartsRuntime();

const examples = import.meta.glob("../examples/*.yaml", { query: "?raw", import: "default", eager: true }) as Record<string, string>;
const presets: [string, string][] = [
  ["default (built in)", DEFAULT_SCENARIO_YAML],
  ...Object.entries(examples).map(([path, text]): [string, string] => [path.replace(/^.*\//, "examples/"), text]),
];

const preset = $<HTMLSelectElement>("preset");
const editor = $<HTMLTextAreaElement>("editor");
const validity = $<HTMLParagraphElement>("validity");
for (const [i, [name]] of presets.entries()) preset.add(new Option(name, String(i)));
editor.value = presets[0][1];

/** Parse the editor's scenario; shows what it is or what is wrong. */
function check(): Scenario | null {
  try {
    const sc = parseScenarioText(editor.value, "scenario");
    const gib = (b: number) => `${Math.round((b / 2 ** 30) * 10) / 10} GiB`;
    validity.className = "status ok";
    validity.textContent = `valid: "${sc.name}", ${sc.vms.length} VMs, ${gib(sc.vms.reduce((a, v) => a + v.memory, 0))} configured on a ${gib(sc.host.memory)} host, ${formatTime(sc.duration)} simulated`;
    return sc;
  } catch (err) {
    validity.className = "status bad";
    validity.textContent = (err as Error).message;
    return null;
  }
}
preset.addEventListener("change", () => {
  editor.value = presets[Number(preset.value)][1];
  check();
});
let checkTimer = 0;
editor.addEventListener("input", () => {
  clearTimeout(checkTimer);
  checkTimer = window.setTimeout(check, 250);
});
check();

// ---- the run -------------------------------------------------------------------------------
const worker = new SimulationWorker(new Worker(new URL("../src/browser/worker.ts", import.meta.url), { type: "module" }));
let data = new ReportBuilder();
let scenario: Scenario | null = null;
let last: Sample | null = null;
let hostCharts: VmemsimChart[] = [];
let vmCharts: VmemsimChart[] = [];
let lastReport: string | null = null;
let frame = 0;

const runBtn = $<HTMLButtonElement>("run");
const pauseBtn = $<HTMLButtonElement>("pause");
const stopBtn = $<HTMLButtonElement>("stop");
const speed = $<HTMLSelectElement>("speed");
const vmSelect = $<HTMLSelectElement>("vm");
const resVm = $<HTMLSelectElement>("resvm");
const knobInputs = ["idletax", "apply-idletax", "salting", "zip", "resvm", "resmb", "apply-res"].map((id) => $<HTMLInputElement>(id));

function setState(state: "idle" | "running" | "paused" | "done" | "error"): void {
  document.body.dataset.state = state;
  const live = state === "running" || state === "paused";
  runBtn.disabled = live;
  pauseBtn.disabled = !live;
  stopBtn.disabled = !live;
  pauseBtn.textContent = state === "paused" ? "Resume" : "Pause";
  preset.disabled = live;
  editor.readOnly = live;
  for (const k of knobInputs) k.disabled = !live;
  $<HTMLButtonElement>("download").disabled = !(state === "done" && lastReport);
}

function chartWidth(el: HTMLElement, fraction = 1): number {
  return Math.max(360, Math.floor(el.clientWidth * fraction) - 8);
}

function makeCharts(): void {
  for (const c of [...hostCharts, ...vmCharts]) c.plot.destroy();
  const host = $("host-charts");
  host.replaceChildren();
  hostCharts = (["host-memory", "host-reclaim"] as ChartKind[]).map((kind) => {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.kind = kind;
    host.appendChild(box);
    return rt.create(uPlot, box, kind, data, 0, chartWidth(host), kind === "host-memory" ? 300 : 200);
  });
  makeVmCharts();
}

function makeVmCharts(): void {
  for (const c of vmCharts) c.plot.destroy();
  const el = $("vm-charts");
  el.replaceChildren();
  const vm = Number(vmSelect.value) || 0;
  vmCharts = (["vm-memory", "vm-targets", "vm-active", "vm-latency"] as ChartKind[]).map((kind) => {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.kind = kind;
    el.appendChild(box);
    return rt.create(uPlot, box, kind, data, vm, chartWidth(el, 0.5), 190);
  });
}
vmSelect.addEventListener("change", makeVmCharts);
window.addEventListener("resize", () => {
  for (const c of hostCharts) c.plot.setSize({ width: chartWidth($("host-charts")), height: c.plot.height });
  for (const c of vmCharts) c.plot.setSize({ width: chartWidth($("vm-charts"), 0.5), height: c.plot.height });
});

/** Redraw at most once per animation frame, however fast samples arrive. */
function redraw(): void {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    for (const c of [...hostCharts, ...vmCharts]) c.update(data);
    if (last) showTable(last);
    const dur = scenario?.duration ?? 1;
    const t = last?.time ?? 0;
    $("bar").style.width = `${Math.min(100, (t / dur) * 100)}%`;
    $("clock").textContent = `${formatTime(t)} of ${formatTime(dur)} simulated`;
    $("samples").textContent = String(data.time.length);
  });
}

const TABLE = ["MEMSZ", "GRANT", "CNSM", "SZTGT", "TCHD", "TCHD.true", "MCTLSZ", "MCTLTGT", "SWCUR", "SWTGT", "ZIP", "SHRD", "ZERO", "OVHD", "AMIN", "AMAX", "LAT%"];

function showTable(s: Sample): void {
  $("esxtop-host").textContent = esxtopScreen(s).split("\n\n")[0];
  const cols = TABLE.filter((c) => c in (s.vms[0] ?? {}));
  const table = $<HTMLTableElement>("esxtop");
  const head = table.tHead!;
  const want = ["NAME", ...cols].join(",");
  if (head.dataset.cols !== want) {
    head.dataset.cols = want;
    const tr = document.createElement("tr");
    for (const c of ["NAME", ...cols]) {
      const th = document.createElement("th");
      th.textContent = c;
      tr.appendChild(th);
    }
    head.replaceChildren(tr);
  }
  const body = table.tBodies[0];
  const rows = s.vms.map((vm) => {
    const tr = document.createElement("tr");
    tr.dataset.vm = String(vm.vm);
    if (!vm.on) tr.className = "off";
    const name = document.createElement("td");
    name.textContent = String(vm.vm) + (vm.on ? "" : " (off)");
    tr.appendChild(name);
    for (const c of cols) {
      const td = document.createElement("td");
      td.dataset.col = c;
      const v = (vm as Record<string, number | string>)[c];
      td.textContent = typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v);
      tr.appendChild(td);
    }
    return tr;
  });
  body.replaceChildren(...rows);
}

function logEvent(time: number, text: string, ok = true): void {
  const li = document.createElement("li");
  li.className = ok ? "" : "refused";
  li.textContent = `${formatTime(time)} ${text}`;
  $("events").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

function showError(message: string | null): void {
  const el = $<HTMLParagraphElement>("error");
  el.hidden = message === null;
  el.textContent = message ?? "";
}

runBtn.addEventListener("click", async () => {
  if (!check()) return;
  data = new ReportBuilder();
  last = null;
  lastReport = null;
  $("events").replaceChildren();
  showError(null);
  setState("running");
  try {
    const done = await worker.run(
      { scenario: editor.value, wasm: new URL(wasmUrl, location.href).href, speed: Number(speed.value) },
      {
        onStarted: (sc, vms) => {
          scenario = sc;
          vmSelect.replaceChildren(...vms.map((n, i) => new Option(n, String(i))));
          resVm.replaceChildren(...vms.map((n) => new Option(n, n)));
          $<HTMLInputElement>("idletax").value = String(sc.host.settings["Mem.IdleTax"]);
          $<HTMLSelectElement>("salting").value = String(sc.host.settings["Mem.ShareForceSalting"]);
          $<HTMLInputElement>("zip").checked = sc.host.settings["Mem.MemZipEnable"] === 1;
          $<HTMLInputElement>("resmb").value = String(sc.vms[0] ? sc.vms[0].reservation / 2 ** 20 : 0);
          makeCharts();
        },
        onSample: (s) => {
          last = s;
          data.add(s);
          for (const e of s.events) logEvent(e.time, e.message, e.ok);
          redraw();
        },
        onPaused: () => setState("paused"),
        onResumed: () => setState("running"),
      },
    );
    const sc = scenario!;
    lastReport = reportHtml(
      data.build({ vmemsim: VERSION, ...done.summary, scenarioNormalized: sc, wall: { seconds: Math.round(done.wallSeconds * 1000) / 1000, simulatedPerWallSecond: Math.round(done.time / Math.max(done.wallSeconds, 1e-6)) } }),
      { uplotJs, uplotCss },
    );
    logEvent(done.time, done.aborted ? "stopped" : `done in ${done.wallSeconds.toFixed(1)} s wall`);
    setState("done");
    redraw();
  } catch (err) {
    showError((err as Error).message);
    setState("error");
  }
});

pauseBtn.addEventListener("click", () => (document.body.dataset.state === "paused" ? worker.resume() : worker.pause()));
stopBtn.addEventListener("click", () => worker.stop());
speed.addEventListener("change", () => worker.setSpeed(Number(speed.value)));

async function knob(reply: Promise<{ ok: boolean; message: string }>): Promise<void> {
  const r = await reply;
  if (!r.ok) logEvent(last?.time ?? 0, `refused: ${r.message}`, false);
}
$("apply-idletax").addEventListener("click", () => knob(worker.setHost({ "Mem.IdleTax": Number($<HTMLInputElement>("idletax").value) })));
$("salting").addEventListener("change", () => knob(worker.setHost({ "Mem.ShareForceSalting": Number($<HTMLSelectElement>("salting").value) })));
$("zip").addEventListener("change", () => knob(worker.setHost({ "Mem.MemZipEnable": $<HTMLInputElement>("zip").checked ? 1 : 0 })));
resVm.addEventListener("change", () => {
  const vm = scenario?.vms.find((v) => v.name === resVm.value);
  const row = last?.vms.find((v) => v.vm === resVm.value);
  $<HTMLInputElement>("resmb").value = String(row ? row.AMIN : vm ? vm.reservation / 2 ** 20 : 0);
});
$("apply-res").addEventListener("click", () => knob(worker.setVm(resVm.value, { reservation: Number($<HTMLInputElement>("resmb").value) * 2 ** 20 })));

$("download").addEventListener("click", () => {
  if (!lastReport) return;
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([lastReport], { type: "text/html" }));
  a.download = `vmemsim-${(scenario?.name ?? "run").replace(/[^\w.-]+/g, "_")}.html`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
});

setState("idle");
makeCharts();
