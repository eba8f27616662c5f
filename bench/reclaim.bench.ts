// Reclamation throughput: pages reclaimed per second of wall time, at 16M and 64M guest pages (64
// and 256 GiB VMs): host swap victims (random selection, share check, swap bookkeeping) with
// compression off / on and with the SSD host cache; balloon inflation from free pages and from
// the guest's own reclaim (sampled LRU age, sweeps, page-file accounting); and the fault side:
// guest touches served by swap-in. `npm run bench` runs it with the other suites; alone:
// `npx tsx bench/reclaim.bench.ts [--quick]`.
//
// Setup: every VM's pages are backed by the guest's zeroing sweep, then given unique content, a
// guest class (70 % anonymous, 30 % page cache) and an LRU epoch straight in the page table (a
// workload would need billions of touches to get there). Each measurement is one engine call of
// pages / 64 pages, repeated by tinybench (2 warm-up calls and 8 timed); victims get scarcer as a
// VM empties (16 % of it is taken in all), so the figures are for a VM mostly resident.
import { pathToFileURL } from "node:url";
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import type { ReclaimExports } from "../src/policy/reclaim.js";
import { scenario, vm, GiB } from "../test/helpers.js";
import { medianMs, type BenchContext, type BenchRecord } from "./lib.js";


interface Raw extends ReclaimExports {
  powerOn(vm: number, overhead: number): number;
  zeroSweep(vm: number, count: number): number;
  touchVm(vm: number, count: number, epoch: number): number;
  memory: WebAssembly.Memory;
}

/** Back every page of `vm`, then give it unique content, a guest class and an epoch in 0..99. */
function fill(sim: Simulation, i: number, pages: number): void {
  const e = sim.engine;
  const k = e.k;
  const raw = e.raw as unknown as Raw;
  raw.powerOn(i, 0);
  raw.zeroSweep(i, pages);
  const base = e.vmParam(i, k.P_PAGE_BASE) >>> 0;
  const t = new Uint32Array(raw.memory.buffer, base, pages * 2);
  let anon = 0;
  let x = 0x9e3779b9 ^ i;
  for (let p = 0; p < pages; p++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const isAnon = (x >>> 0) % 10 < 7;
    if (isAnon) anon++;
    const epoch = (x >>> 8) % 100;
    t[2 * p] = (t[2 * p] & 0x3f & ~0x18) | ((isAnon ? 2 : 1) << 6) | (epoch << 16) | 1;
    t[2 * p + 1] = 0xffffffff;
  }
  // the guest's class counts, written where the engine keeps them
  const host = (e as unknown as { host: number }).host;
  const counters = new Float64Array(raw.memory.buffer, host + k.HOST_RECORD + i * k.VM_RECORD + k.COUNTERS_AT, k.C_COUNTERS);
  counters[k.C_GUEST_FREE] = 0;
  counters[k.C_GUEST_ANON] = anon;
  counters[k.C_GUEST_CACHE] = pages - anon;
  e.setVmParam(i, k.P_SWAP_PAGES, pages);
  e.setVmParam(i, k.P_GPF_PAGES, pages);
}

export default async function reclaimBench(ctx: BenchContext): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const sizes = ctx.quick ? [1 << 20] : [1 << 24, 1 << 26];
  for (const pages of sizes) {
    const memory = pages * 4096;
    const label = `${pages / 2 ** 20}M pages`;
    const BATCH = pages / 64; // pages per engine call: 10 calls (2 of them warm-up) take 16 % of a VM
    const names = ["swap", "zip", "ssd", "guest", "free"];
    const sim = await createSimulation(
      scenario({ hostMemory: names.length * memory + 4 * GiB, settings: { "Mem.ShareScanGHz": 0 }, vms: names.map((n) => vm(n, { memory, powerOn: null })) }),
    );
    const e = sim.engine;
    const k = e.k;
    const raw = e.raw as unknown as Raw;
    for (let i = 0; i < 4; i++) fill(sim, i, pages);
    raw.powerOn(4, 0); // "free": nothing touched, every page free in the guest
    const record = (name: string, ms: number, note: string, n: number = BATCH, unit = "pages/s") =>
      out.push({ suite: "reclaim", name: `${name}, ${label}`, value: Math.round(n / (ms / 1000)), unit, note });
    // host swap: one swapVm call takes BATCH random victims
    const swap = async (i: number, zipKb: number, name: string, note: string) => {
      e.setVmParam(i, k.P_ZIP_CAP_KB, zipKb);
      record(name, await medianMs(`${name} ${label}`, () => raw.swapVm(i, BATCH), { iterations: 8, time: 0 }), note);
    };
    await swap(0, 0, "host swap, compression off", "random victims written to the swap file (HDD)");
    await swap(1, Math.floor(pages * 0.1) * 4, "host swap, compression on", "cap 10 %: 60 % of victims compress until the cache is full, then the oldest go to swap");
    const slots = 1 << 20;
    raw.setSwapCache(slots); // 4 GiB of SSD host cache from here on
    await swap(2, 0, "host swap to the SSD host cache", `a log of ${slots / 2 ** 20}M slots: once it wraps each write evicts the oldest`);
    // the guest's side: balloon inflation
    const balloon = async (i: number, free: boolean, name: string, note: string) => {
      let target = e.vmCounter(i, k.C_BALLOONED);
      const ms = await medianMs(`${name} ${label}`, () => {
        target += BATCH;
        raw.balloonVm(i, target, free ? BATCH : 0, free ? 0 : BATCH, 0, 100);
      }, { iterations: 8, time: 0 });
      record(name, ms, note);
    };
    await balloon(4, true, "balloon inflation, free pages", "non-sleeping: pages the guest never used");
    await balloon(3, false, "balloon inflation, guest reclaim", "sampled LRU age and sweeps: page cache dropped, then anonymous pages to the page file");
    // the fault side: a sixth of VM 0 is swapped; uniform touches over all of it, every touch
    // served (no tick time budget: this is the engine's own cost)
    raw.configureReclaim(0, 5000, 100, 20, 2, 5000, 5000);
    e.setVmParam(0, k.P_ACTIVE, pages);
    e.setVmParam(0, k.P_PATTERN, k.PATTERN_UNIFORM);
    let epoch = 200;
    const touches = 1 << 20;
    const before = e.vmCounter(0, k.C_SWAP_IN);
    const ms = await medianMs(`swap-in faults ${label}`, () => raw.touchVm(0, touches, epoch++ & 0xffff), { iterations: 5, time: 0 });
    const ins = e.vmCounter(0, k.C_SWAP_IN) - before;
    record("guest touches, a sixth of the pages swapped", ms, `${Math.round(ins / 1024)}K swap-ins served (engine wall time; the simulated latency is separate)`, touches, "touches/s");
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const records = await reclaimBench({ quick: process.argv.includes("--quick") });
  console.log("| suite | measurement | value | unit | note |\n|---|---|---|---|---|");
  for (const r of records as BenchRecord[]) console.log(`| ${r.suite} | ${r.name} | ${r.value.toLocaleString("en-US")} | ${r.unit} | ${r.note ?? ""} |`);
}
