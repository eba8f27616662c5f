// The command line: outputs, determinism, exit codes, atomic outputs on interrupt.
import { describe, expect, it, vi } from "vitest";
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { HOST_COLUMNS, VM_COLUMNS } from "../src/sim/counters.js";
import { VERSION } from "../src/version.js";
import { cli, tmpDir } from "./cli-helpers.js";

const tmp = () => tmpDir("cli");

const SMALL = `
name: small
seed: 5
duration: 2m
tick: 1s
sampleEvery: 20s
host: { memory: 2GiB }
vms:
  - { name: web, count: 2, memory: 512MiB, image: u, workload: [ { at: 0s, active: 256MiB, touchRate: 3000/s, pattern: zipf(0.9), writeRatio: 0.3 } ] }
  - { name: win, memory: 512MiB, guest: { os: windows, bootTime: 20s } }
events: [ { at: 1m, powerOff: web-2 } ]
`;

function smallFile(): string {
  const f = join(tmp(), "small.yaml");
  writeFileSync(f, SMALL);
  return f;
}

describe("vmemsim run", () => {
  it("writes host.csv, vms.csv and summary.json with the documented columns", async () => {
    const out = tmp();
    const r = await cli("run", smallFile(), "--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("PMEM  /MB:");
    expect(r.stdout).toMatch(/NAME\s+MEMSZ\s+GRANT/);
    expect(readdirSync(out).sort()).toEqual(["host.csv", "summary.json", "vms.csv"]);
    const host = readFileSync(join(out, "host.csv"), "utf8").trim().split("\n");
    expect(host[0]).toBe(HOST_COLUMNS.join(","));
    expect(host.length).toBe(1 + 120 / 20);
    const vms = readFileSync(join(out, "vms.csv"), "utf8").trim().split("\n");
    expect(vms[0]).toBe(VM_COLUMNS.map((c) => (/[",]/.test(c) ? `"${c}"` : c)).join(","));
    expect(vms.length).toBe(1 + 3 * 6);
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    expect(summary).toMatchObject({ vmemsim: VERSION, scenario: "small", seed: 5, simulatedSeconds: 120, samples: 6 });
    expect(summary.scenarioHash).toMatch(/^[0-9a-f]{64}$/);
    expect(summary.vms.map((v: { name: string }) => v.name)).toEqual(["web-1", "web-2", "win"]);
    expect(summary.vms[1].final.on).toBe(0);
    expect(summary.events.map((e: { kind: string; vm?: string }) => `${e.kind}:${e.vm}`)).toContain("powerOff:web-2");
    expect(summary.wall.seconds).toBeGreaterThan(0);
  });

  it("is deterministic: the same seed writes byte-identical CSVs; --seed changes them", async () => {
    const f = smallFile();
    const [a, b, c] = [tmp(), tmp(), tmp()];
    await cli("run", f, "--out", a, "--quiet");
    await cli("run", f, "--out", b, "--quiet");
    await cli("run", f, "--out", c, "--quiet", "--seed", "6");
    for (const name of ["host.csv", "vms.csv"]) expect(readFileSync(join(b, name))).toEqual(readFileSync(join(a, name)));
    const strip = (d: string) => ({ ...JSON.parse(readFileSync(join(d, "summary.json"), "utf8")), wall: null });
    expect(strip(b)).toEqual(strip(a));
    expect(readFileSync(join(c, "vms.csv"), "utf8")).not.toBe(readFileSync(join(a, "vms.csv"), "utf8"));
  });

  it("--format jsonl streams one sample per line and ends with the summary", async () => {
    const r = await cli("run", smallFile(), "--format", "jsonl", "--duration", "60s");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(["sample", "sample", "sample", "summary"]);
    expect(lines[0].vms).toHaveLength(3);
    expect(lines[2].time).toBe(60);
    expect(r.stderr).toContain("PMEM"); // the table goes to stderr, stdout stays parseable
  });

  it("--check runs the invariants every tick", async () => {
    const r = await cli("run", smallFile(), "--check", "--quiet");
    expect(r.code).toBe(0);
  });

  it("runs the built-in default scenario when no FILE is given", async () => {
    const r = await cli("run", "--duration", "40s", "--quiet", "--format", "jsonl");
    expect(r.code).toBe(0);
    const first = JSON.parse(r.stdout.split("\n")[0]);
    expect(first.vms.length).toBeGreaterThanOrEqual(12);
  });
});

describe("exit codes and messages", () => {
  it.each([
    [["run", "--bogus"], /Unknown option '--bogus'.*allowed options: --seed/],
    [["run", "--seed=-3"], /--seed must be an integer from 0 to 4294967295/],
    [["run", "--seed", "1.5"], /--seed must be an integer/],
    [["run", "--duration", "soon"], /--duration must be a time such as 90s/],
    [["run", "--duration", "1.5s"], /multiple of the scenario's tick/],
    [["run", "--format", "xml"], /--format must be csv or jsonl \(got "xml"\)/],
    [["run", "/nonexistent/x.yaml"], /cannot read \/nonexistent\/x.yaml: no such file/],
    [["frobnicate"], /unknown command "frobnicate": allowed commands are run, validate, schema/],
    [["validate"], /validate needs exactly one FILE/],
    [["run", "a.yaml", "b.yaml"], /unexpected argument "b.yaml"/],
  ])("%j exits 2 with a clear message", async (argv, message) => {
    const r = await cli(...(argv as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("a scenario error names the field and exits 2, writing nothing", async () => {
    const dir = tmp();
    const f = join(dir, "bad.yaml");
    writeFileSync(f, SMALL.replace("shares", "x").replace("memory: 512MiB, image: u", "memory: -5GiB, image: u"));
    const out = join(dir, "out");
    const r = await cli("run", f, "--out", out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vms\[0\]\.memory/);
    expect(existsSync(out)).toBe(false);
    expect((await cli("validate", f)).code).toBe(2);
  });

  it("validate accepts a good file; schema prints the JSON Schema; --help and --version", async () => {
    const v = await cli("validate", smallFile());
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/valid: scenario "small", 3 VMs, 1\.5 GiB configured on a 2 GiB host/);
    const s = await cli("schema");
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).$schema).toMatch(/json-schema/);
    expect((await cli("--help")).stdout).toContain("vmemsim run [FILE]");
    const ver = await cli("--version");
    expect(ver.stdout.trim()).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
  });

  it("an internal error exits 1 without blaming the user", async () => {
    const sim = await import("../src/sim/simulation.js");
    const spy = vi.spyOn(sim.Simulation.prototype, "sample").mockImplementation(() => {
      throw new Error("boom");
    });
    const out = tmp();
    const r = await cli("run", smallFile(), "--out", out);
    spy.mockRestore();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/internal error: boom/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe("the installed command", () => {
  it("SIGINT stops a run: exit 130, where it stopped, no half-written files", async () => {
    const out = tmp();
    const child = spawn(process.execPath, ["bin/vmemsim.js", "run", "--duration", "24h", "--out", out], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    // wait until the run has started writing its temporary files
    for (let i = 0; i < 200 && readdirSync(out).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGINT");
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted at \d+:\d\d:\d\d simulated .*no output written/);
    expect(readdirSync(out)).toEqual([]);
  });
});
