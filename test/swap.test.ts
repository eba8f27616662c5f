// Host swap (assembly/swap.ts): random victims among resident private pages, share before swap,
// a swap file of configured - reservation, swap-in on access (no proactive swap-in), the SSD host
// cache, double paging, blocked VMs, machine memory running out. Targets are pinned by hand.
import { describe, expect, it } from "vitest";
import { MiB, c, h, pin, phase, rsim, rvm, pages, stateOf, S, M_SSD, stepUntil } from "./reclaim-helpers.js";

const NO_ZIP = { "Mem.MemZipEnable": 0 };

/** All 16384 pages written, then only the first 4096 (hot) touched, at `rate` touches/s. */
function hotcold(name: string, rate = 20000, over: Parameters<typeof rvm>[1] = {}) {
  return rvm(name, {
    workload: [phase({ active: 64 * MiB, touchRate: 300000, writeRatio: 1 }), phase({ at: 2, active: 16 * MiB, touchRate: rate, writeRatio: 0.3 })],
    ...over,
  });
}

describe("victims", () => {
  it("are chosen at random among resident private pages: hot pages as readily as cold", async () => {
    const sim = await rsim([hotcold("a", 0)], { settings: NO_ZIP });
    sim.step(5);
    pin(sim, 0, { swtgt: 8192 });
    sim.step(1);
    const { meta } = pages(sim);
    let hot = 0, all = 0;
    meta.forEach((m, p) => {
      if (stateOf(m) !== S.SWAPPED) return;
      all++;
      if (p < 4096) hot++;
    });
    expect(all).toBe(8192);
    // a quarter of the pages are hot, so about a quarter of the victims: binomial(8192, 1/4) ± 5 sd
    expect(Math.abs(hot - 2048)).toBeLessThan(5 * Math.sqrt(8192 * 0.25 * 0.75));
  });

  it("never include pages that are not resident and private", async () => {
    const sim = await rsim([rvm("a", { workload: [phase({ active: 32 * MiB, touchRate: 100000 })] })], { settings: NO_ZIP });
    sim.step(3);
    pin(sim, 0, { mctltgt: 2000 });
    sim.step(2);
    const before = pages(sim).meta;
    pin(sim, 0, { mctltgt: 2000, swtgt: 100000 }); // more than there is
    sim.engine.setVmParam(0, sim.engine.k.P_ACTIVE, 1); // the guest keeps to one page
    sim.step(1);
    const x = c(sim);
    expect(x.BALLOONED).toBe(2000);
    const after = pages(sim).meta;
    for (let p = 0; p < after.length; p++) {
      if (stateOf(after[p]) === S.SWAPPED) expect(stateOf(before[p])).toBe(S.PRIVATE);
    }
    expect(x.SWAPPED).toBeGreaterThan(8000);
  });

  it("are shared instead of swapped when their content is already shared (share before swap)", async () => {
    // all pages zero: TPS shares them as it scans; victims it has not reached yet join the zero frame
    const sim = await rsim([hotcold("a", 0, { content: { zero: 1, image: 0, duplicate: 0, duplicateCopies: 2 } })], {
      settings: { ...NO_ZIP, "Mem.ShareScanGHz": 4, "Mem.ShareScanTime": 10 },
    });
    sim.step(30);
    const shared0 = c(sim).SHARED;
    expect(shared0).toBeGreaterThan(0);
    pin(sim, 0, { swtgt: 2000 });
    sim.step(1);
    const x = c(sim);
    // the tick's 2000 victims: shared where the zero frame exists, written out otherwise
    expect(x.SHARE_BEFORE_SWAP + x.SWAPPED).toBe(2000);
    expect(x.SHARE_BEFORE_SWAP).toBeGreaterThan(1000);
    expect(x.SHARED).toBeGreaterThanOrEqual(shared0 + x.SHARE_BEFORE_SWAP); // and what TPS scanned meanwhile
  });
});

describe("the swap file", () => {
  it("holds configured - reservation; victims beyond it stay", async () => {
    const sim = await rsim([hotcold("a", 0, { reservation: 48 * MiB })], { settings: NO_ZIP });
    sim.step(5);
    pin(sim, 0, { swtgt: 10000 });
    sim.step(2);
    const x = c(sim);
    expect(x.SWAPPED).toBe(4096);
    expect(x.SWAP_FULL).toBeGreaterThan(0);
  });
});

describe("swap-in", () => {
  it("happens on access, one fault at a time, at the disk latency; nothing comes back unasked", async () => {
    const sim = await rsim([hotcold("a", 5000)], { settings: NO_ZIP });
    sim.step(5);
    pin(sim, 0, { swtgt: 8192 });
    sim.step(1);
    pin(sim, 0, { swtgt: 0 });
    const a = c(sim);
    sim.step(20);
    const b = c(sim);
    const ins = b.SWAP_IN - a.SWAP_IN;
    expect(ins).toBeGreaterThan(500); // the hot pages that were swapped
    expect(b.FAULT_SWAPPED - a.FAULT_SWAPPED).toBe(ins);
    expect(b.LAT_SWAP_US - a.LAT_SWAP_US).toBe(ins * 5000);
    expect(b.SWAPPED).toBe(a.SWAPPED - ins);
    // the cold pages stay swapped: no proactive swap-in when the pressure is gone
    expect(b.SWAPPED).toBeGreaterThan(8192 - 4096 - 1);
    const { meta } = pages(sim);
    for (let p = 0; p < 4096; p++) expect(stateOf(meta[p])).not.toBe(S.SWAPPED);
  });

  it("waits when the host blocks the VM (low state)", async () => {
    const sim = await rsim([hotcold("a", 0)], { settings: NO_ZIP });
    sim.step(5);
    pin(sim, 0, { swtgt: 4096 });
    sim.step(1);
    pin(sim, 0, { swtgt: 0 });
    const raw = sim.engine.raw;
    const k = sim.engine.k;
    // blocked (low state): touches of swapped pages wait for memory, counted as blocked stalls
    sim.engine.setVmParam(0, k.P_BLOCKED, 1);
    sim.engine.setVmParam(0, k.P_ACTIVE, 16384);
    const a = c(sim);
    raw.touchVm(0, 2000, 100);
    const b = c(sim);
    expect(b.BLOCKED - a.BLOCKED).toBeGreaterThan(0);
    expect(b.SWAP_IN).toBe(a.SWAP_IN);
    expect(b.ALLOC_STALLS - a.ALLOC_STALLS).toBe(b.BLOCKED - a.BLOCKED);
    expect(b.LAT_ALLOC_US - a.LAT_ALLOC_US).toBe((b.ALLOC_STALLS - a.ALLOC_STALLS) * 5000);
    sim.engine.setVmParam(0, k.P_BLOCKED, 0);
    expect(raw.checkVm(0)).toBe(0);
  });

  it("waits when no machine page is free; the page stays swapped", async () => {
    // a 256 MiB host: 64 MiB vmk, two VMs of 8 MiB overhead; b takes every page it can get
    const sim = await rsim(
      [hotcold("a", 0), rvm("b", { memory: 256 * MiB, powerOn: 8, workload: [phase({ active: 256 * MiB, touchRate: 200000 })] })],
      { settings: { ...NO_ZIP, "Vmemsim.StateBlockPct": 0 }, hostMemory: 256 * MiB },
    );
    pin(sim, 1, { mctltgt: 0, swtgt: 0 }); // b is left alone, whatever the scheduler wants
    sim.step(5);
    pin(sim, 0, { swtgt: 4096 });
    sim.step(1);
    sim.step(10);
    expect(h(sim).FREE_LARGE * 512 + h(sim).FREE_SMALL).toBe(0);
    const a = c(sim);
    sim.engine.setVmParam(0, sim.engine.k.P_ACTIVE, 16384);
    sim.engine.raw.touchVm(0, 2000, 100);
    const b = c(sim);
    expect(b.ALLOC_STALLS - a.ALLOC_STALLS).toBeGreaterThan(0);
    expect(b.LAT_ALLOC_US - a.LAT_ALLOC_US).toBe((b.ALLOC_STALLS - a.ALLOC_STALLS) * 5000);
    expect(b.SWAP_IN).toBe(a.SWAP_IN);
    expect(b.SWAPPED).toBe(a.SWAPPED);
    sim.verify();
  });
});

describe("the SSD host cache", () => {
  it("takes swapped pages as a log; reads from it cost the SSD latency", async () => {
    // a cache of 1024 pages (4 MB) for 3000 swapped pages: the last 1024 written are in it
    const sim = await rsim([hotcold("a", 0)], { settings: NO_ZIP, swapCacheMB: 4 });
    sim.step(5);
    pin(sim, 0, { swtgt: 3000 });
    sim.step(1);
    const x = c(sim);
    expect(x.SWAPPED).toBe(3000);
    expect(x.SSD_OUT).toBe(3000);
    expect(x.SSD_PAGES).toBe(1024);
    expect(h(sim).SSD_USED).toBe(1024);
    expect(h(sim).SSD_SLOTS).toBe(1024);
    const { meta } = pages(sim);
    expect(meta.filter((m) => (m & M_SSD) !== 0).length).toBe(1024);
    // everything is touched again: 1024 reads at 100 us, 1976 at 5 ms
    pin(sim, 0, { swtgt: 0 });
    sim.engine.setVmParam(0, sim.engine.k.P_ACTIVE, 16384);
    sim.vms[0].phase = { ...sim.vms[0].phase, touchRate: 20000 };
    stepUntil(sim, () => c(sim).SWAPPED === 0, 300);
    const y = c(sim);
    expect(y.SSD_IN).toBe(1024);
    expect(y.SWAP_IN).toBe(3000);
    expect(y.LAT_SWAP_US).toBe(1024 * 100 + 1976 * 5000);
    expect(y.SSD_PAGES).toBe(0);
    expect(h(sim).SSD_USED).toBe(0);
  });

  it("can be resized while in use: the newest pages stay, the others are in the swap file", async () => {
    const sim = await rsim([hotcold("a", 0)], { settings: NO_ZIP, swapCacheMB: 8 });
    sim.step(5);
    pin(sim, 0, { swtgt: 3000 });
    sim.step(1);
    expect(c(sim).SSD_PAGES).toBe(2048);
    const newest = pages(sim).meta.map((m, p) => ((m & M_SSD) !== 0 ? p : -1)).filter((p) => p >= 0);
    sim.scenario.host.settings["Vmemsim.SwapCacheMB"] = 2; // what a setHost event does
    sim.step(1);
    expect(c(sim).SSD_PAGES).toBe(512);
    expect(h(sim).SSD_SLOTS).toBe(512);
    const kept = pages(sim).meta.map((m, p) => ((m & M_SSD) !== 0 ? p : -1)).filter((p) => p >= 0);
    expect(kept.every((p) => newest.includes(p))).toBe(true);
    sim.scenario.host.settings["Vmemsim.SwapCacheMB"] = 0;
    sim.step(1);
    expect(c(sim).SSD_PAGES).toBe(0);
    expect(h(sim).SSD_SLOTS).toBe(0);
    expect(c(sim).SWAPPED).toBe(3000);
  });
});

describe("double paging", () => {
  it("the guest choosing a host-swapped page for its page file makes the host read it first", async () => {
    // every page anonymous and idle: the guest pages out its oldest, many already host-swapped
    const sim = await rsim([hotcold("a", 0)], { settings: NO_ZIP });
    sim.step(5);
    pin(sim, 0, { swtgt: 8192 });
    sim.step(1);
    pin(sim, 0, { swtgt: 8192, mctltgt: 4000 });
    stepUntil(sim, () => c(sim).BALLOONED >= 4000, 30);
    const x = c(sim);
    expect(x.DOUBLE_PAGING).toBeGreaterThan(1000); // about half the pages the guest chose
    expect(x.SWAP_IN).toBe(x.DOUBLE_PAGING);
    expect(x.LAT_SWAP_US).toBe(x.DOUBLE_PAGING * 5000);
    expect(x.GSWAP_OUT).toBe(4000);
    expect(sim.sample().vms[0].DBLPG).toBe(x.DOUBLE_PAGING);
    // the wait was the guest's: it came out of the VM's time
    expect(x.STALL_US).toBeGreaterThanOrEqual(x.LAT_SWAP_US);
  });
});

describe("power-off", () => {
  it("frees the swap file and the VM's SSD cache slots; a new swap-out reuses the slots", async () => {
    const sim = await rsim([hotcold("a", 0), hotcold("b", 0)], {
      settings: NO_ZIP,
      swapCacheMB: 8, // 2048 pages
      over: { events: [{ at: 10, kind: "powerOff", vms: ["a"] }] },
    });
    sim.step(5);
    pin(sim, 0, { swtgt: 3000 });
    sim.step(1);
    expect(h(sim).SSD_USED).toBe(2048);
    sim.step(5);
    expect(c(sim, 0).SWAPPED).toBe(0);
    expect(c(sim, 0).SSD_PAGES).toBe(0);
    expect(h(sim).SSD_USED).toBe(0);
    pin(sim, 1, { swtgt: 500 });
    sim.step(1);
    expect(c(sim, 1).SSD_PAGES).toBe(500);
    expect(h(sim).SSD_USED).toBe(500);
  });
});
