// The engine core: page states, first touch, large pages, machine accounting, content keys,
// access patterns, conservation. Scenarios are built directly (test/helpers.ts).
import { describe, expect, it } from "vitest";
import { createSimulation, InvariantError, type Simulation } from "../src/sim/simulation.js";
import { scenario, vm, GiB, MiB } from "./helpers.js";

const PAGE = 4096;

/** The page table of VM `i` as [meta, key] pairs, read straight from linear memory. */
function table(sim: Simulation, i: number): Uint32Array {
  const e = sim.engine;
  const base = e.vmParam(i, e.k.P_PAGE_BASE);
  const pages = e.vmParam(i, e.k.P_PAGES);
  return new Uint32Array(e.raw.memory.buffer, base, pages * 2);
}

function count(t: Uint32Array, pred: (meta: number, key: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < t.length; i += 2) if (pred(t[i], t[i + 1])) n++;
  return n;
}

const state = (m: number) => m & 7;
const noLarge = { "Mem.AllocGuestLargePage": 0 };

describe("first touch and page states", () => {
  it("backs exactly the distinct pages touched, one 4 KiB page each, without large pages", async () => {
    const sim = await createSimulation(
      scenario({ settings: noLarge, vms: [vm("a", { memory: 64 * MiB, workload: [{ at: 0, active: 64 * MiB, touchRate: 5000, pattern: { kind: "uniform" }, writeRatio: 0 }] })] }),
      { check: true },
    );
    sim.step(1);
    const t = table(sim, 0);
    const touched = count(t, (m) => (m & 8) !== 0);
    const c = sim.engine.vmCounters(0);
    const k = sim.engine.k;
    expect(touched).toBeGreaterThan(4000); // 5000 draws over 16384 pages: ~4300 distinct
    expect(touched).toBeLessThan(5000);
    expect(c[k.C_FIRST_TOUCH]).toBe(touched);
    expect(c[k.C_PRIVATE]).toBe(touched);
    expect(count(t, (m) => state(m) === 1)).toBe(touched);
    expect(c[k.C_UNBACKED]).toBe(16384 - touched);
    expect(c[k.C_TOUCHES]).toBe(5000);
    expect(c[k.C_READS]).toBe(5000);
    const host = sim.sample().host;
    expect(host["PMEM.other"]).toBeCloseTo((touched + 8 * 256) / 256, 2); // private + 8 MiB overhead
  });

  it("a first read leaves the page zero-filled (key 0); a write stores the page's class content", async () => {
    const sim = await createSimulation(
      scenario({ settings: noLarge, vms: [vm("a", { memory: 16 * MiB, content: { zero: 0, image: 0, duplicate: 0, duplicateCopies: 2 }, workload: [{ at: 0, active: 16 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }] })] }),
      { check: true },
    );
    sim.step(1);
    const t = table(sim, 0);
    const dirty = count(t, (m) => (m & 16) !== 0);
    expect(dirty).toBeGreaterThan(0);
    // every written page holds unique content; every page only read holds zeros
    expect(count(t, (m, key) => (m & 16) !== 0 && key !== 0xffffffff)).toBe(0);
    expect(count(t, (m, key) => (m & 8) !== 0 && (m & 16) === 0 && key !== 0)).toBe(0);
    // guest view: written pages are anonymous, pages only read are page cache
    const c = sim.engine.vmCounters(0);
    const k = sim.engine.k;
    expect(c[k.C_GUEST_ANON]).toBe(dirty);
    expect(c[k.C_GUEST_CACHE]).toBe(count(t, (m) => (m & 8) !== 0 && (m & 16) === 0));
  });

  it("stalls touches when machine memory runs out and nothing reclaims, keeping memory conserved", async () => {
    const sim = await createSimulation(
      scenario({ hostMemory: 256 * MiB, settings: { ...noLarge, "Mem.ShareScanGHz": 0 }, vms: [vm("big", { memory: 512 * MiB, workload: [{ at: 0, active: 512 * MiB, touchRate: 200000, pattern: { kind: "uniform" }, writeRatio: 0.2 }] })] }),
      { check: true },
    );
    sim.reclaim.pin(sim.vms[0], { mctltgt: 0, swtgt: 0 }); // no balloon, no swap, no sharing: only first touches
    sim.step(3);
    const s = sim.sample();
    expect(s.host["PMEM.free"]).toBe(0);
    expect(Number(s.vms[0].STALLS)).toBeGreaterThan(0);
    // 256 MiB host - 64 MiB vmk - 8 MiB overhead = 184 MiB grantable
    expect(s.vms[0].GRANT).toBe(184);
  });
});

describe("large pages", () => {
  it("touching one page of an untouched 2 MiB region backs all 512 (KB1021896)", async () => {
    const sim = await createSimulation(
      scenario({ vms: [vm("a", { memory: 64 * MiB, workload: [{ at: 0, active: 64 * MiB, touchRate: 3, pattern: { kind: "uniform" }, writeRatio: 0 }] })] }),
      { check: true },
    );
    sim.step(1);
    const c = sim.engine.vmCounters(0);
    const k = sim.engine.k;
    const regions = c[k.C_LARGE_REGIONS];
    expect(regions).toBeGreaterThanOrEqual(1);
    expect(regions).toBeLessThanOrEqual(3);
    expect(c[k.C_PRIVATE]).toBe(regions * 512);
    expect(c[k.C_FIRST_TOUCH]).toBe(regions);
    expect(count(table(sim, 0), (m) => (m & 8) !== 0)).toBeLessThanOrEqual(3);
  });

  it("a partial last region and a host without whole frames fall back to 4 KiB pages", async () => {
    // 2 MiB + 4 KiB: one full region, one region of a single page
    const sim = await createSimulation(
      scenario({ vms: [vm("a", { memory: 2 * MiB + PAGE, workload: [{ at: 0, active: 2 * MiB + PAGE, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0 }] })] }),
      { check: true },
    );
    sim.step(1);
    const c = sim.engine.vmCounters(0);
    const k = sim.engine.k;
    expect(c[k.C_LARGE_REGIONS]).toBe(1);
    expect(c[k.C_PRIVATE]).toBe(513);
    expect(c[k.C_FIRST_TOUCH]).toBe(2);
  });

  it("breaking large pages keeps every page private and the machine memory the same", async () => {
    const sim = await createSimulation(scenario({ vms: [vm("a", { memory: 64 * MiB })] }), { check: true });
    sim.step(2);
    const k = sim.engine.k;
    const before = sim.engine.vmCounters(0);
    const free = sim.sample().host["PMEM.free"];
    expect(before[k.C_LARGE_REGIONS]).toBeGreaterThan(0);
    const broken = sim.engine.raw.breakLargePages(0);
    expect(broken).toBe(before[k.C_LARGE_REGIONS]);
    const after = sim.engine.vmCounters(0);
    expect(after[k.C_LARGE_REGIONS]).toBe(0);
    expect(after[k.C_LARGE_BROKEN]).toBe(broken);
    expect(after[k.C_PRIVATE]).toBe(before[k.C_PRIVATE]);
    expect(sim.sample().host["PMEM.free"]).toBe(free);
    sim.verify();
  });

  it("power-off returns never-broken large pages as whole frames, broken ones as loose pages", async () => {
    const sim = await createSimulation(
      scenario({ vms: [vm("a", { memory: 64 * MiB }), vm("b", { memory: 64 * MiB })], events: [{ at: 5, kind: "powerOff", vms: ["a", "b"] }] }),
      { check: true },
    );
    const k = sim.engine.k;
    const wholeAtStart = sim.engine.hostCounter(k.H_FREE_LARGE);
    sim.step(3);
    sim.engine.raw.breakLargePages(1);
    sim.step(3);
    const h = sim.engine.hostCounters();
    const bRegions = sim.engine.vmCounter(1, k.C_LARGE_BROKEN);
    // a's large pages came back whole, b's broken ones did not; nothing is lost
    expect(h[k.H_FREE_LARGE]).toBe(wholeAtStart - bRegions - Math.ceil((16 * 256) / 512));
    expect(h[k.H_FREE_LARGE] * 512 + h[k.H_FREE_SMALL]).toBe(h[k.H_TOTAL] - h[k.H_VMK]);
    expect(sim.sample().vms.every((v) => v.GRANT === 0 && v.OVHD === 0)).toBe(true);
  });
});

describe("content keys", () => {
  it("clones of one image hold the same key at the same PPN; other images and unique pages never match", async () => {
    const content = { zero: 0.2, image: 0.5, duplicate: 0.1, duplicateCopies: 4 };
    const wl = [{ at: 0, active: 32 * MiB, touchRate: 100000, pattern: { kind: "uniform" as const }, writeRatio: 1 }];
    const sim = await createSimulation(
      scenario({
        settings: noLarge,
        vms: [
          vm("a", { memory: 32 * MiB, image: "img", content, workload: wl }),
          vm("b", { memory: 32 * MiB, image: "img", content, workload: wl }),
          vm("c", { memory: 32 * MiB, image: "other", content, workload: wl }),
        ],
      }),
      { check: true },
    );
    sim.step(2);
    const [a, b, c] = [0, 1, 2].map((i) => table(sim, i));
    let same = 0, both = 0, zero = 0, unique = 0, imageKeys = 0;
    const aKeys = new Set<number>();
    for (let i = 0; i < a.length; i += 2) {
      if (!(a[i] & 16) || !(b[i] & 16)) continue;
      both++;
      const ka = a[i + 1];
      if (ka === 0) zero++;
      else if (ka === 0xffffffff) unique++;
      else aKeys.add(ka);
      if (ka === b[i + 1] && ka !== 0 && ka !== 0xffffffff) same++;
    }
    expect(zero / both).toBeCloseTo(0.2, 1);
    expect(unique / both).toBeCloseTo(0.2, 1);
    // image pages (about half) match between the clones, duplicates (10 %) do not
    expect(same / both).toBeCloseTo(0.5, 1);
    for (let i = 0; i < c.length; i += 2) if (c[i + 1] !== 0 && c[i + 1] !== 0xffffffff && aKeys.has(c[i + 1])) imageKeys++;
    expect(imageKeys).toBe(0);
    // intra-VM duplicates: about duplicateCopies pages per key
    const dupCounts = new Map<number, number>();
    for (let i = 0; i < a.length; i += 2) {
      const key = a[i + 1];
      if (a[i] & 16 && key !== 0 && key !== 0xffffffff && key !== b[i + 1]) dupCounts.set(key, (dupCounts.get(key) ?? 0) + 1);
    }
    const meanCopies = [...dupCounts.values()].reduce((x, y) => x + y, 0) / dupCounts.size;
    expect(meanCopies).toBeGreaterThan(2);
    expect(meanCopies).toBeLessThan(6);
  });
});

describe("access patterns", () => {
  async function distinctAfter(pattern: object, touches: number): Promise<{ distinct: number; writes: number }> {
    const sim = await createSimulation(
      scenario({ settings: noLarge, vms: [vm("a", { memory: 256 * MiB, workload: [{ at: 0, active: 256 * MiB, touchRate: touches, pattern: pattern as never, writeRatio: 0.25 }] })] }),
    );
    sim.step(1);
    const c = sim.engine.vmCounters(0);
    return { distinct: c[sim.engine.k.C_FIRST_TOUCH], writes: c[sim.engine.k.C_WRITES] / touches };
  }

  it("zipf and hot/cold concentrate touches on fewer pages than uniform; writes follow writeRatio", async () => {
    const n = 65536; // the working set's pages
    const uniform = await distinctAfter({ kind: "uniform" }, n);
    const zipf = await distinctAfter({ kind: "zipf", s: 1.1 }, n);
    const hotcold = await distinctAfter({ kind: "hotcold", hot: 0.1, hotShare: 0.9 }, n);
    // uniform: n draws over n pages reach 1 - 1/e of them
    expect(uniform.distinct / n).toBeCloseTo(1 - Math.exp(-1), 1);
    expect(zipf.distinct).toBeLessThan(uniform.distinct * 0.5);
    // hot/cold: the hot 10 % is covered, the cold 90 % gets 10 % of n draws
    const expected = 0.1 * n * (1 - Math.exp(-9)) + 0.9 * n * (1 - Math.exp(-0.1 / 0.9));
    expect(hotcold.distinct / expected).toBeCloseTo(1, 1);
    for (const r of [uniform, zipf, hotcold]) expect(r.writes).toBeCloseTo(0.25, 1);
  });
});

describe("time, events and determinism", () => {
  it("Windows guests zero all their memory over bootTime, then start their workload", async () => {
    const sim = await createSimulation(
      scenario({ vms: [vm("w", { memory: 64 * MiB, guest: { os: "windows", balloonDriver: true, pageFile: 64 * MiB, bootTime: 10 } })] }),
      { check: true },
    );
    sim.step(5);
    const k = sim.engine.k;
    expect(sim.engine.vmCounter(0, k.C_ZEROED)).toBe(8192);
    expect(sim.engine.vmCounter(0, k.C_TOUCHES)).toBe(0);
    sim.step(6);
    expect(sim.engine.vmCounter(0, k.C_ZEROED)).toBe(16384);
    expect(sim.engine.vmCounter(0, k.C_TOUCHES)).toBeGreaterThan(0);
    expect(sim.sample().vms[0].GRANT).toBe(64);
  });

  it("applies events at their time: power on/off, host settings, workload phases", async () => {
    const sim = await createSimulation(
      scenario({
        vms: [vm("a", { powerOn: null, memory: 64 * MiB }), vm("b", { memory: 64 * MiB, workload: [{ at: 0, active: 8 * MiB, touchRate: 1000, pattern: { kind: "uniform" }, writeRatio: 0 }, { at: 20, active: 32 * MiB, touchRate: 1000, pattern: { kind: "uniform" }, writeRatio: 0 }] })],
        settings: { "Mem.SamplePeriod": 10 },
        events: [
          { at: 10, kind: "powerOn", vms: ["a"] },
          { at: 15, kind: "setHost", settings: { "Mem.AllocGuestLargePage": 0 }, ksm: {} },
          { at: 30, kind: "powerOff", vms: ["a"] },
        ],
      }),
      { check: true },
    );
    const samples: ReturnType<Simulation["sample"]>[] = [];
    await sim.run({ until: 40, onSample: (s) => samples.push(s) });
    const at = (t: number) => samples.find((s) => s.time === t)!;
    expect(at(10).vms[0].on).toBe(0);
    expect(at(20).vms[0].on).toBe(1);
    expect(at(40).vms[0].on).toBe(0);
    expect(sim.log.map((r) => [r.time, r.kind, r.vm])).toEqual([
      [0, "powerOn", "b"],
      [10, "powerOn", "a"],
      [15, "setHost", undefined],
      [30, "powerOff", "a"],
    ]);
    // TCHD.true: distinct pages touched in the last 10 s sampling period (scheduler, issue 4)
    expect(at(10).vms[1]["TCHD.true"]).toBeCloseTo(8, 0);
    expect(at(30).vms[1]["TCHD.true"]).toBeGreaterThan(16);
    // b's new pages after 15 s are backed small: large regions stop growing
    expect(sim.engine.vmCounter(1, sim.engine.k.C_PRIVATE)).toBeGreaterThan(sim.engine.vmCounter(1, sim.engine.k.C_LARGE_REGIONS) * 512);
  });

  it("the same seed gives identical samples; another seed differs", async () => {
    const make = (seed: number) => scenario({ seed, vms: [vm("a", { memory: 128 * MiB }), vm("b", { memory: 64 * MiB, guest: { os: "windows", balloonDriver: true, pageFile: 0, bootTime: 5 } })] });
    const runOnce = async (seed: number) => {
      const sim = await createSimulation(make(seed));
      const rows: string[] = [];
      await sim.run({ onSample: (s) => rows.push(JSON.stringify(s)) });
      return rows.join("\n") + JSON.stringify([...table(sim, 0)].slice(0, 4096));
    };
    const a = await runOnce(3);
    expect(await runOnce(3)).toBe(a);
    expect(await runOnce(4)).not.toBe(a);
  });
});

describe("--check", () => {
  it("detects a page table that disagrees with the counters", async () => {
    const sim = await createSimulation(scenario({ settings: noLarge, vms: [vm("a", { memory: 16 * MiB })] }), { check: true });
    sim.step(2);
    const t = table(sim, 0);
    const i = t.findIndex((m, j) => j % 2 === 0 && (m & 7) === 1);
    t[i] = (t[i] & ~7) | 5; // a private page silently marked swapped
    expect(() => sim.verify()).toThrow(InvariantError);
    expect(() => sim.verify()).toThrow(/page counts by state/);
  });

  it("holds every tick with several VMs, power cycles and an overcommitted host", async () => {
    const sim = await createSimulation(
      scenario({
        hostMemory: 512 * MiB,
        vms: [vm("a", { memory: 256 * MiB }), vm("b", { memory: 256 * MiB, guest: { os: "windows", balloonDriver: true, pageFile: 0, bootTime: 4 } }), vm("c", { memory: 128 * MiB, powerOn: 10 })],
        events: [{ at: 20, kind: "powerOff", vms: ["a"] }, { at: 30, kind: "powerOn", vms: ["a"] }],
      }),
      { check: true },
    );
    await expect(sim.run()).resolves.toEqual({ time: 60, aborted: false });
  });
});

describe("memory budget", () => {
  it("refuses a VM the 4 GiB linear memory cannot hold, with the arithmetic", async () => {
    await expect(createSimulation(scenario({ hostMemory: 64 * GiB, vms: [vm("huge", { memory: 2048 * GiB })] }))).rejects.toThrow(/pages × 8 bytes/);
  });
});
