// Page sharing (issue 3): scan throughput of ESXi TPS and Linux KSM at 1M, 16M and 64M guest pages
// (4, 64 and 256 GiB), against the memory-bandwidth floor of a plain WASM pass over the same page
// entries; the sharing tables' bytes per guest page; and the real Linux KSM merging N pages
// (pages_to_scan = N, sleep_millisecs = 0) against the simulator reaching the same counters.
// Run by bench/run.ts (npm run bench -- --only share), or alone: npx tsx bench/share.bench.ts [--quick]
import { fileURLToPath } from "node:url";
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import { shareExports } from "../src/policy/share.js";
import { defaults, KSM_KNOBS } from "../src/scenario/settings.js";
import { scenario, vm, GiB } from "../test/helpers.js";
import { ksmAvailable, runRealKsm } from "./ksm-real/real-ksm.js";
import { runSimKsm } from "./ksm-sim.js";
import { medianMs, type BenchContext, type BenchRecord } from "./lib.js";

const KEY_UNIQUE = 0xffff_ffff;
/** the docs' Linux content model: 5 % zero, 15 % image, 2 % duplicated 4 times, the rest unique */
const CONTENT = { zero: 0.05, image: 0.15, duplicate: 0.02, duplicateCopies: 4 };

/** One VM of `pages`, every page backed and written with the content model (contiguous runs). */
async function filled(pages: number, policy: "esxi" | "ksm"): Promise<Simulation> {
  const memory = pages * 4096;
  const sc = scenario({
    hostMemory: memory + 8 * GiB,
    settings: { "Mem.AllocGuestLargePage": 0, "Mem.ShareRateMax": 0 },
    vms: [vm("a", { memory, content: CONTENT, overhead: 0, guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
      workload: [{ at: 0, active: memory, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }] })],
  });
  sc.host.policy = policy;
  sc.host.ksm = { ...defaults(KSM_KNOBS), run: 0 };
  const sim = await createSimulation(sc);
  sim.step(1); // power on (no scanning: rate 0 / run 0)
  const raw = shareExports(sim);
  const zero = Math.round(pages * CONTENT.zero);
  const image = Math.round(pages * CONTENT.image);
  const dup = Math.round(pages * CONTENT.duplicate);
  let p = 0;
  raw.writePages(0, p, zero, 0, 0);
  p += zero;
  raw.writePages(0, p, image, 1, 1); // image pages: distinct inside one VM
  p += image;
  const keys = Math.round(dup / CONTENT.duplicateCopies);
  for (let c = 0; c < CONTENT.duplicateCopies; c++, p += keys) raw.writePages(0, p, keys, 1 + image, 1);
  raw.writePages(0, p, pages - p, KEY_UNIQUE, 0);
  return sim;
}

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

export default async function shareBench(ctx: BenchContext): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const rec = (name: string, value: number, unit: string, note?: string) => out.push({ suite: "share", name, value, unit, ...(note ? { note } : {}) });
  const sizes = ctx.quick ? [2 ** 20] : [2 ** 20, 2 ** 24, 2 ** 26];
  for (const pages of sizes) {
    const M = `${pages / 2 ** 20}M pages`;
    // ---- TPS ----
    {
      let sim: Simulation | null = await filled(pages, "esxi");
      const raw = shareExports(sim);
      const k = sim.engine.k;
      const t = performance.now();
      raw.tpsScan(0, pages); // first pass: every shareable content becomes a hint or a frame
      const first = performance.now() - t;
      const step = Math.min(pages, 2 ** 22);
      const steady = await medianMs(`tps ${M}`, () => raw.tpsScan(0, step), { iterations: pages > 2 ** 24 ? 3 : 10, time: 0 });
      const floor = await medianMs(`floor ${M}`, () => raw.shareFloorPass(0, 0), { iterations: pages > 2 ** 24 ? 3 : 10, time: 0 });
      const floorRandom = await medianMs(`floor ${M}`, () => raw.shareFloorPass(0, 1), { iterations: pages > 2 ** 24 ? 3 : 10, time: 0 });
      const nsSteady = (steady * 1e6) / step;
      const nsFloor = (floor * 1e6) / pages;
      const nsRandom = (floorRandom * 1e6) / pages;
      rec(`TPS scan, ${M}, first pass`, round(pages / (first / 1000)), "pages/s");
      rec(`TPS scan, ${M}, steady pass`, round(step / (steady / 1000)), "pages/s", `${round(nsSteady, 1)} ns/page`);
      rec(`TPS pass / bandwidth floor, ${M}`, round(nsSteady / nsFloor, 1), "x", `floor ${round(nsFloor, 2)} ns/page: a plain pass over the 8-byte entries in PPN order`);
      rec(`TPS pass / random-order floor, ${M}`, round(nsSteady / nsRandom, 1), "x", `floor ${round(nsRandom, 2)} ns/page: the same entries read in the scanner's random order`);
      const bytes = sim.engine.hostCounter(k.H_SHARE_TABLE_BYTES);
      const entries = raw.tpsEntries();
      // tracked: the pages the table stands for (zero, image and duplicate pages; unique ones need no entry)
      const tracked = Math.round(pages * CONTENT.zero) + Math.round(pages * CONTENT.image) + Math.round(pages * CONTENT.duplicate);
      rec(`TPS table bytes per guest page, ${M}`, round(bytes / pages, 2), "B/page", `${round(bytes / 2 ** 20)} MiB reserved (incl. outgrown blocks); ${round(bytes / tracked, 1)} B per tracked (shareable) page; ${entries} live entries = ${round((entries * 16) / tracked, 1)} B per tracked page`);
      sim = null; // let its linear memory go before the next
    }
    // ---- KSM ----
    {
      let sim: Simulation | null = await filled(pages, "ksm");
      const raw = shareExports(sim);
      const k = sim.engine.k;
      sim.scenario.host.ksm.pages_to_scan = pages + 1; // one full scan per wake-up
      const scan = () => {
        const t = performance.now();
        sim!.sharing.wake(1);
        return performance.now() - t;
      };
      const s1 = scan(); // checksums only
      const s2 = scan(); // merging
      const steady = await medianMs(`ksm ${M}`, scan, { iterations: pages > 2 ** 24 ? 3 : 10, time: 0 });
      const floor = await medianMs(`floor ${M}`, () => raw.shareFloorPass(0, 0), { iterations: pages > 2 ** 24 ? 3 : 10, time: 0 });
      rec(`KSM full scan 1 (checksums), ${M}`, round(pages / (s1 / 1000)), "pages/s");
      rec(`KSM full scan 2 (merging), ${M}`, round(pages / (s2 / 1000)), "pages/s", `${raw.ksmStat(k.KSM_PAGES_SHARED)} KSM pages, ${raw.ksmStat(k.KSM_PAGES_SHARING)} sharing`);
      rec(`KSM steady full scan, ${M}`, round(pages / (steady / 1000)), "pages/s", `${round((steady * 1e6) / pages, 1)} ns/page`);
      rec(`KSM steady scan / bandwidth floor, ${M}`, round(steady / floor, 1), "x");
      const bytes = sim.engine.hostCounter(k.H_SHARE_TABLE_BYTES);
      rec(`KSM bytes per guest page, ${M}`, round(bytes / pages, 2), "B/page", `${round(bytes / 2 ** 20)} MiB: rmap words 4 B/page + trees + nodes`);
      sim = null;
    }
  }
  // ---- the real KSM against the simulator, same pattern and knobs ----
  const avail = ksmAvailable();
  const ns = ctx.quick ? [100_000] : [100_000, 400_000, 1_000_000];
  for (const n of ns) {
    const pattern = { distinct: n / 4, copies: 4 };
    const knobs = { pages_to_scan: n, sleep_millisecs: 0 };
    // the simulator: median of 3 runs (wall ms from ksmd's start to the converged counters)
    const simMs: number[] = [];
    let simCounters = "";
    for (let i = 0; i < 3; i++) {
      const s = await runSimKsm(pattern, knobs);
      simMs.push(s.msToConverge!);
      simCounters = `${s.pages_shared}/${s.pages_sharing} after ${s.fullScansToConverge} scans`;
    }
    simMs.sort((a, b) => a - b);
    rec(`simulated KSM merging ${n} pages (${n / 4} × 4)`, round(simMs[1], 1), "ms", simCounters);
    if (!avail.ok) {
      rec(`real KSM merging ${n} pages`, NaN, "ms", `skipped: ${avail.reason}`);
      continue;
    }
    const real = await runRealKsm(pattern, knobs, { timeoutMs: 120_000 });
    rec(`real KSM merging ${n} pages (${n / 4} × 4)`, real.msToConverge ?? NaN, "ms", `${real.pages_shared}/${real.pages_sharing} after ${real.fullScansToConverge} scans`);
    rec(`simulator speed-up over the real KSM, ${n} pages`, round((real.msToConverge ?? NaN) / simMs[1]), "x", "goal >= 100");
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const records = await shareBench({ quick: process.argv.includes("--quick") });
  console.log("| suite | measurement | value | unit | note |\n|---|---|---|---|---|");
  for (const r of records) console.log(`| ${r.suite} | ${r.name} | ${r.value} | ${r.unit} | ${r.note ?? ""} |`);
}
