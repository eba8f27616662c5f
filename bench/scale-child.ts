// One size of the scale suite (bench/scale.bench.ts), in a process of its own so each size starts
// with a fresh heap and its peak RSS is its own:
//   tsx bench/scale-child.ts PAGES tps|ksm [--quick]
// Prints a JSON array of BenchRecord on stdout. One VM of PAGES guest pages on a host with room for
// all of them, every page backed (the guest's boot zeroing sweep), uniform touches over all of it
// with 30 % writes; the content model of the default scenario's web servers.
import { loadEngine, type Engine } from "../src/engine.js";
import { referenceEngine } from "../test/reference/engine.js";
import { medianMs, type BenchRecord } from "./lib.js";

const [pagesArg, mode = "tps"] = process.argv.slice(2);
const quick = process.argv.includes("--quick");
const pages = Number(pagesArg);
const expected = Math.min(Math.round(pages * 0.1), 2 ** 22);
const M = pages / 2 ** 20;
const size = `${M}M pages`;
const U32 = 2 ** 32;
const TOUCHES = 4_000_000;
/** the reference model fits in the default 4 GiB V8 heap up to this size (about 120 B per page) */
const REF_MAX_PAGES = 2 ** 24;

const out: BenchRecord[] = [];
const rec = (name: string, value: number, unit: string, note?: string) => out.push({ suite: "scale", name: `${name}, ${size}`, value: round(value), unit, note });
function round(x: number): number {
  return x >= 100 ? Math.round(x) : Math.round(x * 1000) / 1000;
}
const timing = pages >= 2 ** 26 ? { iterations: 3, time: 0 } : { iterations: quick ? 3 : 7, time: 0 };

/** Parameters of the VM, written the same way into either engine's records. */
function configure(set: (i: number, v: number) => void, k: Engine["k"], pattern: number): void {
  set(k.P_ACTIVE, pages);
  set(k.P_PATTERN, pattern);
  set(k.P_ZIPF_S, 900_000);
  set(k.P_WRITE_T, Math.round(0.3 * U32));
  set(k.P_ZERO_T, Math.round(0.1 * U32));
  set(k.P_IMAGE_T, Math.round(0.4 * U32));
  set(k.P_DUP_T, Math.round(0.45 * U32));
  set(k.P_CLASS_SEED, 0x1234567);
  set(k.P_IMAGE_BASE, 1);
  set(k.P_DUP_BASE, 1 + pages);
  set(k.P_DUP_SIZE, Math.max(1, Math.round((pages * 0.05) / 4)));
}

/** The reference model set up as the engine is below: one VM of `pages`, every page backed. */
function referenceSetup(policy: number) {
  const heap0 = process.memoryUsage().heapUsed;
  const { engine: re } = referenceEngine(k);
  const rraw = re.raw as unknown as Record<string, (...a: number[]) => number>;
  re.init(pages + 2 ** 20, 0, false, 1);
  re.addVm(0, pages, 1);
  configure((i, v) => re.setVmParam(0, i, v), k, k.PATTERN_UNIFORM);
  rraw.setPattern(0);
  rraw.sampleInit(0, 1);
  rraw.shareInit(policy, expected, 1);
  rraw.powerOn(0, 0);
  re.setVmParam(0, k.P_SWAP_PAGES, pages);
  const t = performance.now();
  rraw.zeroSweep(0, pages);
  return { re, rraw, sweepMs: performance.now() - t, heap: process.memoryUsage().heapUsed - heap0 };
}

const wasm = await loadEngine();
const k = wasm.k;
const raw = wasm.raw as unknown as Record<string, (...a: number[]) => number>;
wasm.init(pages + 2 ** 20, 0, false, 1);
const initBytes = raw.memoryBytes() >>> 0;
if (!wasm.addVm(0, pages, 1)) throw new Error(`the engine cannot hold ${pages} pages`);
const vmBytes = (raw.memoryBytes() >>> 0) - initBytes; // what the VM's pages cost: page, region, pattern tables
configure((i, v) => wasm.setVmParam(0, i, v), k, k.PATTERN_UNIFORM);
raw.setPattern(0);
raw.sampleInit(0, 1);
// the sharing tables sized for 10 % of the pages shareable, at most 4M contents (64 MiB a table)
if (!(raw.shareInit(mode === "ksm" ? k.POLICY_KSM : k.POLICY_TPS, expected, 1) & 1)) throw new Error("no room for the sharing tables");
const setupBytes = raw.memoryBytes() >>> 0;
raw.powerOn(0, 0);
wasm.setVmParam(0, k.P_SWAP_PAGES, pages);
let t0 = performance.now();
raw.zeroSweep(0, pages);
const sweepMs = performance.now() - t0;
const bytes = pages * 8;
const table = wasm.vmParam(0, k.P_PAGE_BASE);

if (mode === "ksm") {
  // KSM: ksmd wake-ups of pages_to_scan pages over the whole memory (merging the zero-filled pages
  // found twice), after the touches wrote 30 % of them with their class content
  raw.touchVm(0, TOUCHES, 1);
  wasm.setHostParam(k.HP_SHARE_ON, 1);
  wasm.setHostParam(k.HP_KSM_MAX_SHARING, 256);
  wasm.setVmParam(0, k.P_SHARE_ON, 1);
  const wake = Math.max(1, Math.min(2000, Math.floor(pages / 1000)));
  const ms = await medianMs(`ksm ${size}`, () => raw.ksmScan(wake, 1000), timing);
  rec("KSM scan (ksmd wake-ups of 1000 pages)", (wake * 1000) / (ms / 1000), "pages/s");
  if (pages <= REF_MAX_PAGES) {
    const { re, rraw } = referenceSetup(k.POLICY_KSM);
    rraw.touchVm(0, TOUCHES, 1);
    re.setHostParam(k.HP_SHARE_ON, 1);
    re.setHostParam(k.HP_KSM_MAX_SHARING, 256);
    re.setVmParam(0, k.P_SHARE_ON, 1);
    const rwake = Math.max(1, Math.floor(wake / 4));
    const rms = await medianMs(`ref ksm ${size}`, () => rraw.ksmScan(rwake, 1000), { iterations: 3, time: 0 });
    rec("reference: KSM scan", (rwake * 1000) / (rms / 1000), "pages/s");
    rec("WASM / reference, KSM scan", (wake * 1000) / (ms / 1000) / ((rwake * 1000) / (rms / 1000)), "x");
  }
  out.push({ suite: "scale", name: `engine memory per guest page (KSM), ${size}`, value: round(setupBytes / pages), unit: "B/page", note: "page table 8 + KSM rmap word 4 + trees for 10 % shareable" });
  out.push({ suite: "scale", name: `peak RSS (KSM), ${size}`, value: Math.round(process.resourceUsage().maxRSS / 1024), unit: "MiB" });
  console.log(JSON.stringify(out));
  process.exit(0);
}

rec("boot zeroing sweep (first touch of every page)", pages / (sweepMs / 1000), "pages/s", "one call, not repeated");

// ---- touches ----
let epoch = 2;
const wasmTouches: Record<string, number> = {};
for (const [name, pattern] of [["uniform", k.PATTERN_UNIFORM], ["zipf(0.9)", k.PATTERN_ZIPF]] as const) {
  wasm.setVmParam(0, k.P_PATTERN, pattern);
  raw.setPattern(0);
  const ms = await medianMs(`touch ${name}`, () => raw.touchVm(0, TOUCHES, epoch++ & 0xffff), timing);
  wasmTouches[name] = TOUCHES / (ms / 1000);
  rec(`touches/s ${name}`, wasmTouches[name], "touches/s");
}
wasm.setVmParam(0, k.P_PATTERN, k.PATTERN_UNIFORM);
const gatherMs = await medianMs("gather floor", () => raw.floorGather(table, pages, TOUCHES, 7), timing);
rec("floor: random 8-byte reads of page entries", TOUCHES / (gatherMs / 1000), "reads/s", "floorGather: the touch loop's draws and loads alone");

// ---- full scans ----
const scan = await medianMs("sampler pass", () => {
  wasm.setVmParam(0, k.P_TOUCH_SPAN, pages);
  raw.samplePeriod(0, 100);
}, timing);
rec("sampler's true-active pass (samplePeriod over all pages)", pages / (scan / 1000), "pages/s");
const check = await medianMs("checkVm", () => raw.checkVm(0), timing);
rec("conservation recount (checkVm)", pages / (check / 1000), "pages/s");
const floorScanMs = await medianMs("floor scan", () => raw.floorScan(table, bytes), timing);
rec("floor: sequential read of the page table", pages / (floorScanMs / 1000), "pages/s", `floorScan, ${round(bytes / 2 ** 20)} MiB`);
const chunk = 64 * 2 ** 20;
const copyMs = await medianMs("floor copy", () => raw.floorCopy(table, bytes, chunk), timing);
rec("floor: memory.copy of the page table", bytes / (copyMs / 1000) / 2 ** 30, "GiB/s", "floorCopy in 64 MiB chunks");
rec("sampler pass / memory.copy floor", (100 * copyMs) / scan, "%", "same bytes; goal >= 30 %");
rec("checkVm pass / memory.copy floor", (100 * copyMs) / check, "%", "same bytes");

// ---- TPS ----
wasm.setHostParam(k.HP_SHARE_ON, 1);
wasm.setVmParam(0, k.P_SHARE_ON, 1);
const tpsN = Math.min(pages, 2 ** 22);
const tpsMs = await medianMs("tps", () => raw.tpsScan(0, tpsN), { iterations: 3, time: 0 });
const tpsRate = tpsN / (tpsMs / 1000);
rec("TPS scan", tpsRate, "pages/s", `tpsScan of ${tpsN} pages per call, random pass order`);

// ---- reclamation: host swap of random victims (compression off) ----
const swapN = Math.min(Math.floor(pages / 8), 2 ** 20);
const swapMs = await medianMs("swap", () => raw.swapVm(0, swapN), { iterations: 3, time: 0 });
const swapRate = swapN / (swapMs / 1000);
rec("host swap-out of random victims (swapVm)", swapRate, "pages/s", `${swapN} pages per call`);

// ---- memory ----
out.push({ suite: "scale", name: `per-page metadata (addVm's tables / pages), ${size}`, value: Math.round((vmBytes / pages) * 1000) / 1000, unit: "B/page", note: "8-byte page entry + 1 region byte per 512 pages + the 4 KiB pattern table; goal: at most 8 B hot" });
out.push({ suite: "scale", name: `engine memory per guest page, ${size}`, value: round(setupBytes / pages), unit: "B/page", note: `all linear memory after set-up: records, page and region tables, TPS table for 10 % shareable (${round(setupBytes / 2 ** 20)} MiB)` });
out.push({ suite: "scale", name: `peak RSS (WASM), ${size}`, value: Math.round(process.resourceUsage().maxRSS / 1024), unit: "MiB" });

// ---- the reference model ----
if (pages <= REF_MAX_PAGES) {
  const { re, rraw, sweepMs: refSweep, heap } = referenceSetup(k.POLICY_TPS);
  rec("reference: boot zeroing sweep", pages / (refSweep / 1000), "pages/s");
  for (const [name, pattern] of [["uniform", k.PATTERN_UNIFORM], ["zipf(0.9)", k.PATTERN_ZIPF]] as const) {
    re.setVmParam(0, k.P_PATTERN, pattern);
    rraw.setPattern(0);
    const n = TOUCHES / 4;
    const ms = await medianMs(`ref touch ${name}`, () => rraw.touchVm(0, n, epoch++ & 0xffff), { iterations: 3, time: 0 });
    rec(`reference: touches/s ${name}`, n / (ms / 1000), "touches/s");
    rec(`WASM / reference, touches ${name}`, wasmTouches[name] / (n / (ms / 1000)), "x", "goal >= 30x at 1M pages");
  }
  const refScan = await medianMs("ref sampler pass", () => {
    re.setVmParam(0, k.P_TOUCH_SPAN, pages);
    rraw.samplePeriod(0, 100);
  }, { iterations: 3, time: 0 });
  rec("reference: sampler's true-active pass", pages / (refScan / 1000), "pages/s");
  rec("WASM / reference, sampler pass", refScan / scan, "x");
  re.setHostParam(k.HP_SHARE_ON, 1);
  re.setVmParam(0, k.P_SHARE_ON, 1);
  const rTpsN = Math.max(1, Math.floor(tpsN / 4));
  const rTps = await medianMs("ref tps", () => rraw.tpsScan(0, rTpsN), { iterations: 3, time: 0 });
  rec("reference: TPS scan", rTpsN / (rTps / 1000), "pages/s");
  rec("WASM / reference, TPS scan", tpsRate / (rTpsN / (rTps / 1000)), "x");
  const rSwapN = Math.max(1, Math.floor(swapN / 4));
  const rSwap = await medianMs("ref swap", () => rraw.swapVm(0, rSwapN), { iterations: 3, time: 0 });
  rec("reference: host swap-out", rSwapN / (rSwap / 1000), "pages/s");
  rec("WASM / reference, host swap-out", swapRate / (rSwapN / (rSwap / 1000)), "x");
  rec("reference: heap per guest page", heap / pages, "B/page", "V8 heap growth after the sweep");
}
console.log(JSON.stringify(out));
