// Reproductions (published-results.md items 3, 6-9): what ballooning, compression, host swap and the
// SSD swap cache cost, as it comes out of the mechanics: which pages each mechanism takes and what
// the workload touches afterwards. Throughput is touches done / touches demanded over a window
// (src/policy/latency.ts), the same VM and workload in every run, squeezed by one mechanism.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { createSimulation, type Simulation, type Sample } from "../src/sim/simulation.js";
import { parseScenarioText } from "../src/scenario/load.js";
import type { WorkloadPhase } from "../src/scenario/types.js";
import { MiB, c, h, pin, phase, rsim, rvm, throughput } from "./reclaim-helpers.js";

const VM_MB = 256;

/**
 * A kernel compile: first it reads its sources (page cache over most of memory, few writes), then
 * compiles: a smaller, skewed working set that writes. What it read once is cold from then on.
 */
const COMPILE: WorkloadPhase[] = [
  phase({ active: 240 * MiB, touchRate: 40000, writeRatio: 0.02 }),
  phase({ at: 30, active: 96 * MiB, touchRate: 50000, pattern: { kind: "zipf", s: 0.8 }, writeRatio: 0.3 }),
];
/** A JVM: the heap is most of memory and all of it in use (uniform touches, many writes). */
const JAVA: WorkloadPhase[] = [phase({ active: 240 * MiB, touchRate: 50000, writeRatio: 0.3 })];

type Mode = "none" | "balloon" | "swap";

/**
 * One run: warm up 60 s, squeeze the VM by `mb` MiB with one mechanism (targets pinned), and
 * measure the throughput of the 120 s from the squeeze on: the work done while squeezed, as a
 * compile's run time would show it. "swap" has no balloon driver.
 */
async function squeezed(mode: Mode, mb: number, workload: WorkloadPhase[], opts: { settings?: Record<string, number>; swapCacheMB?: number } = {}) {
  const sim = await rsim([rvm("a", { memory: VM_MB * MiB, driver: mode !== "swap", workload })], {
    settings: { "Mem.MemZipEnable": 0, ...opts.settings },
    swapCacheMB: opts.swapCacheMB,
  });
  sim.step(60);
  const pages = (mb * MiB) / 4096;
  pin(sim, 0, mode === "balloon" ? { mctltgt: pages, swtgt: 0 } : mode === "swap" ? { mctltgt: 0, swtgt: pages } : { mctltgt: 0, swtgt: 0 });
  sim.sample();
  const thru = throughput(sim, 120);
  const row = sim.sample().vms[0];
  return { thru, row, sim };
}

describe("ballooning vs host swapping (WP 'kernel compile'; W02 Fig. 2)", () => {
  it("the balloon keeps throughput near the unsqueezed run; swapping loses more as the squeeze deepens", async () => {
    const base = await squeezed("none", 0, COMPILE);
    expect(base.thru).toBe(1);
    const depths = [16, 32, 48, 64];
    const balloon: number[] = [];
    const swap: number[] = [];
    for (const mb of depths) {
      const b = await squeezed("balloon", mb, COMPILE);
      const s = await squeezed("swap", mb, COMPILE);
      expect(c(b.sim).BALLOONED).toBe((mb * MiB) / 4096);
      expect(c(s.sim).SWAPPED).toBe((mb * MiB) / 4096);
      balloon.push(b.thru);
      swap.push(s.thru);
      // the guest gave what it did not use: nothing it gave up was asked for again
      expect(c(b.sim).GSWAP_IN + c(b.sim).GCACHE_MISS).toBe(0);
      // the host took pages blind: it reads many back
      expect(c(s.sim).SWAP_IN).toBeGreaterThan(0);
      expect(Number(s.row["LAT%"])).toBeGreaterThan(0);
    }
    for (let i = 0; i < depths.length; i++) {
      expect(balloon[i]).toBeGreaterThanOrEqual(0.98);
      expect(swap[i]).toBeLessThan(balloon[i]);
      if (i > 0) expect(swap[i]).toBeLessThan(swap[i - 1]);
    }
    expect(swap[depths.length - 1]).toBeLessThan(0.5);
  });

  it("a Java-like workload, whose whole heap is in use, is hurt by ballooning too", async () => {
    const base = await squeezed("none", 0, JAVA);
    const b = await squeezed("balloon", 32, JAVA);
    const s = await squeezed("swap", 32, JAVA);
    const compile = await squeezed("balloon", 32, COMPILE);
    expect(base.thru).toBe(1);
    expect(compile.thru).toBeGreaterThanOrEqual(0.98);
    expect(b.thru).toBeLessThan(0.5);
    expect(s.thru).toBeLessThan(0.5);
    // the guest had nothing idle to give: it paged out heap it needed, and reads it back
    expect(c(b.sim).GSWAP_IN).toBeGreaterThan(1000);
    expect(c(b.sim).SWAP_IN).toBe(0);
    // ballooning hurts about as much as swapping here (within a factor of 3), not 50x less
    expect(b.thru).toBeGreaterThan(s.thru / 3);
    expect(b.thru).toBeLessThan(s.thru * 3);
  });
});

describe("under host swap pressure (WP compression; swap to host cache; VSwapper)", () => {
  it("throughput orders: compression on > off, SSD host cache > HDD", async () => {
    const run = (zip: number, ssd: boolean) => squeezed("swap", 96, COMPILE, { settings: { "Mem.MemZipEnable": zip }, swapCacheMB: ssd ? 512 : undefined });
    const hdd = await run(0, false);
    const hddZip = await run(1, false);
    const ssd = await run(0, true);
    const ssdZip = await run(1, true);
    expect(hddZip.thru).toBeGreaterThan(hdd.thru);
    expect(ssdZip.thru).toBeGreaterThan(ssd.thru);
    expect(ssd.thru).toBeGreaterThan(hdd.thru);
    expect(ssdZip.thru).toBeGreaterThan(hddZip.thru);
    // what the guest waited on, per mechanism
    expect(c(hddZip.sim).LAT_ZIP_US).toBeGreaterThan(0);
    expect(c(ssd.sim).SSD_IN).toBeGreaterThan(0);
    expect(Number(ssd.row["LLSWR/s"])).toBeGreaterThan(0);
    expect(Number(hdd.row["LAT%"])).toBeGreaterThan(Number(ssd.row["LAT%"]));
    expect(Number(hdd.row["LAT%"])).toBeGreaterThan(Number(hddZip.row["LAT%"]));
  });
});

describe("a guest page file smaller than the balloon target", () => {
  it("the balloon stalls and the host swaps the shortfall, under the scheduler's own targets", async () => {
    // a 256 MiB Java VM with a 16 MiB page file, squeezed to 128 MiB by its limit: the scheduler
    // asks the balloon for it all (over the limit, any state); the guest can give only 16 MiB
    const sim = await rsim(
      [rvm("a", { memory: VM_MB * MiB, pageFile: 16 * MiB, workload: JAVA })],
      { settings: { "Mem.MemZipEnable": 0 }, over: { events: [{ at: 60, kind: "setVm", vms: ["a"], limit: 128 * MiB }] } },
    );
    sim.step(150);
    const x = c(sim);
    const row = sim.sample().vms[0];
    expect(sim.vms[0].targets.mctltgt).toBeGreaterThan(16 * 256);
    expect(x.GOUT_ANON).toBeLessThanOrEqual(16 * 256);
    expect(x.BALLOONED).toBeLessThan(sim.vms[0].targets.mctltgt);
    expect(x.MCTL_SHORT).toBeGreaterThan(0);
    expect(Number(row.MCTLSHORT)).toBeGreaterThan(0);
    expect(x.SWAPPED).toBeGreaterThan(0);
    // memory comes down to the limit all the same
    expect(x.PRIVATE + x.SHARED).toBeLessThanOrEqual(128 * 256 + 64);
  });
});

describe("conservation with every mechanism on", () => {
  it("holds every tick on an overcommitted host: TPS, balloons, compression, swap, SSD cache, power cycles", async () => {
    const wl = (w: number, active: number): WorkloadPhase[] => [
      phase({ active: active * MiB, touchRate: 40000, pattern: { kind: "zipf", s: 0.3 }, writeRatio: w }),
    ];
    const content = { zero: 0.2, image: 0.3, duplicate: 0.05, duplicateCopies: 4 };
    const sim = await rsim(
      [
        rvm("lin", { memory: 192 * MiB, pageFile: 32 * MiB, image: "img", content, workload: wl(0.3, 160) }),
        rvm("lin2", { memory: 192 * MiB, image: "img", content, workload: wl(0.1, 120) }),
        rvm("win", { memory: 192 * MiB, content, workload: wl(0.2, 150), guest: { os: "windows", balloonDriver: false, pageFile: 192 * MiB, bootTime: 20 } }),
        rvm("java", { memory: 128 * MiB, limit: 96 * MiB, content, workload: wl(0.5, 120) }),
      ],
      {
        hostMemory: 448 * MiB, // 704 MiB configured: the scheduler takes the host to hard and low
        swapCacheMB: 16,
        settings: { "Mem.ShareScanGHz": 4, "Mem.ShareScanTime": 10, "Mem.AllocGuestLargePage": 1, "Mem.MemZipEnable": 1 },
        over: {
          events: [
            { at: 100, kind: "powerOff", vms: ["lin2"] },
            { at: 130, kind: "powerOn", vms: ["lin2"] },
            { at: 150, kind: "setHost", settings: { "Mem.MemZipEnable": 0 }, ksm: {} },
          ],
        },
      },
    );
    const seen = { balloon: 0, zip: 0, swap: 0, shared: 0, ssd: 0, dbl: 0, states: new Set<string>() };
    for (let t = 0; t < 200; t++) {
      sim.step(1); // --check: every VM's pages and the host's memory recounted every tick
      seen.states.add(sim.state);
      for (let i = 0; i < 4; i++) {
        const x = c(sim, i);
        seen.balloon = Math.max(seen.balloon, x.BALLOONED);
        seen.zip = Math.max(seen.zip, x.COMPRESSED);
        seen.swap = Math.max(seen.swap, x.SWAPPED);
        seen.shared = Math.max(seen.shared, x.SHARED);
        seen.dbl = Math.max(seen.dbl, x.DOUBLE_PAGING);
      }
      seen.ssd = Math.max(seen.ssd, h(sim).SSD_USED);
    }
    expect(seen.balloon).toBeGreaterThan(0);
    expect(seen.zip).toBeGreaterThan(0);
    expect(seen.swap).toBeGreaterThan(0);
    expect(seen.shared).toBeGreaterThan(0);
    expect(seen.ssd).toBeGreaterThan(0);
    expect(seen.states.has("hard") || seen.states.has("low")).toBe(true);
  });

  it("holds for random target sequences (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ mctl: fc.nat(4000), sw: fc.nat(4000), secs: fc.integer({ min: 1, max: 4 }) }), { minLength: 3, maxLength: 8 }),
        fc.boolean(),
        fc.nat(3),
        async (steps, ssd, seed) => {
          const sim: Simulation = await rsim(
            [
              rvm("a", { memory: 16 * MiB, pageFile: 4 * MiB, workload: [phase({ active: 16 * MiB, touchRate: 8000, writeRatio: 0.4 })] }),
              rvm("b", { memory: 16 * MiB, driver: false, workload: [phase({ active: 12 * MiB, touchRate: 8000, writeRatio: 0.2, pattern: { kind: "zipf", s: 1 } })] }),
            ],
            {
              swapCacheMB: ssd ? 1 : undefined,
              settings: { "Mem.MemZipMaxPct": 20, "Mem.ShareScanGHz": 4, "Mem.ShareScanTime": 10, "Mem.AllocGuestLargePage": 1 },
              over: { seed },
            },
          );
          sim.step(3);
          for (const s of steps) {
            pin(sim, 0, { mctltgt: s.mctl, swtgt: s.sw });
            pin(sim, 1, { mctltgt: s.mctl, swtgt: s.sw });
            sim.step(s.secs); // throws InvariantError on any mismatch
          }
        },
      ),
      { numRuns: 12, seed: 5 },
    );
  });
});

describe("examples/ reproduce the contrasts", () => {
  /** Run an example; the mean THRU% of a VM over samples in (from, to]. */
  async function runExample(file: string) {
    const path = new URL(`../examples/${file}`, import.meta.url);
    const sim = await createSimulation(parseScenarioText(readFileSync(path, "utf8"), file), { check: true });
    const samples: Sample[] = [];
    await sim.run({ onSample: (x) => samples.push(x) });
    return (vm: string, from: number, to: number) => {
      const rows = samples.filter((x) => x.time > from && x.time <= to).map((x) => Number(x.vms.find((v) => v.vm === vm)!["THRU%"]));
      return rows.reduce((a, b) => a + b, 0) / rows.length;
    };
  }

  it("balloon-vs-swap.yaml: the ballooned compile keeps its pace, the swapped one loses more at each step", async () => {
    const thru = await runExample("balloon-vs-swap.yaml");
    expect(thru("balloon", 0, 120)).toBe(100);
    expect(thru("swap", 0, 120)).toBe(100);
    expect(thru("balloon", 120, 600)).toBeGreaterThanOrEqual(99);
    const steps = [120, 240, 360, 480].map((t) => thru("swap", t, t + 120));
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeLessThan(steps[i - 1]);
    expect(steps[3]).toBeLessThan(20);
  });

  it("java-heap.yaml: ballooning hurts the JVM as swapping does, and not the compile", async () => {
    const thru = await runExample("java-heap.yaml");
    expect(thru("compile", 150, 360)).toBeGreaterThanOrEqual(99);
    expect(thru("java-balloon", 150, 360)).toBeLessThan(20);
    expect(thru("java-swap", 150, 360)).toBeLessThan(20);
  });

  it("compression-ssd.yaml: the SSD cache, then compression, buy back throughput", async () => {
    const thru = await runExample("compression-ssd.yaml");
    const hdd = thru("db-1", 130, 180);
    const ssd = thru("db-1", 330, 360);
    const zip = thru("db-1", 540, 600);
    expect(hdd).toBeLessThan(10);
    expect(ssd).toBeGreaterThan(hdd * 2);
    expect(zip).toBeGreaterThan(Math.max(ssd * 3, 70));
  });
});
