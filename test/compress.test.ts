// Memory compression (assembly/compress.ts): only pages chosen for host swap are compressed, into
// 2 KB / 1 KB slots by their content's compressibility; a per-VM cache with caps, charged to the VM,
// oldest out first to swap; decompression on touch. Targets are pinned by hand.
import { describe, expect, it } from "vitest";
import { MiB, c, h, pin, phase, rsim, rvm, pages, stateOf, S, stepUntil } from "./reclaim-helpers.js";

const ZIP_CLASS = (m: number) => (m >>> 14) & 3; // 1: 2 KB slot, 2: 1 KB slot, 3: zero page

/** A VM whose 16384 pages are all written once (anonymous, resident), then left alone. */
function filled(name: string, over: Parameters<typeof rvm>[1] = {}) {
  return rvm(name, {
    workload: [phase({ active: 64 * MiB, touchRate: 300000, writeRatio: 1 }), phase({ at: 2, active: 64 * MiB, touchRate: 0, writeRatio: 0 })],
    ...over,
  });
}

describe("what compresses", () => {
  it("only pages chosen for host swap: nothing is compressed without a swap target", async () => {
    const sim = await rsim([filled("a")]);
    sim.step(10);
    expect(c(sim).COMPRESSED).toBe(0);
    pin(sim, 0, { swtgt: 1000 });
    sim.step(1);
    expect(c(sim).COMPRESSED + c(sim).SWAPPED).toBe(1000);
    expect(c(sim).COMPRESSED).toBeGreaterThan(0);
  });

  it("slot size follows the content's compressibility; zero pages take no space", async () => {
    const all1k = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 100, "Vmemsim.Zip2KPct": 0, "Mem.MemZipMaxPct": 100 } });
    const all2k = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 0, "Vmemsim.Zip2KPct": 100, "Mem.MemZipMaxPct": 100 } });
    const none = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 0, "Vmemsim.Zip2KPct": 0 } });
    const zeros = await rsim([filled("a", { content: { zero: 1, image: 0, duplicate: 0, duplicateCopies: 2 } })]);
    for (const sim of [all1k, all2k, none, zeros]) {
      sim.step(5);
      pin(sim, 0, { swtgt: 1000 });
      sim.step(1);
    }
    expect(c(all1k).COMPRESSED).toBe(1000);
    expect(c(all1k).ZIP_KB).toBe(1000);
    expect(c(all1k).ZIP_CACHE).toBe(250);
    expect(c(all2k).COMPRESSED).toBe(1000);
    expect(c(all2k).ZIP_KB).toBe(2000);
    expect(c(all2k).ZIP_CACHE).toBe(500);
    expect(c(none).COMPRESSED).toBe(0);
    expect(c(none).SWAPPED).toBe(1000);
    expect(c(zeros).COMPRESSED).toBe(1000);
    expect(c(zeros).ZIP_KB).toBe(0);
    expect(c(zeros).ZIP_CACHE).toBe(0);
    const { meta } = pages(all1k);
    expect(meta.filter((m) => stateOf(m) === S.COMPRESSED).every((m) => ZIP_CLASS(m) === 2)).toBe(true);
  });

  it("is a property of the content: identical pages of two VMs of one image compress alike", async () => {
    const image = { zero: 0, image: 1, duplicate: 0, duplicateCopies: 2 };
    const sim = await rsim([filled("a", { image: "img", content: image }), filled("b", { image: "img", content: image })], {
      settings: { "Mem.MemZipMaxPct": 100 },
    });
    sim.step(5);
    pin(sim, 0, { swtgt: 8000 });
    pin(sim, 1, { swtgt: 8000 });
    sim.step(1);
    const a = pages(sim, 0).meta;
    const b = pages(sim, 1).meta;
    let both = 0, sizes = new Set<number>();
    for (let p = 0; p < a.length; p++) {
      // a page chosen in both VMs went the same way in both: compressed (same slot size) or swapped
      const sa = stateOf(a[p]), sb = stateOf(b[p]);
      if ((sa === S.COMPRESSED || sa === S.SWAPPED) && (sb === S.COMPRESSED || sb === S.SWAPPED)) {
        both++;
        expect(sa).toBe(sb);
        if (sa === S.COMPRESSED) {
          expect(ZIP_CLASS(a[p])).toBe(ZIP_CLASS(b[p]));
          sizes.add(ZIP_CLASS(a[p]));
        }
      }
    }
    expect(both).toBeGreaterThan(2000); // random victims: about 8000² / 16384 in both
    expect(sizes).toEqual(new Set([1, 2])); // the default mix has both slot sizes
  });

  it("Mem.MemZipEnable 0 swaps every victim", async () => {
    const sim = await rsim([filled("a")], { settings: { "Mem.MemZipEnable": 0 } });
    sim.step(5);
    pin(sim, 0, { swtgt: 3000 });
    sim.step(1);
    expect(c(sim).COMPRESSED).toBe(0);
    expect(c(sim).SWAPPED).toBe(3000);
    expect(c(sim).ZIP_CACHE).toBe(0);
  });
});

describe("the compression cache", () => {
  it("is capped by Mem.MemZipMaxPct of configured memory; the oldest compressed pages go to swap first", async () => {
    // cap 10 % of 16384 pages = 1638 pages = 6552 KB; every page compresses to 2 KB
    const sim = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 0, "Vmemsim.Zip2KPct": 100 } });
    sim.step(5);
    pin(sim, 0, { swtgt: 2000 });
    sim.step(1);
    const first = pages(sim).meta;
    const firstZipped: number[] = [];
    first.forEach((m, p) => stateOf(m) === S.COMPRESSED && firstZipped.push(p));
    expect(firstZipped.length).toBe(2000);
    expect(c(sim).ZIP_KB).toBe(4000);
    pin(sim, 0, { swtgt: 6000 });
    sim.step(1);
    const x = c(sim);
    // 6552 KB hold 3276 pages of 2 KB; the other 2724 victims pushed the oldest out to swap
    expect(x.COMPRESSED).toBe(3276);
    expect(x.ZIP_KB).toBe(6552);
    expect(x.SWAPPED).toBe(2724);
    expect(x.ZIP_EVICT).toBe(2724);
    // oldest first: the whole first batch went before any page compressed later
    const now = pages(sim).meta;
    expect(firstZipped.every((p) => stateOf(now[p]) === S.SWAPPED)).toBe(true);
    const row = sim.sample().vms[0];
    expect(row.CACHESZ).toBeCloseTo(x.ZIP_CACHE / 256, 2);
    expect(row.CACHEUSD).toBeCloseTo(x.ZIP_KB / 1024, 2);
  });

  it("is capped by Mem.MemZipMaxAllocPct of the VM's allocated memory", async () => {
    const sim = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 0, "Vmemsim.Zip2KPct": 100, "Mem.MemZipMaxPct": 100, "Mem.MemZipMaxAllocPct": 5 } });
    sim.step(5);
    pin(sim, 0, { swtgt: 8000 });
    sim.step(1);
    const x = c(sim);
    // 5 % of the 16384 pages allocated when the tick began: 819 pages = 3276 KB, full
    expect(x.ZIP_KB).toBe(3276);
    expect(x.ZIP_CACHE).toBe(819);
    expect(x.COMPRESSED).toBe(1638);
    expect(x.SWAPPED).toBe(8000 - 1638);
  });

  it("is charged to the VM and saves machine memory; machine memory stays conserved", async () => {
    const sim = await rsim([filled("a")], { settings: { "Vmemsim.Zip1KPct": 50, "Vmemsim.Zip2KPct": 50 } });
    sim.step(5);
    const free0 = h(sim).FREE_LARGE * 512 + h(sim).FREE_SMALL;
    pin(sim, 0, { swtgt: 1500 });
    sim.step(1);
    const x = c(sim);
    expect(x.COMPRESSED).toBe(1500);
    const free1 = h(sim).FREE_LARGE * 512 + h(sim).FREE_SMALL;
    expect(free1 - free0).toBe(1500 - x.ZIP_CACHE); // each page freed, minus the cache's pages
    expect(h(sim).ZIP_CACHE).toBe(x.ZIP_CACHE);
    const s = sim.sample();
    expect(s.vms[0].CNSM).toBeCloseTo((x.PRIVATE + x.SHARED + x.ZIP_CACHE) / 256, 2);
    expect(s.host["ZIP.zipped"]).toBeCloseTo(1500 / 256, 2);
    expect(s.host["ZIP.saved"]).toBeCloseTo((1500 - x.ZIP_CACHE) / 256, 2);
  });
});

describe("decompression", () => {
  it("happens on touch, at the decompression latency, and counts in LAT%", async () => {
    const sim = await rsim([filled("a")], { settings: { "Mem.MemZipMaxPct": 100, "Vmemsim.Zip1KPct": 100 } });
    sim.step(5);
    pin(sim, 0, { swtgt: 4000 });
    sim.step(1);
    expect(c(sim).COMPRESSED).toBe(4000);
    pin(sim, 0, { swtgt: 0 });
    sim.vms[0].phase = { ...sim.vms[0].phase, touchRate: 20000 }; // the guest touches its memory again
    sim.step(3);
    sim.sample();
    const a = c(sim);
    sim.step(5);
    const b = c(sim);
    const unzips = b.ZIP_IN - a.ZIP_IN;
    expect(unzips).toBeGreaterThan(0);
    expect(b.LAT_ZIP_US - a.LAT_ZIP_US).toBe(unzips * 20);
    expect(b.ZIP_KB).toBe(b.COMPRESSED); // 1 KB each: the slots of the pages read back are free
    expect(b.SWAP_IN).toBe(0);
    const row = sim.sample().vms[0];
    expect(Number(row["LAT%"])).toBeCloseTo(((b.LAT_ZIP_US - a.LAT_ZIP_US) / 5e6) * 100, 1);
    expect(Number(row["UNZIP/s"])).toBeCloseTo(unzips / 256 / 5, 1);
    // nothing is compressed again while the target is 0, and no page is brought back unasked
    stepUntil(sim, () => c(sim).COMPRESSED === 0, 60);
    expect(c(sim).ZIP_OUT).toBe(4000);
  });
});

describe("per-image compressibility from the scenario", () => {
  it("content.compress in YAML sets which swapped pages compress, over the host default", async () => {
    const { parseScenarioText } = await import("../src/scenario/load.js");
    const { createSimulation } = await import("../src/sim/simulation.js");
    const yaml = (compress: string) => `
duration: 1m
host: { memory: 2GiB, settings: { Mem.MemZipMaxPct: 100 } }
vms:
  - { name: a, memory: 64MiB, guest: { bootTime: 0s }, content: { zero: 0, image: 0, duplicate: 0${compress} },
      workload: [ { at: 0s, active: 64MiB, touchRate: 300000/s, pattern: uniform, writeRatio: 1 } ] }
`;
    const run = async (compress: string) => {
      const sim = await createSimulation(parseScenarioText(yaml(compress)), { check: true });
      sim.step(5);
      pin(sim, 0, { swtgt: 1000 });
      sim.step(1);
      return c(sim);
    };
    const all = await run(", compress: { le1k: 1, le2k: 0 }");
    const none = await run(", compress: { le1k: 0, le2k: 0 }");
    expect(all.COMPRESSED).toBe(1000);
    expect(all.ZIP_KB).toBe(1000);
    expect(none.COMPRESSED).toBe(0);
    expect(none.SWAPPED).toBe(1000);
    expect(() => parseScenarioText(yaml(", compress: { le1k: 0.7, le2k: 0.5 }"))).toThrow(/vms\[0\]\.content\.compress: le1k \+ le2k must be <= 1/);
  });
});
