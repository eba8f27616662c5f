// Linux KSM as a sharing policy (assembly/ksm.ts, src/policy/share.ts): stable and unstable trees
// as ksmd shows them through its sysfs counters, the checksum filter, max_page_sharing (the
// selftest oracle), use_zero_pages, smart_scan, COW, run, ksmd's rate. Spec: linux-ksm.md; the real
// kernel's figures these mirror: docs/validation.md.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import { ksmCounters, ksmWakeupsPerSecond, shareExports, KSMD_BUSY_PAGES_PER_S, vmSharingOf } from "../src/policy/share.js";
import { defaults, KSM_KNOBS, type KsmKnobs } from "../src/scenario/settings.js";
import type { VmConfig } from "../src/scenario/types.js";
import { runSimKsm } from "../bench/ksm-sim.js";
import { scenario, vm, MiB, GiB, ksmOracle } from "./helpers.js";

const KEY_UNIQUE = 0xffff_ffff;
const FAST = { pages_to_scan: 10_000, sleep_millisecs: 10 };


function quiet(name: string, memory: number, over: Partial<VmConfig> = {}): VmConfig {
  return vm(name, {
    memory,
    overhead: 0,
    guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
    workload: [{ at: 0, active: memory, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }],
    ...over,
  });
}

/** A KSM host with `vms`, powered on, ksmd stopped until the test wakes it. */
async function ksmHost(vms: VmConfig[], knobs: Partial<KsmKnobs> = {}) {
  const sc = scenario({ vms, hostMemory: 2 * GiB, settings: { "Mem.AllocGuestLargePage": 0 } });
  sc.host.policy = "ksm";
  sc.host.ksm = { ...defaults(KSM_KNOBS), ...FAST, ...knobs, run: 0 };
  const sim = await createSimulation(sc, { check: true });
  sim.step(1);
  return { sim, raw: shareExports(sim) };
}

function wake(sim: Simulation, n = 1): void {
  for (let i = 0; i < n; i++) {
    sim.sharing.wake(1);
    sim.verify();
  }
}

describe("max_page_sharing: the selftest oracle (ksm_tests.c)", () => {
  it.each([
    [768, 256], [513, 256], [1000, 256], [8, 4], [9, 4], [10, 4], [2, 2], [3, 2], [257, 256], [100, 7],
  ])("N=%i identical pages, max_page_sharing=%i", async (n, m) => {
    const r = await runSimKsm({ distinct: 1, copies: n }, { ...FAST, max_page_sharing: m }, { check: true });
    const want = ksmOracle(n, m);
    expect(r.converged).toBe(true);
    expect(r.fullScansToConverge).toBe(2);
    expect({ shared: r.pages_shared, sharing: r.pages_sharing }).toEqual(want);
    expect(r.pages_unshared).toBe(n - want.shared - want.sharing); // the leftover waits in the unstable tree
    expect(r.stable_node_chains).toBe(want.shared > 1 ? 1 : 0);
    expect(r.stable_node_dups).toBe(want.shared > 1 ? want.shared : 0);
    expect(r.sim.engine.hostCounter(r.sim.engine.k.H_COMMON)).toBe(want.shared); // one machine page per KSM page
  });

  it("holds for any N and M, also with several contents side by side", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 600 }), fc.integer({ min: 2, max: 64 }), fc.integer({ min: 1, max: 3 }), async (n, m, d) => {
        const r = await runSimKsm({ distinct: d, copies: n }, { ...FAST, max_page_sharing: m });
        const want = ksmOracle(n, m);
        expect({ shared: r.pages_shared, sharing: r.pages_sharing }).toEqual({ shared: d * want.shared, sharing: d * want.sharing });
        expect(r.stable_node_chains).toBe(want.shared > 1 ? d : 0);
      }),
      { numRuns: 40, seed: 3 },
    );
  });
});

describe("scans", () => {
  it("merging takes two full scans: the first only records checksums", async () => {
    const r = await runSimKsm({ distinct: 1000, copies: 4 }, { pages_to_scan: 100, sleep_millisecs: 20 }, { check: true });
    expect(r.series.map((s) => [s.fullScans, s.pages_shared, s.pages_sharing, s.pages_volatile, s.pages_scanned])).toEqual([
      [0, 0, 0, 0, 0],
      [1, 0, 0, 4000, 4000], // every page has an rmap_item, none in a tree: volatile
      [2, 1000, 3000, 0, 8000],
      [3, 1000, 3000, 0, 12000],
      [4, 1000, 3000, 0, 16000],
    ]);
    // 4000 pages at 100 per wake-up: 40 batches, and the 41st finds the end of the scan
    expect(r.series.map((s) => s.wakeups)).toEqual([0, 41, 82, 123, 164]);
    expect(r.general_profit).toBe(3000 * 4096 - 4000 * 64);
  });

  it("a batch that reaches the end of a full scan stops there", async () => {
    const r = await runSimKsm({ distinct: 450, copies: 10 }, { pages_to_scan: 1000, sleep_millisecs: 20 });
    expect(r.series[1].wakeups).toBe(5); // 4 × 1000 + 500 pages, the scan ends inside the 5th batch
    expect(r.series[2].wakeups).toBe(10);
  });

  it("a page written between two visits is volatile and never enters the unstable tree", async () => {
    const r = await runSimKsm({ unique: 300, volatile: 100 }, { ...FAST, smart_scan: 0 }, { stableScans: 5, check: true });
    for (const s of r.series.filter((x) => x.fullScans >= 2)) {
      expect(s).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_volatile: 100, pages_unshared: 200 });
    }
  });

  it("a changed page needs two more scans, and the tree is rebuilt every scan", async () => {
    const { sim, raw } = await ksmHost([quiet("a", 4 * MiB)]);
    raw.writePages(0, 0, 1, 7, 0);
    raw.writePages(0, 1, 1, 8, 0);
    wake(sim, 2);
    expect(ksmCounters(sim)).toMatchObject({ pages_unshared: 2, full_scans: 2 });
    raw.writePages(0, 1, 1, 7, 0); // page 1 now holds what page 0 holds
    wake(sim);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 0, pages_unshared: 1, pages_volatile: 1 });
    wake(sim);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 1, pages_sharing: 1, pages_unshared: 0 });
  });

  it("ksmd wakes every sleep_millisecs, or as fast as it scans when that is 0", () => {
    expect(ksmWakeupsPerSecond({ sleep_millisecs: 20, pages_to_scan: 100 })).toBe(50); // 5000 pages/s
    expect(ksmWakeupsPerSecond({ sleep_millisecs: 0, pages_to_scan: 1000 })).toBe(KSMD_BUSY_PAGES_PER_S / 1000);
    expect(ksmWakeupsPerSecond({ sleep_millisecs: 20, pages_to_scan: 0 })).toBe(0);
  });

  it("in a simulation: run 1 scans at that rate, run 0 stops, run 2 unmerges everything", async () => {
    const { sim, raw } = await ksmHost([quiet("a", 16 * MiB)], { pages_to_scan: 100, sleep_millisecs: 20 });
    raw.writePages(0, 0, 4000, 1, 1);
    raw.writePages(0, 4000, 96, 1, 1);
    const free0 = sim.engine.hostCounter(sim.engine.k.H_FREE_SMALL) + 512 * sim.engine.hostCounter(sim.engine.k.H_FREE_LARGE);
    sim.scenario.host.ksm.run = 1;
    sim.step(10);
    expect(sim.sharing.wakeups).toBe(500);
    sim.step(30);
    const k = ksmCounters(sim);
    expect(k.pages_shared).toBe(96);
    expect(k.pages_sharing).toBe(96);
    sim.scenario.host.ksm.run = 0;
    sim.step(5);
    expect(ksmCounters(sim).pages_scanned).toBe(k.pages_scanned);
    sim.scenario.host.ksm.run = 2;
    sim.step(1);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 0, pages_volatile: 0, full_scans: 0 });
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(0);
    const free1 = sim.engine.hostCounter(sim.engine.k.H_FREE_SMALL) + 512 * sim.engine.hostCounter(sim.engine.k.H_FREE_LARGE);
    expect(free1).toBe(free0); // every page private again
  });

  it("max_page_sharing changes only while nothing is merged (the kernel answers EBUSY)", async () => {
    const { sim, raw } = await ksmHost([quiet("a", 4 * MiB)], { max_page_sharing: 256 });
    raw.writePages(0, 0, 10, 3, 0);
    wake(sim, 2);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 1, pages_sharing: 9 });
    sim.scenario.host.ksm.max_page_sharing = 4;
    raw.writePages(0, 10, 10, 4, 0);
    wake(sim, 2);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 2, pages_sharing: 18, stable_node_chains: 0 });
  });
});

describe("use_zero_pages, smart_scan", () => {
  it("use_zero_pages: empty pages map the zero page, counted in ksm_zero_pages; their rmap_items go", async () => {
    const r = await runSimKsm({ distinct: 200, copies: 3, zero: 500 }, { ...FAST, use_zero_pages: 1 }, { check: true });
    expect(r).toMatchObject({ pages_shared: 200, pages_sharing: 400, ksm_zero_pages: 500, pages_volatile: 0 });
    expect(r.series[2]).toMatchObject({ pages_volatile: 500, ksm_zero_pages: 500 }); // for one scan
    expect(r.series[4].pages_scanned - r.series[3].pages_scanned).toBe(600); // zero pages drop out
    expect(r.general_profit).toBe((400 + 500) * 4096 - 600 * 64);
    expect(r.sim.engine.hostCounter(r.sim.engine.k.H_COMMON)).toBe(200); // the zero page costs nothing
    const s = vmSharingOf(r.sim, r.sim.vms[0]);
    expect(s).toMatchObject({ shared: 1100, zero: 500, saved: 900 });
    // a write to one gives it a private page again
    shareExports(r.sim).writePages(0, 600, 1, 0, 0);
    expect(ksmCounters(r.sim).ksm_zero_pages).toBe(499);
    r.sim.verify();
  });

  it("use_zero_pages=0: zero pages are just identical pages", async () => {
    const r = await runSimKsm({ distinct: 200, copies: 3, zero: 500 }, { ...FAST, use_zero_pages: 0 });
    const z = ksmOracle(500, 256);
    expect(r).toMatchObject({ pages_shared: 200 + z.shared, pages_sharing: 400 + z.sharing, ksm_zero_pages: 0 });
  });

  it("smart_scan skips pages that keep failing to merge: visited in scans 1-4, 6, 9, 14, 23", async () => {
    const r = await runSimKsm({ unique: 300 }, { ...FAST, smart_scan: 1 }, { stableScans: 26, check: true });
    const visited = [1, 2, 3, 4, 6, 9, 14, 23];
    for (let i = 1; i <= 26; i++) {
      const s = r.series.find((x) => x.fullScans === i)!;
      const skipped = s.pages_skipped - r.series.find((x) => x.fullScans === i - 1)!.pages_skipped;
      expect({ scan: i, skipped }).toEqual({ scan: i, skipped: visited.includes(i) ? 0 : 300 });
      // a skipped page leaves the unstable tree: it shows as volatile
      if (i >= 2) expect(s.pages_unshared).toBe(visited.includes(i) ? 300 : 0);
    }
  });
});

describe("copy-on-write", () => {
  it("a write gives a private copy at once; ksmd sees it on its next visit", async () => {
    const r = await runSimKsm({ distinct: 1000, copies: 4, writesAfterMerge: 100 }, { ...FAST, smart_scan: 0 }, { check: true });
    const w = r.afterWrites!;
    expect(w.series.map((s) => [s.pages_shared, s.pages_sharing, s.pages_unshared, s.pages_volatile])).toEqual([
      [1000, 3000, 0, 0], // just written: the counters wait for ksmd
      [1000, 2900, 0, 100], // next visit: out of the stable tree, checksum changed
      [1000, 2900, 100, 0], // then in the unstable tree
    ]);
    const c = r.sim.engine.vmCounters(0);
    expect(c[r.sim.engine.k.C_COW_BREAKS]).toBe(100);
  });

  it("when every mapping of a KSM page is written it is freed at once, and leaves the counters when found", async () => {
    const { sim, raw } = await ksmHost([quiet("a", 4 * MiB)]);
    raw.writePages(0, 0, 2, 50, 0);
    raw.writePages(0, 2, 3, 60, 0);
    wake(sim, 2);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 2, pages_sharing: 3 });
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(2);
    raw.writePages(0, 0, 1, 51, 0);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(2); // one mapping left
    raw.writePages(0, 1, 1, 52, 0);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(1); // freed with its last mapping
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 2, pages_sharing: 3 });
    wake(sim);
    expect(ksmCounters(sim)).toMatchObject({ pages_shared: 1, pages_sharing: 2, pages_volatile: 2 });
  });
});

describe("in a simulation", () => {
  it("clones share across VMs; counters and invariants hold through writes, large pages and power-off", async () => {
    const vms = [0, 1, 2].map((i) =>
      vm(`g${i}`, {
        memory: 32 * MiB,
        image: "debian",
        guest: { os: "linux", balloonDriver: true, pageFile: 32 * MiB, bootTime: 0 },
        content: { zero: 0.1, image: 0.4, duplicate: 0.05, duplicateCopies: 4 },
        workload: [
          { at: 0, active: 32 * MiB, touchRate: 40000, pattern: { kind: "uniform" }, writeRatio: 1 },
          { at: 5, active: 16 * MiB, touchRate: 2000, pattern: { kind: "zipf", s: 0.9 }, writeRatio: 0.1 },
        ],
      }),
    );
    const sc = scenario({ vms, hostMemory: 1 * GiB, settings: { "Mem.AllocGuestLargePage": 1 }, events: [{ at: 40, kind: "powerOff", vms: ["g2"] }] });
    sc.host.policy = "ksm";
    sc.host.ksm = { ...defaults(KSM_KNOBS), pages_to_scan: 2000, sleep_millisecs: 20 };
    const sim = await createSimulation(sc, { check: true });
    sim.step(39);
    const k = ksmCounters(sim);
    expect(k.full_scans).toBeGreaterThan(3);
    // image pages of three clones: 2 sharing per KSM page of the image, zero pages in chains
    expect(k.pages_sharing).toBeGreaterThan(0.4 * 8192 * 2 * 0.8);
    expect(k.stable_node_chains).toBeGreaterThan(0);
    expect(sim.vms.every((v) => sim.engine.vmCounter(v.index, sim.engine.k.C_LARGE_REGIONS) < 16)).toBe(true); // merging split them
    const row = sim.sample().host;
    expect(row["KSM.pages_sharing"]).toBe(k.pages_sharing);
    // machine memory saved: at most what pages_sharing says (it lags copy-on-write breaks)
    expect(row["PSHARE.saving"] as number).toBeGreaterThan(0);
    expect(row["PSHARE.saving"] as number).toBeLessThanOrEqual(k.pages_sharing / 256 + 0.01);
    sim.step(20);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBeGreaterThan(0);
  });
});
