/**
 * Runs the REAL Linux KSM (needs root, /sys/kernel/mm/ksm and cc) on known
 * page patterns: these figures are the oracle the simulated KSM must match.
 * Skipped cleanly where the real thing is not available.
 * See docs/validation.md, "Real Linux KSM harness".
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ksmAvailable,
  readKsmKnobs,
  runRealKsm,
  withKsmKnobs,
  type KsmKnobs,
  type RealKsmResult,
} from "../bench/ksm-real/real-ksm.js";
import { ksmOracle } from "./helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const avail = ksmAvailable();
if (!avail.ok) console.warn(`[ksm-real] skipping the real Linux KSM tests: ${avail.reason}`);

/** One full scan per ksmd wake-up (pages_to_scan >= pages), and a sleep long
 *  enough (10 ms -> 3 jiffies at HZ=250) that every full scan is sampled at rest. */
const FAST: KsmKnobs = { pages_to_scan: 10_000, sleep_millisecs: 10 };


function noForeignPages(r: RealKsmResult): void {
  expect(r.warnings.filter((w) => w.includes("foreign"))).toEqual([]);
}

describe.skipIf(!avail.ok)(`real Linux KSM${avail.ok ? "" : ` (skipped: ${avail.reason})`}`, () => {
  let before: Record<string, string>;
  beforeAll(() => {
    before = readKsmKnobs();
  });
  afterAll(() => {
    // (f) again, whatever happened in between
    if (before) expect(readKsmKnobs()).toEqual(before);
  });

  it("(a) 1000 distinct x 4 copies -> 1000 shared, 3000 sharing within 2-3 full scans", async () => {
    const r = await runRealKsm({ distinct: 1000, copies: 4 }, FAST);
    expect(r.converged).toBe(true);
    expect(r.pages_shared).toBe(1000);
    expect(r.pages_sharing).toBe(3000);
    expect(r.pages_unshared).toBe(0);
    expect(r.pages_volatile).toBe(0);
    expect(r.fullScansToConverge).toBeGreaterThanOrEqual(2); // first scan only records checksums
    expect(r.fullScansToConverge).toBeLessThanOrEqual(3);
    // general_profit = pages_sharing * 4096 - rmap_items * 64
    expect(r.general_profit).toBe(3000 * 4096 - 4000 * 64);
    expect(r.childKsmStat.ksm_merging_pages).toBe(4000);
    noForeignPages(r);
  });

  it("(a') same pattern with the default knobs (100 pages / 20 ms): merged at full_scans=2, pages_scanned=8000", async () => {
    const r = await runRealKsm(
      { distinct: 1000, copies: 4 },
      { pages_to_scan: 100, sleep_millisecs: 20, smart_scan: 1, max_page_sharing: 256, use_zero_pages: 0 },
    );
    expect(r.converged).toBe(true);
    expect(r.fullScansToConverge).toBe(2);
    const at = r.series.find((s) => s.fullScans === 2)!;
    expect(at).toMatchObject({ pages_shared: 1000, pages_sharing: 3000, pages_scanned: 8000 });
  });

  describe("(b) max_page_sharing oracle (ksm_tests.c)", () => {
    const cases: [n: number, m: number][] = [
      [768, 256], // N % M == 0
      [513, 256], // N % M == 1
      [1000, 256], // otherwise
      [8, 4], // 0
      [9, 4], // 1
      [10, 4], // otherwise
    ];
    it.each(cases)("N=%i identical pages, max_page_sharing=%i", async (n, m) => {
      const r = await runRealKsm({ distinct: 1, copies: n }, { ...FAST, max_page_sharing: m });
      const want = ksmOracle(n, m);
      expect(r.converged).toBe(true);
      expect({ shared: r.pages_shared, sharing: r.pages_sharing }).toEqual(want);
      // the page left alone when N % M == 1 waits in the unstable tree
      expect(r.pages_unshared).toBe(n - want.shared - want.sharing);
      if (want.shared > 1) {
        expect(r.stable_node_chains).toBe(1);
        expect(r.stable_node_dups).toBe(want.shared);
      }
      noForeignPages(r);
    });
  });

  it("(c) use_zero_pages=1: zero pages go to ksm_zero_pages, not pages_sharing", async () => {
    const pattern = { distinct: 200, copies: 3, zero: 500 };
    const r = await runRealKsm(pattern, { ...FAST, use_zero_pages: 1 });
    expect(r.converged).toBe(true);
    expect(r.ksm_zero_pages).toBe(500);
    expect(r.pages_shared).toBe(200);
    expect(r.pages_sharing).toBe(400);
    expect(r.general_profit).toBe((400 + 500) * 4096 - 600 * 64); // zero-merged rmap_items are freed
    // with use_zero_pages=0 the zero pages are just 500 identical pages (max_page_sharing 256)
    const r0 = await runRealKsm(pattern, { ...FAST, use_zero_pages: 0, max_page_sharing: 256 });
    const z = ksmOracle(500, 256);
    expect(r0.ksm_zero_pages).toBe(0);
    expect(r0.pages_shared).toBe(200 + z.shared);
    expect(r0.pages_sharing).toBe(400 + z.sharing);
  });

  it("(d) volatile pages are counted in pages_volatile and never merged", async () => {
    // 100 pages identical to each other but rewritten every 2 ms, 200 unique pages
    // sleep 20 ms between scans: the 2 ms rewriter gets ~10 chances per scan interval
    const knobs = { pages_to_scan: 10_000, sleep_millisecs: 20 };
    const r = await runRealKsm({ unique: 300, volatile: 100 }, { ...knobs, smart_scan: 0 }, { stableScans: 5 });
    expect(r.converged).toBe(true);
    for (const s of r.series.filter((x) => x.fullScans >= 2)) {
      expect(s).toMatchObject({ pages_shared: 0, pages_sharing: 0, pages_volatile: 100, pages_unshared: 200 });
    }
    // smart_scan=1 (default): from the 5th scan on, pages that failed to merge are
    // skipped on some scans (and leave the unstable tree): still never merged.
    const s1 = await runRealKsm({ unique: 300, volatile: 100 }, { ...knobs, smart_scan: 1 }, { stableScans: 8 });
    expect(s1.series.every((x) => x.pages_shared === 0 && x.pages_sharing === 0)).toBe(true);
    expect(s1.pages_skipped).toBeGreaterThan(0);
    // all 300 pages have the same age, so they are skipped together (scans 5, 7, 8, 10-13, ...):
    // on such a scan the unstable tree is empty and every rmap_item counts as volatile
    const skipScans = s1.series.filter((x) => x.fullScans >= 5 && x.pages_unshared === 0);
    expect(skipScans.length).toBeGreaterThan(0);
    for (const x of skipScans) expect(x.pages_volatile).toBe(300);
    for (const x of s1.series.filter((x) => x.fullScans >= 2 && x.fullScans <= 4)) {
      expect(x).toMatchObject({ pages_unshared: 200, pages_volatile: 100 });
    }
  });

  it("(e) writes after merge reduce pages_sharing by the number of pages written", async () => {
    // smart_scan=0: with it the written pages (age 2 at merge) would be skipped 3 scans later
    const r = await runRealKsm({ distinct: 1000, copies: 4, writesAfterMerge: 100 }, { ...FAST, smart_scan: 0 });
    expect(r.converged).toBe(true);
    expect(r.pages_sharing).toBe(3000);
    const w = r.afterWrites!;
    expect(w.written).toBe(100);
    expect(w.pages_shared).toBe(1000);
    expect(w.pages_sharing).toBe(2900);
    // 2 scans later the written pages wait in the unstable tree
    expect(w.pages_unshared).toBe(100);
  });

  it("(f1) withKsmKnobs restores every knob when the callback throws", async () => {
    const saved = readKsmKnobs();
    await expect(
      withKsmKnobs({ pages_to_scan: 4321, max_page_sharing: 17, use_zero_pages: 1 }, async () => {
        const now = readKsmKnobs();
        expect(now).toMatchObject({ pages_to_scan: "4321", max_page_sharing: "17", use_zero_pages: "1", run: "2" });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(readKsmKnobs()).toEqual(saved);
  });

  /** Start a process that sits inside withKsmKnobs(knobs) until killed. */
  async function holder(knobs: KsmKnobs) {
    const script = path.join(os.tmpdir(), `vmemsim-ksm-holder-${process.pid}.mts`);
    const mod = pathToFileURL(path.join(ROOT, "bench/ksm-real/real-ksm.ts")).href;
    fs.writeFileSync(
      script,
      `import { withKsmKnobs } from ${JSON.stringify(mod)};\n` +
        `await withKsmKnobs(${JSON.stringify(knobs)}, async () => {\n` +
        `  process.stdout.write("active\\n");\n` +
        `  await new Promise((r) => setTimeout(r, 60_000));\n` +
        `});\n`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((res) => child.on("exit", (code, sig) => res(sig ?? code)));
    try {
      await new Promise<void>((res, rej) => {
        child.stdout.on("data", (d: Buffer) => d.toString().includes("active") && res());
        child.on("exit", () => rej(new Error(`holder exited early: ${err}`)));
      });
    } finally {
      fs.rmSync(script, { force: true });
    }
    return { child, exited };
  }

  it("(f2) withKsmKnobs restores every knob when the process gets SIGTERM or SIGINT", async () => {
    const saved = readKsmKnobs();
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const { child, exited } = await holder({ pages_to_scan: 4322, sleep_millisecs: 37, run: 1 });
      expect(readKsmKnobs()).toMatchObject({ pages_to_scan: "4322", sleep_millisecs: "37", run: "1" });
      child.kill(sig);
      expect(await exited).toBe(sig);
      expect(readKsmKnobs()).toEqual(saved);
    }
  });

  it("(f3) after a SIGKILL the next withKsmKnobs restores the dead holder's saved knobs", async () => {
    const saved = readKsmKnobs();
    const { child, exited } = await holder({ pages_to_scan: 4323, use_zero_pages: 1, run: 1 });
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    expect(readKsmKnobs()).toMatchObject({ pages_to_scan: "4323", use_zero_pages: "1", run: "1" }); // nobody restored
    await withKsmKnobs({}, async () => {
      // the stale lock was recovered first, so this call saved the original values
    });
    expect(readKsmKnobs()).toEqual(saved);
  });

  it("(f) after all of the above every knob equals its saved value", () => {
    expect(readKsmKnobs()).toEqual(before);
  });
});
