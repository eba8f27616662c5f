// vmemsim in the browser. First the worker protocol in Node (serveSimulation through a fake
// port): samples, knob changes through the scenario-event path, refused knobs, pause, stop. Then
// the demo page, built with Vite and served on loopback, in real headless Chromium: it loads, runs
// the default scenario to its end in the Web Worker, its charts update, a knob changed mid-run
// shows in the counters, and nothing logs an error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { serveSimulation, type Port } from "../src/browser/serve.js";
import { knobEvent } from "../src/browser/knobs.js";
import { compileWasm } from "../src/browser/wasm.js";
import type { FromWorker, ToWorker } from "../src/browser/protocol.js";
import { parseScenarioText } from "../src/scenario/load.js";
import { DEFAULT_SCENARIO_YAML } from "../src/scenario/default.js";
import { gridDifference, HAVE_CHROMIUM, launchChromium, screenshotStats, watchErrors, type Chromium } from "./chromium.js";

const SMALL = `
name: small
seed: 2
duration: 5m
tick: 1s
sampleEvery: 10s
host: { memory: 2GiB }
vms:
  - { name: web, count: 2, memory: 512MiB, image: u, workload: [ { at: 0s, active: 256MiB, touchRate: 3000/s } ] }
`;

/** serveSimulation behind an in-process port: what a Worker would post, collected. */
function fakeWorker() {
  const got: FromWorker[] = [];
  let listener: ((ev: { data: ToWorker }) => void) | null = null;
  const waiters: { pred: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void }[] = [];
  const port: Port = {
    postMessage(m) {
      got.push(structuredClone(m));
      for (const w of [...waiters]) if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    },
    addEventListener(_t, l) {
      listener = l;
    },
  };
  serveSimulation(port);
  return {
    got,
    send: (data: ToWorker) => listener!({ data: structuredClone(data) }),
    next: <T extends FromWorker["type"]>(type: T, pred: (m: Extract<FromWorker, { type: T }>) => boolean = () => true) =>
      new Promise<Extract<FromWorker, { type: T }>>((resolve) => {
        const p = (m: FromWorker) => m.type === type && pred(m as Extract<FromWorker, { type: T }>);
        const already = got.find(p);
        if (already) resolve(already as Extract<FromWorker, { type: T }>);
        else waiters.push({ pred: p, resolve: resolve as (m: FromWorker) => void });
      }),
  };
}

describe("the simulation worker protocol (in Node)", () => {
  it("runs a scenario to its end, posting every sample, then the summary", async () => {
    const w = fakeWorker();
    w.send({ type: "start", scenario: SMALL });
    const done = await w.next("done");
    expect(done.aborted).toBe(false);
    expect(done.time).toBe(300);
    const samples = w.got.filter((m) => m.type === "sample");
    expect(samples.map((m) => (m.type === "sample" ? m.sample.time : 0))).toEqual(Array.from({ length: 30 }, (_, i) => (i + 1) * 10));
    expect(w.got[0]).toMatchObject({ type: "started", vms: ["web-1", "web-2"] });
    expect(done.summary.samples).toBe(30);
  });

  it("applies a knob mid-run through the scenario-event path: it is logged and shows in the next sample's counters", async () => {
    const w = fakeWorker();
    w.send({ type: "start", scenario: SMALL, speed: 0 });
    await w.next("sample", (m) => m.sample.time >= 30);
    w.send({ type: "pause" });
    const paused = await w.next("paused");
    w.send({ type: "knob", id: 1, knob: { kind: "setVm", vms: ["web-2"], reservation: 100 * 2 ** 20 } });
    w.send({ type: "knob", id: 2, knob: { kind: "setHost", settings: { "Mem.IdleTax": 10, "Mem.MemZipEnable": 0 } } });
    const [r1, r2] = [await w.next("knob", (m) => m.id === 1), await w.next("knob", (m) => m.id === 2)];
    expect(r1).toMatchObject({ ok: true, records: [{ kind: "setVm", vm: "web-2", time: paused.time }] });
    expect(r2.ok).toBe(true);
    expect(r2.message).toContain("Mem.IdleTax=10");
    // nothing ran while paused
    const before = w.got.filter((m) => m.type === "sample").length;
    await new Promise((r) => setTimeout(r, 100));
    expect(w.got.filter((m) => m.type === "sample").length).toBe(before);
    w.send({ type: "resume" });
    const after = await w.next("sample", (m) => m.sample.time > paused.time);
    expect(after.sample.vms[1].AMIN).toBe(100);
    expect(after.sample.vms[0].AMIN).toBe(0);
    expect(after.sample.events.map((e) => e.kind).filter((k) => k.startsWith("set"))).toEqual(["setVm", "setHost"]);
    const done = await w.next("done");
    expect(done.summary.vms[1].final.AMIN).toBe(100);
    expect(done.summary.events.map((e) => e.kind)).toContain("setHost");
  });

  it("refuses a knob it cannot apply, saying what is allowed, and the run goes on", async () => {
    const w = fakeWorker();
    w.send({ type: "start", scenario: SMALL });
    await w.next("started");
    const asks: [number, ToWorker & { type: "knob" }][] = [
      [1, { type: "knob", id: 1, knob: { kind: "setHost", settings: { "Mem.NoSuch": 1 } } }],
      [2, { type: "knob", id: 2, knob: { kind: "setHost", settings: { "Mem.IdleTax": 100 } } }],
      [3, { type: "knob", id: 3, knob: { kind: "setVm", vms: ["nope"], reservation: 0 } }],
      [4, { type: "knob", id: 4, knob: { kind: "setVm", vms: ["web-1"], reservation: 2 ** 40 } }],
    ];
    for (const [, m] of asks) w.send(m);
    const replies = await Promise.all(asks.map(([id]) => w.next("knob", (m) => m.id === id)));
    expect(replies.map((r) => r.ok)).toEqual([false, false, false, false]);
    expect(replies[0].message).toMatch(/unknown host setting "Mem.NoSuch".*Mem.IdleTax/);
    expect(replies[1].message).toMatch(/Mem.IdleTax must be a number from 0 to 99/);
    expect(replies[2].message).toMatch(/no VM named "nope"/);
    expect(replies[3].message).toMatch(/reservation must be from 0/);
    const done = await w.next("done");
    expect(done.aborted).toBe(false);
    expect(done.summary.events.filter((e) => e.kind === "setHost" || e.kind === "setVm")).toEqual([]);
  });

  it("stops on request (aborted, where it stopped) and reports a bad scenario as a scenario error", async () => {
    const w = fakeWorker();
    w.send({ type: "start", scenario: SMALL.replace("duration: 5m", "duration: 10h") });
    await w.next("sample");
    w.send({ type: "stop" });
    const done = await w.next("done");
    expect(done.aborted).toBe(true);
    expect(done.time).toBeLessThan(36000);
    const bad = fakeWorker();
    bad.send({ type: "start", scenario: SMALL.replace("touchRate: 3000/s", "touchRate: fast") });
    const err = await bad.next("error");
    expect(err.kind).toBe("scenario");
    expect(err.message).toContain("touchRate");
  });

  it("knobEvent builds the same events a scenario file would", () => {
    const sc = parseScenarioText(DEFAULT_SCENARIO_YAML, "default");
    expect(knobEvent({ kind: "setHost", settings: { "Mem.ShareForceSalting": 0 } }, sc, 60)).toEqual({ at: 60, kind: "setHost", settings: { "Mem.ShareForceSalting": 0 }, ksm: {} });
    expect(knobEvent({ kind: "setVm", vms: ["db-1"], reservation: 1000, limit: null }, sc, 0)).toEqual({ at: 0, kind: "setVm", vms: ["db-1"], reservation: 4096, limit: null });
    expect(() => knobEvent({ kind: "setVm", vms: ["db-1"] }, sc, 0)).toThrow(/changes nothing/);
  });

  it("compileWasm takes bytes (and a module as it is)", async () => {
    const bytes = readFileSync("build/vmemsim.wasm");
    const mod = await compileWasm(new Uint8Array(bytes));
    expect(WebAssembly.Module.exports(mod).some((e) => e.name === "touchVm")).toBe(true);
    expect(await compileWasm(mod)).toBe(mod);
  });
});

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
};

/** A static file server on loopback for the built demo (no Vite at test time). */
function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    let file = join(root, path);
    try {
      if (statSync(file).isDirectory()) file = join(file, "index.html");
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const a = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/` });
  }));
}

describe.skipIf(!HAVE_CHROMIUM)("the demo page in headless Chromium", () => {
  let out: string;
  let http: { server: Server; url: string };
  let chromium: Chromium;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), "vmemsim-demo-"));
    const { build } = await import("vite");
    await build({ configFile: "demo/vite.config.ts", logLevel: "error", build: { outDir: out, emptyOutDir: true } });
    http = await serve(out);
    chromium = await launchChromium({ width: 1500, height: 1000 });
  }, 120_000);

  afterAll(async () => {
    await chromium?.close();
    await new Promise((r) => http?.server.close(r));
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it("runs the default scenario to its end in the worker; charts update; a knob changed mid-run shows in the counters; no errors", async () => {
    const page = await chromium.context.newPage();
    const errors = watchErrors(page);
    const wasm: { type: string | undefined; status: number }[] = [];
    page.on("response", (r) => r.url().endsWith(".wasm") && wasm.push({ type: r.headers()["content-type"], status: r.status() }));
    await page.goto(http.url);
    await expect.poll(() => page.locator("#validity").textContent()).toMatch(/^valid: "default", 12 VMs/);
    expect(await page.locator("#preset option").count()).toBeGreaterThanOrEqual(2); // the default and the examples

    await page.click("#run");
    await page.waitForFunction(() => Number(document.getElementById("samples")!.textContent) >= 20, null, { timeout: 60_000 });
    const early = await screenshotStats(page, '.chart[data-kind="host-memory"] canvas');

    // pause, change a VM's reservation and the idle tax, resume
    await page.click("#pause");
    await page.waitForFunction(() => document.body.dataset.state === "paused");
    const pausedAt = Number(await page.locator("#samples").textContent()) * 20;
    await page.selectOption("#resvm", "web-2");
    await page.fill("#resmb", "1536");
    await page.click("#apply-res");
    await page.fill("#idletax", "20");
    await page.click("#apply-idletax");
    await page.click("#pause"); // Resume
    await page.waitForFunction(() => document.body.dataset.state === "running");

    // the counters show it while the run goes on
    const amin = page.locator('#esxtop tr[data-vm="web-2"] td[data-col="AMIN"]');
    await expect.poll(() => amin.textContent(), { timeout: 60_000 }).toBe("1536");
    expect(await page.locator('#esxtop tr[data-vm="web-1"] td[data-col="AMIN"]').textContent()).toBe("0");
    const events = await page.locator("#events").textContent();
    expect(events).toContain("web-2: settings changed");
    expect(events).toContain("set Mem.IdleTax=20");

    // to the end: 2 h in samples of 20 s
    await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state!), null, { timeout: 240_000 });
    expect(await page.locator("#error").isHidden()).toBe(true);
    expect(await page.evaluate(() => document.body.dataset.state)).toBe("done");
    expect(await page.locator("#samples").textContent()).toBe("360");
    expect(await page.locator("#clock").textContent()).toBe("2:00:00 of 2:00:00 simulated");
    expect(await amin.textContent()).toBe("1536");
    expect(pausedAt).toBeLessThan(7200);

    // the charts changed since the early look and are drawn
    const late = await screenshotStats(page, '.chart[data-kind="host-memory"] canvas');
    expect(gridDifference(early.grid, late.grid)).toBeGreaterThan(2); // mean brightness change per grid cell, of 255
    expect(late.nonBackground / (late.width * late.height)).toBeGreaterThan(0.3);
    const vm = await screenshotStats(page, '.chart[data-kind="vm-memory"] canvas');
    expect(vm.nonBackground).toBeGreaterThan(2000);
    expect(await page.locator('.chart[data-kind="host-memory"] .u-legend .u-label').allTextContents()).toContain("VM private");
    expect(await page.locator("#esxtop tbody tr").count()).toBe(12);
    expect(await page.locator("#esxtop-host").textContent()).toMatch(/PMEM {2}\/MB: 65536 total/);

    // the engine came over HTTP as application/wasm; a report of the run can be downloaded
    expect(wasm).toEqual([{ type: "application/wasm", status: 200 }]);
    expect(await page.locator("#download").isEnabled()).toBe(true);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const report = readFileSync((await download.path())!, "utf8");
    expect(report).toContain("<title>vmemsim report: default</title>");
    expect(report).toContain("web-2: settings changed");

    await page.screenshot({ path: join(out, "demo.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);
});
