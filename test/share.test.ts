// ESXi transparent page sharing (assembly/share.ts, src/policy/share.ts): hash table with salts,
// hints and their recheck, copy-on-write, zero pages, scan rates and order, large pages, share
// before swap, power-off, counters, and W02 Fig. 4. Spec: esxi-memory.md §4; docs/sharing.md.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import { parseScenarioText } from "../src/scenario/load.js";
import { shareExports, tpsRates, tpsSalt, vmSharingOf, hostSharing, VM_SALT } from "../src/policy/share.js";
import type { Scenario, VmConfig } from "../src/scenario/types.js";
import { defaults, VM_SETTINGS } from "../src/scenario/settings.js";
import { scenario, vm, MiB, GiB } from "./helpers.js";

const KEY_UNIQUE = 0xffff_ffff;
const STATE_PRIVATE = 1;
const STATE_SHARED = 2;
const M_HINTED = 1 << 8;

/** A VM that writes nothing by itself (the test writes its pages), large pages as the host says. */
function quiet(name: string, over: Partial<VmConfig> = {}): VmConfig {
  const memory = over.memory ?? 4 * MiB;
  return vm(name, {
    memory,
    overhead: 0,
    guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
    workload: [{ at: 0, active: memory, touchRate: 0, pattern: { kind: "uniform" }, writeRatio: 0 }],
    ...over,
  });
}

function tpsScenario(vms: VmConfig[], settings: Partial<Scenario["host"]["settings"]> = {}): Scenario {
  return scenario({ vms, hostMemory: 2 * GiB, settings: { "Mem.AllocGuestLargePage": 0, "Mem.ShareForceSalting": 0, ...settings } });
}

/** Page meta and key of (vm, ppn), read from the engine's linear memory. */
function page(sim: Simulation, v: number, ppn: number): { meta: number; key: number; state: number } {
  const base = sim.engine.vmParam(v, sim.engine.k.P_PAGE_BASE);
  const u32 = new Uint32Array(sim.engine.raw.memory.buffer);
  const meta = u32[(base >>> 2) + ppn * 2];
  return { meta, key: u32[(base >>> 2) + ppn * 2 + 1], state: meta & 7 };
}

function freePages(sim: Simulation): number {
  const h = sim.engine.hostCounters();
  const k = sim.engine.k;
  return h[k.H_FREE_LARGE] * 512 + h[k.H_FREE_SMALL];
}

/** Power VMs on (one tick: salts are taken at power-on), without any scanning yet. */
function start(sim: Simulation): void {
  const rate = sim.scenario.host.settings["Mem.ShareRateMax"];
  sim.scenario.host.settings["Mem.ShareRateMax"] = 0;
  sim.step(sim.scenario.tick);
  sim.scenario.host.settings["Mem.ShareRateMax"] = rate;
}

function counter(sim: Simulation, v: number, name: string): number {
  return sim.engine.vmCounter(v, sim.engine.k[name]);
}

describe("salts (KB2097593)", () => {
  it("follow Mem.ShareForceSalting and sched.mem.pshare.salt", () => {
    expect(tpsSalt(0, -1, 5)).toBe(0);
    expect(tpsSalt(0, 42, 5)).toBe(0);
    expect(tpsSalt(1, -1, 5)).toBe(0); // unset = 0: all unsalted VMs share
    expect(tpsSalt(1, 42, 5)).toBe(42);
    expect(tpsSalt(2, 42, 5)).toBe(42); // the VM's setting
    expect(tpsSalt(2, -1, 5)).toBe((VM_SALT | 5) >>> 0); // else its own (vc.uuid)
    expect(tpsSalt(2, -1, 5)).not.toBe(tpsSalt(2, -1, 6));
  });

  async function twoClones(forceSalting: number, salts: [number, number]) {
    const vms = [0, 1].map((i) =>
      quiet(`v${i}`, { image: "img", settings: { ...defaults(VM_SETTINGS), "sched.mem.pshare.salt": salts[i] } }),
    );
    const sim = await createSimulation(tpsScenario(vms, { "Mem.ShareForceSalting": forceSalting }), { check: true });
    start(sim);
    const raw = shareExports(sim);
    for (const v of [0, 1]) {
      raw.writePages(v, 0, 100, 1000, 1); // 100 pages identical across the two VMs
      raw.writePages(v, 100, 10, 0, 0); // 10 zero pages in each
      raw.tpsScan(v, 1024);
    }
    sim.verify();
    return sim;
  }

  it("0: clones share across VMs", async () => {
    const sim = await twoClones(0, [-1, -1]);
    expect(counter(sim, 0, "C_SHARED") + counter(sim, 1, "C_SHARED")).toBe(220);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(101); // 100 contents + one zero page
  });

  it("2 (default): sharing only inside each VM", async () => {
    const sim = await twoClones(2, [-1, -1]);
    expect(counter(sim, 0, "C_SHARED")).toBe(10); // its zero pages only
    expect(counter(sim, 1, "C_SHARED")).toBe(10);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(2); // a zero page per VM
    expect(counter(sim, 0, "C_FRAMES_OWN")).toBe(1);
    expect(counter(sim, 0, "C_HINTS")).toBe(100); // the image pages stay hints
  });

  it("2 with equal explicit salts shares; 1 shares by salt, unset salts together", async () => {
    expect(counter(await twoClones(2, [7, 7]), 0, "C_SHARED")).toBe(110);
    expect(counter(await twoClones(1, [7, 8]), 0, "C_SHARED")).toBe(10);
    expect(counter(await twoClones(1, [-1, -1]), 0, "C_SHARED")).toBe(110);
    expect(counter(await twoClones(1, [7, 7]), 1, "C_SHARED")).toBe(110);
  });
});

describe("hash table, hints and copy-on-write", () => {
  async function pair() {
    const sim = await createSimulation(tpsScenario([quiet("a"), quiet("b")]), { check: true });
    start(sim);
    return { sim, raw: shareExports(sim) };
  }

  it("a hint is rechecked when matched: unchanged it is shared, changed it is dropped", async () => {
    const { sim, raw } = await pair();
    raw.writePages(0, 0, 2, 500, 1); // a:0 = 500, a:1 = 501
    raw.tpsScan(0, 1024);
    expect(page(sim, 0, 0).meta & M_HINTED).toBeTruthy();
    expect(counter(sim, 0, "C_HINTS")).toBe(2);
    raw.writePages(0, 1, 1, 777, 0); // a:1 changes after it was hinted
    const free0 = freePages(sim);
    raw.writePages(1, 0, 2, 500, 1); // b:0 = 500, b:1 = 501
    raw.tpsScan(1, 1024);
    sim.verify();
    // 500: the hint held, both pages now one frame: two private pages became one common page
    expect(page(sim, 0, 0).state).toBe(STATE_SHARED);
    expect(page(sim, 1, 0).state).toBe(STATE_SHARED);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(1);
    expect(freePages(sim)).toBe(free0 - 2 + 1); // b backed 2 pages, sharing gave one back
    // 501: a:1 no longer holds it, so b:1 is not shared and takes the hint
    expect(page(sim, 0, 1).state).toBe(STATE_PRIVATE);
    expect(page(sim, 1, 1).state).toBe(STATE_PRIVATE);
    expect(page(sim, 1, 1).meta & M_HINTED).toBeTruthy();
    // a third page with 501 now shares with b:1
    raw.writePages(0, 2, 1, 501, 0);
    raw.tpsScan(0, 1024);
    expect(page(sim, 0, 2).state).toBe(STATE_SHARED);
    expect(page(sim, 1, 1).state).toBe(STATE_SHARED);
    sim.verify();
  });

  it("frames count references; a write breaks copy-on-write and the last sharer keeps the page", async () => {
    const { sim, raw } = await pair();
    raw.writePages(0, 0, 3, 900, 0); // three copies in a
    raw.writePages(1, 0, 2, 900, 0); // two in b
    raw.tpsScan(0, 1024);
    raw.tpsScan(1, 1024);
    expect(counter(sim, 0, "C_SHARED") + counter(sim, 1, "C_SHARED")).toBe(5);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(1);
    const free0 = freePages(sim);
    raw.writePages(1, 0, 1, 900, 0); // a write: same bytes, still a write
    expect(page(sim, 1, 0).state).toBe(STATE_PRIVATE);
    expect(counter(sim, 1, "C_COW_BREAKS")).toBe(1);
    expect(freePages(sim)).toBe(free0 - 1); // the private copy
    for (const [v, p] of [[1, 1], [0, 0], [0, 1]]) raw.writePages(v, p, 1, 901, 0);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(1); // a:2 is the last sharer
    const free1 = freePages(sim);
    raw.writePages(0, 2, 1, 902, 0);
    expect(freePages(sim)).toBe(free1); // it takes the frame's page: nothing allocated
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(0);
    expect(raw.tpsEntries()).toBe(0); // the frame went with its last sharer; nothing rescanned yet
    sim.verify();
  });

  it("zero pages share like any content and are counted in ZERO", async () => {
    const { sim, raw } = await pair();
    raw.writePages(0, 0, 50, 0, 0);
    raw.writePages(0, 50, 20, 300, 0);
    raw.tpsScan(0, 1024);
    const s = vmSharingOf(sim, sim.vms[0]);
    expect(s.shared).toBe(70);
    expect(s.zero).toBe(50);
    expect(s.saved).toBe(68); // two frames for 70 pages
    expect(sim.sample().vms[0].ZERO).toBe(Math.round((50 / 256) * 100) / 100);
  });

  it("unique pages take no entry but count as hinted (COWH)", async () => {
    const { sim, raw } = await pair();
    raw.writePages(0, 0, 200, KEY_UNIQUE, 0);
    raw.tpsScan(0, 1024);
    expect(counter(sim, 0, "C_HINTS")).toBe(200);
    expect(raw.tpsEntries()).toBe(0);
  });
});

describe("scan rate and order", () => {
  it("rates follow Mem.ShareScanTime, Mem.ShareRateMax and Mem.ShareScanGHz × host GHz", async () => {
    const vms = [0, 1, 2, 3].map((i) => quiet(`v${i}`, { memory: 4 * GiB }));
    const sim = await createSimulation(scenario({ vms, hostMemory: 32 * GiB }));
    sim.step(1);
    const pages = (4 * GiB) / 4096;
    // 1M pages / 3600 s = 291.3 pages/s each, under the cap of 4 MB/s/GHz × 20 GHz = 20480 pages/s
    expect(tpsRates(sim)).toEqual([0, 1, 2, 3].map(() => pages / 3600));
    sim.scenario.host.settings["Mem.ShareRateMax"] = 100;
    expect(tpsRates(sim)).toEqual([100, 100, 100, 100]);
    sim.scenario.host.settings["Mem.ShareRateMax"] = 1024;
    expect(tpsRates(sim, true)).toEqual([1024, 1024, 1024, 1024]); // active TPS (clear state)
    sim.scenario.host.settings["Mem.ShareScanGHz"] = 0.1; // 0.1 × 256 × 20 = 512 pages/s for all
    expect(tpsRates(sim).reduce((a, b) => a + b)).toBeCloseTo(512, 6);
    sim.scenario.host.settings["Mem.ShareScanGHz"] = 0;
    expect(tpsRates(sim)).toEqual([0, 0, 0, 0]);
    sim.scenario.host.settings["Mem.ShareScanGHz"] = 4;
    sim.vms[2].settings["sched.mem.pshare.enable"] = 0;
    expect(tpsRates(sim)[2]).toBe(0);
  });

  it("the scanner visits pages at that rate, and Mem.ShareScanGHz = 0 or pshare.enable = 0 stop it", async () => {
    const vms = [quiet("a", { memory: 64 * MiB }), quiet("b", { memory: 64 * MiB })];
    const sim = await createSimulation(tpsScenario(vms, { "Mem.ShareScanTime": 10 }));
    sim.step(100);
    // 16384 pages / 600 s = 27.3 pages/s: 2730 in 100 ticks (the first tick powers on and scans too)
    expect(counter(sim, 0, "C_SHARE_SCANNED")).toBe(Math.floor((16384 / 600) * 100));
    sim.vms[1].settings["sched.mem.pshare.enable"] = 0;
    sim.step(50);
    expect(counter(sim, 1, "C_SHARE_SCANNED")).toBe(Math.floor((16384 / 600) * 100));
    sim.scenario.host.settings["Mem.ShareScanGHz"] = 0;
    const before = counter(sim, 0, "C_SHARE_SCANNED");
    sim.step(50);
    expect(counter(sim, 0, "C_SHARE_SCANNED")).toBe(before);
  });

  it("a pass visits every page once, in a random order", async () => {
    const sim = await createSimulation(tpsScenario([quiet("a", { memory: 16 * MiB })]));
    start(sim);
    const raw = shareExports(sim);
    const pages = 4096;
    raw.writePages(0, 0, pages, KEY_UNIQUE, 0);
    raw.tpsScan(0, pages / 4);
    const hinted = Array.from({ length: pages }, (_, p) => (page(sim, 0, p).meta & M_HINTED) !== 0);
    expect(hinted.filter(Boolean).length).toBe(pages / 4); // no page twice
    const quarters = [0, 1, 2, 3].map((q) => hinted.slice(q * 1024, (q + 1) * 1024).filter(Boolean).length);
    for (const n of quarters) expect(n).toBeGreaterThan(150); // spread over the VM, not a sweep
    let runs = 0;
    for (let p = 1; p < pages; p++) if (hinted[p] && hinted[p - 1]) runs++;
    expect(runs).toBeLessThan(pages / 8); // not consecutive
    raw.tpsScan(0, (3 * pages) / 4);
    expect(counter(sim, 0, "C_HINTS")).toBe(pages); // the pass is complete
    expect(counter(sim, 0, "C_SHARE_PASSES")).toBe(0);
    raw.tpsScan(0, 1);
    expect(counter(sim, 0, "C_SHARE_PASSES")).toBe(1);
  });
});

describe("large pages", () => {
  async function largeVm() {
    const sim = await createSimulation(tpsScenario([quiet("a", { memory: 8 * MiB })], { "Mem.AllocGuestLargePage": 1 }), { check: true });
    start(sim);
    const raw = shareExports(sim);
    raw.writePages(0, 0, 10, 42, 0); // backs the first 2 MiB region whole: 10 copies + 502 zero pages
    expect(counter(sim, 0, "C_LARGE_REGIONS")).toBe(1);
    raw.tpsScan(0, 4096);
    return { sim, raw };
  }

  it("subpages are hashed but not shared; breaking shares them from those hashes", async () => {
    const { sim, raw } = await largeVm();
    expect(counter(sim, 0, "C_SHARED")).toBe(0);
    expect(counter(sim, 0, "C_HINTS")).toBe(512);
    const free0 = freePages(sim);
    expect(raw.shareBreakLarge(0)).toBe(512);
    sim.verify();
    expect(counter(sim, 0, "C_LARGE_REGIONS")).toBe(0);
    expect(counter(sim, 0, "C_SHARED")).toBe(512);
    expect(counter(sim, 0, "C_SHARED_ZERO")).toBe(502);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(2);
    expect(freePages(sim)).toBe(free0 + 510);
  });

  it("the host leaving high breaks them (allowed(state).breakLargePages)", async () => {
    const { sim } = await largeVm();
    sim.scheduler.tick = () => undefined; // hold the state where the test puts it
    sim.step(1);
    expect(counter(sim, 0, "C_LARGE_REGIONS")).toBe(1);
    sim.state = "clear";
    sim.step(1);
    expect(counter(sim, 0, "C_LARGE_REGIONS")).toBe(0);
    expect(counter(sim, 0, "C_SHARED")).toBe(512);
  });
});

describe("operations for the other mechanisms", () => {
  it("share before swap shares a page whose content has a frame or a valid hint, and leaves no hint", async () => {
    const sim = await createSimulation(tpsScenario([quiet("a"), quiet("b")]), { check: true });
    start(sim);
    const raw = shareExports(sim);
    raw.writePages(0, 0, 1, 10, 0);
    raw.tpsScan(0, 1024); // a:0 is a hint of 10
    raw.writePages(1, 0, 2, 10, 1); // b:0 = 10, b:1 = 11
    expect(raw.shareBeforeSwap(1, 1) & 1).toBe(0); // nothing holds 11
    expect(page(sim, 1, 1).meta & M_HINTED).toBe(0);
    expect(raw.shareBeforeSwap(1, 0) & 1).toBe(1);
    expect(page(sim, 1, 0).state).toBe(STATE_SHARED);
    expect(counter(sim, 1, "C_SHARE_BEFORE_SWAP")).toBe(1);
    sim.verify();
  });

  it("unshareForReclaim drops a reference without a copy; power-off releases every frame", async () => {
    const sim = await createSimulation(tpsScenario([quiet("a"), quiet("b")]), { check: true });
    start(sim);
    const raw = shareExports(sim) as ReturnType<typeof shareExports> & { unshareForReclaim(v: number, p: number, e: number, m: number): number };
    raw.writePages(0, 0, 100, 5000, 1);
    raw.writePages(1, 0, 100, 5000, 1);
    raw.tpsScan(0, 1024);
    raw.tpsScan(1, 1024);
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(100);
    const base = sim.engine.vmParam(1, sim.engine.k.P_PAGE_BASE);
    const free0 = freePages(sim);
    raw.unshareForReclaim(1, 0, base, page(sim, 1, 0).meta);
    expect(page(sim, 1, 0).state).toBe(0); // unbacked: the caller sets the state it wants
    expect(freePages(sim)).toBe(free0); // a's page keeps the frame
    sim.verify();
    sim.engine.raw.powerOff(0);
    sim.vms[0].powered = false;
    sim.verify();
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(99); // b's pages keep theirs
    sim.engine.raw.powerOff(1);
    sim.vms[1].powered = false;
    sim.verify();
    expect(sim.engine.hostCounter(sim.engine.k.H_COMMON)).toBe(0);
    expect(sim.engine.hostCounter(sim.engine.k.H_SHARED_X)).toBe(0);
  });
});

describe("in a running simulation", () => {
  it("counters hold through scans, copy-on-write churn, large pages and power cycles (--check)", async () => {
    const vms = [0, 1, 2].map((i) =>
      vm(`w${i}`, {
        memory: 32 * MiB,
        image: "img",
        guest: { os: "linux", balloonDriver: true, pageFile: 32 * MiB, bootTime: 0 },
        content: { zero: 0.2, image: 0.4, duplicate: 0.1, duplicateCopies: 4 },
        workload: [{ at: 0, active: 24 * MiB, touchRate: 3000, pattern: { kind: "zipf", s: 0.8 }, writeRatio: 0.2 }],
      }),
    );
    const sc = scenario({
      vms,
      hostMemory: 1 * GiB,
      settings: { "Mem.ShareForceSalting": 0, "Mem.ShareScanTime": 10, "Mem.ShareRateMax": 200, "Mem.AllocGuestLargePage": 1 },
      events: [
        { at: 60, kind: "powerOff", vms: ["w1"] },
        { at: 90, kind: "powerOn", vms: ["w1"] },
      ],
    });
    const sim = await createSimulation(sc, { check: true });
    sim.step(120);
    sim.scheduler.tick = () => undefined;
    sim.state = "soft"; // break the large pages on the way
    sim.step(60);
    const total = sim.vms.reduce((a, v) => a + counter(sim, v.index, "C_SHARED"), 0);
    expect(total).toBeGreaterThan(1000);
    expect(sim.vms.reduce((a, v) => a + counter(sim, v.index, "C_COW_BREAKS"), 0)).toBeGreaterThan(0);
    // SHRDSVD sums to the host's saving; CNSM = GRANT - SHRDSVD
    const h = hostSharing(sim, sim.engine.hostCounters());
    const saved = sim.vms.reduce((a, v) => a + vmSharingOf(sim, v).saved, 0);
    expect(saved).toBeCloseTo(h.saving, 6);
    const s = sim.sample();
    for (const row of s.vms) expect(row.CNSM).toBeCloseTo((row.GRANT as number) - (row.SHRDSVD as number), 1);
    expect(s.host["PSHARE.saving"]).toBeCloseTo((s.host["PSHARE.shared"] as number) - (s.host["PSHARE.common"] as number), 1);
  });

  it("is deterministic", async () => {
    const sc = scenario({ vms: [vm("a", { memory: 16 * MiB }), vm("b", { memory: 16 * MiB, image: "a" })], settings: { "Mem.ShareForceSalting": 0, "Mem.ShareScanTime": 10 } });
    const run = async () => {
      const sim = await createSimulation(sc);
      sim.step(100);
      return JSON.stringify(sim.sample());
    };
    expect(await run()).toBe(await run());
  });
});

describe("W02 Fig. 4: N identical 40 MB Linux VMs", () => {
  const P = 10240;

  async function identical(n: number, content: VmConfig["content"], salting: number) {
    const vms = Array.from({ length: n }, (_, i) =>
      vm(`linux-${i + 1}`, {
        memory: 40 * MiB,
        overhead: 8 * MiB,
        image: "redhat",
        content,
        guest: { os: "linux", balloonDriver: true, pageFile: 40 * MiB, bootTime: 0 },
        workload: [
          { at: 0, active: 40 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 1 },
          { at: 10, active: 4 * MiB, touchRate: 200, pattern: { kind: "uniform" }, writeRatio: 0 },
        ],
      }),
    );
    const sim = await createSimulation(
      scenario({ vms, hostMemory: 2 * GiB, settings: { "Mem.ShareForceSalting": salting, "Mem.AllocGuestLargePage": 0, "Mem.ShareScanTime": 10 } }),
    );
    // write everything in 10 s, then two full passes (10 min each): pages the first pass shared while
    // they were still being written (and lost again to copy-on-write) are back by the second
    sim.step(10 + 1200 + 60);
    return hostSharing(sim, sim.engine.hostCounters());
  }

  it("purely identical content: shared → 67 % of VM memory, saving = (N-1)/N of it (within 2 %)", async () => {
    for (const n of [1, 2, 3, 5, 10]) {
      const h = await identical(n, { zero: 0, image: 0.67, duplicate: 0, duplicateCopies: 4 }, 0);
      if (n === 1) {
        expect(h.shared).toBe(0); // nothing identical inside one VM
        continue;
      }
      expect(h.shared / (n * P)).toBeGreaterThan(0.67 * 0.98);
      expect(h.shared / (n * P)).toBeLessThan(0.67 * 1.02);
      expect(Math.abs(h.saving / h.shared - (n - 1) / n)).toBeLessThan(0.02 * ((n - 1) / n));
    }
  });

  /**
   * The content model's arithmetic on the contents the VMs actually hold (read from their page
   * tables): every zero page and every image page (with N >= 2, or salted apart: none) is shared, so
   * is every duplicate whose key has at least two pages in its VM; one machine page stays per zero
   * page (per VM when salted), per image page and per duplicate key.
   */
  function expected(sim: Simulation, crossVm: boolean) {
    const on = sim.vms.filter((v) => v.powered);
    let shared = 0, common = 0;
    const imagePages = new Set<number>();
    let zero = false;
    for (const v of on) {
      const imageBase = sim.engine.vmParam(v.index, sim.engine.k.P_IMAGE_BASE);
      const dups = new Map<number, number>();
      let zeroHere = 0;
      for (let p = 0; p < P; p++) {
        const key = page(sim, v.index, p).key;
        if (key === 0) zeroHere++;
        else if (key >= imageBase && key < imageBase + P) {
          if (crossVm && on.length >= 2) {
            shared++;
            imagePages.add(key);
          }
        } else if (key !== KEY_UNIQUE) dups.set(key, (dups.get(key) ?? 0) + 1);
      }
      for (const n of dups.values()) if (n >= 2) {
        shared += n;
        common++;
      }
      shared += zeroHere;
      if (zeroHere > 0 && !crossVm) common++;
      zero ||= zeroHere > 0;
    }
    common += imagePages.size + (crossVm && zero ? 1 : 0);
    return { shared, common, saving: shared - common };
  }

  const within = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(0.02 * want);

  it("the example files: salting 0 (pre-2015) and the default salting, N = 1 … 10", async () => {
    const c = { zero: 0.1, image: 0.55, duplicate: 0.02, duplicateCopies: 4 };
    for (const [file, cross] of [["w02-fig4-sharing.yaml", true], ["w02-fig4-sharing-salted.yaml", false]] as const) {
      const sc = parseScenarioText(readFileSync(new URL(`../examples/${file}`, import.meta.url), "utf8"), file);
      expect(sc.vms.map((v) => v.content)).toEqual(sc.vms.map(() => c));
      const sim = await createSimulation(sc);
      const seen: number[] = [];
      await sim.run({
        onSample: (s) => {
          // one minute before the next power-on, N VMs are fully shared
          if (s.time % 900 !== 840) return;
          const n = s.host["VMS.on"] as number;
          const got = hostSharing(sim, sim.engine.hostCounters());
          const want = expected(sim, cross);
          within(got.shared, want.shared);
          within(got.common, want.common);
          within(got.saving, want.saving);
          // and the nominal fractions: shared → 67 % of the VMs' memory (12 % when salted)
          const nominal = n * P * (c.zero + c.duplicate + (cross && n >= 2 ? c.image : 0));
          expect(Math.abs(got.shared - nominal)).toBeLessThanOrEqual(0.05 * nominal);
          seen.push(n);
        },
      });
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
  });
});
