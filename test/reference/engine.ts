// The reference model behind the engine's interface: an `Engine` (src/engine.ts) whose raw exports
// are the plain-TypeScript Model (model.ts) and whose "linear memory" holds only the host and VM
// records (records.ts). The unchanged Simulation and policy code drive it exactly as they drive the
// WASM engine, so a difference between the two is a difference in the page-level mechanisms.
import { Engine } from "../../src/engine.js";
import { Simulation } from "../../src/sim/simulation.js";
import type { Scenario } from "../../src/scenario/types.js";
import { Model, NotModelled } from "./model.js";
import { Records, engineLayout, type Layout } from "./records.js";
import { Sharing } from "./share.js";
import { Reclaim } from "./reclaim.js";
import { Balloon } from "./balloon.js";

export { NotModelled } from "./model.js";

export interface ReferenceEngine {
  engine: Engine;
  model: Model;
}

/** A fresh reference engine with the record layout `k` (engineLayout()). */
export function referenceEngine(k: Layout): ReferenceEngine {
  const rec = new Records(k);
  const model = new Model(rec);
  const sharing = new Sharing(model);
  model.sharing = sharing;
  const reclaim = new Reclaim(model);
  model.reclaim = reclaim;
  const balloon = new Balloon(model);
  model.balloon = balloon;
  const notModelled = (what: string) => () => {
    throw new NotModelled(what);
  };
  const raw: Record<string, unknown> = {
    memory: { buffer: rec.buffer },
    init: (total: number, vmk: number, large: number, seed: number) => model.init(total, vmk, large, seed >>> 0),
    addVm: (vm: number, pages: number, seed: number) => model.addVm(vm, pages, seed >>> 0),
    powerOn: (vm: number, overhead: number) => model.powerOn(vm, overhead),
    powerOff: (vm: number) => model.powerOff(vm),
    breakLargePages: (vm: number) => model.breakLargePages(vm),
    setPattern: (vm: number) => model.setPattern(vm),
    touchVm: (vm: number, count: number, epoch: number) => model.touchVm(vm, count >>> 0, epoch >>> 0),
    zeroSweep: (vm: number, count: number) => model.zeroSweep(vm, count >>> 0),
    checkVm: (vm: number) => model.checkVm(vm),
    checkHost: () => model.checkHost(),
    memoryBytes: () => 0,
    // scheduler (issue 4): active-memory sampling
    sampleInit: (vm: number, seed: number) => model.sampleInit(vm, seed >>> 0),
    samplePeriod: (vm: number, n: number) => model.samplePeriod(vm, n >>> 0),
    sampleStop: (vm: number) => model.sampleStop(vm),
    // reclamation (issue 5): the time model, host swap, compression, the SSD cache, ballooning
    configureReclaim: (tick: number, hdd: number, ssd: number, unzip: number, cow: number, guest: number, alloc: number) => {
      model.tickUs = tick;
      reclaim.latSwapHdd = hdd;
      reclaim.latSwapSsd = ssd;
      reclaim.latUnzip = unzip;
      model.latCow = cow;
      model.latAlloc = alloc;
      balloon.latGuest = guest;
    },
    setSwapCache: (slots: number) => reclaim.setSwapCache(slots >>> 0),
    balloonVm: (vm: number, target: number, free: number, reclaim: number, deflate: number, epoch: number) =>
      balloon.balloonVm(vm, target >>> 0, free >>> 0, reclaim >>> 0, deflate >>> 0, epoch >>> 0),
    swapVm: (vm: number, n: number) => reclaim.swapVm(vm, n >>> 0),
    // sharing (issue 3): TPS and KSM
    shareInit: (policy: number, expected: number, seed: number) => sharing.init(policy, expected, seed >>> 0),
    tpsScan: (vm: number, count: number) => sharing.tpsScan(vm, count >>> 0),
    shareBreakLarge: (vm: number) => sharing.shareBreakLarge(vm),
    tpsEntries: () => sharing.tpsEntries(),
    tpsCapacity: () => sharing.capacity,
    ksmScan: (wakeups: number, pages: number) => sharing.ksm.ksmScan(wakeups >>> 0, pages >>> 0),
    ksmUnmergeAll: () => sharing.ksm.unmergeAll(),
    ksmStat: (i: number) => sharing.ksm.stats[i],
    // exports for tests and benchmarks, not called by the simulation
    writePages: notModelled("writePages (a test harness export)"),
    shareFloorPass: notModelled("the benchmarks' floors"),
    floorScan: notModelled("the benchmarks' floors"),
    floorCopy: notModelled("the benchmarks' floors"),
    floorTouch: notModelled("the benchmarks' floors"),
  };
  for (const [name, value] of Object.entries(k)) {
    raw[name] = new WebAssembly.Global({ value: "i32", mutable: false }, value | 0);
  }
  return { engine: new Engine(raw as never), model };
}

/** A Simulation of `scenario` on the reference model (as createSimulation does on the WASM engine). */
export async function createReferenceSimulation(scenario: Scenario, opts: { check?: boolean } = {}): Promise<Simulation & { reference: Model }> {
  const { engine, model } = referenceEngine(await engineLayout());
  const sim = new Simulation(structuredClone(scenario), engine, opts.check ?? false);
  return Object.assign(sim, { reference: model });
}
