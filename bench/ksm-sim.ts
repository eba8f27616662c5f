/**
 * The simulator's side of the KSM comparison: `runSimKsm(pattern, knobs, opts)` builds the page
 * pattern of bench/ksm-real/ksm-pages.c in one simulated VM (policy ksm), runs ksmd wake-up by
 * wake-up with the same knobs and reports the same figures as runRealKsm (real-ksm.ts): counters
 * at convergence, full scans to converge, per-scan series, counters after writes. Used by
 * test/ksm-vs-real.test.ts and bench/share.bench.ts; docs/validation.md "Simulated KSM against the
 * real one".
 *
 * Pattern (as ksm-pages.c, page index i): [0, D·C) D contents copy-major (page c·D + d holds
 * content d), then Z zero pages, then U unique pages, of which the first K are identical to each
 * other and rewritten before every wake-up (the real harness rewrites them every 2 ms, ksmd wakes
 * every >= 10 ms), so their checksum always changed since ksmd's last look. `writesAfterMerge` K:
 * after convergence the first page of K groups gets new (unique) content.
 */
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import { defaults, KSM_KNOBS, type KsmKnobs } from "../src/scenario/settings.js";
import { ksmCounters, shareExports, type KsmCounters } from "../src/policy/share.js";
import { scenario, vm, GiB } from "../test/helpers.js";
import type { KsmPattern, KsmSample } from "./ksm-real/real-ksm.js";

/** The same page patterns as the real harness runs (bench/ksm-real/real-ksm.ts). */
export type SimKsmPattern = KsmPattern;

export interface SimKsmOptions {
  /** converged when shared/sharing/zero stayed put for this many more full scans (default 2) */
  stableScans?: number;
  /** full scans after the writes before reading afterWrites (default 2) */
  afterWriteScans?: number;
  /** give up after this many full scans (default 100) */
  maxScans?: number;
  /** verify the engine's invariants after every wake-up (slow; default false) */
  check?: boolean;
}

/** A sample as the real harness takes it (tMs: wall ms since ksmd started), plus ksmd's wake-ups. */
export interface SimKsmSample extends Omit<KsmSample, "torn"> {
  wakeups: number;
}

export interface SimKsmResult extends KsmCounters {
  converged: boolean;
  fullScansToConverge: number | null;
  /** wake-ups to that sample */
  wakeupsToConverge: number | null;
  /** wall ms of the simulation from ksmd's start to that sample */
  msToConverge: number | null;
  series: SimKsmSample[];
  afterWrites?: KsmCounters & { written: number; series: SimKsmSample[] };
  pages: number;
  /** wall milliseconds of the simulation: pattern set-up excluded, scanning included */
  wallMs: number;
  /** the simulation, for further inspection */
  sim: Simulation;
}

const KEY_UNIQUE = 0xffff_ffff;

/** Run the simulated KSM on `pattern` with `knobs` (the rest at the kernel defaults). */
export async function runSimKsm(pattern: SimKsmPattern, knobs: Partial<KsmKnobs> = {}, opts: SimKsmOptions = {}): Promise<SimKsmResult> {
  const D = pattern.distinct ?? 0, C = pattern.copies ?? 1, Z = pattern.zero ?? 0, U = pattern.unique ?? 0;
  const K = pattern.volatile ?? 0, W = pattern.writesAfterMerge ?? 0;
  const pages = D * C + Z + U;
  if (pages === 0) throw new Error("empty pattern");
  const stableScans = opts.stableScans ?? 2;
  const afterWriteScans = opts.afterWriteScans ?? 2;
  const maxScans = opts.maxScans ?? 100;
  const memory = pages * 4096;
  const sc = scenario({
    hostMemory: Math.max(1 * GiB, 2 * memory + 256 * 2 ** 20),
    settings: { "Mem.AllocGuestLargePage": 0 },
    vms: [
      vm("ksm", {
        memory,
        overhead: 0,
        guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
        workload: [{ at: 0, active: memory, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }],
      }),
    ],
  });
  sc.host.policy = "ksm";
  sc.host.ksm = { ...defaults(KSM_KNOBS), ...knobs, run: 0 };
  const sim = await createSimulation(sc, { check: opts.check ?? false });
  const raw = shareExports(sim);
  // the process maps and fills its memory, then marks it mergeable
  sim.engine.raw.powerOn(0, 0);
  for (let c = 0; c < C; c++) raw.writePages(0, c * D, D, 1, 1);
  raw.writePages(0, D * C, Z, 0, 0);
  raw.writePages(0, D * C + Z, U, KEY_UNIQUE, 0);
  const volKey = D + 1;
  const rewriteVolatile = () => {
    if (K > 0) raw.writePages(0, D * C + Z, K, volKey, 0);
  };
  sim.scenario.host.ksm.run = 1;
  const t0 = performance.now();
  let wakeups = 0;
  const sample = (): SimKsmSample => {
    const k = ksmCounters(sim);
    return {
      fullScans: k.full_scans, wakeups, tMs: performance.now() - t0, pages_shared: k.pages_shared, pages_sharing: k.pages_sharing,
      pages_unshared: k.pages_unshared, pages_volatile: k.pages_volatile, ksm_zero_pages: k.ksm_zero_pages,
      pages_scanned: k.pages_scanned, pages_skipped: k.pages_skipped,
    };
  };
  // one wake-up; a sample each time full_scans advances
  const follow = (into: SimKsmSample[], until: (s: SimKsmSample[]) => boolean): boolean => {
    let last = into[into.length - 1].fullScans;
    const limit = last + maxScans;
    while (last < limit) {
      rewriteVolatile();
      sim.sharing.wake(1);
      wakeups++;
      if (opts.check) sim.verify();
      const fs = raw.ksmStat(sim.engine.k.KSM_FULL_SCANS);
      if (fs === last) continue;
      last = fs;
      into.push(sample());
      if (until(into)) return true;
    }
    return false;
  };
  const key = (s: SimKsmSample) => `${s.pages_shared}/${s.pages_sharing}/${s.ksm_zero_pages}`;
  let convergedAt: SimKsmSample | undefined;
  const series = [sample()];
  const converged = follow(series, (ser) => {
    const end = ser[ser.length - 1];
    let j = ser.length - 1;
    while (j > 0 && key(ser[j - 1]) === key(end)) j--;
    if (end.fullScans - ser[j].fullScans >= stableScans) {
      convergedAt = ser[j];
      return true;
    }
    return false;
  });
  const final = ksmCounters(sim);
  let afterWrites: SimKsmResult["afterWrites"];
  if (W > 0 && converged) {
    raw.writePages(0, 0, W, KEY_UNIQUE, 0); // one byte of the first page of W groups changes
    const w0 = raw.ksmStat(sim.engine.k.KSM_FULL_SCANS);
    const ws = [sample()];
    follow(ws, (s) => s[s.length - 1].fullScans >= w0 + afterWriteScans);
    afterWrites = { ...ksmCounters(sim), written: W, series: ws };
  }
  const wallMs = performance.now() - t0;
  return {
    ...final,
    converged,
    fullScansToConverge: converged ? convergedAt!.fullScans : null,
    wakeupsToConverge: converged ? convergedAt!.wakeups : null,
    msToConverge: converged ? convergedAt!.tMs : null,
    series,
    ...(afterWrites ? { afterWrites } : {}),
    pages,
    wallMs,
    sim,
  };
}
