// Reclamation policy: carries out the scheduler's targets with the mechanisms, once per VM per
// tick, after the scheduler and the sharing scanner. Spec: esxi-memory.md §5 (ballooning), §6
// (compression), §7 (host swap); docs/reclamation.md.
//
// Per powered-on VM, each tick:
//   1. the balloon driver (vmmemctl) runs when installed, the guest has booted (bootTime) and it is
//      not disabled (sched.mem.maxmemctl = 0); it polls its target, min(MCTLTGT, MCTLMAX), and
//      inflates at vmw_balloon's rates: free pages at Vmemsim.BalloonRateNoSleep, pages the guest
//      must reclaim at an adaptive rate between Vmemsim.BalloonRateMin and Vmemsim.BalloonRateMax
//      (+16 pages/s per poll that used it all, halved when the guest could not give), or deflates
//      at Vmemsim.BalloonRateDeflate (balloonVm: the guest picks the pages, assembly/balloon.ts);
//   2. the compression cache's cap: Mem.MemZipMaxPct of configured and Mem.MemZipMaxAllocPct of
//      allocated memory, 0 when Mem.MemZipEnable is 0;
//   3. host swap: compressed + swapped pages are brought up to SWTGT plus the balloon's shortfall
//      (pages the guest could not give: it had no free page, no page cache and a full page file),
//      at most Vmemsim.SwapOutRate pages per second (swapVm: random victims, share, compress,
//      swap; assembly/swap.ts). Nothing is swapped in when the target drops: pages come back when
//      the guest touches them.
// Blocking in the low state is the scheduler's (P_BLOCKED); the mechanisms' allocations (swap-in,
// decompression) honour it.
import type { Simulation, VmState } from "../sim/simulation.js";
import type { HostSettings } from "../scenario/settings.js";
import { PerfMeter } from "./latency.js";

const PAGE = 4096;
const U32 = 2 ** 32;

/** The engine exports of assembly/balloon.ts and assembly/swap.ts. */
export interface ReclaimExports {
  balloonVm(vm: number, target: number, freeBudget: number, reclaimBudget: number, deflateBudget: number, epoch: number): number;
  swapVm(vm: number, n: number): number;
  configureReclaim(tickUs: number, hdd: number, ssd: number, unzip: number, cow: number, guest: number, alloc: number): void;
  setSwapCache(slots: number): number;
}

export type Targets = VmState["targets"];

/** What the reclamation policy keeps per VM. */
export interface VmReclaim {
  /** powered on, as last seen (a power-on resets the rest) */
  on: boolean;
  /** the balloon driver runs (MCTL?) */
  running: boolean;
  /** vmw_balloon's adaptive rate for allocations the guest must reclaim for, pages/s */
  rateAlloc: number;
  /** the balloon's target this tick, pages: min(MCTLTGT, MCTLMAX), 0 when the driver is not running */
  balloonTarget: number;
  /** pages the balloon could not get because the guest had nothing left; host swap takes them */
  shortfall: number;
  /** compressed + swapped pages aimed at this tick: SWTGT + shortfall */
  swapGoal: number;
  /** targets pinned by hand (tests, experiments), over the scheduler's */
  pinned: Partial<Targets> | null;
}

export class Reclaim {
  readonly vms: VmReclaim[];
  private readonly raw: ReclaimExports;
  private costKey = "";
  /** pages of the SSD host cache (Vmemsim.SwapCacheMB), 0 when none */
  swapCachePages = 0;
  /** per-VM interval figures for the outputs: THRU%, STALL%, LAT%, rates (latency.ts) */
  readonly meter: PerfMeter;

  constructor(private readonly sim: Simulation) {
    this.raw = sim.engine.raw as unknown as ReclaimExports;
    this.vms = sim.vms.map(() => ({
      on: false, running: false, rateAlloc: 0, balloonTarget: 0, shortfall: 0, swapGoal: 0, pinned: null,
    }));
    if (!this.configureSwapCache()) {
      throw new RangeError(`the engine's linear memory cannot hold a swap cache of ${this.settings["Vmemsim.SwapCacheMB"]} MB (12 bytes per page)`);
    }
    this.meter = new PerfMeter(sim.engine, sim.vms.length);
    for (const vm of sim.vms) this.configureVm(vm);
    this.configureCosts();
  }

  private get settings(): HostSettings {
    return this.sim.scenario.host.settings;
  }

  /**
   * Pin a VM's reclamation targets (pages), over whatever the scheduler computes, until unpinned
   * with null: for tests and experiments that squeeze a VM to a given size by one mechanism.
   */
  pin(vm: VmState, targets: Partial<Targets> | null): void {
    this.vms[vm.index].pinned = targets;
  }

  /** The targets in force for a VM: the scheduler's, with any pinned ones over them. */
  targetsOf(vm: VmState): Targets {
    const p = this.vms[vm.index].pinned;
    return p ? { ...vm.targets, ...p } : vm.targets;
  }

  /** The balloon limit of a VM, pages (MCTLMAX): sched.mem.maxmemctl, else Mem.CtlMaxPercent. */
  balloonLimit(vm: VmState): number {
    const pages = vm.config.memory / PAGE;
    const maxmemctl = vm.settings["sched.mem.maxmemctl"];
    return Math.floor(maxmemctl >= 0 ? Math.min(pages, maxmemctl / PAGE) : (pages * this.settings["Mem.CtlMaxPercent"]) / 100);
  }

  /** The SSD host cache's size into the engine, when it changed. False: no room for it. */
  private configureSwapCache(): boolean {
    const pages = this.settings["Vmemsim.SwapCacheMB"] * 256;
    if (pages === this.swapCachePages) return true;
    if (!(this.raw.setSwapCache(pages) & 1)) return false;
    this.swapCachePages = pages;
    return true;
  }

  /** Latencies and the tick length into the engine, when they changed. */
  private configureCosts(): void {
    const s = this.settings;
    const costs = [
      this.sim.scenario.tick * 1e6, s["Vmemsim.LatSwapHdd"], s["Vmemsim.LatSwapSsd"], s["Vmemsim.LatUnzip"],
      s["Vmemsim.LatCow"], s["Vmemsim.LatGuestDisk"], s["Vmemsim.LatAllocWait"],
    ] as const;
    const key = costs.join(",");
    if (key === this.costKey) return;
    this.costKey = key;
    this.raw.configureReclaim(...costs);
  }

  /** Per-VM parameters that follow the configuration: page file, compressibility, ring size. */
  private configureVm(vm: VmState): void {
    const e = this.sim.engine;
    const k = e.k;
    const s = this.settings;
    const pages = vm.config.memory / PAGE;
    e.setVmParam(vm.index, k.P_GPF_PAGES, Math.floor(vm.config.guest.pageFile / PAGE));
    const c = vm.config.content.compress;
    const le1k = c ? c.le1k : s["Vmemsim.Zip1KPct"] / 100;
    const le2k = c ? c.le2k : s["Vmemsim.Zip2KPct"] / 100;
    const t1 = Math.min(U32 - 1, Math.round(Math.min(1, le1k) * U32));
    const t2 = Math.min(U32 - 1, Math.round(Math.min(1, le1k + le2k) * U32));
    e.setVmParam(vm.index, k.P_ZIP_T1, t1);
    e.setVmParam(vm.index, k.P_ZIP_T2, Math.max(t1, t2));
    e.setVmParam(vm.index, k.P_ZIP_MAX_KB, Math.floor((pages * s["Mem.MemZipMaxPct"]) / 100) * 4);
  }

  /** A VM was powered on: its swap file (configured − reservation) and a fresh driver. */
  private poweredOn(vm: VmState, r: VmReclaim): void {
    const e = this.sim.engine;
    const pages = vm.config.memory / PAGE;
    e.setVmParam(vm.index, e.k.P_SWAP_PAGES, Math.max(0, pages - Math.ceil(vm.reservation / PAGE)));
    Object.assign(r, { on: true, running: false, rateAlloc: this.settings["Vmemsim.BalloonRateMin"], balloonTarget: 0, shortfall: 0, swapGoal: 0 });
  }

  /** One tick of reclamation (Simulation.tick, after the scheduler and the sharing scanner). */
  tick(epoch: number): void {
    const sim = this.sim;
    const e = sim.engine;
    const k = e.k;
    const s = this.settings;
    const dt = sim.scenario.tick;
    this.configureCosts();
    if (!this.configureSwapCache()) {
      const mb = s["Vmemsim.SwapCacheMB"];
      s["Vmemsim.SwapCacheMB"] = this.swapCachePages / 256;
      sim.record({ time: sim.time, kind: "setHost", ok: false, message: `Vmemsim.SwapCacheMB=${mb}: the engine's linear memory cannot hold it; the swap cache stays at ${this.swapCachePages / 256} MB` });
    }
    for (const vm of sim.vms) {
      const r = this.vms[vm.index];
      if (!vm.powered) {
        r.on = false;
        r.running = false;
        continue;
      }
      sim.current = vm;
      if (!r.on) this.poweredOn(vm, r);
      this.configureVm(vm);
      if (r.pinned) Object.assign(vm.targets, r.pinned); // so the outputs show what is in force
      const t = vm.targets;
      const pages = vm.config.memory / PAGE;
      // 1. the balloon driver
      const limit = this.balloonLimit(vm);
      r.running = vm.config.guest.balloonDriver && limit > 0 && sim.time >= vm.poweredAt + vm.config.guest.bootTime - 1e-9;
      e.setVmParam(vm.index, k.P_MCTL_ON, r.running ? 1 : 0);
      r.balloonTarget = r.running ? Math.max(0, Math.min(Math.floor(t.mctltgt), limit)) : 0;
      const size = e.vmCounter(vm.index, k.C_BALLOONED);
      r.shortfall = 0;
      if (size !== r.balloonTarget) {
        const free = Math.round(s["Vmemsim.BalloonRateNoSleep"] * dt);
        const reclaim = Math.round(r.rateAlloc * dt);
        const deflate = Math.round(s["Vmemsim.BalloonRateDeflate"] * dt);
        const got = this.raw.balloonVm(vm.index, r.balloonTarget, free, reclaim, deflate, epoch) | 0;
        r.shortfall = e.vmCounter(vm.index, k.C_MCTL_SHORT);
        if (r.shortfall > 0) r.rateAlloc = Math.max(s["Vmemsim.BalloonRateMin"], r.rateAlloc / 2);
        else if (reclaim > 0 && got >= reclaim && size + got < r.balloonTarget) {
          r.rateAlloc = Math.min(s["Vmemsim.BalloonRateMax"], r.rateAlloc + 16); // the rate held it back
        }
      }
      // 2. the compression cache's cap, KB
      const alloc = e.vmCounter(vm.index, k.C_PRIVATE) + e.vmCounter(vm.index, k.C_SHARED) + e.vmCounter(vm.index, k.C_ZIP_CACHE);
      const capPages = s["Mem.MemZipEnable"] ? Math.min((pages * s["Mem.MemZipMaxPct"]) / 100, (alloc * s["Mem.MemZipMaxAllocPct"]) / 100) : 0;
      e.setVmParam(vm.index, k.P_ZIP_CAP_KB, Math.floor(capPages * 4));
      // 3. host swap (compress first), toward SWTGT plus what the balloon could not take
      r.swapGoal = Math.max(0, Math.floor(t.swtgt)) + r.shortfall;
      const out = e.vmCounter(vm.index, k.C_COMPRESSED) + e.vmCounter(vm.index, k.C_SWAPPED);
      const need = Math.min(r.swapGoal - out, Math.round(s["Vmemsim.SwapOutRate"] * dt));
      if (need > 0) this.raw.swapVm(vm.index, need);
    }
    sim.current = null;
  }
}
