/**
 * The simulated KSM (assembly/ksm.ts via bench/ksm-sim.ts) against the REAL Linux KSM on the same
 * page patterns and knobs (bench/ksm-real/real-ksm.ts), side by side: pages_shared, pages_sharing,
 * pages_unshared, pages_volatile, ksm_zero_pages, stable_node_chains/dups and the full scans needed
 * to converge; for writes after merging, the same after the writes; for smart_scan, scan by scan.
 *
 * Always: the simulation against the figures the real kernel gave on the development machine
 * (docs/validation.md, "Real Linux KSM harness": the table and the per-scan series).
 * Where the real KSM can be driven (root, /sys/kernel/mm/ksm/run writable, cc): against the kernel
 * live; runRealKsm saves and restores every knob (run as it was found), also on failure, and the
 * live block is skipped with the reason otherwise. docs/validation.md "Simulated KSM against the
 * real one" records a run.
 */
import { describe, expect, it } from "vitest";
import { ksmAvailable, runRealKsm, type KsmKnobs as RealKnobs, type RealKsmOptions } from "../bench/ksm-real/real-ksm.js";
import { runSimKsm, type SimKsmPattern } from "../bench/ksm-sim.js";
import type { KsmKnobs } from "../src/scenario/settings.js";

const FAST = { pages_to_scan: 10_000, sleep_millisecs: 10 };
const COMPARED = ["pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "ksm_zero_pages", "stable_node_chains", "stable_node_dups"] as const;
type Figures = Partial<Record<(typeof COMPARED)[number] | "fullScansToConverge" | "general_profit", number>>;

interface Case {
  name: string;
  pattern: SimKsmPattern;
  knobs: Partial<KsmKnobs>;
  opts?: RealKsmOptions;
  /** what the real kernel reported (docs/validation.md) */
  recorded: Figures;
  /** after `writesAfterMerge` and 2 more full scans */
  afterWrites?: Figures;
}

const CASES: Case[] = [
  { name: "1000 distinct × 4", pattern: { distinct: 1000, copies: 4 }, knobs: FAST,
    recorded: { pages_shared: 1000, pages_sharing: 3000, pages_unshared: 0, pages_volatile: 0, ksm_zero_pages: 0, fullScansToConverge: 2, general_profit: 12032000 } },
  { name: "1000 distinct × 4, default knobs (100 pages / 20 ms)", pattern: { distinct: 1000, copies: 4 }, knobs: { pages_to_scan: 100, sleep_millisecs: 20 },
    recorded: { pages_shared: 1000, pages_sharing: 3000, pages_unshared: 0, pages_volatile: 0, fullScansToConverge: 2 } },
  { name: "768 identical, max_page_sharing 256 (N % M = 0)", pattern: { distinct: 1, copies: 768 }, knobs: { ...FAST, max_page_sharing: 256 },
    recorded: { pages_shared: 3, pages_sharing: 765, pages_unshared: 0, stable_node_chains: 1, stable_node_dups: 3, fullScansToConverge: 2, general_profit: 3084288 } },
  { name: "513 identical, max_page_sharing 256 (N % M = 1)", pattern: { distinct: 1, copies: 513 }, knobs: { ...FAST, max_page_sharing: 256 },
    recorded: { pages_shared: 2, pages_sharing: 510, pages_unshared: 1, stable_node_chains: 1, stable_node_dups: 2, fullScansToConverge: 2, general_profit: 2056128 } },
  { name: "1000 identical, max_page_sharing 256", pattern: { distinct: 1, copies: 1000 }, knobs: { ...FAST, max_page_sharing: 256 },
    recorded: { pages_shared: 4, pages_sharing: 996, pages_unshared: 0, stable_node_chains: 1, stable_node_dups: 4, fullScansToConverge: 2, general_profit: 4015616 } },
  { name: "8 identical, max_page_sharing 4", pattern: { distinct: 1, copies: 8 }, knobs: { ...FAST, max_page_sharing: 4 },
    recorded: { pages_shared: 2, pages_sharing: 6, pages_unshared: 0, stable_node_chains: 1, stable_node_dups: 2, general_profit: 24064 } },
  { name: "9 identical, max_page_sharing 4", pattern: { distinct: 1, copies: 9 }, knobs: { ...FAST, max_page_sharing: 4 },
    recorded: { pages_shared: 2, pages_sharing: 6, pages_unshared: 1, stable_node_chains: 1, stable_node_dups: 2, general_profit: 24000 } },
  { name: "10 identical, max_page_sharing 4", pattern: { distinct: 1, copies: 10 }, knobs: { ...FAST, max_page_sharing: 4 },
    recorded: { pages_shared: 3, pages_sharing: 7, pages_unshared: 0, stable_node_chains: 1, stable_node_dups: 3, general_profit: 28032 } },
  { name: "100 × 3, max_page_sharing 2", pattern: { distinct: 100, copies: 3 }, knobs: { ...FAST, max_page_sharing: 2 },
    recorded: { pages_shared: 100, pages_sharing: 100, pages_unshared: 100, stable_node_chains: 0 } },
  { name: "200 × 3 + 500 zero, use_zero_pages 1", pattern: { distinct: 200, copies: 3, zero: 500 }, knobs: { ...FAST, use_zero_pages: 1 },
    recorded: { pages_shared: 200, pages_sharing: 400, pages_unshared: 0, pages_volatile: 0, ksm_zero_pages: 500, fullScansToConverge: 2, general_profit: 3648000 } },
  { name: "200 × 3 + 500 zero, use_zero_pages 0", pattern: { distinct: 200, copies: 3, zero: 500 }, knobs: { ...FAST, use_zero_pages: 0 },
    recorded: { pages_shared: 202, pages_sharing: 898, ksm_zero_pages: 0, stable_node_chains: 1, stable_node_dups: 2, fullScansToConverge: 2, general_profit: 3607808 } },
  { name: "300 unique, 100 of them volatile, smart_scan 0", pattern: { unique: 300, volatile: 100 }, knobs: { ...FAST, sleep_millisecs: 20, smart_scan: 0 }, opts: { stableScans: 5 },
    recorded: { pages_shared: 0, pages_sharing: 0, pages_unshared: 200, pages_volatile: 100, general_profit: -19200 } },
  { name: "1000 × 4, then 100 pages written, smart_scan 0", pattern: { distinct: 1000, copies: 4, writesAfterMerge: 100 }, knobs: { ...FAST, smart_scan: 0 },
    recorded: { pages_shared: 1000, pages_sharing: 3000, fullScansToConverge: 2 },
    afterWrites: { pages_shared: 1000, pages_sharing: 2900, pages_unshared: 100, pages_volatile: 0, general_profit: 11622400 } },
];

function pick(r: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in r).map((k) => [k, r[k]]));
}

describe("simulated KSM = the real KSM's recorded figures", () => {
  it.each(CASES)("$name", async (c) => {
    const sim = await runSimKsm(c.pattern, c.knobs, { stableScans: c.opts?.stableScans, check: true });
    expect(sim.converged).toBe(true);
    const got = { ...pick(sim as unknown as Record<string, unknown>, COMPARED), fullScansToConverge: sim.fullScansToConverge, general_profit: sim.general_profit };
    expect(pick(got, Object.keys(c.recorded))).toEqual(c.recorded);
    if (c.afterWrites) expect(pick(sim.afterWrites as unknown as Record<string, unknown>, Object.keys(c.afterWrites))).toEqual(c.afterWrites);
  });

  it("smart_scan=1 on 300 unique pages (100 volatile): the recorded scans 2-8", async () => {
    const sim = await runSimKsm({ unique: 300, volatile: 100 }, { ...FAST, sleep_millisecs: 20, smart_scan: 1 }, { stableScans: 8 });
    const at = (n: number) => sim.series.find((s) => s.fullScans === n)!;
    for (const n of [2, 3, 4, 6]) expect(at(n)).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_unshared: 200, pages_volatile: 100 });
    for (const n of [5, 7, 8]) expect(at(n)).toMatchObject({ pages_unshared: 0, pages_volatile: 300 });
    expect(at(5).pages_skipped - at(4).pages_skipped).toBe(300);
    expect(at(8).pages_skipped).toBe(900);
  });
});

const avail = ksmAvailable();
if (!avail.ok) console.warn(`[ksm-vs-real] skipping the live comparison with the real Linux KSM: ${avail.reason}`);

describe.skipIf(!avail.ok)(`simulated KSM = the real KSM on this machine, side by side${avail.ok ? "" : ` (skipped: ${avail.reason})`}`, () => {
  it.each(CASES)("$name", async (c) => {
    const real = await runRealKsm(c.pattern, c.knobs as RealKnobs, c.opts);
    const sim = await runSimKsm(c.pattern, c.knobs, { stableScans: c.opts?.stableScans });
    expect(real.warnings.filter((w) => w.includes("foreign"))).toEqual([]);
    expect(real.converged).toBe(true);
    expect(pick(sim as unknown as Record<string, unknown>, COMPARED)).toEqual(pick(real as unknown as Record<string, unknown>, COMPARED));
    expect(sim.fullScansToConverge).toBe(real.fullScansToConverge);
    expect(sim.general_profit).toBe(real.general_profit);
    if (c.afterWrites) {
      expect(pick(sim.afterWrites as unknown as Record<string, unknown>, COMPARED)).toEqual(pick(real.afterWrites as unknown as Record<string, unknown>, COMPARED));
    }
    // and scan by scan, where both sampled the same full scan
    for (const s of real.series) {
      const t = sim.series.find((x) => x.fullScans === s.fullScans);
      if (!t || s.torn || s.fullScans > (real.fullScansToConverge ?? 0) + 2) continue;
      expect({ scan: s.fullScans, ...pick(t as unknown as Record<string, unknown>, ["pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "ksm_zero_pages"]) })
        .toEqual({ scan: s.fullScans, ...pick(s as unknown as Record<string, unknown>, ["pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "ksm_zero_pages"]) });
    }
  });

  it("smart_scan=1: the same scans are skipped", async () => {
    const pattern = { unique: 300, volatile: 100 };
    const knobs = { ...FAST, sleep_millisecs: 20, smart_scan: 1 };
    const real = await runRealKsm(pattern, knobs, { stableScans: 10 });
    const sim = await runSimKsm(pattern, knobs, { stableScans: 10 });
    let compared = 0;
    for (const s of real.series) {
      const t = sim.series.find((x) => x.fullScans === s.fullScans);
      if (!t || s.fullScans === 0) continue;
      expect({ scan: s.fullScans, unshared: t.pages_unshared, volatile: t.pages_volatile, skipped: t.pages_skipped })
        .toEqual({ scan: s.fullScans, unshared: s.pages_unshared, volatile: s.pages_volatile, skipped: s.pages_skipped });
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(6);
  });
});
