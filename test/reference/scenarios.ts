// Random small scenarios inside the reference model's coverage (README.md here), for the
// differential test (test/differential.test.ts): fast-check arbitraries and the Scenario they build.
// ESXi TPS on or off (salting of every kind), host swap, compression and the SSD host cache on or
// off (the cache resized by events), balloon drivers and guest page files, or Linux KSM (every
// knob, run 0 / 1 / 2 by events) instead of TPS; memory from roomy to a third of what the VMs are
// configured with.
import fc from "fast-check";
import type { Pattern, Scenario, ScenarioEvent, VmConfig } from "../../src/scenario/types.js";
import { scenario, vm, MiB } from "../helpers.js";
import { defaults, VM_SETTINGS } from "../../src/scenario/settings.js";

const PAGE = 4096;

const patternArb: fc.Arbitrary<Pattern> = fc.oneof(
  fc.constant({ kind: "uniform" as const }),
  fc.record({ kind: fc.constant("zipf" as const), s: fc.constantFrom(0.5, 0.8, 0.9, 1, 1.1, 1.3) }),
  fc.record({ kind: fc.constant("hotcold" as const), hot: fc.constantFrom(0.05, 0.2, 0.5), hotShare: fc.constantFrom(0.6, 0.8, 0.95) }),
);

const phaseArb = fc.record({
  activeFrac: fc.double({ min: 0.01, max: 1, noNaN: true }),
  touchRate: fc.integer({ min: 0, max: 6000 }),
  pattern: patternArb,
  writeRatio: fc.constantFrom(0, 0.1, 0.3, 0.7, 1),
});

const vmArb = fc.record({
  pages: fc.integer({ min: 300, max: 12000 }), // not a multiple of 512: partial large regions too
  windows: fc.boolean(),
  bootTime: fc.integer({ min: 0, max: 15 }),
  image: fc.constantFrom("img-a", "img-b"),
  content: fc.record({
    zero: fc.constantFrom(0, 0.1, 0.3),
    image: fc.constantFrom(0, 0.2, 0.4),
    duplicate: fc.constantFrom(0, 0.05, 0.2),
    duplicateCopies: fc.constantFrom(2, 4, 9),
  }),
  powerOn: fc.option(fc.integer({ min: 0, max: 20 }), { freq: 4 }),
  /** reservation as a fraction of memory: the swap file is configured − reservation */
  reserved: fc.constantFrom<number>(0, 0, 0.5, 0.97),
  /** sched.mem.pshare.enable */
  share: fc.constantFrom(1, 1, 1, 0),
  /** the balloon driver, and the guest's page file as a fraction of its memory */
  balloon: fc.boolean(),
  pageFile: fc.constantFrom(0, 0.25, 1),
  phases: fc.array(fc.tuple(fc.integer({ min: 1, max: 60 }), phaseArb), { minLength: 1, maxLength: 3 }),
});

const eventArb = fc.record({
  at: fc.integer({ min: 0, max: 60 }),
  kind: fc.constantFrom("powerOn", "powerOff", "workload", "largePages", "swapCache", "ksmRun"),
  /** the KSM run knob set by a ksmRun event: 0 stop, 1 run, 2 unmerge everything */
  run: fc.constantFrom(0, 1, 2),
  /** Vmemsim.SwapCacheMB set by a swapCache event */
  cacheMb: fc.constantFrom(0, 1, 4),
  vm: fc.nat(),
  phase: phaseArb,
  on: fc.boolean(),
});

export const caseArb = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  tick: fc.constantFrom(0.5, 1, 2),
  /** host memory as a fraction of configured memory + overhead: < 1 runs out */
  hostFrac: fc.constantFrom<number>(0.35, 0.6, 0.9, 1.5),
  largePages: fc.boolean(),
  /** host swap-out, pages/s per VM (Vmemsim.SwapOutRate); 0: no host swapping */
  swapRate: fc.constantFrom(0, 300, 25600),
  /** Mem.ShareScanGHz (0: TPS off) and Mem.ShareForceSalting */
  tps: fc.constantFrom(0, 4, 4),
  salting: fc.constantFrom(0, 1, 2),
  /** Linux KSM instead of ESXi TPS, and its knobs */
  ksm: fc.option(
    fc.record({
      pages_to_scan: fc.constantFrom(50, 300, 1000),
      sleep_millisecs: fc.constantFrom(20, 200), // 0 (ksmd busy) would scan millions of pages a second
      max_page_sharing: fc.constantFrom(2, 3, 256),
      use_zero_pages: fc.constantFrom(0, 1),
      smart_scan: fc.constantFrom(0, 1),
    }),
    { freq: 3 },
  ),
  /** Mem.MemZipEnable, and the SSD host cache (Vmemsim.SwapCacheMB: 256 slots per MB) */
  zip: fc.constantFrom(0, 1),
  cacheMb: fc.constantFrom(0, 0, 1, 8),
  samplePeriod: fc.integer({ min: 3, max: 20 }),
  sampleSize: fc.integer({ min: 1, max: 300 }),
  vms: fc.array(vmArb, { minLength: 1, maxLength: 4 }),
  events: fc.array(eventArb, { maxLength: 6 }),
});

export type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function phaseOf(p: Case["events"][number]["phase"], memory: number) {
  return {
    active: Math.max(PAGE, Math.floor((p.activeFrac * memory) / PAGE) * PAGE),
    touchRate: p.touchRate,
    pattern: p.pattern,
    writeRatio: p.writeRatio,
  };
}

/** A small scenario inside the reference model's coverage. */
export function build(c: Case): Scenario {
  const overhead = 2 * MiB;
  const vms: VmConfig[] = c.vms.map((v, i) => {
    const memory = v.pages * PAGE;
    let at = 0;
    const workload = v.phases.map(([gap, p], j) => {
      if (j > 0) at += gap;
      return { at: j === 0 ? 0 : at, ...phaseOf(p, memory) };
    });
    return vm(`vm${i}`, {
      memory,
      overhead,
      reservation: Math.floor((v.reserved * memory) / PAGE) * PAGE,
      settings: { ...defaults(VM_SETTINGS), "sched.mem.pshare.enable": v.share },
      image: v.image,
      content: v.content,
      guest: { os: v.windows ? "windows" : "linux", balloonDriver: v.balloon, pageFile: Math.floor((v.pageFile * memory) / PAGE) * PAGE, bootTime: v.bootTime },
      powerOn: v.powerOn,
      workload,
    });
  });
  const configured = vms.reduce((a, v) => a + v.memory + v.overhead, 0);
  const reserve = 4 * MiB;
  const hostMemory = Math.ceil((configured * c.hostFrac) / (2 * MiB)) * 2 * MiB + reserve;
  const events: ScenarioEvent[] = c.events
    .map((e): ScenarioEvent => {
      const target = vms[e.vm % vms.length];
      const at = e.at * c.tick;
      switch (e.kind) {
        case "powerOn":
          return { at, kind: "powerOn", vms: [target.name] };
        case "powerOff":
          return { at, kind: "powerOff", vms: [target.name] };
        case "workload":
          return { at, kind: "workload", vms: [target.name], phase: phaseOf(e.phase, target.memory) };
        case "swapCache":
          return { at, kind: "setHost", settings: { "Vmemsim.SwapCacheMB": e.cacheMb }, ksm: {} };
        case "ksmRun":
          return { at, kind: "setHost", settings: {}, ksm: { run: e.run } };
        default:
          return { at, kind: "setHost", settings: { "Mem.AllocGuestLargePage": e.on ? 1 : 0 }, ksm: {} };
      }
    })
    .sort((a, b) => a.at - b.at);
  const base = scenario({
    hostMemory,
    settings: {
      "Mem.ShareScanGHz": c.tps,
      "Mem.ShareForceSalting": c.salting,
      "Mem.ShareScanTime": 10, // the shortest: each VM scanned whole every 10 minutes
      "Mem.MemZipEnable": c.zip,
      "Vmemsim.SwapCacheMB": c.cacheMb,
      "Vmemsim.SwapOutRate": c.swapRate,
      "Mem.AllocGuestLargePage": c.largePages ? 1 : 0,
      "Mem.SamplePeriod": c.samplePeriod,
      "Vmemsim.SampleSize": c.sampleSize,
    },
    vms,
  });
  base.seed = c.seed;
  base.tick = c.tick;
  base.duration = 70 * c.tick;
  base.sampleEvery = 10 * c.tick;
  base.host.hypervisorReserve = reserve;
  base.events = events;
  if (c.ksm) {
    base.host.policy = "ksm";
    base.host.ksm = { ...base.host.ksm, ...c.ksm };
  }
  return base;
}

