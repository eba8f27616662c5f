// The HTML report: `run --report` and `report DIR` write the same self-contained file; scenario
// strings are escaped; rendered in headless Chromium, its charts are there, drawn, stacked right,
// with readable legends, and it makes no network request and logs no error.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, unlinkSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseCsv, reportDataFromFiles, ReportInputError } from "../src/report/data.js";
import { escapeHtml, reportHtml, scriptJson } from "../src/report/html.js";
import { HAVE_CHROMIUM, launchChromium, screenshotStats, watchErrors, type Chromium } from "./chromium.js";
import { cli, tmpDir } from "./cli-helpers.js";

const tmp = () => tmpDir("report");

const EVIL_NAME = `<script>alert(1)</script> & "quotes" 'too'`;
const EVIL_IMAGE = `"><img src=x onerror=alert(2)></pre><script>alert(3)</script>`;

// A small overcommitted host: the free-memory state moves, so the band behind the host chart has
// more than one colour; the scenario name and an image name try to break out of the HTML.
const SCENARIO = `
name: ${JSON.stringify(EVIL_NAME)}
seed: 11
duration: 6m
tick: 1s
sampleEvery: 10s
host: { memory: 3GiB }
vms:
  - { name: web, count: 2, memory: 1GiB, image: ${JSON.stringify(EVIL_IMAGE)},
      workload: [ { at: 0s, active: 700MiB, touchRate: 20000/s, pattern: uniform, writeRatio: 0.3 } ] }
  - { name: db, memory: 1GiB, reservation: 256MiB, guest: { os: windows, bootTime: 30s },
      workload: [ { at: 0s, active: 600MiB, touchRate: 10000/s, pattern: uniform, writeRatio: 0.5 } ] }
events: [ { at: 3m, set: { Mem.IdleTax: 0 } }, { at: 4m, powerOff: web-2 } ]
`;

let dir: string;
let html: string;

beforeAll(async () => {
  dir = tmp();
  const file = join(dir, "evil.yaml");
  writeFileSync(file, SCENARIO);
  const r = await cli("run", file, "--out", dir, "--report", "--quiet");
  expect(r.code, r.stderr).toBe(0);
  html = readFileSync(join(dir, "report.html"), "utf8");
});

describe("vmemsim report", () => {
  it("run --report and report DIR write the same file, from the samples or from host.csv, vms.csv and summary.json", async () => {
    const first = html;
    unlinkSync(join(dir, "report.html"));
    const r = await cli("report", dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("report.html");
    expect(readFileSync(join(dir, "report.html"), "utf8")).toBe(first);
  });

  it("embeds every sample of every VM and the final counters of summary.json", () => {
    const m = /<script type="application\/json" id="vmemsim-data">([^<]*)<\/script>/.exec(html);
    expect(m).not.toBeNull();
    const data = JSON.parse(m![1]);
    expect(data.time).toEqual(Array.from({ length: 36 }, (_, i) => (i + 1) * 10));
    expect(data.vms.map((v: { name: string }) => v.name)).toEqual(["web-1", "web-2", "db"]);
    const vms = parseCsv(readFileSync(join(dir, "vms.csv"), "utf8"));
    const grant = vms[0].indexOf("GRANT");
    expect(data.vms[2].cols.GRANT).toEqual(vms.slice(1).filter((r) => r[1] === "db").map((r) => Number(r[grant])));
    expect(data.vms[1].cols.on.at(-1)).toBe(0);
    // the tables: the final GRANT of db as summary.json has it
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
    const finalGrant = summary.vms[2].final.GRANT;
    expect(html).toMatch(new RegExp(`<td class="name">db</td>(<td>[^<]*</td>)*<td>${String(finalGrant).replace(".", "\\.")}</td>`));
    // the events, and the scenario (normalized) at the end
    expect(html).toContain("powered off");
    expect(html).toContain("Mem.IdleTax=0");
    expect(html).toMatch(/<pre id="scenario">[^]*touchRate: 20000/);
  });

  it("escapes every scenario string: no markup from the scenario reaches the page", () => {
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain("<img src=x");
    expect(html).not.toContain("</pre><script>");
    expect(html).toContain(escapeHtml(EVIL_NAME));
    // inside the JSON data block, "<" and ">" are \\u escapes, so "</script>" cannot close it
    expect(scriptJson({ a: "</script><!--" })).toBe('{"a":"\\u003c/script\\u003e\\u003c!--"}');
    expect(JSON.parse(scriptJson({ a: "</script>\u2028" }))).toEqual({ a: "</script>\u2028" });
  });

  it("report DIR: exit 2 naming the missing or malformed file", async () => {
    const empty = tmp();
    let r = await cli("report", empty);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no host\.csv/);
    const bad = tmp();
    writeFileSync(join(bad, "host.csv"), "time,PMEM.total\n20,1\n");
    writeFileSync(join(bad, "vms.csv"), "time,vm,GRANT\n20,a,1,9\n");
    writeFileSync(join(bad, "summary.json"), JSON.stringify({ scenario: "x", seed: 1, simulatedSeconds: 20, host: { final: null, mean: {} }, vms: [], events: [] }));
    r = await cli("report", bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vms\.csv row 2 has 4 fields/);
    writeFileSync(join(bad, "summary.json"), "{");
    expect(() => reportDataFromFiles("time\n", "time,vm\n", "{")).toThrow(ReportInputError);
    r = await cli("report");
    expect(r.code).toBe(2);
    expect(existsSync(join(bad, "report.html"))).toBe(false);
  });

  it("--report needs --out", async () => {
    const r = await cli("run", "--duration", "20s", "--report", "--quiet");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--report.*--out/);
  });

  it("parseCsv reads quoted fields, doubled quotes, commas, newlines and CRLF", () => {
    expect(parseCsv('a,"b,c","d""e"\r\n"x\ny",2\n')).toEqual([["a", "b,c", 'd"e'], ["x\ny", "2"]]);
    expect(parseCsv("1,2")).toEqual([["1", "2"]]);
  });

  it("holds no more than the VM cards it promises for very many VMs (tables list all)", () => {
    const data = reportDataFromFiles(readFileSync(join(dir, "host.csv"), "utf8"), readFileSync(join(dir, "vms.csv"), "utf8"), readFileSync(join(dir, "summary.json"), "utf8"));
    const many = { ...data, vms: Array.from({ length: 70 }, (_, i) => ({ ...data.vms[0], name: `vm-${i}` })) };
    const out = reportHtml(many, { uplotJs: "", uplotCss: "" });
    expect(out).toContain("Charts for the first 64 of 70 VMs");
  });
});

describe.skipIf(!HAVE_CHROMIUM)("the report in headless Chromium", () => {
  let chromium: Chromium;
  beforeAll(async () => {
    chromium = await launchChromium({ width: 1200, height: 900 });
  });
  afterAll(async () => {
    await chromium?.close();
  });

  it("draws every chart, with readable legends, offline, without errors or dialogs", async () => {
    const page = await chromium.context.newPage();
    const errors = watchErrors(page);
    const requests: string[] = [];
    page.on("request", (r) => requests.push(r.url()));
    const dialogs: string[] = [];
    page.on("dialog", async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
    const url = pathToFileURL(join(dir, "report.html")).href;
    await page.goto(url);
    await page.waitForFunction(() => Array.isArray((window as unknown as { vmemsimCharts?: unknown[] }).vmemsimCharts));

    // the title is the scenario name as text, not markup
    expect(await page.title()).toBe(`vmemsim report: ${EVIL_NAME}`);
    expect(await page.locator("h1").textContent()).toBe(`vmemsim report: ${EVIL_NAME}`);
    expect(await page.locator("#scenario").textContent()).toContain(EVIL_IMAGE);
    expect(await page.locator("img").count()).toBe(0);

    // 2 host charts + 4 per VM, each a uPlot with a canvas of its size
    const kinds = await page.locator(".chart").evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.kind));
    expect(kinds.filter((k) => k === "host-memory")).toHaveLength(1);
    expect(kinds.filter((k) => k === "host-reclaim")).toHaveLength(1);
    for (const k of ["vm-memory", "vm-targets", "vm-active", "vm-latency"]) expect(kinds.filter((x) => x === k)).toHaveLength(3);
    expect(await page.locator(".chart canvas").count()).toBe(2 + 4 * 3);

    // the screenshot of each chart holds a drawing: many non-background pixels, several colours
    const host = await screenshotStats(page, '.chart[data-kind="host-memory"] canvas');
    expect(host.width).toBeGreaterThan(1000);
    expect(host.nonBackground / (host.width * host.height)).toBeGreaterThan(0.3);
    expect(host.colors).toBeGreaterThan(8);
    for (const kind of ["vm-memory", "vm-active"]) {
      const s = await screenshotStats(page, `.chart[data-kind="${kind}"][data-vm="db"] canvas`);
      expect(s.nonBackground, kind).toBeGreaterThan(2000);
    }

    // the host stack sums to the machine memory at every sample (the top layer is "free")
    const sums = await page.evaluate(() => {
      const c = (window as unknown as { vmemsimCharts: { kind: string; plot: { data: number[][] } }[] }).vmemsimCharts.find((x) => x.kind === "host-memory")!;
      return c.plot.data[c.plot.data.length - 1];
    });
    expect(sums.length).toBe(36);
    for (const v of sums) expect(v).toBeCloseTo(3072, 0);

    // the state band has its key; legends name every series in readable type
    expect(await page.locator(".state-legend .state-item").allTextContents()).toEqual(["high", "clear", "soft", "hard", "low"]);
    const hostLegend = await page.locator('.chart[data-kind="host-memory"] .u-legend .u-label').allTextContents();
    expect(hostLegend).toEqual(["time", "vmk", "overhead", "VM private", "shared common", "compression cache", "free"]);
    const vmLegend = await page.locator('.chart[data-kind="vm-memory"][data-vm="web-1"] .u-legend .u-label').allTextContents();
    expect(vmLegend).toEqual(["time", "granted private", "shared", "ballooned", "compressed", "swapped", "configured"]);
    const style = await page.locator('.chart[data-kind="host-memory"] .u-legend .u-label').nth(3).evaluate((e) => {
      const cs = getComputedStyle(e);
      const r = e.getBoundingClientRect();
      return { size: parseFloat(cs.fontSize), color: cs.color, height: r.height, width: r.width };
    });
    expect(style.size).toBeGreaterThanOrEqual(12);
    expect(style.height).toBeGreaterThan(10);
    expect(style.width).toBeGreaterThan(40);
    const [r, g, b] = style.color.match(/\d+/g)!.map(Number);
    expect(r + g + b).toBeLessThan(200); // dark text on white
    // legend values: the last sample's, not blank
    const freeValue = await page.locator('.chart[data-kind="host-memory"] .u-legend .u-series').last().locator(".u-value").textContent();
    expect(Number(freeValue)).toBeGreaterThan(0);

    await page.screenshot({ path: join(dir, "report.png"), fullPage: false });
    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(requests).toEqual([url]);
    await page.close();
  });
});
