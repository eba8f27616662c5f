// Free-memory states of the host and what each allows. Spec: esxi-memory.md §3; docs/scheduler.md.
//
// minFree by the sliding scale (ESXi 5.0+): 6 % of the first 4 GB, 4 % of 4-12 GB, 2 % of 12-28 GB,
// 1 % of the rest; or Mem.MemMinFreePct % of memory when that is non-zero.
//
// States by free memory as % of minFree, each number read as the lower bound of its state (vSphere
// 6.0+, EPPING): high >= 400, clear >= 100, soft >= 64, hard >= 32, low below; in low, below 16 the
// host blocks VMs above their target from allocating. Worse states are entered at once; a state is
// left upward only when free memory reaches its upper bound plus a margin (hysteresis) and stays
// there for a hold time, so a host hovering at a threshold, or reclamation overshooting for a tick,
// does not make it flap. Every threshold is a setting (Vmemsim.State*).
import type { HostSettings } from "../scenario/settings.js";

const GB = 1024 ** 3;

/** minFree in bytes for a host whose VMkernel manages `memory` bytes. */
export function minFree(memory: number, minFreePct: number): number {
  if (minFreePct > 0) return (memory * minFreePct) / 100;
  const band = (lo: number, hi: number, pct: number) => (Math.max(0, Math.min(memory, hi) - lo) * pct) / 100;
  return band(0, 4 * GB, 6) + band(4 * GB, 12 * GB, 4) + band(12 * GB, 28 * GB, 2) + band(28 * GB, Infinity, 1);
}

export type MemState = "high" | "clear" | "soft" | "hard" | "low";

/** From best to worst. */
export const STATES: readonly MemState[] = ["high", "clear", "soft", "hard", "low"];

/** Thresholds in % of minFree. */
export interface Thresholds {
  /** lower bound of high */
  high: number;
  /** lower bound of clear */
  clear: number;
  /** lower bound of soft */
  soft: number;
  /** lower bound of hard (below: low) */
  hard: number;
  /** inside low, blocking below this */
  block: number;
  /** hysteresis: leaving a state upward needs free >= its upper bound + margin */
  margin: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { high: 400, clear: 100, soft: 64, hard: 32, block: 16, margin: 10 };

/** The thresholds a host's settings give. Check them with `thresholdProblem` first. */
export function thresholds(s: Pick<HostSettings, ThresholdSetting>): Thresholds {
  return {
    high: s["Vmemsim.StateHighPct"],
    clear: s["Vmemsim.StateClearPct"],
    soft: s["Vmemsim.StateSoftPct"],
    hard: s["Vmemsim.StateHardPct"],
    block: s["Vmemsim.StateBlockPct"],
    margin: s["Vmemsim.StateMarginPct"],
  };
}

export type ThresholdSetting =
  | "Vmemsim.StateHighPct"
  | "Vmemsim.StateClearPct"
  | "Vmemsim.StateSoftPct"
  | "Vmemsim.StateHardPct"
  | "Vmemsim.StateBlockPct"
  | "Vmemsim.StateMarginPct";

/** Why a set of thresholds is unusable (they must fall strictly), or null when it is fine. */
export function thresholdProblem(t: Thresholds): string | null {
  const order: [string, number][] = [
    ["Vmemsim.StateHighPct", t.high],
    ["Vmemsim.StateClearPct", t.clear],
    ["Vmemsim.StateSoftPct", t.soft],
    ["Vmemsim.StateHardPct", t.hard],
    ["Vmemsim.StateBlockPct", t.block],
  ];
  for (let i = 1; i < order.length; i++) {
    if (!(order[i][1] < order[i - 1][1])) {
      return `free-memory state thresholds must fall strictly: ${order.map(([n, v]) => `${n}=${v}`).join(" > ")} does not hold (${order[i][0]} ${order[i][1]} >= ${order[i - 1][0]} ${order[i - 1][1]})`;
    }
  }
  return null;
}

/** Lower bound of a state, % of minFree (low: 0). */
export function lowerBound(state: MemState, t: Thresholds): number {
  switch (state) {
    case "high":
      return t.high;
    case "clear":
      return t.clear;
    case "soft":
      return t.soft;
    case "hard":
      return t.hard;
    case "low":
      return 0;
  }
}

/** Upper bound of a state, % of minFree (high: Infinity). */
export function upperBound(state: MemState, t: Thresholds): number {
  const i = STATES.indexOf(state);
  return i === 0 ? Infinity : lowerBound(STATES[i - 1], t);
}

/** The state free memory falls in, without hysteresis. */
export function rawState(freePct: number, t: Thresholds): MemState {
  for (const s of STATES) if (freePct >= lowerBound(s, t)) return s;
  return "low";
}

/**
 * The next state from `current` with `freePct` free (% of minFree): a worse state at once; a better
 * one only as far as free memory clears each upper bound by the margin.
 */
export function nextState(current: MemState, freePct: number, t: Thresholds): MemState {
  const raw = rawState(freePct, t);
  let i = STATES.indexOf(current);
  const r = STATES.indexOf(raw);
  if (r >= i) return raw;
  while (i > r && freePct >= lowerBound(STATES[i - 1], t) + t.margin) i--;
  return STATES[i];
}

/** A host's state with the time since which it could have moved up (null: it could not). */
export interface StateTrack {
  state: MemState;
  upSince: number | null;
}

/**
 * One step of the state machine at time `now`: worse states at once; a better one (nextState) only
 * once it has stayed available for `holdSec` seconds, so reclamation that overshoots for a tick or
 * two does not make the host flap between states.
 */
export function advanceState(track: StateTrack, now: number, freePct: number, t: Thresholds, holdSec: number): StateTrack {
  const next = nextState(track.state, freePct, t);
  const d = STATES.indexOf(next) - STATES.indexOf(track.state);
  if (d > 0) return { state: next, upSince: null };
  if (d === 0) return { state: track.state, upSince: null };
  const since = track.upSince ?? now;
  if (now - since >= holdSec - 1e-9) return { state: next, upSince: null };
  return { state: track.state, upSince: since };
}

/** Blocking (inside low): on below `block`, off again at `block + margin` or when the host leaves low. */
export function nextBlocking(blocking: boolean, state: MemState, freePct: number, t: Thresholds): boolean {
  if (state !== "low") return false;
  return blocking ? freePct < t.block + t.margin : freePct < t.block;
}

/**
 * Free memory (% of minFree) that targets aim for in `state`: one margin past the level at which
 * the host leaves the state (its upper bound + margin), so the host does leave it even while the
 * guests keep allocating: low 32 + 2 × 10, hard 64 + 2 × 10. In soft, clear and high the same above
 * the clear threshold (100 + 2 × 10): the VMs may share all memory above that, so balloons deflate
 * while free memory stays clear of the soft state.
 */
export function goalPct(state: MemState, t: Thresholds): number {
  return Math.min(upperBound(state, t), t.clear) + 2 * t.margin;
}

/** What the mechanisms may do in a state (docs/scheduler.md has the table). */
export interface Allowed {
  /** break the VMs' 2 MiB large pages into small ones so TPS can share their subpages */
  breakLargePages: boolean;
  /** call TPS actively (beyond its background scan rate) */
  activeTps: boolean;
  /** inflate balloons toward MCTLTGT (a balloon may always deflate toward a lower MCTLTGT) */
  balloon: boolean;
  /** compress and host-swap pages toward SWTGT */
  compressSwap: boolean;
  /** refuse new allocations of VMs above their target (P_BLOCKED, set by the scheduler) */
  block: boolean;
}

const ALLOWED: Record<MemState, Omit<Allowed, "block">> = {
  high: { breakLargePages: false, activeTps: false, balloon: false, compressSwap: false },
  clear: { breakLargePages: true, activeTps: true, balloon: false, compressSwap: false },
  soft: { breakLargePages: true, activeTps: true, balloon: true, compressSwap: false },
  hard: { breakLargePages: true, activeTps: true, balloon: false, compressSwap: true },
  low: { breakLargePages: true, activeTps: false, balloon: false, compressSwap: true },
};

/**
 * The mechanisms a state allows. `blocking`: free memory is below the block threshold (only
 * meaningful in low; Scheduler.blocking). A VM above its limit is reclaimed from in any state: that
 * is in its targets (MCTLTGT / SWTGT), not here.
 */
export function allowed(state: MemState, blocking = false): Allowed {
  return { ...ALLOWED[state], block: state === "low" && blocking };
}
