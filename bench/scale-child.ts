// One size of the scale suite (bench/scale.bench.ts), in a process of its own so each size starts
// with a fresh heap and its peak RSS is its own:
//   tsx bench/scale-child.ts PAGES tps|ksm [--quick]
// Prints a JSON array of BenchRecord on stdout. One VM of PAGES guest pages on a host with room for
// all of them, every page backed (the guest's boot zeroing sweep), uniform touches over all of it
// with 30 % writes; the content model of the default scenario's web servers.
//
// The reference model (where it fits) is set up the same way beside the engine, and each
// measurement makes the same calls with the same arguments the same number of times on both: from
// the same state they do the same work (the same pages touched, scanned, merged, swapped), so a
// ratio compares the implementations, not different phases of one mechanism.
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
const TOUCHES = 2_000_000;
/** the reference model fits in the default 4 GiB V8 heap up to this size (about 180 B per page) */
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

type Raw = Record<string, (...a: number[]) => number>;

/** One engine, the WASM one or the reference model, set up alike: one VM of `pages`, every page backed. */
function setup(e: Engine) {
  const raw = e.raw as unknown as Raw;
  const heap0 = process.memoryUsage().heapUsed;
  e.init(pages + 2 ** 20, 0, false, 1);
  const initBytes = raw.memoryBytes() >>> 0;
  if (!e.addVm(0, pages, 1)) throw new Error(`the engine cannot hold ${pages} pages`);
  const vmBytes = (raw.memoryBytes() >>> 0) - initBytes; // what the VM's pages cost: page, region, pattern tables
  configure((i, v) => e.setVmParam(0, i, v), k, k.PATTERN_UNIFORM);
  raw.setPattern(0);
  raw.sampleInit(0, 1);
  // the sharing tables sized for 10 % of the pages shareable, at most 4M contents (64 MiB a table)
  if (!(raw.shareInit(mode === "ksm" ? k.POLICY_KSM : k.POLICY_TPS, expected, 1) & 1)) throw new Error("no room for the sharing tables");
  const setupBytes = raw.memoryBytes() >>> 0;
  raw.powerOn(0, 0);
  e.setVmParam(0, k.P_SWAP_PAGES, pages);
  const t = performance.now();
  raw.zeroSweep(0, pages);
  return { e, raw, vmBytes, setupBytes, sweepMs: performance.now() - t, heap: process.memoryUsage().heapUsed - heap0, epoch: 2 };
}

const wasm = await loadEngine();
const k = wasm.k;
const W = setup(wasm);
const wasmRss = process.resourceUsage().maxRSS / 1024; // before the reference model exists
const R = pages <= REF_MAX_PAGES ? setup(referenceEngine(k).engine) : undefined;
const bytes = pages * 8;
const table = wasm.vmParam(0, k.P_PAGE_BASE);

/**
 * `call` on the engine, then the same on the reference model (same iterations, same arguments):
 * records the engine's rate of `work` per second, the reference's and their ratio. Returns both
 * median milliseconds (the reference's NaN where it does not fit).
 */
async function both(name: string, work: number, unit: string, call: (x: typeof W) => unknown, t = timing): Promise<{ ms: number; rms: number }> {
  const ms = await medianMs(name, () => call(W), t);
  rec(name, work / (ms / 1000), unit);
  if (!R) return { ms, rms: NaN };
  const rms = await medianMs(`reference ${name}`, () => call(R), t);
  rec(`reference: ${name}`, work / (rms / 1000), unit);
  rec(`WASM / reference, ${name}`, rms / ms, "x", "same calls from the same state; goal >= 30x at 1M pages");
  return { ms, rms };
}

if (mode === "ksm") {
  // KSM: ksmd wake-ups of pages_to_scan pages over the whole memory (merging the zero-filled pages
  // found twice), after the touches wrote 30 % of them with their class content
  for (const x of [W, R]) {
    if (!x) continue;
    x.raw.touchVm(0, TOUCHES, 1);
    x.e.setHostParam(k.HP_SHARE_ON, 1);
    x.e.setHostParam(k.HP_KSM_MAX_SHARING, 256);
    x.e.setVmParam(0, k.P_SHARE_ON, 1);
  }
  // a quarter of the memory per call: the calls go through scans 1 (checksums), 2 (merging) and
  // the steady scans after, the same ones on both engines
  const wake = Math.max(1, Math.min(2000, Math.floor(pages / 4000)));
  await both("KSM scan (ksmd wake-ups of 1000 pages)", wake * 1000, "pages/s", (x) => x.raw.ksmScan(wake, 1000), { iterations: 8, time: 0 });
  out.push({ suite: "scale", name: `engine memory per guest page (KSM), ${size}`, value: round(W.setupBytes / pages), unit: "B/page", note: "page table 8 + KSM rmap word 4 + trees for 10 % shareable" });
  out.push({ suite: "scale", name: `peak RSS (KSM), ${size}`, value: Math.round(wasmRss), unit: "MiB", note: "after set-up and the sweep, before the reference model is built" });
  console.log(JSON.stringify(out));
  process.exit(0);
}

rec("boot zeroing sweep (first touch of every page)", pages / (W.sweepMs / 1000), "pages/s", "one call, not repeated");
if (R) rec("reference: boot zeroing sweep", pages / (R.sweepMs / 1000), "pages/s");

// ---- touches, and their floor: the same draws and loads ahead, each touch cut to one read and
// write of its entry (floorTouch with bits = 0 leaves the table as it was) ----
for (const [name, pattern] of [["uniform", k.PATTERN_UNIFORM], ["zipf(0.9)", k.PATTERN_ZIPF]] as const) {
  for (const x of [W, R]) {
    x?.e.setVmParam(0, k.P_PATTERN, pattern);
    x?.raw.setPattern(0);
  }
  const { rms } = await both(`touches/s ${name}`, TOUCHES, "touches/s", (x) => x.raw.touchVm(0, TOUCHES, x.epoch++ & 0xffff));
  const floorMs = await medianMs(`touch floor ${name}`, () => W.raw.floorTouch(0, TOUCHES, 7, 0), timing);
  rec(`floor: touches/s ${name}, each one read and write of its entry`, TOUCHES / (floorMs / 1000), "touches/s", "floorTouch: touchVm's draws and loads ahead, no semantics");
  if (R) rec(`floor / reference, touches ${name}`, rms / floorMs, "x", "the most any touch loop can be ahead of the reference");
}
for (const x of [W, R]) x?.e.setVmParam(0, k.P_PATTERN, k.PATTERN_UNIFORM);

// ---- full scans ----
const { ms: scan } = await both("sampler's true-active pass (samplePeriod over all pages)", pages, "pages/s", (x) => {
  x.e.setVmParam(0, k.P_TOUCH_SPAN, pages);
  x.raw.samplePeriod(0, 100);
});
const check = await medianMs("checkVm", () => W.raw.checkVm(0), timing);
rec("conservation recount (checkVm)", pages / (check / 1000), "pages/s");
const floorScanMs = await medianMs("floor scan", () => W.raw.floorScan(table, bytes), timing);
rec("floor: sequential read of the page table", pages / (floorScanMs / 1000), "pages/s", `floorScan, ${round(bytes / 2 ** 20)} MiB`);
const chunk = 64 * 2 ** 20;
const copyMs = await medianMs("floor copy", () => W.raw.floorCopy(table, bytes, chunk), timing);
rec("floor: memory.copy of the page table", bytes / (copyMs / 1000) / 2 ** 30, "GiB/s", "floorCopy in 64 MiB chunks");
rec("sampler pass / memory.copy floor", (100 * copyMs) / scan, "%", "same bytes; goal >= 30 %");
rec("checkVm pass / memory.copy floor", (100 * copyMs) / check, "%", "same bytes");

// ---- TPS: a quarter of the memory per call, through the first pass (hints) and into the second (merges) ----
for (const x of [W, R]) {
  x?.e.setHostParam(k.HP_SHARE_ON, 1);
  x?.e.setVmParam(0, k.P_SHARE_ON, 1);
}
const tpsN = Math.min(Math.ceil(pages / 4), 2 ** 22);
await both("TPS scan", tpsN, "pages/s", (x) => x.raw.tpsScan(0, tpsN), { iterations: 6, time: 0 });

// ---- reclamation: host swap of random victims (compression off), 1/32 of the pages per call ----
const swapN = Math.min(Math.floor(pages / 32), 2 ** 20);
await both("host swap-out of random victims (swapVm)", swapN, "pages/s", (x) => x.raw.swapVm(0, swapN));

// ---- memory ----
out.push({ suite: "scale", name: `per-page metadata (addVm's tables / pages), ${size}`, value: Math.round((W.vmBytes / pages) * 1000) / 1000, unit: "B/page", note: "8-byte page entry + 1 region byte per 512 pages + the 4 KiB pattern table; goal: at most 8 B hot" });
out.push({ suite: "scale", name: `engine memory per guest page, ${size}`, value: round(W.setupBytes / pages), unit: "B/page", note: `all linear memory after set-up: records, page and region tables, TPS table for 10 % shareable (${round(W.setupBytes / 2 ** 20)} MiB)` });
if (R) rec("reference: heap per guest page", R.heap / pages, "B/page", "V8 heap growth over its set-up and sweep");
out.push({ suite: "scale", name: `peak RSS (WASM), ${size}`, value: Math.round(wasmRss), unit: "MiB", note: "after set-up and the sweep, before the reference model is built" });
console.log(JSON.stringify(out));
