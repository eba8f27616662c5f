// Ballooning with a cooperating guest (assembly/balloon.ts, src/policy/reclaim.ts): the guest
// picks the pages, free first, then its oldest page cache, then its oldest anonymous pages to its
// own page file; faults on pages it gave up happen inside the guest. Targets are pinned by hand.
import { describe, expect, it } from "vitest";
import {
  MiB, c, h, pin, phase, rsim, rvm, throughput, stepUntil, pages, stateOf, guestOf, S, G, M_GOUT, pagesOf,
} from "./reclaim-helpers.js";

describe("which pages the guest gives", () => {
  it("gives pages it never used first: no guest I/O, no machine memory freed, no cost", async () => {
    // 64 MiB VM touching only its first 32 MiB: the other half is free in the guest, and unbacked
    const sim = await rsim([rvm("a", { workload: [phase({ active: 32 * MiB })] })]);
    sim.step(10);
    const before = c(sim);
    expect(before.UNBACKED).toBeGreaterThan(8000);
    pin(sim, 0, { mctltgt: 4096 });
    sim.step(2);
    const after = c(sim);
    expect(after.BALLOONED).toBe(4096);
    expect(after.MCTL_FREE).toBe(4096);
    expect(after.GSWAP_OUT).toBe(0);
    expect(after.GOUT_CACHE).toBe(0);
    expect(after.PRIVATE).toBe(before.PRIVATE);
    const { meta } = pages(sim);
    for (let p = 0; p < meta.length; p++) {
      if (stateOf(meta[p]) === S.BALLOONED) {
        expect(p).toBeGreaterThanOrEqual(pagesOf(32 * MiB)); // never a page of the working set
        expect(guestOf(meta[p])).toBe(G.FREE);
      }
    }
    expect(throughput(sim, 10)).toBe(1);
    expect(c(sim).FAULT_BALLOONED).toBe(0);
  });

  it("then drops page cache before it writes any anonymous page to its page file", async () => {
    // all 16384 pages read once (page cache), then the first 4096 written and kept hot (anonymous)
    const sim = await rsim([
      rvm("a", {
        workload: [
          phase({ active: 64 * MiB, touchRate: 100000, writeRatio: 0 }),
          phase({ at: 5, active: 16 * MiB, touchRate: 20000, writeRatio: 1 }),
        ],
      }),
    ], { settings: { "Mem.CtlMaxPercent": 90 } });
    sim.step(15);
    expect(c(sim).GUEST_FREE).toBe(0);
    expect(c(sim).GUEST_ANON).toBe(4096);
    const private0 = c(sim).PRIVATE;
    pin(sim, 0, { mctltgt: 8192 });
    stepUntil(sim, () => c(sim).BALLOONED >= 8192, 30);
    let x = c(sim);
    expect(x.BALLOONED).toBe(8192);
    expect(x.GOUT_CACHE).toBe(8192); // dropped cache
    expect(x.GOUT_ANON).toBe(0);
    expect(x.GSWAP_OUT).toBe(0);
    expect(private0 - x.PRIVATE).toBe(8192); // each dropped page freed its machine page
    expect(throughput(sim, 5)).toBe(1); // the cache was cold: nothing touches it
    // squeezed below the hot anonymous set: the rest of the cache goes, then anonymous pages
    pin(sim, 0, { mctltgt: 14336 });
    stepUntil(sim, () => c(sim).BALLOONED >= 14336, 30);
    x = c(sim);
    expect(x.GOUT_CACHE).toBe(12288);
    expect(x.GSWAP_OUT).toBeGreaterThanOrEqual(2048);
    expect(x.GOUT_ANON).toBeGreaterThan(0);
    expect(x.GOUT_ANON).toBeLessThanOrEqual(2048);
    expect(x.GOUT_CACHE + x.GOUT_ANON + x.MCTL_FREE).toBeGreaterThanOrEqual(x.BALLOONED);
    // the hot set no longer fits: its pages come back from the guest page file, at disk latency
    expect(throughput(sim, 10)).toBeLessThan(0.5);
    const y = c(sim);
    expect(y.GSWAP_IN).toBeGreaterThan(0);
  });

  it("pages out its least recently used anonymous pages, not its hot ones", async () => {
    // 16384 anonymous pages; afterwards only the first 4096 stay in use
    const sim = await rsim([
      rvm("a", {
        workload: [
          phase({ active: 64 * MiB, touchRate: 200000, writeRatio: 1 }),
          phase({ at: 3, active: 16 * MiB, touchRate: 20000, writeRatio: 0.5 }),
        ],
      }),
    ]);
    sim.step(20);
    expect(c(sim).GUEST_ANON).toBe(16384);
    pin(sim, 0, { mctltgt: 8192 });
    stepUntil(sim, () => c(sim).BALLOONED >= 8192, 40);
    const x = c(sim);
    expect(x.BALLOONED).toBe(8192);
    expect(x.GOUT_ANON).toBe(8192);
    const { meta } = pages(sim);
    let hot = 0;
    for (let p = 0; p < 4096; p++) if (stateOf(meta[p]) === S.BALLOONED) hot++;
    expect(hot).toBe(0);
    expect(throughput(sim, 10)).toBe(1);
    expect(c(sim).GSWAP_IN).toBe(0);
  });
});

describe("faults on pages the guest gave up", () => {
  it("are guest page-file reads at the guest disk latency, never host swap-ins", async () => {
    // the whole memory is hot (a Java heap): whatever the guest gives is touched again soon
    const sim = await rsim([rvm("a", { workload: [phase({ active: 64 * MiB, touchRate: 20000, writeRatio: 0.5 })] })]);
    sim.step(10);
    pin(sim, 0, { mctltgt: 2048 });
    stepUntil(sim, () => c(sim).BALLOONED >= 2048, 20);
    const a = c(sim);
    sim.step(10);
    const b = c(sim);
    const ins = b.GSWAP_IN - a.GSWAP_IN;
    const misses = b.GCACHE_MISS - a.GCACHE_MISS;
    expect(ins).toBeGreaterThan(0);
    expect(b.LAT_GUEST_US - a.LAT_GUEST_US).toBe((ins + misses) * sim.scenario.host.settings["Vmemsim.LatGuestDisk"]);
    expect(b.SWAP_IN).toBe(0);
    expect(b.LAT_SWAP_US).toBe(0);
    // the balloon keeps its size: each page the guest needs back is exchanged for another
    expect(b.FAULT_BALLOONED - a.FAULT_BALLOONED).toBeGreaterThan(0);
    expect(b.BALLOONED).toBe(2048);
    // mem.latency counts host swap-in and decompression only; the stall shows in STALL% and THRU%
    const row = sim.sample().vms[0];
    expect(row["LAT%"]).toBe(0);
    expect(Number(row["STALL%"])).toBeGreaterThan(10);
    expect(Number(row["THRU%"])).toBeLessThan(90);
    expect(Number(row.GSWAP)).toBeGreaterThan(0);
    expect(Number(row["GSWR/s"])).toBeGreaterThan(0);
  });

  it("deflating returns pages; content in the page file stays there until touched", async () => {
    const sim = await rsim([
      rvm("a", {
        workload: [
          phase({ active: 64 * MiB, touchRate: 200000, writeRatio: 1 }),
          phase({ at: 3, active: 16 * MiB, touchRate: 20000, writeRatio: 0.5 }),
        ],
      }),
    ]);
    sim.step(10);
    pin(sim, 0, { mctltgt: 8192 });
    stepUntil(sim, () => c(sim).BALLOONED >= 8192, 40);
    const inFile = c(sim).GOUT_ANON;
    expect(inFile).toBe(8192);
    pin(sim, 0, { mctltgt: 0 });
    sim.step(1); // deflation at up to 16384 pages/s
    let x = c(sim);
    expect(x.BALLOONED).toBe(0);
    expect(x.MCTL_OUT).toBe(8192);
    expect(x.GOUT_ANON).toBe(inFile); // nobody touched them yet
    // the workload now touches everything again: each page comes back from the page file once
    sim.vms[0].phase = { ...sim.vms[0].phase };
    sim.engine.setVmParam(0, sim.engine.k.P_ACTIVE, 16384);
    sim.step(30);
    x = c(sim);
    expect(x.GOUT_ANON).toBeLessThan(inFile);
    expect(x.GSWAP_IN).toBe(inFile - x.GOUT_ANON);
  });
});

describe("the driver", () => {
  it("inflates at vmw_balloon's rates: free pages fast, reclaimed pages adaptively slower", async () => {
    const sim = await rsim([
      rvm("a", {
        memory: 256 * MiB,
        workload: [phase({ active: 256 * MiB, touchRate: 400000, writeRatio: 0 }), phase({ at: 3, active: 32 * MiB, touchRate: 1000, writeRatio: 0 })],
      }),
      rvm("b", { memory: 256 * MiB, workload: [phase({ active: 32 * MiB, touchRate: 1000 })] }),
    ]);
    sim.step(10);
    // a: no free page left (all page cache); b: 224 MiB never touched
    pin(sim, 0, { mctltgt: 40000 });
    pin(sim, 1, { mctltgt: 40000 });
    sim.step(1);
    expect(c(sim, 1).BALLOONED).toBe(16384); // non-sleeping: Vmemsim.BalloonRateNoSleep per second
    expect(c(sim, 0).BALLOONED).toBe(512); // sleeping: starts at Vmemsim.BalloonRateMin
    sim.step(1);
    expect(c(sim, 1).BALLOONED).toBe(32768);
    expect(c(sim, 0).BALLOONED).toBe(512 + 528); // +16 per poll the rate held it back
    sim.step(10);
    expect(c(sim, 1).BALLOONED).toBe(40000);
    const a = c(sim, 0).BALLOONED;
    expect(a).toBeGreaterThan(512 * 12);
    expect(a).toBeLessThan(2048 * 12);
  });

  it("does not run during guest boot, when not installed, or when disabled (maxmemctl 0)", async () => {
    const noMax = rvm("c", { workload: [phase({ active: 8 * MiB })] });
    noMax.settings = { ...noMax.settings, "sched.mem.maxmemctl": 0 };
    const sim = await rsim([
      rvm("a", { bootTime: 20, workload: [phase({ active: 8 * MiB })] }),
      rvm("b", { driver: false, workload: [phase({ active: 8 * MiB })] }),
      noMax,
    ]);
    for (let i = 0; i < 3; i++) pin(sim, i, { mctltgt: 1000 });
    sim.step(10);
    const row = sim.sample().vms;
    expect(row.map((r) => r["MCTL?"])).toEqual([0, 0, 0]);
    expect([0, 1, 2].map((i) => c(sim, i).BALLOONED)).toEqual([0, 0, 0]);
    sim.step(15); // a has booted
    expect(sim.sample().vms.map((r) => r["MCTL?"])).toEqual([1, 0, 0]);
    expect(c(sim, 0).BALLOONED).toBe(1000);
  });

  it("never exceeds MCTLMAX (Mem.CtlMaxPercent, or sched.mem.maxmemctl)", async () => {
    const b = rvm("b", { workload: [phase({ active: 8 * MiB })] });
    b.settings = { ...b.settings, "sched.mem.maxmemctl": 10 * MiB };
    const sim = await rsim([rvm("a", { workload: [phase({ active: 8 * MiB })] }), b], { settings: { "Mem.CtlMaxPercent": 50 } });
    pin(sim, 0, { mctltgt: 16000 });
    pin(sim, 1, { mctltgt: 16000 });
    sim.step(5);
    expect(c(sim, 0).BALLOONED).toBe(8192); // 50 % of 16384
    expect(c(sim, 1).BALLOONED).toBe(2560); // 10 MiB
    const host = sim.sample().host;
    expect(host["MEMCTL.curr"]).toBe(42);
    expect(host["MEMCTL.max"]).toBe(42);
  });
});

describe("when the guest has nothing left", () => {
  it("the balloon stalls at what the page file can take and host swap takes the shortfall", async () => {
    // all 16384 pages anonymous and in use; a page file of 4 MiB (1024 pages)
    const sim = await rsim(
      [rvm("a", { pageFile: 4 * MiB, workload: [phase({ active: 64 * MiB, touchRate: 200000, writeRatio: 1 }), phase({ at: 3, active: 64 * MiB, touchRate: 2000, writeRatio: 0.5 })] })],
      { settings: { "Mem.MemZipEnable": 0 } },
    );
    sim.step(5);
    pin(sim, 0, { mctltgt: 4096, swtgt: 0 });
    sim.step(20);
    const x = c(sim);
    expect(x.GOUT_ANON).toBeLessThanOrEqual(1024);
    expect(x.BALLOONED).toBeLessThan(4096);
    expect(x.MCTL_SHORT).toBe(4096 - x.BALLOONED);
    // reported, not hidden: the shortfall is in the row and went to host swap
    const row = sim.sample().vms[0];
    expect(Number(row.MCTLSHORT)).toBeGreaterThan(0);
    expect(x.SWAPPED + x.COMPRESSED).toBeGreaterThanOrEqual(x.MCTL_SHORT - 64);
    expect(Number(row.SWCUR)).toBeGreaterThan(0);
    expect(h(sim).FREE_SMALL).toBeGreaterThan(0);
  });
});

describe("power-off", () => {
  it("releases the balloon, the page file and everything the host holds", async () => {
    const sim = await rsim([rvm("a", { pageFile: 4 * MiB, workload: [phase({ active: 64 * MiB, touchRate: 100000, writeRatio: 0.7 })] })], {
      over: { events: [{ at: 30, kind: "powerOff", vms: ["a"] }] },
    });
    const free0 = h(sim).FREE_LARGE * 512 + h(sim).FREE_SMALL;
    const hostParams = () => Array.from({ length: 64 }, (_, i) => sim.engine.hostParam(i));
    sim.step(5);
    pin(sim, 0, { mctltgt: 6000, swtgt: 2000 });
    sim.step(24);
    const x = c(sim);
    expect(x.BALLOONED).toBeGreaterThan(0);
    expect(x.GOUT_ANON).toBeGreaterThan(0);
    expect(x.SWAPPED + x.COMPRESSED).toBeGreaterThan(0);
    const params = hostParams();
    sim.step(2);
    const y = c(sim);
    // nothing but the host's own counters changed in the host record (power-off allocates nothing)
    expect(hostParams()).toEqual(params);
    for (const k of ["BALLOONED", "SWAPPED", "COMPRESSED", "PRIVATE", "MCTL_FREE", "GOUT_ANON", "GOUT_CACHE", "ZIP_KB", "ZIP_CACHE", "DEBT_US"]) expect(y[k]).toBe(0);
    expect(y.UNBACKED).toBe(16384);
    expect(h(sim).FREE_LARGE * 512 + h(sim).FREE_SMALL).toBe(free0);
    expect(h(sim).ZIP_CACHE).toBe(0);
    const { meta } = pages(sim);
    expect(meta.every((m) => (m & M_GOUT) === 0)).toBe(true);
  });
});
