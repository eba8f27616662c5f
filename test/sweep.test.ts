// Parameter sweeps: the grid (paths, values, cross product, shards), and `vmemsim sweep` end to end:
// one folder per point with the same bytes as `vmemsim run`, the combined table, shards and merge,
// resuming, up-front refusal of bad points, and SIGINT.
import { beforeAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { SweepError, applyPoint, crossProduct, inShard, parseParam, parseShard } from "../src/sweep/grid.js";
import { isSweepFile, readSweepFile } from "../src/sweep/plan.js";
import { cli, tmpDir } from "./cli-helpers.js";

const tmp = () => tmpDir("sweep");

const SMALL = `
name: small
seed: 5
duration: 40s
tick: 1s
sampleEvery: 10s
host: { memory: 2GiB }
vms:
  - { name: web, count: 2, memory: 384MiB, image: u, workload: [ { at: 0s, active: 256MiB, touchRate: 3000/s, pattern: zipf(0.9), writeRatio: 0.3 } ] }
  - { name: win, memory: 256MiB, guest: { os: windows, bootTime: 10s } }
`;

function smallFile(): string {
  const f = join(tmp(), "small.yaml");
  writeFileSync(f, SMALL);
  return f;
}

const csv = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => l.split(","));
/** the combined table without the wall-time column (the only one that differs between runs) */
const tableSansWall = (f: string) => {
  const rows = csv(f);
  const w = rows[0].indexOf("wallSeconds");
  return rows.map((r) => r.filter((_, i) => i !== w));
};

describe("the grid", () => {
  it("reads lists, ranges and single values; shorthands for settings, KSM knobs and VMs", () => {
    expect(parseParam("host.memory=[48GiB,64GiB, 96GiB]")).toMatchObject({ name: "host.memory", path: [{ key: "host" }, { key: "memory" }], values: ["48GiB", "64GiB", "96GiB"] });
    expect(parseParam("Mem.IdleTax=[0,75]")).toMatchObject({ path: [{ key: "host" }, { key: "settings" }, { key: "Mem.IdleTax" }], values: [0, 75] });
    expect(parseParam("ksm.pages_to_scan=100")).toMatchObject({ path: [{ key: "host" }, { key: "ksm" }, { key: "pages_to_scan" }], values: [100] });
    expect(parseParam("seed=3..7").values).toEqual([3, 4, 5, 6, 7]);
    expect(parseParam("seed=0..10:5").values).toEqual([0, 5, 10]);
    expect(parseParam("vms.web.memory=[1GiB,2GiB]").path).toEqual([{ key: "vms" }, { vms: "web" }, { key: "memory" }]);
    expect(parseParam("vms.*.sched.mem.maxmemctl=[0]").path).toEqual([{ key: "vms" }, { vms: "*" }, { key: "settings" }, { key: "sched.mem.maxmemctl" }]);
    expect(parseParam("vms.db.settings.sched.mem.pshare.enable=[0]").path).toEqual([{ key: "vms" }, { vms: "db" }, { key: "settings" }, { key: "sched.mem.pshare.enable" }]);
    expect(parseParam("host.settings.Mem.IdleTax=0").path).toEqual(parseParam("Mem.IdleTax=0").path);
    expect(parseParam('vms[1].workload[0]["touchRate"]=[1/s]').path).toEqual([{ key: "vms" }, { index: 1 }, { key: "workload" }, { index: 0 }, { key: "touchRate" }]);
    for (const bad of ["host.memory", "=[1]", "seed=5..1", "seed=[]", "x=[{a: 1}]", "a[b]=1", "a[0=1"]) expect(() => parseParam(bad), bad).toThrow(SweepError);
  });

  it("crosses the values with the first parameter slowest, names folders safely, and shards by index", () => {
    const params = [parseParam("host.memory=[48GiB,64GiB]"), parseParam("Mem.IdleTax=[0,50,75]")];
    const points = crossProduct(params);
    expect(points.map((p) => p.values)).toEqual([["48GiB", 0], ["48GiB", 50], ["48GiB", 75], ["64GiB", 0], ["64GiB", 50], ["64GiB", 75]]);
    expect(points[4].dir).toBe("4_host.memory=64GiB_Mem.IdleTax=50");
    expect(crossProduct([parseParam('vms[0].name=["a b/c:d"]')])[0].dir).toBe("0_vms_0_.name=a_b_c_d");
    const shards = [1, 2, 3, 4].map((i) => points.filter((p) => inShard(p, parseShard(`${i}/4`))).map((p) => p.index));
    expect(shards).toEqual([[0, 4], [1, 5], [2], [3]]);
    for (const bad of ["0/4", "5/4", "2", "a/b", "1/0"]) expect(() => parseShard(bad), bad).toThrow(SweepError);
    expect(() => crossProduct([parseParam("seed=1..1000"), parseParam("tick=1..1000")])).toThrow(/at most/);
  });

  it("sets values into a copy of the document: fields, VM entries by name or all, settings", () => {
    const doc = { host: { memory: "1GiB" }, vms: [{ name: "web", count: 2 }, { name: "db" }] };
    const params = [parseParam("host.settings.Mem.IdleTax=0"), parseParam("vms.*.memory=[2GiB]"), parseParam("vms.db.sched.mem.maxmemctl=[0]")];
    const out = applyPoint(doc, params, [0, "2GiB", 0]) as Record<string, any>;
    expect(out.host).toEqual({ memory: "1GiB", settings: { "Mem.IdleTax": 0 } });
    expect(out.vms).toEqual([{ name: "web", count: 2, memory: "2GiB" }, { name: "db", memory: "2GiB", settings: { "sched.mem.maxmemctl": 0 } }]);
    expect(doc.vms[0]).toEqual({ name: "web", count: 2 }); // the base is untouched
    expect(() => applyPoint(doc, [parseParam("vms.nope.memory=1")], [1])).toThrow(/no VM entry named "nope" \(the scenario's vms: web, db/);
    expect(() => applyPoint(doc, [parseParam("vms[5].memory=1")], [1])).toThrow(/has no entry \[5\]/);
  });

  it("tells a sweep file from a scenario and reads its params", () => {
    expect(isSweepFile({ scenario: "a.yaml", params: { seed: [1, 2] } })).toBe(true);
    expect(isSweepFile({ host: {}, vms: [] })).toBe(false);
    expect(readSweepFile({ scenario: "a.yaml", params: { seed: "1..3", "Mem.IdleTax": [0, 75], "host.memory": "64GiB" } }).params.map((p) => p.values)).toEqual([[1, 2, 3], [0, 75], ["64GiB"]]);
    expect(() => readSweepFile({ params: [1, 2] })).toThrow(/params must be a mapping/);
    expect(() => readSweepFile({ params: {}, extra: 1 })).toThrow(/unknown key "extra"/);
  });
});

describe("vmemsim sweep", () => {
  let file: string;
  let out: string;
  let first: Awaited<ReturnType<typeof cli>>;
  const params = ["--param", "host.memory=[2GiB,3GiB]", "--param", "Mem.IdleTax=[0,75]"];

  beforeAll(async () => {
    file = smallFile();
    out = join(tmp(), "sweep");
    first = await cli("sweep", file, ...params, "--jobs", "2", "--out", out);
  });

  it("writes a folder per point, the manifest and the combined table, with progress", () => {
    expect(first.code, first.stderr).toBe(0);
    const dirs = ["0_host.memory=2GiB_Mem.IdleTax=0", "1_host.memory=2GiB_Mem.IdleTax=75", "2_host.memory=3GiB_Mem.IdleTax=0", "3_host.memory=3GiB_Mem.IdleTax=75"];
    expect(readdirSync(out).sort()).toEqual([...dirs, "sweep.csv", "sweep.json"]);
    for (const d of dirs) expect(readdirSync(join(out, d)).sort()).toEqual(["host.csv", "scenario.json", "summary.json", "vms.csv"]);
    expect(first.stderr).toMatch(/sweep: 4 points; 0 done earlier, 4 to run on 2 worker threads/);
    expect(first.stderr.match(/sweep: \[\d\/4\] \S+ ok \(/g)).toHaveLength(4);
    const table = csv(join(out, "sweep.csv"));
    expect(table[0].slice(0, 5)).toEqual(["point", "dir", "host.memory", "Mem.IdleTax", "status"]);
    expect(table.slice(1).map((r) => r.slice(0, 5))).toEqual(dirs.map((d, i) => [String(i), d, i < 2 ? "2GiB" : "3GiB", i % 2 ? "75" : "0", "ok"]));
    const total = table[0].indexOf("mean.PMEM.total");
    expect(table.slice(1).map((r) => r[total])).toEqual(["2048", "2048", "3072", "3072"]);
    const manifest = JSON.parse(readFileSync(join(out, "sweep.json"), "utf8"));
    expect(manifest.params).toEqual([{ name: "host.memory", values: ["2GiB", "3GiB"] }, { name: "Mem.IdleTax", values: [0, 75] }]);
    expect(manifest.points).toHaveLength(4);
  });

  it("gives a point the same outputs as `vmemsim run` of its scenario", async () => {
    const point = join(out, "2_host.memory=3GiB_Mem.IdleTax=0");
    const runOut = tmp();
    const r = await cli("run", join(point, "scenario.json"), "--out", runOut, "--quiet");
    expect(r.code).toBe(0);
    for (const f of ["host.csv", "vms.csv"]) expect(readFileSync(join(runOut, f)).equals(readFileSync(join(point, f))), f).toBe(true);
    const a = JSON.parse(readFileSync(join(point, "summary.json"), "utf8"));
    const b = JSON.parse(readFileSync(join(runOut, "summary.json"), "utf8"));
    expect({ ...a, wall: null }).toEqual({ ...b, wall: null });
    expect(a.scenario).toBe("small"); // the base's name, not the file's
    expect(a.scenarioNormalized.host.memory).toBe(3 * 2 ** 30);
    expect(a.scenarioNormalized.host.settings["Mem.IdleTax"]).toBe(0);
  });

  it("resumes: a second run keeps finished points; another sweep in the same folder is refused", async () => {
    const before = statSync(join(out, "0_host.memory=2GiB_Mem.IdleTax=0", "host.csv")).mtimeMs;
    const again = await cli("sweep", file, ...params, "--out", out);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/4 done earlier, 0 to run/);
    expect(statSync(join(out, "0_host.memory=2GiB_Mem.IdleTax=0", "host.csv")).mtimeMs).toBe(before);
    const other = await cli("sweep", file, "--param", "seed=[1,2]", "--out", out);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/holds another sweep/);
  });

  it("runs shards into separate folders and merges them into the same table", async () => {
    const root = tmp();
    const shards = [1, 2, 3].map((i) => join(root, `shard${i}`));
    for (const [i, dir] of shards.entries()) {
      const r = await cli("sweep", file, ...params, "--shard", `${i + 1}/3`, "--jobs", "2", "--out", dir, "--quiet");
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(join(dir, `sweep-shard-${i + 1}-of-3.csv`))).toBe(true);
      expect(existsSync(join(dir, "sweep.csv"))).toBe(false);
    }
    expect(readdirSync(shards[0]).filter((d) => /^\d_/.test(d))).toEqual(["0_host.memory=2GiB_Mem.IdleTax=0", "3_host.memory=3GiB_Mem.IdleTax=75"]);
    const merged = join(root, "all");
    const incomplete = await cli("sweep", "--merge", "--out", merged, shards[0], shards[1]);
    expect(incomplete.code).toBe(2);
    expect(incomplete.stderr).toMatch(/1 of 4 points have no results .*\(points 2\)/);
    const m = await cli("sweep", "--merge", "--out", merged, ...shards);
    expect(m.code, m.stderr).toBe(0);
    expect(tableSansWall(join(merged, "sweep.csv"))).toEqual(tableSansWall(join(out, "sweep.csv")));
    const p = "1_host.memory=2GiB_Mem.IdleTax=75";
    expect(readFileSync(join(merged, p, "vms.csv")).equals(readFileSync(join(out, p, "vms.csv")))).toBe(true);
  });

  it("refuses bad parameters and bad points before running anything (exit 2)", async () => {
    const dir = join(tmp(), "bad");
    const cases: [string[], RegExp][] = [
      [["--param", "vms.nope.memory=[1GiB]"], /no VM entry named "nope"/],
      [["--param", "host.memory=[3GiB,banana]"], /point 1 \(host\.memory=banana\): .*host\.memory/],
      [["--param", "Mem.IdleTax=[0,100]"], /point 1 \(Mem\.IdleTax=100\): .*Mem\.IdleTax/],
      [[], /at least one parameter/],
      [["--param", "seed=[1]", "--jobs", "0"], /--jobs must be/],
      [["--param", "seed=[1]", "--duration", "1.5s"], /point 0 \(seed=1\): --duration must be a multiple of the tick/],
      [["--param", "seed=[1]", "--duration", "soon"], /--duration must be a time/],
    ];
    for (const [args, message] of cases) {
      const r = await cli("sweep", file, ...args, "--out", dir);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(dir)).toBe(false);
  });

  it("reads a sweep file naming its scenario, with --param added to its grid", async () => {
    const sf = join(tmp(), "grid.yaml");
    writeFileSync(sf, `scenario: ${JSON.stringify(file)}\nparams:\n  seed: 1..2\n`);
    const dir = join(tmp(), "sf");
    const r = await cli("sweep", sf, "--param", "vms.win.guest.os=[linux]", "--duration", "20s", "--out", dir, "--quiet");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, "sweep.json"), "utf8")).runArgs).toEqual(["--duration", "20s"]);
    expect(csv(join(dir, "sweep.csv")).map((row) => row.slice(2, 4))).toEqual([["seed", "vms.win.guest.os"], ["1", "linux"], ["2", "linux"]]);
    const s = JSON.parse(readFileSync(join(dir, "1_seed=2_vms.win.guest.os=linux", "summary.json"), "utf8"));
    expect(s.seed).toBe(2);
    expect(s.simulatedSeconds).toBe(20); // --duration, as `run --duration` applies it
    expect(s.scenarioNormalized.vms[2].guest.os).toBe("linux");
  });
});

describe("the installed command", () => {
  it("SIGINT stops a sweep: exit 130, finished points kept, no partial folder, no table; a rerun finishes", async () => {
    const f = smallFile();
    const out = join(tmp(), "int");
    const argv = ["bin/vmemsim.js", "sweep", f, "--param", "seed=1..3", "--duration", "20m", "--jobs", "1", "--out", out];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    // wait until the first point is reported done, while the second runs
    for (let i = 0; i < 1200 && !/\[1\/3\]/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/sweep interrupted: 1 of 3 points done/);
    expect(readdirSync(out).sort()).toEqual(["0_seed=1", "sweep.json"]);
    const rerun = spawn(process.execPath, argv.concat("--quiet"), { stdio: "ignore" });
    expect(await new Promise<number | null>((r) => rerun.on("exit", (c) => r(c)))).toBe(0);
    expect(csv(join(out, "sweep.csv")).map((r) => r[0])).toEqual(["point", "0", "1", "2"]);
  });
});

describe("sweep reads files as run does", () => {
  it("refuses /dev/zero and binary files with exit 2 instead of hanging or printing garbage", async () => {
    const zero = await cli("sweep", "/dev/zero", "--param", "seed=[1,2]", "--quiet");
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/\/dev\/zero/);
    const bin = join(tmp(), "bin.yaml");
    writeFileSync(bin, Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x02]));
    const r = await cli("sweep", bin, "--param", "seed=[1,2]", "--quiet");
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/\uFFFD/);
  });
});
