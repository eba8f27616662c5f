// Page-sharing policy: when and how fast the sharing mechanisms run (assembly/share.ts ESXi TPS,
// assembly/ksm.ts Linux KSM), salts, and the counters they report. Spec: esxi-memory.md §4,
// linux-ksm.md; docs/sharing.md.
//
// ESXi (host policy `esxi`): each powered-on VM with sched.mem.pshare.enable is scanned at
//   min(pages / Mem.ShareScanTime, Mem.ShareRateMax) pages/s, all VMs together capped at
//   Mem.ShareScanGHz MB/s per GHz of host CPU (cores × GHz), scaled down in proportion when the cap
//   binds; Mem.ShareScanGHz = 0 turns TPS off. When the host's state allows it (`allowed(state)` of
//   src/policy/states.ts, issue 4): `activeTps` scans at Mem.ShareRateMax (still under the host
//   cap), `breakLargePages` breaks the VMs' large pages and shares their hashed subpages.
//   The salt is fixed at power-on (KB2097593: a salting change takes effect at the next power-on).
// KSM (host policy `ksm`): ksmd wakes every sleep_millisecs (with sleep_millisecs = 0 it never rests
//   and its rate is bounded by KSMD_BUSY_PAGES_PER_S) and scans pages_to_scan pages; `run` 0 stops
//   it, 2 unmerges everything; max_page_sharing changes only while nothing is merged (the kernel
//   answers EBUSY otherwise); every VM with sched.mem.pshare.enable is mergeable (qemu's
//   mem-merge).
import type { Simulation, VmState } from "../sim/simulation.js";
import type { KsmKnobs } from "../scenario/settings.js";
import { allowed } from "./states.js";

const PAGE = 4096;
const MB_PAGES = 256;

/** Salts with this bit set are a VM's own (vc.uuid): frames under it are intra-VM. */
export const VM_SALT = 0x8000_0000;

/**
 * Pages per second ksmd gets through when sleep_millisecs = 0 (it never sleeps), of the order the
 * real kernel reached on the development machine: 90,000-200,000 pages/s over the two full scans
 * that merge 100,000-1,000,000 pages (25 % distinct), 670,000 in a scan that only takes checksums
 * (docs/benchmarks.md "Page sharing").
 */
export const KSMD_BUSY_PAGES_PER_S = 200_000;

export const POLICY_NONE = 0;
export const POLICY_TPS = 1;
export const POLICY_KSM = 2;

/** Names of the KSM counters as in /sys/kernel/mm/ksm, in host.csv as `KSM.<name>`. */
export const KSM_COUNTER_NAMES = [
  "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "full_scans", "pages_scanned",
  "pages_skipped", "stable_node_chains", "stable_node_dups", "ksm_zero_pages", "general_profit",
] as const;
export type KsmCounterName = (typeof KSM_COUNTER_NAMES)[number];
export type KsmCounters = Record<KsmCounterName, number>;

/** The sharing exports of the engine (assembly/share.ts, assembly/ksm.ts). */
export interface ShareExports {
  shareInit(policy: number, capacity: number, seed: number): number;
  tpsScan(vm: number, count: number): number;
  shareBreakLarge(vm: number): number;
  shareBeforeSwap(vm: number, ppn: number): number;
  shareUnshare(vm: number, ppn: number): number;
  writePages(vm: number, first: number, count: number, key: number, step: number): number;
  shareFloorPass(vm: number, randomOrder: number): number;
  tpsEntries(): number;
  tpsCapacity(): number;
  ksmScan(wakeups: number, pagesToScan: number): number;
  ksmUnmergeAll(): number;
  ksmStat(i: number): number;
}

export function shareExports(sim: Simulation): ShareExports {
  return sim.engine.raw as unknown as ShareExports;
}

/**
 * The TPS salt of a VM (spec §4, KB2097593). `forceSalting` Mem.ShareForceSalting; `vmSalt`
 * sched.mem.pshare.salt (-1 unset); `index` stands for the VM's vc.uuid.
 *   0: one salt for all: share across all VMs;
 *   1: the VM's salt, unset = 0: VMs with equal salts (and all unsalted VMs) share;
 *   2: the VM's salt, unset = its own: in practice sharing only inside each VM.
 */
export function tpsSalt(forceSalting: number, vmSalt: number, index: number): number {
  if (forceSalting === 0) return 0;
  if (vmSalt >= 0) return vmSalt;
  return forceSalting === 1 ? 0 : (VM_SALT | index) >>> 0;
}

/**
 * TPS scan rates, pages/s, one per VM (0 for VMs not scanned). `active`: the host state calls TPS
 * actively (each VM at Mem.ShareRateMax).
 */
export function tpsRates(sim: Simulation, active = false): number[] {
  const s = sim.scenario.host.settings;
  const cpu = sim.scenario.host.cpu;
  const hostCap = s["Mem.ShareScanGHz"] * MB_PAGES * cpu.cores * cpu.ghz;
  const want = sim.vms.map((vm) => {
    if (!vm.powered || vm.settings["sched.mem.pshare.enable"] === 0 || hostCap <= 0) return 0;
    const pages = vm.config.memory / PAGE;
    const paced = pages / (s["Mem.ShareScanTime"] * 60);
    return Math.min(active ? Infinity : paced, s["Mem.ShareRateMax"]);
  });
  const total = want.reduce((a, b) => a + b, 0);
  const scale = total > hostCap ? hostCap / total : 1;
  return want.map((w) => w * scale);
}

/**
 * ksmd wake-ups per second: one every sleep_millisecs, or back to back (sleep 0) as fast as
 * KSMD_BUSY_PAGES_PER_S allows batches of pages_to_scan.
 */
export function ksmWakeupsPerSecond(knobs: Pick<KsmKnobs, "sleep_millisecs" | "pages_to_scan">): number {
  if (knobs.pages_to_scan <= 0) return 0;
  if (knobs.sleep_millisecs > 0) return 1000 / knobs.sleep_millisecs;
  return KSMD_BUSY_PAGES_PER_S / knobs.pages_to_scan;
}

/**
 * How many distinct shareable contents the tables should expect: per salt (TPS) or for the host
 * (KSM), the zero page, each image's pages, each VM's duplicate keys. Unique pages take no entry.
 */
export function expectedContents(sim: Simulation, policy: number): number {
  const s = sim.scenario.host.settings;
  const groups = new Map<string, Map<string, number>>();
  let dupKeys = 0;
  for (const vm of sim.vms) {
    const pages = vm.config.memory / PAGE;
    const c = vm.config.content;
    const salt = policy === POLICY_KSM ? 0 : tpsSalt(s["Mem.ShareForceSalting"], vm.settings["sched.mem.pshare.salt"], vm.index);
    const images = groups.get(String(salt)) ?? new Map<string, number>();
    groups.set(String(salt), images);
    images.set(vm.config.image, Math.max(images.get(vm.config.image) ?? 0, Math.round(pages * c.image)));
    dupKeys += Math.round((pages * c.duplicate) / Math.max(2, c.duplicateCopies));
  }
  let n = dupKeys;
  for (const images of groups.values()) {
    n += 1;
    for (const p of images.values()) n += p;
  }
  return Math.min(n, 2 ** 25);
}

/** Per-VM sharing figures, pages (the columns SHRD, ZERO, SHRDSVD, COWH). */
export interface VmSharing {
  shared: number;
  zero: number;
  saved: number;
  hints: number;
}

/**
 * The page-sharing policy of one simulation: set up at construction, `tick` once per tick after
 * the scheduler and before the reclamation mechanisms.
 */
export class Sharing {
  readonly policy: number;
  private readonly raw: ShareExports;
  private readonly carry: number[];
  private readonly salted: boolean[];
  private wakeCarry = 0;
  private lastRun = 1;
  private maxSharing: number;
  /** ksmd wake-ups so far (KSM) */
  wakeups = 0;

  constructor(private readonly sim: Simulation) {
    this.raw = shareExports(sim);
    const host = sim.scenario.host;
    this.policy = host.policy === "ksm" ? POLICY_KSM : POLICY_TPS;
    this.carry = sim.vms.map(() => 0);
    this.salted = sim.vms.map(() => false);
    this.maxSharing = host.ksm.max_page_sharing;
    if (!(this.raw.shareInit(this.policy, expectedContents(sim, this.policy), sim.scenario.seed >>> 0) & 1)) {
      const pages = sim.vms.reduce((a, v) => a + v.config.memory / PAGE, 0);
      throw new RangeError(
        `the engine's 4 GiB linear memory cannot hold the ${host.policy === "ksm" ? "KSM rmap words (4 bytes × " + pages + " pages) and trees" : "TPS hash table"} after the page tables`,
      );
    }
    this.applyKnobs();
  }

  /** Host parameters from the settings in force (they may change by setHost / setVm events). */
  private applyKnobs(): void {
    const { engine, scenario } = this.sim;
    const k = engine.k;
    const host = scenario.host;
    if (this.policy === POLICY_TPS) {
      engine.setHostParam(k.HP_SHARE_ON, host.settings["Mem.ShareScanGHz"] > 0 ? 1 : 0);
    } else {
      const knobs = host.ksm;
      // max_page_sharing can only change while no KSM page exists (EBUSY)
      if (knobs.max_page_sharing !== this.maxSharing && this.raw.ksmStat(k.KSM_PAGES_SHARED) === 0) {
        this.maxSharing = knobs.max_page_sharing;
      }
      engine.setHostParam(k.HP_SHARE_ON, 1);
      engine.setHostParam(k.HP_KSM_MAX_SHARING, Math.max(2, this.maxSharing));
      engine.setHostParam(k.HP_KSM_ZERO_PAGES, knobs.use_zero_pages ? 1 : 0);
      engine.setHostParam(k.HP_KSM_SMART, knobs.smart_scan ? 1 : 0);
    }
    for (const vm of this.sim.vms) {
      engine.setVmParam(vm.index, k.P_SHARE_ON, vm.settings["sched.mem.pshare.enable"] ? 1 : 0);
    }
  }

  /** Salts are taken at power-on. */
  private salts(): void {
    const { engine, scenario } = this.sim;
    for (const vm of this.sim.vms) {
      if (vm.powered && !this.salted[vm.index]) {
        const salt = tpsSalt(scenario.host.settings["Mem.ShareForceSalting"], vm.settings["sched.mem.pshare.salt"], vm.index);
        engine.setVmParam(vm.index, engine.k.P_SHARE_SALT, salt);
      }
      this.salted[vm.index] = vm.powered;
    }
  }

  /** One tick of `dt` seconds. */
  tick(dt: number): void {
    this.applyKnobs();
    if (this.policy === POLICY_TPS) this.tickTps(dt);
    else this.tickKsm(dt);
  }

  private tickTps(dt: number): void {
    this.salts();
    const { sim, raw } = this;
    if (sim.scenario.host.settings["Mem.ShareScanGHz"] <= 0) return;
    const may = allowed(sim.state);
    if (may.breakLargePages) {
      for (const vm of sim.vms) {
        if (!vm.powered || vm.settings["sched.mem.pshare.enable"] === 0) continue;
        sim.current = vm;
        if (sim.engine.vmCounter(vm.index, sim.engine.k.C_LARGE_REGIONS) > 0) raw.shareBreakLarge(vm.index);
      }
      sim.current = null;
    }
    const rates = tpsRates(sim, may.activeTps);
    for (const vm of sim.vms) {
      const want = rates[vm.index] * dt + this.carry[vm.index];
      const n = Math.floor(want);
      this.carry[vm.index] = want - n;
      sim.current = vm;
      if (n > 0) raw.tpsScan(vm.index, n);
    }
    sim.current = null;
  }

  private tickKsm(dt: number): void {
    const { raw } = this;
    const knobs = this.sim.scenario.host.ksm;
    if (knobs.run === 2 && this.lastRun !== 2) raw.ksmUnmergeAll();
    this.lastRun = knobs.run;
    if (knobs.run !== 1) return;
    const want = ksmWakeupsPerSecond(knobs) * dt + this.wakeCarry;
    const n = Math.floor(want);
    this.wakeCarry = want - n;
    if (n > 0) this.wake(n);
  }

  /** Run `n` ksmd wake-ups now (the settings in force); returns the pages scanned. */
  wake(n: number): number {
    this.applyKnobs();
    this.wakeups += n;
    return this.raw.ksmScan(n, this.sim.scenario.host.ksm.pages_to_scan);
  }

  /** The KSM counters as /sys/kernel/mm/ksm shows them. */
  ksmCounters(): KsmCounters {
    return ksmCounters(this.sim);
  }
}

/** The KSM counters of a simulation, named as in /sys/kernel/mm/ksm. */
export function ksmCounters(sim: Simulation): KsmCounters {
  const r = shareExports(sim);
  const k = sim.engine.k;
  const stat = (i: number) => r.ksmStat(i);
  const shared = stat(k.KSM_PAGES_SHARED);
  const sharing = stat(k.KSM_PAGES_SHARING);
  const unshared = stat(k.KSM_PAGES_UNSHARED);
  const items = stat(k.KSM_RMAP_ITEMS);
  const zero = stat(k.KSM_ZERO_PAGES);
  return {
    pages_shared: shared,
    pages_sharing: sharing,
    pages_unshared: unshared,
    pages_volatile: Math.max(0, items - shared - sharing - unshared),
    full_scans: stat(k.KSM_FULL_SCANS),
    pages_scanned: stat(k.KSM_PAGES_SCANNED),
    pages_skipped: stat(k.KSM_PAGES_SKIPPED),
    stable_node_chains: stat(k.KSM_STABLE_NODE_CHAINS),
    stable_node_dups: stat(k.KSM_STABLE_NODE_DUPS),
    ksm_zero_pages: zero,
    // the kernel's: (pages_sharing + ksm_zero_pages) * PAGE_SIZE - ksm_rmap_items * sizeof(rmap_item)
    general_profit: (sharing + zero) * PAGE - items * 64,
  };
}

/**
 * A VM's sharing columns, pages. SHRDSVD: pages shared inside the VM's own salt save all but one
 * page per frame (exact); pages in frames a salt several VMs may hold (and all KSM pages) get the
 * host's saving on such frames in proportion to the VM's pages in them. Zero pages merged into the
 * kernel zero page (KSM use_zero_pages) are saved whole.
 */
export function vmSharing(c: Float64Array, h: Float64Array, k: Readonly<Record<string, number>>): VmSharing {
  const shared = c[k.C_SHARED];
  const x = c[k.C_SHARED_X];
  const own = shared - x - c[k.C_FRAMES_OWN];
  const ratio = h[k.H_SHARED_X] > 0 ? 1 - h[k.H_COMMON_X] / h[k.H_SHARED_X] : 0;
  return { shared, zero: c[k.C_SHARED_ZERO], saved: own + x * ratio, hints: c[k.C_HINTS] };
}

/** Host PSHARE figures, pages: shared (all VMs), common (machine pages behind them), saving. */
export function hostSharing(sim: Simulation, h: Float64Array): { shared: number; common: number; saving: number } {
  const k = sim.engine.k;
  let shared = 0;
  for (const vm of sim.vms) shared += sim.engine.vmCounter(vm.index, k.C_SHARED);
  const common = h[k.H_COMMON];
  return { shared, common, saving: shared - common };
}

/** Convenience for tests and tools: the TPS figures of one VM, pages. */
export function vmSharingOf(sim: Simulation, vm: VmState): VmSharing {
  return vmSharing(sim.engine.vmCounters(vm.index), sim.engine.hostCounters(), sim.engine.k);
}
