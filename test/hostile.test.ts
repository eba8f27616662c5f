// Hostile and broken input through the command line: each malformed scenario gives exit 2 and one
// clear message naming the field (or the file) and what is allowed; nothing crashes, hangs or
// pollutes prototypes. The corpus is test/fixtures/hostile/ (what test/fixtures/bad/, the loader's
// own corpus, does not cover: prototype keys in more places, binary and mis-encoded files, empty
// documents, YAML features the loader refuses, wrong types, negative and huge sizes, events out of
// order or naming unknown VMs, duplicate names, out-of-range settings), documents too deep or too
// large generated here, and fast-check fuzzing of the loader.
import { describe, expect, it, afterAll } from "vitest";
import fc from "fast-check";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { stringify } from "yaml";
import { main } from "../src/cli/main.js";
import { parseScenarioText, ScenarioError } from "../src/scenario/load.js";
import { scenarioArb, SMALL, toYaml } from "./arbitraries.js";

const HOSTILE = join(import.meta.dirname, "fixtures/hostile");
const work = mkdtempSync(join(tmpdir(), "vmemsim-hostile-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cli(...argv: string[]) {
  let stdout = "", stderr = "";
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false });
  return { code, stdout, stderr };
}

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
const before = PROTOTYPES.map((p) => Object.getOwnPropertyNames(p).sort().join());
/** Nothing the input said reached a prototype. */
function expectNoPollution(): void {
  PROTOTYPES.forEach((p, i) => expect(Object.getOwnPropertyNames(p).sort().join()).toBe(before[i]));
  const probe = {} as Record<string, unknown>;
  for (const key of ["polluted", "isAdmin", "active", "memory"]) expect(probe[key]).toBeUndefined();
}

/**
 * One clear message: exit 2, a single `vmemsim:` message (a YAML syntax error may add the lines
 * that show where), naming the file, no stack trace.
 */
function expectRefused(r: { code: number; stderr: string; stdout: string }, file: string): string {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe("");
  expect(r.stderr.match(/vmemsim:/g)).toHaveLength(1);
  expect(r.stderr.startsWith(`vmemsim: ${file}`)).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error|TypeError|RangeError|undefined|\[object/);
  return r.stderr.split("\n")[0];
}

describe("hostile corpus (test/fixtures/hostile) through the CLI", () => {
  const files = readdirSync(HOSTILE).filter((f) => !f.endsWith(".expect")).sort();
  it("has the corpus", () => expect(files.length).toBeGreaterThanOrEqual(70));

  for (const f of files) {
    it(f, async () => {
      const path = join(HOSTILE, f);
      const header = readFileSync(existsSync(`${path}.expect`) ? `${path}.expect` : path, "utf8");
      const field = /^# expect: (.*)$/m.exec(header)?.[1].trim();
      const message = /^# message: (.*)$/m.exec(header)?.[1].trim();
      expect(field, `${f}: needs "# expect: <field path>" (in the file or ${f}.expect)`).toBeDefined();
      const out = join(work, `out-${f}`);
      for (const argv of [["validate", path], ["run", path, "--out", out, "--quiet"]]) {
        const r = await cli(...argv);
        const first = expectRefused(r, path);
        if (field !== "<document>" && field !== "<file>") expect(first).toContain(`: ${field}: `);
        expect(r.stderr).toContain(message!);
      }
      expect(existsSync(out)).toBe(false); // refused before anything was written
      expectNoPollution();
    });
  }
});

describe("documents too deep, too large or not files", () => {
  const file = (name: string, text: string | Buffer) => {
    const p = join(work, name);
    writeFileSync(p, text);
    return p;
  };
  const deep = {
    "flow-sequences.yaml": "x: " + "[".repeat(100_000) + "]".repeat(100_000) + "\n",
    "flow-mappings.yaml": "x: " + "{a: ".repeat(50_000) + "1" + "}".repeat(50_000) + "\n",
    "json-objects.json": '{"x":'.repeat(100_000) + "1" + "}".repeat(100_000),
    "json-arrays.json": "[".repeat(200_000) + "]".repeat(200_000),
    "block-sequences.yaml": "x:\n" + "- ".repeat(200_000) + "1\n",
    "block-mappings.yaml": Array.from({ length: 1000 }, (_, i) => `${" ".repeat(i)}k:`).join("\n") + " 1\n",
  };

  it.each(Object.keys(deep))("%s: refused as nested too deep, twice in one process (no stack overflow)", async (name) => {
    const p = file(name, deep[name as keyof typeof deep]);
    // the YAML parser recurses per level; a second overflow in one process used to abort V8 itself
    for (let i = 0; i < 2; i++) {
      const line = expectRefused(await cli("validate", p), p);
      expect(line).toMatch(/nested more than 64 levels deep|top level must be a mapping/);
    }
  });

  it("a document over 10 MiB, and /dev/zero, are refused without reading them whole", async () => {
    const big = file("big.yaml", "host: { memory: 2GiB }\nvms:\n  - { name: a, memory: 1GiB }\n#" + "x".repeat(10 * 2 ** 20) + "\n");
    expect(expectRefused(await cli("validate", big), big)).toMatch(/larger than the 10 MiB a scenario may be/);
    if (existsSync("/dev/zero")) expect(expectRefused(await cli("run", "/dev/zero"), "/dev/zero")).toMatch(/larger than the 10 MiB/);
  });

  it("many keys are refused in linear time (the YAML parser's duplicate check is quadratic)", async () => {
    const keys = Array.from({ length: 30_000 }, (_, i) => `k${i}: 1`).join("\n");
    const p = file("keys.yaml", `host: { memory: 2GiB }\nvms:\n  - { name: a, memory: 1GiB }\n${keys}\n`);
    expect(expectRefused(await cli("validate", p), p)).toMatch(/k0: unknown key "k0"/);
    const dup = file("dup.yaml", `host: { memory: 2GiB }\nvms:\n  - { name: a, memory: 1GiB }\n${keys}\nk29999: 2\n`);
    expect(expectRefused(await cli("validate", dup), dup)).toMatch(/Map keys must be unique: "k29999" is given twice/);
  });

  it("a directory, a missing file, an unwritable --out", async () => {
    expect(expectRefused(await cli("validate", work), `cannot read ${work}`)).toMatch(/is a directory/);
    const missing = join(work, "nope.yaml");
    expect(expectRefused(await cli("run", missing), `cannot read ${missing}`)).toMatch(/no such file/);
    const ok = file("ok.yaml", "duration: 2s\nhost: { memory: 2GiB }\nvms:\n  - { name: a, memory: 64MiB }\n");
    const under = join(ok, "out"); // a folder inside a file
    expect(expectRefused(await cli("run", ok, "--out", under, "--quiet"), `--out ${under}`)).toMatch(/cannot write there/);
  });
});

describe("scenarios too large for the engine are refused before running, with the arithmetic", () => {
  it("over the loader's page budget", async () => {
    const p = join(work, "budget.yaml");
    writeFileSync(p, "host: { memory: 2TiB, hypervisorReserve: 1GiB }\nvms:\n  - { name: big, count: 3, memory: 512GiB }\n  - { name: one, memory: 4KiB }\n");
    const line = expectRefused(await cli("run", p, "--quiet"), p);
    expect(line).toMatch(/vms: total configured guest memory 1.5 TiB = 402653185 pages is over the engine budget of 402653184 pages/);
    expect(line).toMatch(/402653185 × 8 B = 3 GiB/);
  });

  it("within it, when the mechanisms' tables do not fit beside the page tables", async () => {
    const p = join(work, "budget-tables.yaml");
    writeFileSync(p, "duration: 1s\nhost: { memory: 2TiB, hypervisorReserve: 1GiB }\nvms:\n  - { name: big, count: 3, memory: 512GiB }\n");
    const out = join(work, "budget-out");
    const r = await cli("run", p, "--quiet", "--out", out);
    if (r.code === 0) return; // the engine found room after all: nothing to refuse
    const line = expectRefused(r, p);
    expect(line).toMatch(/the scenario cannot be simulated: .*cannot hold/);
    expect(line).toMatch(/402653184 guest pages × 8 B = 3 GiB of the 4 GiB/);
    expect(existsSync(out)).toBe(false);
    expect(expectRefused(await cli("validate", p), p)).toBe(line); // validate refuses what run would
  });

  it("a host of 16 TiB or more (machine pages are counted in 32 bits)", async () => {
    const e = (() => {
      try {
        parseScenarioText("host: { memory: 16TiB, hypervisorReserve: 1GiB }\nvms:\n  - { name: a, memory: 1GiB }\n");
      } catch (err) {
        return err as ScenarioError;
      }
    })();
    expect(e?.field).toBe("host.memory");
    expect(e?.detail).toMatch(/4294967296 pages of 4 KiB, more than the 4294967295/);
  });
});

describe("fuzzing the loader", () => {
  /** Loading either works or throws one ScenarioError with a message that says what is allowed. */
  function loadOrRefuse(text: string): "ok" | "refused" {
    try {
      parseScenarioText(text, "fuzz.yaml");
      return "ok";
    } catch (err) {
      if (!(err instanceof ScenarioError)) throw new Error(`not a ScenarioError for ${JSON.stringify(text.slice(0, 300))}: ${(err as Error)?.stack ?? err}`);
      expect(err.message.startsWith("fuzz.yaml")).toBe(true);
      expect(err.detail).toMatch(/must|required|unknown|not allowed|nested|over|larger|empty|already used|cannot|needs|at most|YAML|mapping|keys/);
      // what the message says beyond quoting the input ("(got NaN)" is fine) never leaks JS internals
      expect(err.detail.replace(/\(got [^)]*\)/g, "")).not.toMatch(/undefined|\[object Object\]|NaN/);
      return "refused";
    }
  }

  const hostileKey = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "memory", "vms", "host", "<<");
  const hostileValue = fc.oneof(
    fc.constantFrom(-1, 0, 2 ** 53, -(2 ** 31), 1e308, 0.5, "1e999", ".inf", ".nan", "-1GiB", "99999999TiB", "", " ", "off", "unlimited", null, true, [], {}),
    fc.string({ maxLength: 20 }),
    fc.integer(),
    fc.double(),
  );
  const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: "small" }, hostileValue, fc.array(tie("value"), { maxLength: 4 }), tie("object")),
    object: fc.dictionary(fc.oneof(hostileKey, fc.string({ maxLength: 8 })), tie("value"), { maxKeys: 5 }),
  })).value;

  it("arbitrary JSON and YAML documents: a Scenario or a ScenarioError, never anything else", () => {
    fc.assert(
      fc.property(jsonish, (v) => {
        loadOrRefuse(JSON.stringify(v) ?? "null");
        loadOrRefuse(stringify(v));
      }),
      { numRuns: 400 },
    );
    expectNoPollution();
  });

  it("valid scenarios with one field replaced by something hostile: a clear refusal or a valid scenario", () => {
    const mutated = fc.tuple(scenarioArb(SMALL), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), hostileValue, fc.option(hostileKey, { nil: undefined })).map(([input, path, value, key]) => {
      const doc = structuredClone(input) as Record<string, unknown>;
      // walk down `path` (indices into the keys or items at each level), then replace or add
      let node: unknown = doc;
      for (const step of path) {
        const children = node && typeof node === "object" ? Object.keys(node) : [];
        if (children.length === 0) break;
        const k = children[step % children.length];
        const next = (node as Record<string, unknown>)[k];
        if (!next || typeof next !== "object" || step % 5 === 4) {
          if (key !== undefined && !Array.isArray(node)) Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
          else (node as Record<string, unknown>)[k] = value;
          return doc;
        }
        node = next;
      }
      return doc;
    });
    let refused = 0;
    fc.assert(
      fc.property(mutated, (doc) => {
        if (loadOrRefuse(toYaml(doc)) === "refused") refused++;
        const json = JSON.stringify(doc);
        loadOrRefuse(json);
      }),
      { numRuns: 300 },
    );
    expect(refused).toBeGreaterThan(50); // the mutations do hit
    expectNoPollution();
  });

  it("random text and random bytes through the CLI: exit 2 (or 0), never an internal error", async () => {
    const dir = join(work, "fuzz");
    mkdirSync(dir, { recursive: true });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: "grapheme", maxLength: 200 }), fc.string({ unit: "binary", maxLength: 200 }), fc.uint8Array({ maxLength: 300 })), async (content) => {
        const p = join(dir, `f${n++}.yaml`);
        writeFileSync(p, typeof content === "string" ? content : Buffer.from(content));
        const r = await cli("validate", p);
        expect([0, 2], r.stderr).toContain(r.code);
        if (r.code === 2) expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      }),
      { numRuns: 150 },
    );
    expectNoPollution();
  });
});

describe("the installed command (node bin/vmemsim.js)", () => {
  const bin = join(import.meta.dirname, "../bin/vmemsim.js");
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });

  it.each(["binary-random.bin", "utf16le-bom.yaml", "proto-in-json-array.json", "yaml-alias-cycle.yaml", "events-out-of-order-units.yaml", "touch-rate-huge.yaml"])(
    "%s: exit 2 and one message, in a process of its own",
    (name) => {
      const r = run("run", join(HOSTILE, name), "--quiet");
      expect(r.status, r.stderr).toBe(2);
      expect(r.signal).toBeNull();
      expect(r.stderr.match(/vmemsim:/g)).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    },
  );

  it("documents nested 100,000 deep, one after the other in one process, and /dev/zero", () => {
    const script = `
      import { parseScenarioText } from ${JSON.stringify(join(import.meta.dirname, "../dist/scenario/load.js"))};
      const docs = ["x: " + "[".repeat(100000) + "]".repeat(100000), '{"a":'.repeat(100000) + "1" + "}".repeat(100000), "x: " + "{a: ".repeat(50000) + "1" + "}".repeat(50000)];
      for (const d of docs) for (let i = 0; i < 3; i++) { try { parseScenarioText(d); } catch (e) { if (e.name !== "ScenarioError") throw e; } }
      console.log("survived");`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("survived");
    if (existsSync("/dev/zero")) {
      const z = run("validate", "/dev/zero");
      expect(z.status).toBe(2);
      expect(z.stderr).toMatch(/larger than the 10 MiB/);
    }
  });
});
