// Differential test: the WASM engine against the plain-TypeScript reference model
// (test/reference/), on random small scenarios driven by the same Simulation and policy code. Same
// seed → the same counters from both, every tick; the same samples (esxtop rows); the same page
// tables, region tables and zipf tables at the end and twice on the way.
//
// The scenarios cover every mechanism (test/reference/README.md): ESXi TPS or Linux KSM, host
// swap, compression, the SSD cache and balloon drivers, each on or off.
// Memory runs out in many of them: touches stall, the scheduler blocks VMs, TPS breaks large pages
// and shares at its active rate, balloons inflate (the guest gives free pages, drops cache, pages
// out), the host swaps random victims (sharing, compressing them first), and touches read,
// decompress, page in or take back from the balloon.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { Simulation } from "../src/sim/simulation.js";
import type { Scenario } from "../src/scenario/types.js";
import { loadEngine, type Engine } from "../src/engine.js";
import { referenceEngine } from "./reference/engine.js";
import { engineLayout } from "./reference/records.js";
import { recordDifference, tableDifference } from "./reference/compare.js";
import type { Model } from "./reference/model.js";
import { caseArb, build, type Case } from "./reference/scenarios.js";

const RUNS = Number(process.env.VMEMSIM_DIFF_RUNS ?? 40);
/** another build of the engine to compare (default: build/vmemsim.wasm) */
const WASM = process.env.VMEMSIM_DIFF_WASM ? readFileSync(process.env.VMEMSIM_DIFF_WASM) : undefined;

/** What the runs went through, so the test can tell it exercised the paths it claims to. */
const seen = { stalls: 0, blocked: 0, debt: 0, largeBacked: 0, largeBroken: 0, zeroed: 0, sampleHits: 0, writes: 0, powerOffs: 0, zipf: 0, swapOut: 0, swapIn: 0, shared: 0, cow: 0, tpsPasses: 0, zipOut: 0, zipIn: 0, zipEvict: 0, ssdOut: 0, ssdIn: 0, mctlIn: 0, mctlOut: 0, gswapOut: 0, gswapIn: 0, gcacheMiss: 0, takeBack: 0, ksmShared: 0, ksmFullScans: 0 };

interface CompareOptions {
  /** called on both simulations before each tick */
  beforeTick?: (sim: Simulation, t: number) => void;
  /** the expected distinct contents both engines' sharing tables are sized for (default: the policy's) */
  shareExpected?: number;
}

/** A simulation on `engine` whose shareInit sizes the table for `expected` contents when given. */
function onEngine(sc: Scenario, engine: Engine, expected?: number): Simulation {
  if (expected !== undefined) {
    const raw = engine.raw as unknown as Record<string, (...a: number[]) => number>;
    const init = raw.shareInit;
    raw.shareInit = (policy, _expected, seed) => init(policy, expected, seed);
  }
  return new Simulation(structuredClone(sc), engine, false);
}

async function compare(sc: Scenario, opts: CompareOptions = {}): Promise<Simulation> {
  const { beforeTick, shareExpected } = opts;
  const wasm = onEngine(sc, await loadEngine(WASM), shareExpected);
  const reference = referenceEngine(await engineLayout());
  const ref = Object.assign(onEngine(sc, reference.engine, shareExpected), { reference: reference.model });
  const ticks = Math.round(sc.duration / sc.tick);
  const tablesAt = new Set([Math.floor(ticks / 3), Math.floor((2 * ticks) / 3), ticks]);
  const k = wasm.engine.k;
  for (let t = 1; t <= ticks; t++) {
    beforeTick?.(wasm, t);
    beforeTick?.(ref, t);
    wasm.step(sc.tick);
    ref.step(sc.tick);
    const diff = recordDifference(wasm, ref);
    if (diff) throw new Error(`tick ${t} (t=${wasm.time}s): ${diff}`);
    expect(ref.state).toBe(wasm.state);
    if (t % 10 === 0) expect(ref.sample()).toEqual(wasm.sample());
    if (tablesAt.has(t)) {
      const tdiff = tableDifference(wasm, ref as Simulation & { reference: Model });
      if (tdiff) throw new Error(`tick ${t} (t=${wasm.time}s): ${tdiff}`);
    }
    for (const vm of wasm.vms) seen.debt += wasm.engine.vmCounter(vm.index, k.C_DEBT_US) > 0 ? 1 : 0;
  }
  expect(ref.log).toEqual(wasm.log);
  for (const vm of wasm.vms) {
    const c = wasm.engine.vmCounters(vm.index);
    seen.stalls += c[k.C_ALLOC_STALLS];
    seen.blocked += c[k.C_BLOCKED];
    seen.largeBacked += c[k.C_LARGE_BACKED];
    seen.largeBroken += c[k.C_LARGE_BROKEN];
    seen.zeroed += c[k.C_ZEROED];
    seen.sampleHits += c[k.C_SAMPLE_HITS];
    seen.writes += c[k.C_WRITES];
    seen.swapOut += c[k.C_SWAP_OUT];
    seen.swapIn += c[k.C_SWAP_IN];
    seen.shared += c[k.C_SHARE_MERGES];
    seen.cow += c[k.C_COW_BREAKS];
    seen.tpsPasses += c[k.C_SHARE_PASSES];
    seen.zipOut += c[k.C_ZIP_OUT];
    seen.zipIn += c[k.C_ZIP_IN];
    seen.zipEvict += c[k.C_ZIP_EVICT];
    seen.ssdOut += c[k.C_SSD_OUT];
    seen.ssdIn += c[k.C_SSD_IN];
    seen.mctlIn += c[k.C_MCTL_IN];
    seen.mctlOut += c[k.C_MCTL_OUT];
    seen.gswapOut += c[k.C_GSWAP_OUT];
    seen.gswapIn += c[k.C_GSWAP_IN];
    seen.gcacheMiss += c[k.C_GCACHE_MISS];
    seen.takeBack += c[k.C_FAULT_BALLOONED];
  }
  seen.powerOffs += wasm.log.filter((e) => e.kind === "powerOff" && e.ok).length;
  const ksm = wasm.engine.raw as unknown as { ksmStat(i: number): number };
  seen.ksmShared += ksm.ksmStat(k.KSM_PAGES_SHARED) + ksm.ksmStat(k.KSM_PAGES_SHARING);
  seen.ksmFullScans += ksm.ksmStat(k.KSM_FULL_SCANS);
  seen.zipf += wasm.vms.some((v) => v.phase.pattern.kind === "zipf") ? 1 : 0;
  return wasm;
}

describe("WASM engine = reference model, tick by tick", () => {
  it(`agrees on ${RUNS} random small scenarios (counters every tick, samples, page tables)`, async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        await compare(build(c));
      }),
      { numRuns: RUNS, seed: 20261129 },
    );
    // the runs went through every path the reference models
    expect(seen.stalls, `stalls: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.blocked, `blocked: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.debt, `debt: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.largeBacked, `largeBacked: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.largeBroken, `largeBroken: ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(0);
    expect(seen.zeroed, `zeroed: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.sampleHits, `sampleHits: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.writes, `writes: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.powerOffs, `powerOffs: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.zipf, `zipf: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.swapOut, `swapOut: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.swapIn, `swapIn: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.shared, `shared: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.cow, `cow: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    expect(seen.tpsPasses, `tpsPasses: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    for (const c of ["zipOut", "zipIn", "ssdOut", "ssdIn", "mctlIn", "ksmShared", "ksmFullScans"] as const) expect(seen[c], `${c}: ${JSON.stringify(seen)}`).toBeGreaterThan(0);
  });

  it("agrees when a tick runs out of time mid-batch (stalls cost more than the tick)", async () => {
    // 2 MiB of free memory for a VM touching 40 MiB: most first touches stall at 5 ms each, so a
    // tick's time is gone after ~200 of its 5000 touches and the rest of the batch is drawn unused
    const sc = build({
      seed: 99, tick: 1, hostFrac: 0.05, largePages: false, swapRate: 0, tps: 0, salting: 2, zip: 0, cacheMb: 0, ksm: null, samplePeriod: 5, sampleSize: 50,
      vms: [{ pages: 10240, windows: false, bootTime: 0, image: "img-a", content: { zero: 0.1, image: 0.2, duplicate: 0.05, duplicateCopies: 4 }, powerOn: 0, reserved: 0, share: 1, balloon: false, pageFile: 1,
        phases: [[1, { activeFrac: 1, touchRate: 5000, pattern: { kind: "uniform" }, writeRatio: 0.3 }]] }],
      events: [],
    });
    const wasm = await compare(sc);
    const k = wasm.engine.k;
    expect(wasm.engine.vmCounter(0, k.C_TOUCHES)).toBeLessThan(wasm.engine.vmCounter(0, k.C_DEMAND) / 2);
  });

  it("agrees when the swap file fills (a swap target pinned past it)", async () => {
    // a VM with 90 % reserved has a swap file of a tenth of its pages; from t = 20 s the host is
    // told to swap all of it out: the file fills and the rest of each tick's victims stay
    const sc = build({
      seed: 5, tick: 1, hostFrac: 1.5, largePages: true, swapRate: 25600, tps: 0, salting: 2, zip: 0, cacheMb: 0, ksm: null, samplePeriod: 10, sampleSize: 100,
      vms: [{ pages: 8192, windows: true, bootTime: 5, image: "img-a", content: { zero: 0.1, image: 0.2, duplicate: 0.05, duplicateCopies: 4 }, powerOn: 0, reserved: 0.9, share: 1, balloon: false, pageFile: 1,
        phases: [[1, { activeFrac: 1, touchRate: 3000, pattern: { kind: "uniform" }, writeRatio: 0.3 }]] }],
      events: [],
    });
    const wasm = await compare(sc, {
      beforeTick: (sim, t) => {
        if (t === 20) sim.reclaim.pin(sim.vms[0], { swtgt: 8192 });
      },
    });
    const k = wasm.engine.k;
    expect(wasm.engine.vmCounter(0, k.C_SWAP_FULL)).toBeGreaterThan(0);
    expect(wasm.engine.vmCounter(0, k.C_SWAPPED)).toBe(wasm.engine.vmParam(0, k.P_SWAP_PAGES));
    expect(wasm.engine.vmCounter(0, k.C_SWAP_IN)).toBeGreaterThan(0);
  });

  it("agrees when the compression cache is full (its oldest pages go to swap, through the SSD log)", async () => {
    // from t = 20 s the host is told to take 6000 of 8192 pages: the cache (10 % of the VM) fills,
    // then each new compressed page sends the oldest to the swap file via a 256-slot SSD log
    const sc = build({
      seed: 12, tick: 1, hostFrac: 1.5, largePages: true, swapRate: 25600, tps: 4, salting: 2, zip: 1, cacheMb: 1, ksm: null, samplePeriod: 10, sampleSize: 100,
      vms: [{ pages: 8192, windows: true, bootTime: 5, image: "img-a", content: { zero: 0.1, image: 0.2, duplicate: 0.05, duplicateCopies: 4 }, powerOn: 0, reserved: 0, share: 1, balloon: false, pageFile: 1,
        phases: [[1, { activeFrac: 1, touchRate: 3000, pattern: { kind: "zipf", s: 0.9 }, writeRatio: 0.3 }]] }],
      events: [],
    });
    const wasm = await compare(sc, {
      beforeTick: (sim, t) => {
        if (t === 20) sim.reclaim.pin(sim.vms[0], { swtgt: 6000 });
      },
    });
    const k = wasm.engine.k;
    for (const c of [k.C_ZIP_OUT, k.C_ZIP_EVICT, k.C_ZIP_IN, k.C_SSD_OUT, k.C_SSD_IN]) expect(wasm.engine.vmCounter(0, c)).toBeGreaterThan(0);
  });

  it("agrees when the balloon makes the guest page out, then deflates (page-ins, exchanges)", async () => {
    // a guest that wrote all of its memory (anonymous pages, no cache) is told at t = 15 s to give
    // the balloon half of it: it pages out to its page file; its touches page back in and take
    // pages back from the balloon; at t = 45 s the target drops and the balloon deflates
    const sc = build({
      seed: 21, tick: 1, hostFrac: 1.5, largePages: true, swapRate: 0, tps: 0, salting: 2, zip: 0, cacheMb: 0, ksm: null, samplePeriod: 10, sampleSize: 100,
      vms: [{ pages: 6000, windows: false, bootTime: 2, image: "img-a", content: { zero: 0.1, image: 0.2, duplicate: 0.05, duplicateCopies: 4 }, powerOn: 0, reserved: 0, share: 1, balloon: true, pageFile: 1,
        phases: [[1, { activeFrac: 1, touchRate: 6000, pattern: { kind: "zipf", s: 0.8 }, writeRatio: 1 }]] }],
      events: [],
    });
    const wasm = await compare(sc, {
      beforeTick: (sim, t) => {
        if (t === 15) sim.reclaim.pin(sim.vms[0], { mctltgt: 3000 });
        if (t === 45) sim.reclaim.pin(sim.vms[0], { mctltgt: 500 });
      },
    });
    const k = wasm.engine.k;
    for (const c of [k.C_MCTL_IN, k.C_MCTL_OUT, k.C_GSWAP_OUT, k.C_GSWAP_IN, k.C_FAULT_BALLOONED]) expect(wasm.engine.vmCounter(0, c)).toBeGreaterThan(0);
  });

  it("agrees when the TPS table outgrows its first size (rebuilt larger, stale hints dropped)", async () => {
    // tables sized for one content (1024 entries) while three clones of one image, salted apart,
    // write thousands of distinct shareable pages: the table is rebuilt; host swap makes hints stale
    const sc = build({
      seed: 8, tick: 1, hostFrac: 0.6, largePages: false, swapRate: 25600, tps: 4, salting: 2, zip: 0, cacheMb: 0, ksm: null, samplePeriod: 10, sampleSize: 100,
      vms: [0, 1, 2].map(() => ({ pages: 6000, windows: false, bootTime: 0, image: "img-a" as const, content: { zero: 0.1, image: 0.4, duplicate: 0.2, duplicateCopies: 2 } as Case["vms"][number]["content"], powerOn: 0, reserved: 0, share: 1 as const, balloon: false, pageFile: 1 as const,
        phases: [[1, { activeFrac: 1, touchRate: 3000, pattern: { kind: "uniform" as const }, writeRatio: 0.7 as const }]] as Case["vms"][number]["phases"] })),
      events: [],
    });
    const wasm = await compare(sc, { shareExpected: 1 });
    const k = wasm.engine.k;
    expect(wasm.engine.hostCounter(k.H_SHARE_TABLE_BYTES)).toBeGreaterThan(1024 * 16); // rebuilt at least once
    expect(wasm.vms.reduce((a, v) => a + wasm.engine.vmCounter(v.index, k.C_SHARE_MERGES), 0)).toBeGreaterThan(0);
  });

  it("agrees under KSM with chains of dups, COW breaks, stale KSM pages, unmerge and restart", async () => {
    // three clones, max_page_sharing 2 (so most contents become chains of dups), the zero page
    // merged, writes breaking COW (KSM pages freed under ksmd's feet); run = 2 at 40 s, 1 at 50 s
    const sc = build({
      seed: 31, tick: 1, hostFrac: 1.5, largePages: true, swapRate: 0, tps: 0, salting: 0, zip: 0, cacheMb: 0, samplePeriod: 10, sampleSize: 100,
      ksm: { pages_to_scan: 1000, sleep_millisecs: 20, max_page_sharing: 2, use_zero_pages: 1, smart_scan: 1 },
      vms: [0, 1, 2].map(() => ({ pages: 4000, windows: false, bootTime: 0, image: "img-a" as const, content: { zero: 0.3, image: 0.4, duplicate: 0.2, duplicateCopies: 4 } as Case["vms"][number]["content"], powerOn: 0, reserved: 0, share: 1 as const, balloon: false, pageFile: 1 as const,
        phases: [[1, { activeFrac: 1, touchRate: 1500, pattern: { kind: "uniform" as const }, writeRatio: 0.3 as const }]] as Case["vms"][number]["phases"] })),
      events: [
        { at: 40, kind: "ksmRun", vm: 0, phase: { activeFrac: 1, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }, on: true, cacheMb: 0, run: 2 },
        { at: 50, kind: "ksmRun", vm: 0, phase: { activeFrac: 1, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }, on: true, cacheMb: 0, run: 1 },
      ],
    });
    let chains = 0;
    const wasm = await compare(sc, {
      beforeTick: (sim) => {
        chains = Math.max(chains, (sim.engine.raw as unknown as { ksmStat(i: number): number }).ksmStat(sim.engine.k.KSM_STABLE_NODE_CHAINS));
      },
    });
    const k = wasm.engine.k;
    const stat = (i: number) => (wasm.engine.raw as unknown as { ksmStat(i: number): number }).ksmStat(i);
    expect(chains).toBeGreaterThan(0);
    expect(stat(k.KSM_PAGES_SHARED) + stat(k.KSM_PAGES_SHARING)).toBeGreaterThan(0);
    expect(stat(k.KSM_ZERO_PAGES)).toBeGreaterThan(0);
    expect(wasm.vms.reduce((a, v) => a + wasm.engine.vmCounter(v.index, k.C_COW_BREAKS), 0)).toBeGreaterThan(0);
  });

  it("builds the same zipf quantile tables for working sets from 1 page to 2^24 pages", async () => {
    const wasm = await loadEngine();
    const k = wasm.k;
    wasm.init(2 ** 25, 0, false, 1);
    expect(wasm.addVm(0, 2 ** 24, 1)).toBe(true);
    const { model } = referenceEngine(k);
    model.init(2 ** 25, 0, 0, 1);
    model.addVm(0, 1, 1); // the table depends on the parameters only, not on the VM's pages
    const q = new Uint32Array(wasm.raw.memory.buffer, wasm.vmParam(0, k.P_QTABLE_BASE), 1025);
    for (const s of [0.3, 0.5, 0.9, 1, 1.01, 1.5, 2.5]) {
      for (const n of [1, 2, 3, 7, 100, 511, 4096, 65537, 1_000_003, 2 ** 24]) {
        for (const e of [wasm, { setVmParam: (vm: number, i: number, v: number) => model.rec.setParam(vm, i, v) }]) {
          e.setVmParam(0, k.P_PATTERN, k.PATTERN_ZIPF);
          e.setVmParam(0, k.P_ACTIVE, n);
          e.setVmParam(0, k.P_ZIPF_S, Math.round(s * 1e6));
        }
        wasm.raw.setPattern(0);
        model.setPattern(0);
        expect([...q], `s=${s}, n=${n}`).toEqual(model.vms[0].qtable);
      }
    }
  });
});
