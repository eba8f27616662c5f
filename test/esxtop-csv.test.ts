// esxtop batch-mode CSV (`vmemsim run --esxtop FILE.csv`): perfmon layout, esxtop counter names,
// values equal to host.csv / vms.csv, atomic writing, the header names documented.
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HOST_COLUMNS, VM_COLUMNS } from "../src/sim/counters.js";
import { parseCsv } from "../src/report/data.js";
import {
  DEFAULT_START,
  ESXTOP_HOST_NAMES,
  ESXTOP_VM_NAMES,
  EsxtopCsv,
  KERNEL_STATES,
  PDH_HEADER,
  perfmonTime,
} from "../src/outputs/esxtop-csv.js";
import type { Sample } from "../src/sim/simulation.js";
import { cli, tmpDir } from "./cli-helpers.js";

const tmp = () => tmpDir("esxtop");

const SMALL = `
name: small
seed: 3
duration: 2m
tick: 1s
sampleEvery: 20s
host: { memory: 2GiB }
vms:
  - { name: web, count: 2, memory: 512MiB, image: u, workload: [ { at: 0s, active: 256MiB, touchRate: 3000/s, pattern: zipf(0.9), writeRatio: 0.3 } ] }
  - { name: db, memory: 512MiB, reservation: 128MiB }
events: [ { at: 1m, powerOff: web-2 } ]
`;

/** A perfmon counter path: \\host\Object(instance)\Counter */
const PATH = /^\\\\([^\\]+)\\(Memory|Group Memory\((\d+):([^)]*)\))\\(.+)$/;

describe("esxtop batch CSV", () => {
  it("writes the perfmon layout: quoted header of \\\\host\\Object\\Counter names, one row per sample, values as in host.csv and vms.csv", async () => {
    const dir = tmp();
    const file = join(dir, "small.yaml");
    writeFileSync(file, SMALL);
    const esx = join(dir, "sub", "batch.csv");
    const r = await cli("run", file, "--out", dir, "--esxtop", esx, "--quiet");
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(esx, "utf8");
    // every cell quoted, as esxtop -b writes them
    for (const line of text.trimEnd().split("\n")) expect(line).toMatch(/^"[^"]*"(,"[^"]*")*$/);
    const rows = parseCsv(text);
    const [head, ...data] = rows;
    expect(head[0]).toBe(PDH_HEADER);
    const hostCols = HOST_COLUMNS.filter((c) => c !== "time");
    const vmCols = VM_COLUMNS.filter((c) => c !== "time" && c !== "vm");
    expect(head.length).toBe(1 + hostCols.length + 3 * vmCols.length);
    expect(data.length).toBe(120 / 20);
    for (const row of data) expect(row.length).toBe(head.length);

    // the header parses as perfmon paths: host memory first, then one Group Memory block per VM in scenario order
    const parsed = head.slice(1).map((h) => {
      const m = PATH.exec(h);
      expect(m, h).not.toBeNull();
      return { host: m![1], object: m![2], id: m![3], vm: m![4], counter: m![5] };
    });
    expect(new Set(parsed.map((p) => p.host))).toEqual(new Set(["vmemsim"]));
    expect(parsed.slice(0, hostCols.length).every((p) => p.object === "Memory")).toBe(true);
    const groups = [...new Set(parsed.slice(hostCols.length).map((p) => `${p.id}:${p.vm}`))];
    expect(groups).toEqual(["1000:web-1", "1001:web-2", "1002:db"]);
    expect(parsed.map((p) => p.counter)).toContain("Machine MBytes");
    expect(parsed.map((p) => p.counter)).toContain("Memory Granted Size MBytes");
    // counter names are unique within each object
    for (const obj of new Set(parsed.map((p) => p.object))) {
      const names = parsed.filter((p) => p.object === obj).map((p) => p.counter);
      expect(new Set(names).size).toBe(names.length);
    }

    // values: the same numbers as host.csv and vms.csv of the same run
    const host = parseCsv(readFileSync(join(dir, "host.csv"), "utf8"));
    const vms = parseCsv(readFileSync(join(dir, "vms.csv"), "utf8"));
    const col = (name: string, counter: string, vm?: string) =>
      1 + parsed.findIndex((p) => p.counter === counter && (vm === undefined ? p.object === "Memory" : p.vm === vm));
    data.forEach((row, i) => {
      expect(row[0]).toBe(perfmonTime(DEFAULT_START + (i + 1) * 20_000));
      const h = host[i + 1];
      expect(row[col("", "Free MBytes")]).toBe(h[host[0].indexOf("PMEM.free")]);
      expect(row[col("", "Machine MBytes")]).toBe(h[host[0].indexOf("PMEM.total")]);
      expect(row[col("", "Kernel State")]).toBe(String(KERNEL_STATES.indexOf(h[host[0].indexOf("VMKMEM.state")] as "high")));
      for (const [j, vm] of ["web-1", "web-2", "db"].entries()) {
        const v = vms[1 + i * 3 + j];
        expect(v[1]).toBe(vm);
        for (const c of vmCols) {
          const counter = ESXTOP_VM_NAMES[c] ?? `vmemsim ${c}`;
          expect(row[col("", counter, vm)], `${vm} ${c} at sample ${i}`).toBe(v[vms[0].indexOf(c)]);
        }
      }
    });
    // the VM powered off at 1m reads as off from then on; the reservation shows as AMIN
    expect(data[5][col("", "vmemsim on", "web-2")]).toBe("0");
    expect(data[5][col("", "Memory Reservation MBytes", "db")]).toBe("128");
    expect(Number(data[5][col("", "Memory Granted Size MBytes", "web-1")])).toBeGreaterThan(0);
  });

  it("formats sample times as MM/DD/YYYY HH:MM:SS from a start time", () => {
    expect(perfmonTime(DEFAULT_START)).toBe("01/01/2000 00:00:00");
    expect(perfmonTime(Date.UTC(2024, 11, 31, 23, 59, 59))).toBe("12/31/2024 23:59:59");
    const w = new EsxtopCsv(["a"], { start: Date.UTC(2024, 1, 29, 23, 0, 0), host: "esx01.lab" });
    const sample = { time: 3600 + 20, host: { time: 3620, "VMKMEM.state": "soft" }, vms: [{ time: 3620, vm: "a", MEMSZ: 512 }], events: [] } as unknown as Sample;
    const row = parseCsv(w.row(sample))[0];
    expect(row[0]).toBe("03/01/2024 00:00:20");
    expect(w.header()).toContain('"\\\\esx01.lab\\Memory\\Machine MBytes"');
    // Kernel State is the state's rank; counters missing from a sample are empty cells, not "undefined"
    expect(row[1 + HOST_COLUMNS.filter((c) => c !== "time").indexOf("VMKMEM.state")]).toBe("2");
    expect(row).not.toContain("undefined");
  });

  it("quotes and cleans names: quotes doubled, backslashes (perfmon's separator) written as /", () => {
    const w = new EsxtopCsv(['we"ird\\vm'], { host: "h\\x" }, ["time", "PMEM.free"], ["time", "vm", "MEMSZ", "NEWCOL"]);
    const head = parseCsv(w.header())[0];
    expect(head).toEqual([PDH_HEADER, "\\\\h/x\\Memory\\Free MBytes", '\\\\h/x\\Group Memory(1000:we"ird/vm)\\Memory Size MBytes', '\\\\h/x\\Group Memory(1000:we"ird/vm)\\vmemsim NEWCOL']);
    expect(w.header()).toContain('we""ird/vm');
  });

  it("an interrupted run leaves no esxtop file, nor a temporary one", async () => {
    const dir = tmp();
    const esx = join(dir, "batch.csv");
    const running = cli("run", "--duration", "24h", "--esxtop", esx, "--quiet");
    await new Promise((r) => setTimeout(r, 400));
    process.emit("SIGINT", "SIGINT");
    const r = await running;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted/);
    expect(existsSync(esx)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("refuses an --esxtop path it cannot write, with exit 2 and the path", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "file"), "x");
    const r = await cli("run", "--duration", "20s", "--esxtop", join(dir, "file", "batch.csv"), "--quiet");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--esxtop");
  });

  it("docs/outputs.md names every esxtop counter vmemsim writes", () => {
    const doc = readFileSync("docs/outputs.md", "utf8");
    for (const name of [PDH_HEADER, ...Object.values(ESXTOP_HOST_NAMES), ...Object.values(ESXTOP_VM_NAMES)]) {
      expect(doc, name).toContain(name);
    }
  });
});
