// A simulation: one host, its VMs and their workloads, advanced tick by tick. The per-VM policy
// (phases, events, power, boot) lives here; every per-page step happens in the engine, one call
// per VM per tick. docs/architecture.md follows one tick through this file.
import { Engine, loadEngine, type EngineSource } from "../engine.js";
import type { Scenario, ScenarioEvent, VmConfig, WorkloadPhase } from "../scenario/types.js";
import { hostRow, vmRow, type HostRow, type VmRow } from "./counters.js";
import type { MemState } from "../policy/states.js";
import { Scheduler } from "../policy/scheduler.js";
import { Reclaim } from "../policy/reclaim.js"; // reclamation (issue 5)
import { Sharing } from "../policy/share.js"; // sharing (issue 3)
import { admit } from "../policy/admission.js";

export const PAGE = 4096;
const U32 = 2 ** 32;

export interface SimulationOptions {
  /** the engine's wasm (bytes, module or URL); default: build/vmemsim.wasm beside the package */
  wasm?: EngineSource;
  /** verify the conservation invariants after every tick (slow; for tests and debugging) */
  check?: boolean;
}

/** Something that happened at a point in simulated time: an event applied or refused. */
export interface EventRecord {
  time: number;
  kind: string;
  vm?: string;
  ok: boolean;
  message: string;
}

export interface Sample {
  time: number;
  host: HostRow;
  vms: VmRow[];
  /** events since the previous sample */
  events: EventRecord[];
}

export interface RunOptions {
  /** simulated seconds to stop at (default: the scenario's duration) */
  until?: number;
  onSample?: (sample: Sample) => void;
  signal?: AbortSignal;
}

/** The conservation invariants failed: a bug in vmemsim, never a user mistake. */
export class InvariantError extends Error {
  constructor(message: string, readonly time: number, readonly vm?: string) {
    super(`invariant violated at t=${time}s${vm ? ` in VM ${vm}` : ""}: ${message}`);
  }
}

/**
 * A WebAssembly trap (out-of-bounds access, unreachable, …) or an AssemblyScript abort inside an
 * engine call: a bug in vmemsim, never a user mistake. Names the scenario time of the tick and the
 * VM being processed (none when the trap came from a host-wide step). The engine instance is
 * unusable afterwards.
 */
export class EngineError extends Error {
  constructor(readonly time: number, readonly vm: string | undefined, readonly trap: Error) {
    super(`the engine failed at t=${time}s${vm ? ` in VM ${vm}` : " in a host-wide step"}: ${trap.message}`, { cause: trap });
    this.name = "EngineError";
  }
}

/** A trap of the WASM engine, or the abort() of @assemblyscript/loader ("abort: … at file:line:col"). */
function isEngineFault(err: unknown): err is Error {
  return err instanceof WebAssembly.RuntimeError || (err instanceof Error && err.message.startsWith("abort: "));
}

/** Per-VM state the TypeScript side keeps: configuration in force, power, workload phase. */
export interface VmState {
  readonly index: number;
  readonly config: VmConfig;
  powered: boolean;
  poweredAt: number;
  /** time of the scenario's own power-on still to come (config.powerOn), null when done */
  powerOnAt: number | null;
  phase: Omit<WorkloadPhase, "at">;
  /** index of the next phase of config.workload to start */
  nextPhase: number;
  touchCarry: number;
  sweepCarry: number;
  /** pages the guest still has to zero at boot */
  sweepLeft: number;
  reservation: number;
  limit: number | null;
  shares: VmConfig["shares"];
  settings: VmConfig["settings"];
  /**
   * What the memory scheduler (src/policy/) wants of this VM, in pages; the reclamation
   * mechanisms carry it out. sztgt: target size (SZTGT, without overhead); mctltgt: balloon target
   * (MCTLTGT); swtgt: host swap target (SWTGT); mctlmax: balloon limit (MCTLMAX).
   */
  targets: { sztgt: number; mctltgt: number; swtgt: number; mctlmax: number };
}

const CHECK_CODES: Record<number, string> = {
  1: "a page has an unknown host state",
  2: "a page has an unknown guest class",
  3: "a large page holds a page that is not private",
  4: "a page outside any backed region is backed",
  5: "page counts by state differ from the page table",
  6: "guest page counts differ from the page table",
  7: "large-region count differs from the region table",
  // reclamation (issue 5): assembly/swap.ts checkReclaim, assembly/compress.ts zipCheck
  20: "a ballooned page still holds guest content",
  21: "a page whose content the guest gave up is resident",
  22: "a free guest page is marked as given up",
  23: "balloon, guest page-file, SSD-cache or compression-cache counts differ from the page table",
  24: "a compression-cache or SSD-cache slot does not point back at its page",
  25: "a reclamation bit is set on a page in the wrong state",
  26: "a guest page file or host swap file holds more than its size",
  // sharing (issue 3): assembly/share.ts shareCheckVm, assembly/ksm.ts ksmCheckVm
  30: "shared zero pages differ from the ZERO counter",
  31: "hinted pages (TPS) or KSM rmap items differ from their counter",
  32: "pages shared across VMs differ from their counter",
  33: "a page's KSM flags or stable node are inconsistent",
};

export class Simulation {
  readonly scenario: Scenario;
  readonly engine: Engine;
  readonly vms: VmState[];
  readonly check: boolean;
  /** free-memory state of the host (src/policy/states.ts) */
  state: MemState = "high";
  /** the memory scheduler: states, sampling, targets, blocking (src/policy/scheduler.ts) */
  readonly scheduler: Scheduler;
  /** reclamation (issue 5): balloon, compression, host swap carry out the targets (src/policy/reclaim.ts) */
  readonly reclaim: Reclaim;
  /** sharing (issue 3): ESXi TPS or Linux KSM (src/policy/share.ts) */
  readonly sharing: Sharing;
  /** simulated seconds since the start */
  time = 0;
  ticks = 0;
  private nextEvent = 0;
  private pending: EventRecord[] = [];
  /** every event applied or refused so far */
  readonly log: EventRecord[] = [];
  /** the VM whose engine calls are running (named by EngineError); null in host-wide steps */
  current: VmState | null = null;

  constructor(scenario: Scenario, engine: Engine, check: boolean) {
    this.scenario = scenario;
    this.engine = engine;
    this.check = check;
    const k = engine.k;
    const host = scenario.host;
    engine.init(host.memory / PAGE, host.hypervisorReserve / PAGE, host.settings["Mem.AllocGuestLargePage"] === 1, scenario.seed);
    const keys = contentKeyRanges(scenario.vms);
    this.vms = scenario.vms.map((config, index) => {
      const pages = config.memory / PAGE;
      if (!engine.addVm(index, pages, scenario.seed)) {
        throw new RangeError(
          `the engine's 4 GiB linear memory cannot hold VM ${config.name} (${pages} pages × 8 bytes after ${index} VMs)`,
        );
      }
      const c = config.content;
      const zeroT = Math.min(U32 - 1, Math.round(c.zero * U32));
      const imageT = Math.min(U32 - 1, Math.round((c.zero + c.image) * U32));
      const dupT = Math.min(U32 - 1, Math.round((c.zero + c.image + c.duplicate) * U32));
      engine.setVmParam(index, k.P_ZERO_T, zeroT);
      engine.setVmParam(index, k.P_IMAGE_T, imageT);
      engine.setVmParam(index, k.P_DUP_T, dupT);
      engine.setVmParam(index, k.P_CLASS_SEED, keys.classSeed(config.image));
      engine.setVmParam(index, k.P_IMAGE_BASE, keys.imageBase.get(config.image)!);
      engine.setVmParam(index, k.P_DUP_BASE, keys.dupBase[index]);
      engine.setVmParam(index, k.P_DUP_SIZE, keys.dupSize[index]);
      const { at: _at, ...phase } = config.workload[0];
      const vm: VmState = {
        index,
        config,
        powered: false,
        poweredAt: 0,
        powerOnAt: config.powerOn,
        phase,
        nextPhase: 1,
        touchCarry: 0,
        sweepCarry: 0,
        sweepLeft: 0,
        reservation: config.reservation,
        limit: config.limit,
        shares: config.shares,
        settings: { ...config.settings },
        targets: { sztgt: pages, mctltgt: 0, swtgt: 0, mctlmax: 0 },
      };
      this.applyPhase(vm);
      return vm;
    });
    this.scheduler = new Scheduler(this);
    this.sharing = new Sharing(this); // sharing (issue 3)
    this.reclaim = new Reclaim(this);
  }

  /** Advance by `seconds` of simulated time (rounded up to whole ticks). */
  step(seconds: number): void {
    const ticks = Math.ceil(seconds / this.scenario.tick - 1e-9);
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /**
   * Run to `until` (default: the scenario's duration), calling onSample every `sampleEvery`
   * simulated seconds. Yields to the event loop now and then so an AbortSignal can stop it.
   */
  async run(opts: RunOptions = {}): Promise<{ time: number; aborted: boolean }> {
    const until = opts.until ?? this.scenario.duration;
    const every = this.scenario.sampleEvery;
    let lastYield = Date.now();
    while (this.time < until - 1e-9) {
      if (opts.signal?.aborted) return { time: this.time, aborted: true };
      this.tick();
      if (opts.onSample && isMultiple(this.time, every)) opts.onSample(this.sample());
      if (Date.now() - lastYield > 50) {
        await yieldToEventLoop();
        lastYield = Date.now();
      }
    }
    return { time: this.time, aborted: !!opts.signal?.aborted };
  }

  /** Counters now: host and every VM, plus the events since the previous sample. */
  sample(): Sample {
    const events = this.pending;
    this.pending = [];
    return { time: this.time, host: hostRow(this), vms: this.vms.map((vm) => vmRow(this, vm)), events };
  }

  /** One tick; a trap inside the engine becomes an EngineError naming the time and the VM. */
  private tick(): void {
    try {
      this.advance();
    } catch (err) {
      if (isEngineFault(err)) throw new EngineError(this.time, this.current?.config.name, err);
      throw err;
    } finally {
      this.current = null;
    }
  }

  private advance(): void {
    const { tick } = this.scenario;
    const t = this.time;
    this.applyEvents(t);
    const epoch = this.ticks & 0xffff;
    for (const vm of this.vms) {
      this.current = vm;
      this.startPhases(vm, t);
      if (!vm.powered) continue;
      this.runGuest(vm, t, tick, epoch);
    }
    this.current = null;
    this.scheduler.tick(roundTime(t + tick));
    this.sharing.tick(tick); // sharing (issue 3): TPS scan / ksmd, after the scheduler
    // reclamation (issue 5): keep last, after the scheduler and the sharing scanner
    this.reclaim.tick(epoch);
    this.time = roundTime(t + tick);
    this.ticks++;
    if (this.check) this.verify();
  }

  /** One VM's guest for one tick: boot zeroing (Windows), then the workload's touches. */
  private runGuest(vm: VmState, t: number, tick: number, epoch: number): void {
    const raw = this.engine.raw;
    const boot = vm.config.guest.bootTime;
    if (vm.sweepLeft > 0) {
      const rate = vm.config.memory / PAGE / Math.max(boot, tick);
      const want = rate * tick + vm.sweepCarry;
      const n = Math.floor(want);
      vm.sweepCarry = want - n;
      vm.sweepLeft = raw.zeroSweep(vm.index, n) >>> 0;
    }
    if (t < vm.poweredAt + boot) return;
    const want = vm.phase.touchRate * tick + vm.touchCarry;
    const n = Math.floor(want);
    vm.touchCarry = want - n;
    // the engine takes a u32 count: more touches than that in one tick go in several calls
    for (let left = n; ; left -= 0xffffffff) {
      raw.touchVm(vm.index, Math.min(left, 0xffffffff), epoch);
      if (left <= 0xffffffff) break;
    }
  }

  private startPhases(vm: VmState, t: number): void {
    const phases = vm.config.workload;
    while (vm.nextPhase < phases.length && phases[vm.nextPhase].at <= t + 1e-9) {
      const { at: _at, ...phase } = phases[vm.nextPhase++];
      vm.phase = phase;
      this.applyPhase(vm);
    }
    if (vm.powerOnAt !== null && vm.powerOnAt <= t + 1e-9) {
      vm.powerOnAt = null;
      if (!vm.powered) this.powerOn(vm, t);
    }
  }

  /** Hand the current workload phase to the engine. */
  private applyPhase(vm: VmState): void {
    this.current = vm;
    const { engine } = this;
    const k = engine.k;
    const p = vm.phase;
    const active = Math.max(1, Math.min(vm.config.memory, p.active) / PAGE);
    engine.setVmParam(vm.index, k.P_ACTIVE, Math.floor(active));
    engine.setVmParam(vm.index, k.P_WRITE_T, Math.min(U32 - 1, Math.round(p.writeRatio * U32)));
    const pat = p.pattern;
    if (pat.kind === "zipf") {
      engine.setVmParam(vm.index, k.P_PATTERN, k.PATTERN_ZIPF);
      engine.setVmParam(vm.index, k.P_ZIPF_S, Math.round(pat.s * 1e6));
    } else if (pat.kind === "hotcold" && Math.floor(active) >= 2) {
      // (a working set of one page has no cold part: hot would be the whole set and the cold draw
      // would land past its end, in the next table; one page is drawn uniformly instead)
      engine.setVmParam(vm.index, k.P_PATTERN, k.PATTERN_HOTCOLD);
      engine.setVmParam(vm.index, k.P_HOT, Math.max(1, Math.min(Math.floor(active) - 1, Math.round(pat.hot * active))));
      engine.setVmParam(vm.index, k.P_HOT_T, Math.min(U32 - 1, Math.round(pat.hotShare * U32)));
    } else {
      engine.setVmParam(vm.index, k.P_PATTERN, k.PATTERN_UNIFORM);
    }
    engine.raw.setPattern(vm.index);
  }

  private powerOn(vm: VmState, t: number): void {
    this.current = vm;
    const overhead = Math.ceil(vm.config.overhead / PAGE);
    const admission = admit(this, vm);
    if (!admission.ok) {
      this.record({ time: t, kind: "powerOn", vm: vm.config.name, ok: false, message: admission.message });
      return;
    }
    if (!(this.engine.raw.powerOn(vm.index, overhead) & 1)) {
      this.record({ time: t, kind: "powerOn", vm: vm.config.name, ok: false, message: `power-on of ${vm.config.name} failed: its overhead (${overhead} pages) does not fit in free machine memory` });
      return;
    }
    vm.powered = true;
    vm.poweredAt = t;
    vm.touchCarry = 0;
    vm.sweepCarry = 0;
    vm.sweepLeft = vm.config.guest.os === "windows" ? vm.config.memory / PAGE : 0;
    this.scheduler.poweredOn(vm, t);
    this.record({ time: t, kind: "powerOn", vm: vm.config.name, ok: true, message: `${vm.config.name} powered on` });
  }

  private powerOff(vm: VmState, t: number): void {
    this.current = vm;
    if (!vm.powered) return;
    this.engine.raw.powerOff(vm.index);
    vm.powered = false;
    this.record({ time: t, kind: "powerOff", vm: vm.config.name, ok: true, message: `${vm.config.name} powered off` });
  }

  /**
   * Apply an event now, between ticks, through the same path as the scenario's own events: a knob
   * changed mid-run (the browser demo's worker, src/browser/). Its `at` is ignored. Throws a
   * RangeError naming an unknown VM.
   */
  applyNow(ev: ScenarioEvent): void {
    for (const name of "vms" in ev ? ev.vms : []) {
      if (!this.vms.some((v) => v.config.name === name)) throw new RangeError(`no VM named "${name}"`);
    }
    try {
      this.applyEvent({ ...ev, at: this.time }, this.time);
    } catch (err) {
      if (isEngineFault(err)) throw new EngineError(this.time, this.current?.config.name, err);
      throw err;
    } finally {
      this.current = null;
    }
  }

  private applyEvents(t: number): void {
    const events = this.scenario.events;
    while (this.nextEvent < events.length && events[this.nextEvent].at <= t + 1e-9) {
      this.applyEvent(events[this.nextEvent++], t);
    }
  }

  private applyEvent(ev: ScenarioEvent, t: number): void {
    const byName = (names: string[]) => names.map((n) => this.vms.find((v) => v.config.name === n)!);
    switch (ev.kind) {
      case "powerOn":
        for (const vm of byName(ev.vms)) if (!vm.powered) this.powerOn(vm, t);
        break;
      case "powerOff":
        for (const vm of byName(ev.vms)) this.powerOff(vm, t);
        break;
      case "setHost": {
        Object.assign(this.scenario.host.settings, ev.settings);
        Object.assign(this.scenario.host.ksm, ev.ksm);
        if (ev.settings["Mem.AllocGuestLargePage"] !== undefined) {
          this.engine.setHostParam(this.engine.k.HP_LARGE_PAGES, ev.settings["Mem.AllocGuestLargePage"]);
        }
        const names = [...Object.keys(ev.settings), ...Object.keys(ev.ksm)];
        this.record({ time: t, kind: "setHost", ok: true, message: `set ${names.map((n) => `${n}=${(ev.settings as Record<string, number>)[n] ?? (ev.ksm as Record<string, number>)[n]}`).join(", ")}` });
        this.scheduler.settingsChanged(t);
        break;
      }
      case "setVm":
        for (const vm of byName(ev.vms)) {
          if (ev.reservation !== undefined) vm.reservation = ev.reservation;
          if (ev.limit !== undefined) vm.limit = ev.limit;
          if (ev.shares !== undefined) vm.shares = ev.shares;
          if (ev.settings) Object.assign(vm.settings, ev.settings);
          this.record({ time: t, kind: "setVm", vm: vm.config.name, ok: true, message: `${vm.config.name}: settings changed` });
        }
        break;
      case "workload":
        for (const vm of byName(ev.vms)) {
          vm.phase = { ...ev.phase };
          this.applyPhase(vm);
          this.record({ time: t, kind: "workload", vm: vm.config.name, ok: true, message: `${vm.config.name}: workload phase changed` });
        }
        break;
    }
  }

  /** Add an event record to the log and the next sample (also used by the policy). */
  record(r: EventRecord): void {
    this.pending.push(r);
    this.log.push(r);
  }

  /** --check: conservation of every VM's pages and of the host's machine memory. */
  verify(): void {
    const raw = this.engine.raw;
    for (const vm of this.vms) {
      const code = raw.checkVm(vm.index);
      if (code !== 0) throw new InvariantError(CHECK_CODES[code] ?? `code ${code}`, this.time, vm.config.name);
    }
    const host = raw.checkHost();
    if (host !== 0) {
      // reclamation (issue 5): codes 20-21
      // sharing (issue 3): codes 30-31
      if (host === 30 || host === 31) throw new InvariantError(host === 30 ? "TPS frames or refcounts differ from the shared pages" : "KSM trees or counters differ from the pages", this.time);
      const msg = host === 20 ? "compression caches: host count ≠ the VMs' caches" : host === 21 ? "SSD swap cache: host count ≠ the VMs' cached pages" : "machine memory: total ≠ vmk + overhead + private + common + compression caches + free";
      throw new InvariantError(msg, this.time);
    }
  }
}

/**
 * Content-key ranges (assembly/content.ts): each image gets a range as long as its largest VM,
 * each VM a range for its duplicates; keys 1 … 2^32 - 2, KEY_UNIQUE excluded.
 */
function contentKeyRanges(vms: VmConfig[]) {
  const imagePages = new Map<string, number>();
  for (const vm of vms) imagePages.set(vm.image, Math.max(imagePages.get(vm.image) ?? 0, vm.memory / PAGE));
  let next = 1;
  const imageBase = new Map<string, number>();
  for (const [image, pages] of imagePages) {
    imageBase.set(image, next);
    next += pages;
  }
  const dupBase: number[] = [];
  const dupSize: number[] = [];
  for (const vm of vms) {
    const size = Math.max(1, Math.round((vm.memory / PAGE) * vm.content.duplicate / vm.content.duplicateCopies));
    dupBase.push(next);
    dupSize.push(size);
    next += size;
  }
  if (next >= U32 - 1) throw new RangeError(`content keys exhausted: ${next} keys needed, 2^32 - 2 available`);
  return { imageBase, dupBase, dupSize, classSeed: (image: string) => fnv1a(image) };
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Let signal handlers and messages run: setImmediate in Node (no 1 ms timer clamp), else a timer. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((r) => (typeof setImmediate === "function" ? setImmediate(r) : setTimeout(r, 0)));
}

function roundTime(t: number): number {
  return Math.round(t * 1e6) / 1e6;
}

function isMultiple(t: number, every: number): boolean {
  const q = t / every;
  return Math.abs(q - Math.round(q)) < 1e-9;
}

export async function createSimulation(scenario: Scenario, opts: SimulationOptions = {}): Promise<Simulation> {
  const engine = await loadEngine(opts.wasm);
  return new Simulation(structuredClone(scenario), engine, opts.check ?? false);
}
