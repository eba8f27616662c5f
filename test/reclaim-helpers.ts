// Helpers of the reclamation tests (balloon, compress, swap, reclaim-results): small simulations
// whose reclamation targets are pinned by hand, and readers of the engine's counters and pages.
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import type { Scenario, VmConfig, WorkloadPhase } from "../src/scenario/types.js";
import type { HostSettings } from "../src/scenario/settings.js";
import { scenario, vm, MiB } from "./helpers.js";

export { MiB };
export const PAGE = 4096;
export const pagesOf = (bytes: number) => bytes / PAGE;

/** Settings that keep a test about one mechanism clear of the others: no TPS, no large pages. */
export const QUIET: Partial<HostSettings> = { "Mem.ShareScanGHz": 0, "Mem.AllocGuestLargePage": 0 };

export function phase(over: Partial<WorkloadPhase> & { active: number }): WorkloadPhase {
  return { at: 0, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.3, ...over };
}

/** A VM with guest settings for reclamation tests (driver running from t = 0 unless told). */
export function rvm(name: string, over: Partial<VmConfig> & { pageFile?: number; driver?: boolean; bootTime?: number } = {}): VmConfig {
  const { pageFile, driver, bootTime, ...rest } = over;
  const memory = rest.memory ?? 64 * MiB;
  return vm(name, {
    memory,
    guest: { os: "linux", balloonDriver: driver ?? true, pageFile: pageFile ?? memory, bootTime: bootTime ?? 0 },
    content: { zero: 0, image: 0, duplicate: 0, duplicateCopies: 2 },
    ...rest,
  });
}

export async function rsim(
  vms: VmConfig[],
  opts: { settings?: Partial<HostSettings>; hostMemory?: number; swapCacheMB?: number; check?: boolean; over?: Partial<Scenario> } = {},
): Promise<Simulation> {
  const swapCache = opts.swapCacheMB ? { "Vmemsim.SwapCacheMB": opts.swapCacheMB } : {};
  const sc = scenario({ hostMemory: opts.hostMemory ?? 2048 * MiB, settings: { ...QUIET, ...swapCache, ...opts.settings }, vms, ...opts.over });
  return createSimulation(sc, { check: opts.check ?? true });
}

/** A VM's counters by name (C_ prefix dropped): c(sim, 0).BALLOONED. */
export function c(sim: Simulation, vm = 0): Record<string, number> {
  const k = sim.engine.k;
  const v = sim.engine.vmCounters(vm);
  const out: Record<string, number> = {};
  for (const [name, i] of Object.entries(k)) if (name.startsWith("C_") && i < k.C_COUNTERS) out[name.slice(2)] = v[i];
  return out;
}

/** The host's counters by name (H_ prefix dropped). */
export function h(sim: Simulation): Record<string, number> {
  const k = sim.engine.k;
  const v = sim.engine.hostCounters();
  const out: Record<string, number> = {};
  for (const [name, i] of Object.entries(k)) if (name.startsWith("H_") && i < k.H_COUNTERS) out[name.slice(2)] = v[i];
  return out;
}

/** Pin targets (pages) on VM `i`. */
export function pin(sim: Simulation, i: number, t: { mctltgt?: number; swtgt?: number }): void {
  sim.reclaim.pin(sim.vms[i], t);
}

/** Step `seconds` and return the touches done / demanded over them (relative throughput). */
export function throughput(sim: Simulation, seconds: number, vm = 0): number {
  const a = c(sim, vm);
  sim.step(seconds);
  const b = c(sim, vm);
  const demand = b.DEMAND - a.DEMAND;
  return demand > 0 ? (b.READS + b.WRITES - a.READS - a.WRITES) / demand : 1;
}

/** Step until `cond` holds (at most `max` seconds); returns the seconds stepped. */
export function stepUntil(sim: Simulation, cond: () => boolean, max: number): number {
  let t = 0;
  while (!cond() && t < max) {
    sim.step(1);
    t++;
  }
  return t;
}

/** Page meta words and keys of a VM (a copy). */
export function pages(sim: Simulation, vm = 0): { meta: Uint32Array; key: Uint32Array } {
  const e = sim.engine;
  const n = e.vmParam(vm, e.k.P_PAGES);
  const base = e.vmParam(vm, e.k.P_PAGE_BASE) >>> 0;
  const words = new Uint32Array(e.raw.memory.buffer, base, n * 2);
  const meta = new Uint32Array(n);
  const key = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    meta[i] = words[2 * i];
    key[i] = words[2 * i + 1];
  }
  return { meta, key };
}

export const stateOf = (m: number) => m & 7;
export const guestOf = (m: number) => (m >>> 6) & 3;
export const S = { UNBACKED: 0, PRIVATE: 1, SHARED: 2, BALLOONED: 3, COMPRESSED: 4, SWAPPED: 5 } as const;
export const G = { FREE: 0, CACHE: 1, ANON: 2 } as const;
export const M_GOUT = 1 << 12;
export const M_SSD = 1 << 13;
