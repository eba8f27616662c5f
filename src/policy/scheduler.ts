// The memory scheduler: how much machine memory each VM should have and how hard the host must
// reclaim. Spec: esxi-memory.md §2 (shares, reservation, limit, idle memory tax, min-funding
// revocation, active-memory sampling) and §3 (free-memory states); docs/scheduler.md.
//
// Once per tick, after the guests ran (Simulation.tick), `Scheduler.tick`:
//   1. closes the sampling periods that are due (one engine call per VM per period, sample.ts) and
//      updates each VM's slow and fast moving averages of f = t / n;
//   2. moves the host's free-memory state (states.ts, with hysteresis) and records each change;
//   3. every Mem.BalancePeriod, on a state change and on power-on/off, recomputes every powered-on
//      VM's targets (SZTGT, MCTLTGT, SWTGT, MCTLMAX) by min-funding revocation with the idle tax;
//   4. in low below the block threshold, flags VMs above their target as blocked (P_BLOCKED).
// The reclamation mechanisms read VmState.targets and `allowed(sim.state, scheduler.blocking)`.
import type { Simulation, VmState } from "../sim/simulation.js";
import {
  advanceState, allowed, goalPct, minFree, nextBlocking, thresholdProblem, thresholds, type Allowed, type MemState, type Thresholds,
} from "./states.js";

const PAGE = 4096;

// ---- min-funding revocation with the idle memory tax (pure functions) ----

/**
 * Progressive tax (Mem.IdleTaxType 1), vmemsim's reading: idle pages are taxed in brackets of the
 * idle:active ratio r, at rate tau × (j + 1) / 4 for r in [j, j + 1), j = 0, 1, 2, and at the full
 * rate tau beyond r = 3. A mostly idle VM pays about the flat rate; a mostly active one less.
 */
export const PROGRESSIVE_BRACKETS = 4;

function bracketK(tau: number, j: number): number {
  return 1 / (1 - (tau * (j + 1)) / PROGRESSIVE_BRACKETS);
}

/**
 * What holding `pages` costs a VM with `active` active pages, in "active-page equivalents": active
 * pages cost 1, idle pages k = 1 / (1 - tau) (flat, W02) or by bracket (progressive). rho, the
 * adjusted shares-per-page ratio, is shares / cost: with f = active / pages this is W02's
 * S / (P (f + k (1 - f))).
 */
export function taxedCost(pages: number, active: number, tau: number, type: number): number {
  const a = Math.min(pages, active);
  let idle = Math.max(0, pages - active);
  if (type !== 1 || active <= 0) return a + idle / (1 - tau);
  let c = a;
  for (let j = 0; j < PROGRESSIVE_BRACKETS - 1; j++) {
    const w = Math.min(idle, active);
    c += w * bracketK(tau, j);
    idle -= w;
  }
  return c + idle * bracketK(tau, PROGRESSIVE_BRACKETS - 1);
}

/** The inverse of taxedCost in its first argument: the pages whose cost is `cost`. */
export function pagesAtCost(cost: number, active: number, tau: number, type: number): number {
  if (cost <= active) return cost;
  if (type !== 1 || active <= 0) return Math.max(0, active) + (cost - Math.max(0, active)) * (1 - tau);
  let c = cost - active;
  let pages = active;
  for (let j = 0; j < PROGRESSIVE_BRACKETS - 1; j++) {
    const k = bracketK(tau, j);
    if (c <= active * k) return pages + c / k;
    c -= active * k;
    pages += active;
  }
  return pages + c / bracketK(tau, PROGRESSIVE_BRACKETS - 1);
}

/** The adjusted shares-per-page ratio rho of W02 §5 for a VM holding `pages`. */
export function rho(shares: number, pages: number, active: number, tau: number, type: number): number {
  return shares / taxedCost(pages, active, tau, type);
}

export interface Client {
  shares: number;
  /** active pages (estimate) */
  active: number;
  /** least pages it may get */
  lo: number;
  /** most pages it may get */
  hi: number;
}

/**
 * Min-funding revocation: share `total` pages among the clients so that every client strictly
 * between its bounds has the same rho (reclaiming a page from the lowest-rho client until none is
 * lower is the same end point). Clients with no shares get `lo`. When the bounds cannot be met
 * (sum of lo above total, or sum of hi below it) the bounds win.
 */
export function minFunding(clients: Client[], total: number, tau: number, type: number): number[] {
  const at = (lambda: number) =>
    clients.map((c) => (c.shares > 0 ? Math.min(c.hi, Math.max(c.lo, pagesAtCost(c.shares * lambda, c.active, tau, type))) : c.lo));
  const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
  const lo = clients.map((c) => c.lo);
  if (sum(lo) >= total) return lo;
  let top = 0;
  for (const c of clients) if (c.shares > 0) top = Math.max(top, taxedCost(c.hi, c.active, tau, type) / c.shares);
  const full = at(top);
  if (sum(full) <= total) return full;
  let a = 0;
  let b = top;
  for (let i = 0; i < 200 && b - a > b * 1e-15; i++) {
    const m = (a + b) / 2;
    if (sum(at(m)) < total) a = m;
    else b = m;
  }
  return at((a + b) / 2);
}

/** A VM's pages as the reclaim split sees them. */
export interface ReclaimInputs {
  /** pages the VM has touched: mapped + ballooned + compressed + swapped */
  claimed: number;
  /** its target, pages without overhead */
  sztgt: number;
  /** min(limit, configured), pages */
  hi: number;
  /** ballooned now */
  ballooned: number;
  /** compressed + swapped now */
  out: number;
  /** the balloon driver is installed and running (booted) */
  driver: boolean;
  /** MCTLMAX, pages */
  mctlmax: number;
}

/**
 * How much of a VM's reclaim the balloon should hold (MCTLTGT) and how much compression + host
 * swap (SWTGT), absolute page counts. The reclaim is what the VM has touched beyond its target;
 * of it, what lies beyond its limit is reclaimed in any state (balloon first). Otherwise the state
 * decides: in soft the balloon takes all that compression + swap do not already keep out (up to
 * MCTLMAX); in hard and low compression + swap
 * take what the balloon does not already hold (ballooning stops adding); in high and clear nothing
 * new is reclaimed, and what is already ballooned / swapped counts toward the reclaim. A target
 * below the current size lets a balloon deflate; swapped pages come back only when touched.
 */
export function splitReclaim(ok: Pick<Allowed, "balloon" | "compressSwap">, x: ReclaimInputs): { mctltgt: number; swtgt: number } {
  const reclaim = Math.max(0, x.claimed - x.sztgt);
  const overLimit = Math.min(reclaim, Math.max(0, x.claimed - x.hi));
  // in soft the balloon covers what compression + swap do not already keep out
  const wantBalloon = ok.balloon ? Math.max(0, reclaim - x.out) : Math.max(overLimit, Math.min(x.ballooned, reclaim));
  const mctltgt = x.driver ? Math.min(x.mctlmax, wantBalloon) : 0;
  const swtgt = ok.compressSwap
    ? reclaim - mctltgt
    : Math.max(0, overLimit - mctltgt, Math.min(x.out, reclaim - mctltgt));
  return { mctltgt, swtgt };
}

// ---- the scheduler ----

/** Sampler exports of the engine (assembly/sample.ts). */
interface SamplerExports {
  sampleInit(vm: number, seed: number): void;
  samplePeriod(vm: number, n: number): number;
  sampleStop(vm: number): void;
}

/** What a balance used for one VM, in pages (kept for outputs, tests and docs). */
export interface BalanceInputs {
  shares: number;
  /** active-memory estimate used, pages */
  active: number;
  /** mapped pages (private + shared) */
  alloc: number;
  /** touched pages: mapped, ballooned, compressed or swapped */
  claimed: number;
  /** bound on what it would use: claimed, or hi when its touches stalled for memory or it zeroes its memory */
  demand: number;
  lo: number;
  hi: number;
}

/** The scheduler's per-VM state. Fractions are of the VM's configured memory. */
export interface VmPolicy {
  on: boolean;
  /** time the current sampling period closes */
  periodEnd: number;
  /** slow and fast moving averages of t / n */
  slow: number;
  fast: number;
  /** t / n of the last complete period (NaN before the first) */
  lastF: number;
  /** distinct pages touched in the last complete period (the truth the estimate aims at) */
  trueActive: number;
  /** entitlement: the min-funding share at free = minFree, pages (without overhead) */
  entitlement: number;
  /** C_ALLOC_STALLS at the last balance */
  stallsSeen: number;
  blocked: boolean;
  balance: BalanceInputs | null;
}

export interface Activity {
  /** %ACTVS, %ACTVF, %ACTVN and the estimate %ACTV, as fractions of configured memory */
  slow: number;
  fast: number;
  next: number;
  estimate: number;
}

export class Scheduler {
  readonly vms: VmPolicy[];
  /** inside low, below the block threshold */
  blocking = false;
  /** time of the next periodic balance */
  nextBalance = 0;
  /** balances done so far */
  balances = 0;
  /** the last balance: free and mapped pages, the state's goal and the budget shared, pages */
  last: { time: number; state: MemState; free: number; mapped: number; goal: number; budget: number } | null = null;
  private th: Thresholds;
  /** since when the host could have moved to a better state (advanceState) */
  private upSince: number | null = null;
  private rebalance = true;
  private readonly raw: SamplerExports;

  constructor(private readonly sim: Simulation) {
    const settings = sim.scenario.host.settings;
    this.th = thresholds(settings);
    const problem = thresholdProblem(this.th);
    if (problem) throw new RangeError(problem);
    this.raw = sim.engine.raw as unknown as SamplerExports;
    this.vms = sim.vms.map((vm) => {
      this.raw.sampleInit(vm.index, sim.scenario.seed >>> 0);
      return {
        on: false, periodEnd: 0, slow: 0, fast: 0, lastF: NaN, trueActive: 0, entitlement: 0,
        stallsSeen: 0, blocked: false, balance: null,
      };
    });
    for (const vm of sim.vms) vm.targets.mctlmax = mctlMaxOf(vm, settings["Mem.CtlMaxPercent"]);
  }

  private get settings() {
    return this.sim.scenario.host.settings;
  }

  /** minFree of the host now, pages. */
  minFreePages(): number {
    return minFree(this.sim.scenario.host.memory, this.settings["Mem.MemMinFreePct"]) / PAGE;
  }

  /** Free machine memory now, pages. */
  freePages(): number {
    const e = this.sim.engine;
    return e.hostCounter(e.k.H_FREE_LARGE) * 512 + e.hostCounter(e.k.H_FREE_SMALL);
  }

  /** The mechanisms the host's state allows now. */
  allowed() {
    return allowed(this.sim.state, this.blocking);
  }

  /** A VM just powered on at `t`: its first sampling period starts; targets follow this tick. */
  poweredOn(vm: VmState, t: number): void {
    const p = this.vms[vm.index];
    Object.assign(p, { on: true, slow: 0, fast: 0, lastF: NaN, trueActive: 0, blocked: false, balance: null });
    p.stallsSeen = this.sim.engine.vmCounter(vm.index, this.sim.engine.k.C_ALLOC_STALLS);
    p.periodEnd = t + this.settings["Mem.SamplePeriod"];
    this.raw.samplePeriod(vm.index, this.settings["Vmemsim.SampleSize"]);
    this.rebalance = true;
  }

  /** Host settings changed (setHost): new thresholds take effect if they are consistent. */
  settingsChanged(t: number): void {
    const th = thresholds(this.settings);
    const problem = thresholdProblem(th);
    if (problem) {
      this.sim.record({ time: t, kind: "state", ok: false, message: `state thresholds not changed: ${problem}` });
      Object.assign(this.settings, {
        "Vmemsim.StateHighPct": this.th.high, "Vmemsim.StateClearPct": this.th.clear, "Vmemsim.StateSoftPct": this.th.soft,
        "Vmemsim.StateHardPct": this.th.hard, "Vmemsim.StateBlockPct": this.th.block, "Vmemsim.StateMarginPct": this.th.margin,
      });
      return;
    }
    this.th = th;
  }

  /** The active-memory averages of a VM now, the running period included. */
  activity(vm: VmState): Activity {
    const p = this.vms[vm.index];
    if (!p.on) return { slow: 0, fast: 0, next: 0, estimate: 0 };
    const e = this.sim.engine;
    const k = e.k;
    const n = e.vmParam(vm.index, k.P_SAMPLE_N);
    const partial = n > 0 ? (e.vmCounter(vm.index, k.C_SAMPLE_HITS) - e.vmCounter(vm.index, k.C_SAMPLE_START)) / n : 0;
    // the fast average updated with the running period's hits so far, once they exceed it (the
    // hits only grow until the period ends, so this is a lower bound of the next fast average)
    const next = p.fast + this.fastGain() * Math.max(0, partial - p.fast);
    const floor = this.settings["Mem.SampleActivePctMin"] / 100;
    return { slow: p.slow, fast: p.fast, next, estimate: Math.min(1, Math.max(p.slow, p.fast, next, floor)) };
  }

  private fastGain(): number {
    return this.settings["Vmemsim.SampleFastGainPct"] / 100;
  }

  /** One tick's policy, at time `now` (after the guests ran). */
  tick(now: number): void {
    const sim = this.sim;
    const e = sim.engine;
    const k = e.k;
    const settings = this.settings;
    // power-offs since the last tick
    for (const vm of sim.vms) {
      const p = this.vms[vm.index];
      if (p.on && !vm.powered) {
        p.on = false;
        this.raw.sampleStop(vm.index);
        e.setVmParam(vm.index, k.P_BLOCKED, 0);
        Object.assign(p, { slow: 0, fast: 0, lastF: NaN, trueActive: 0, entitlement: 0, blocked: false, balance: null });
        vm.targets.sztgt = 0;
        vm.targets.mctltgt = 0;
        vm.targets.swtgt = 0;
        this.rebalance = true;
      }
    }
    // sampling periods due
    const slowGain = settings["Vmemsim.SampleSlowGainPct"] / 100;
    const fastGain = this.fastGain();
    for (const vm of sim.vms) {
      const p = this.vms[vm.index];
      if (!p.on || now < p.periodEnd - 1e-9) continue;
      sim.current = vm;
      this.raw.samplePeriod(vm.index, settings["Vmemsim.SampleSize"]);
      const t = e.vmCounter(vm.index, k.C_SAMPLE_LAST_T);
      const n = e.vmCounter(vm.index, k.C_SAMPLE_LAST_N);
      const f = n > 0 ? t / n : 0;
      p.lastF = f;
      p.slow += slowGain * (f - p.slow);
      p.fast += fastGain * (f - p.fast);
      p.trueActive = e.vmCounter(vm.index, k.C_TRUE_ACTIVE);
      p.periodEnd = Math.max(p.periodEnd + settings["Mem.SamplePeriod"], now + 1e-6);
    }
    sim.current = null;
    // free-memory state (thresholds changed by hand take effect too, when consistent)
    const th = thresholds(settings);
    if (Object.keys(th).some((key) => th[key as keyof Thresholds] !== this.th[key as keyof Thresholds]) && !thresholdProblem(th)) this.th = th;
    const minFreePages = this.minFreePages();
    const free = this.freePages();
    const pct = minFreePages > 0 ? (free / minFreePages) * 100 : Infinity;
    const track = advanceState({ state: sim.state, upSince: this.upSince }, now, pct, this.th, settings["Vmemsim.StateHoldSec"]);
    this.upSince = track.upSince;
    const state = track.state;
    if (state !== sim.state) {
      sim.record({
        time: now, kind: "state", ok: true,
        message: `${sim.state} → ${state} (free ${mb(free)} MB = ${Math.round(pct)} % of minFree ${mb(minFreePages)} MB)`,
      });
      sim.state = state;
      this.rebalance = true;
    }
    this.blocking = nextBlocking(this.blocking, state, pct, this.th);
    // targets
    if (this.rebalance || now >= this.nextBalance - 1e-9) {
      this.balance(now, free, minFreePages);
      this.rebalance = false;
      this.nextBalance = now + settings["Mem.BalancePeriod"];
    }
    // blocking: VMs above their target get no new pages
    for (const vm of sim.vms) {
      const p = this.vms[vm.index];
      let blocked = false;
      if (this.blocking && p.on) {
        const mapped = e.vmCounter(vm.index, k.C_PRIVATE) + e.vmCounter(vm.index, k.C_SHARED);
        blocked = mapped > vm.targets.sztgt;
      }
      if (blocked !== p.blocked) {
        p.blocked = blocked;
        e.setVmParam(vm.index, k.P_BLOCKED, blocked ? 1 : 0);
      }
    }
  }

  /** Recompute every powered-on VM's targets now. */
  private balance(now: number, free: number, minFreePages: number): void {
    const sim = this.sim;
    const e = sim.engine;
    const k = e.k;
    const settings = this.settings;
    const tau = settings["Mem.IdleTax"] / 100;
    const type = settings["Mem.IdleTaxType"];
    const on = sim.vms.filter((vm) => this.vms[vm.index].on);
    const inputs: BalanceInputs[] = on.map((vm) => {
      const p = this.vms[vm.index];
      const c = e.vmCounters(vm.index);
      const pages = vm.config.memory / PAGE;
      const hi = Math.min(pages, vm.limit === null ? pages : Math.floor(vm.limit / PAGE));
      const lo = Math.min(hi, Math.ceil(vm.reservation / PAGE));
      const claimed = pages - c[k.C_UNBACKED];
      const stalls = c[k.C_ALLOC_STALLS];
      // touches that found no memory, or a boot zeroing sweep still under way: it wants it all
      const hungry = stalls > p.stallsSeen || vm.sweepLeft > 0;
      p.stallsSeen = stalls;
      return {
        shares: sharesOf(vm),
        active: this.activity(vm).estimate * pages,
        alloc: c[k.C_PRIVATE] + c[k.C_SHARED],
        claimed,
        demand: Math.min(hi, Math.max(lo, hungry ? hi : claimed)),
        lo,
        hi,
      };
    });
    const mapped = inputs.reduce((s, x) => s + x.alloc, 0);
    const share = (goalPages: number) => {
      const budget = mapped + free - goalPages;
      const demand = inputs.reduce((s, x) => s + x.demand, 0);
      const clients: Client[] =
        demand >= budget
          ? inputs.map((x) => ({ shares: x.shares, active: x.active, lo: x.lo, hi: x.demand }))
          : inputs.map((x) => ({ shares: x.shares, active: x.active, lo: x.demand, hi: x.hi }));
      return minFunding(clients, budget, tau, type);
    };
    const goal = (goalPct(sim.state, this.th) / 100) * minFreePages;
    const targets = share(goal);
    this.last = { time: now, state: sim.state, free, mapped, goal, budget: mapped + free - goal };
    const entitled = share(minFreePages);
    const ok = allowed(sim.state, this.blocking);
    on.forEach((vm, i) => {
      const p = this.vms[vm.index];
      const x = inputs[i];
      p.balance = x;
      p.entitlement = Math.round(entitled[i]);
      const c = e.vmCounters(vm.index);
      const pages = vm.config.memory / PAGE;
      const sztgt = Math.round(targets[i]);
      const mctlmax = mctlMaxOf(vm, settings["Mem.CtlMaxPercent"]);
      const { mctltgt, swtgt } = splitReclaim(ok, {
        claimed: x.claimed,
        sztgt,
        hi: x.hi,
        ballooned: c[k.C_BALLOONED],
        out: c[k.C_COMPRESSED] + c[k.C_SWAPPED],
        driver: vm.config.guest.balloonDriver && now >= vm.poweredAt + vm.config.guest.bootTime - 1e-9,
        mctlmax,
      });
      vm.targets.sztgt = sztgt;
      vm.targets.mctltgt = mctltgt;
      vm.targets.swtgt = swtgt;
    });
    for (const vm of sim.vms) vm.targets.mctlmax = mctlMaxOf(vm, settings["Mem.CtlMaxPercent"]);
    this.balances++;
  }
}

/** MCTLMAX of a VM, pages: sched.mem.maxmemctl when set, else Mem.CtlMaxPercent of configured. */
export function mctlMaxOf(vm: Pick<VmState, "settings" | "config">, ctlMaxPercent: number): number {
  const maxmemctl = vm.settings["sched.mem.maxmemctl"];
  const pages = vm.config.memory / PAGE;
  return Math.floor(maxmemctl >= 0 ? Math.min(pages, maxmemctl / PAGE) : (pages * ctlMaxPercent) / 100);
}

/** Shares of a VM: low / normal / high = 5 / 10 / 20 per MB of configured memory, or a number. */
export function sharesOf(vm: Pick<VmState, "shares" | "config">): number {
  const perMb = { low: 5, normal: 10, high: 20 } as const;
  return typeof vm.shares === "number" ? vm.shares : perMb[vm.shares] * (vm.config.memory / 2 ** 20);
}

function mb(pages: number): string {
  return (pages / 256).toFixed(1);
}
