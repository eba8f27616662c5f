import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { DEFAULT_SCENARIO_YAML } from "../src/scenario/default.js";
import {
  MAX_GUEST_PAGES,
  normalizeScenario,
  parseScenarioText,
  ScenarioError,
} from "../src/scenario/load.js";
import { scenarioJsonSchema } from "../src/scenario/schema.js";
import { HOST_SETTINGS, KSM_KNOBS, VM_SETTINGS, type SettingDef } from "../src/scenario/settings.js";
import type { Scenario } from "../src/scenario/types.js";
import {
  formatBytes,
  formatRate,
  formatSeconds,
  GiB,
  KiB,
  MiB,
  parsePageSize,
  parseRate,
  parseSize,
  parseTime,
  TiB,
  UnitError,
} from "../src/scenario/units.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (p: string) => readFileSync(join(root, p), "utf8");

const HOST = "host: { memory: 16GiB }\n";

/** Load YAML text expected to fail; return the error. */
function fails(text: string, source?: string): ScenarioError {
  try {
    parseScenarioText(text, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return e as ScenarioError;
  }
  throw new Error(`expected a ScenarioError for:\n${text}`);
}

function expectError(text: string, field: string, detail: string | RegExp): ScenarioError {
  const e = fails(text);
  expect(e.field).toBe(field);
  if (typeof detail === "string") expect(e.detail).toContain(detail);
  else expect(e.detail).toMatch(detail);
  expect(e.message).toContain(field ? `${field}: ` : "");
  return e;
}

const load = (text: string): Scenario => parseScenarioText(text);

describe("units", () => {
  it("parses sizes, binary whatever the spelling", () => {
    expect(parseSize("64GiB")).toBe(64 * GiB);
    expect(parseSize("512MB")).toBe(512 * MiB);
    expect(parseSize("512mb")).toBe(512 * MiB);
    expect(parseSize("4KiB")).toBe(4 * KiB);
    expect(parseSize("4k")).toBe(4 * KiB);
    expect(parseSize("1.5GiB")).toBe(1.5 * GiB);
    expect(parseSize("1 TiB")).toBe(TiB);
    expect(parseSize("2G")).toBe(2 * GiB);
    expect(parseSize("100B")).toBe(100);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize(".5GiB")).toBe(GiB / 2);
  });

  it("rounds sizes up to 4 KiB pages", () => {
    expect(parsePageSize(1)).toBe(4096);
    expect(parsePageSize(1000)).toBe(4096);
    expect(parsePageSize(4096)).toBe(4096);
    expect(parsePageSize(4097)).toBe(8192);
    expect(parsePageSize(0)).toBe(0);
    expect(parsePageSize("0.1GiB")).toBe(107_376_640);
    expect(parsePageSize("1.5GiB")).toBe(1.5 * GiB);
  });

  it("refuses bad sizes", () => {
    for (const bad of ["8 GX", "", "GiB", "-1GiB", "1e3", "8GiBs", "1..2G", null, true, {}, [], Infinity, NaN]) {
      expect(() => parseSize(bad), String(bad)).toThrow(UnitError);
    }
    expect(() => parseSize(-1)).toThrow(/negative/);
    expect(() => parseSize("2048TiB")).toThrow(/at most 1024 TiB/);
  });

  it("parses times", () => {
    expect(parseTime("90s")).toBe(90);
    expect(parseTime("2h")).toBe(7200);
    expect(parseTime("30m")).toBe(1800);
    expect(parseTime("30min")).toBe(1800);
    expect(parseTime("500ms")).toBe(0.5);
    expect(parseTime("1d")).toBe(86400);
    expect(parseTime("1h30m")).toBe(5400);
    expect(parseTime("1h 30m 15s")).toBe(5415);
    expect(parseTime("1.5s")).toBe(1.5);
    expect(parseTime(42)).toBe(42);
    expect(parseTime("42")).toBe(42);
    expect(parseTime(0)).toBe(0);
    for (const bad of ["", "1H", "1h30", "two hours", "1w", "-1s", null, Infinity]) {
      expect(() => parseTime(bad), String(bad)).toThrow(UnitError);
    }
  });

  it("parses rates", () => {
    expect(parseRate("20000/s")).toBe(20000);
    expect(parseRate("1200/min")).toBe(20);
    expect(parseRate("1200/m")).toBe(20);
    expect(parseRate("3600/h")).toBe(1);
    expect(parseRate(500)).toBe(500);
    expect(parseRate("500")).toBe(500);
    for (const bad of ["20000/week", "/s", "fast", "-5/s", null]) {
      expect(() => parseRate(bad), String(bad)).toThrow(UnitError);
    }
  });

  it("formats for messages, and times read back", () => {
    expect(formatBytes(8 * GiB)).toBe("8 GiB");
    expect(formatBytes(1.5 * GiB)).toBe("1.5 GiB");
    expect(formatBytes(4096)).toBe("4 KiB");
    expect(formatBytes(100)).toBe("100 B");
    expect(formatBytes(2 * TiB)).toBe("2 TiB");
    expect(formatSeconds(7200)).toBe("2h");
    expect(formatSeconds(5400)).toBe("1h30m");
    expect(formatSeconds(90)).toBe("1m30s");
    expect(formatSeconds(0.5)).toBe("500ms");
    expect(formatSeconds(0)).toBe("0s");
    expect(formatSeconds(86400 + 1)).toBe("1d1s");
    expect(formatRate(20000)).toBe("20000/s");
    for (const s of [0, 0.5, 1, 59, 61, 3599, 3600, 5400.25, 86400 * 3 + 7]) expect(parseTime(formatSeconds(s))).toBe(s);
    for (const b of [4096, MiB, 3 * GiB, 1.5 * GiB, TiB]) expect(parseSize(formatBytes(b))).toBe(b);
  });
});

describe("defaults", () => {
  const s = load(`${HOST}vms:\n  - { name: a, memory: 8GiB }\n`);

  it("fills the top level and host", () => {
    expect(s.name).toBe("scenario");
    expect(s.seed).toBe(1);
    expect(s.duration).toBe(3600);
    expect(s.tick).toBe(1);
    expect(s.sampleEvery).toBe(20);
    expect(s.host.memory).toBe(16 * GiB);
    expect(s.host.cpu).toEqual({ cores: 16, ghz: 2.6 });
    expect(s.host.policy).toBe("esxi");
    expect(s.host.hypervisorReserve).toBe(Math.ceil((GiB + (16 * GiB) / 100) / 4096) * 4096);
    for (const [k, d] of Object.entries(HOST_SETTINGS)) expect(s.host.settings[k as keyof typeof HOST_SETTINGS]).toBe(d.default);
    for (const [k, d] of Object.entries(KSM_KNOBS)) expect(s.host.ksm[k as keyof typeof KSM_KNOBS]).toBe(d.default);
    expect(s.events).toEqual([]);
  });

  it("fills a VM", () => {
    expect(s.vms).toHaveLength(1);
    const vm = s.vms[0];
    expect(vm).toEqual({
      name: "a",
      group: "a",
      memory: 8 * GiB,
      reservation: 0,
      limit: null,
      shares: "normal",
      overhead: 24 * MiB + 64 * MiB,
      guest: { os: "linux", balloonDriver: true, pageFile: 8 * GiB, bootTime: 30 },
      image: "a",
      content: { zero: 0.05, image: 0.15, duplicate: 0.02, duplicateCopies: 4 },
      powerOn: 0,
      workload: [{ at: 0, active: 2 * GiB, touchRate: 2000, pattern: { kind: "zipf", s: 0.9 }, writeRatio: 0.2 }],
      settings: { "sched.mem.maxmemctl": -1, "sched.mem.pshare.enable": 1, "sched.mem.pshare.salt": -1 },
    });
  });

  it("uses windows defaults for windows guests, and the source name for the scenario", () => {
    const w = parseScenarioText(`${HOST}vms:\n  - { name: w, memory: 4GiB, guest: { os: windows }, content: { zero: 0.3 } }\n`, "dir/my-test.yaml");
    expect(w.name).toBe("my-test");
    expect(w.vms[0].guest.bootTime).toBe(60);
    expect(w.vms[0].content).toEqual({ zero: 0.3, image: 0.2, duplicate: 0.02, duplicateCopies: 4 });
  });

  it("rounds sizes up to pages and clamps a limit to memory", () => {
    const r = load(`${HOST}vms:\n  - { name: a, memory: 1000001, reservation: 1, limit: 64GiB, overhead: 10 }\n`);
    const vm = r.vms[0];
    expect(vm.memory).toBe(245 * 4096);
    expect(vm.reservation).toBe(4096);
    expect(vm.limit).toBe(vm.memory);
    expect(vm.overhead).toBe(4096);
    expect(load(`${HOST}vms:\n  - { name: a, memory: 1GiB, limit: unlimited }\n`).vms[0].limit).toBeNull();
    expect(load(`${HOST}vms:\n  - { name: a, memory: 1GiB, limit: null }\n`).vms[0].limit).toBeNull();
  });

  it("powerOn off and null stay off", () => {
    const r = load(`${HOST}vms:\n  - { name: a, memory: 1GiB, powerOn: off }\n  - { name: b, memory: 1GiB, powerOn: null }\n  - { name: c, memory: 1GiB, powerOn: 5m }\n`);
    expect(r.vms.map((v) => v.powerOn)).toEqual([null, null, 300]);
  });

  it("accepts settings with units and shares as a number", () => {
    const r = load(
      `host: { memory: 16GiB, settings: { Mem.IdleTax: 0, Mem.IdleTaxType: 0 }, ksm: { pages_to_scan: 1000 } }\n` +
        `vms:\n  - { name: a, memory: 8GiB, shares: 4000, settings: { sched.mem.maxmemctl: 4GiB, sched.mem.pshare.salt: 7 } }\n`,
    );
    expect(r.host.settings["Mem.IdleTax"]).toBe(0);
    expect(r.host.settings["Mem.IdleTaxType"]).toBe(0);
    expect(r.host.settings["Mem.CtlMaxPercent"]).toBe(65);
    expect(r.host.ksm.pages_to_scan).toBe(1000);
    expect(r.vms[0].shares).toBe(4000);
    expect(r.vms[0].settings).toEqual({ "sched.mem.maxmemctl": 4 * GiB, "sched.mem.pshare.enable": 1, "sched.mem.pshare.salt": 7 });
  });

  it("parses every pattern form", () => {
    const phases = [
      ["uniform", { kind: "uniform" }],
      ["zipf(1.2)", { kind: "zipf", s: 1.2 }],
      ['"hotcold(0.1, 0.9)"', { kind: "hotcold", hot: 0.1, hotShare: 0.9 }],
      ["{ zipf: 0.5 }", { kind: "zipf", s: 0.5 }],
      ["{ uniform: true }", { kind: "uniform" }],
      ["{ hotcold: [0.2, 0.8] }", { kind: "hotcold", hot: 0.2, hotShare: 0.8 }],
      ["{ hotcold: { hot: 0.3, hotShare: 0.7 } }", { kind: "hotcold", hot: 0.3, hotShare: 0.7 }],
    ] as const;
    for (const [text, want] of phases) {
      const r = load(`${HOST}vms:\n  - { name: a, memory: 1GiB, workload: [ { at: 0, pattern: ${text} } ] }\n`);
      expect(r.vms[0].workload[0].pattern, text).toEqual(want);
    }
  });
});

describe("count expansion and names", () => {
  const s = load(
    `${HOST}vms:\n  - { name: web, count: 6, memory: 1GiB }\n  - { name: db, count: 1, memory: 2GiB }\n  - { name: x, memory: 1GiB, image: web }\n`,
  );

  it("expands name-1 … name-n, keeps the name for count 1", () => {
    expect(s.vms.map((v) => v.name)).toEqual(["web-1", "web-2", "web-3", "web-4", "web-5", "web-6", "db", "x"]);
    expect(s.vms.map((v) => v.group)).toEqual(["web", "web", "web", "web", "web", "web", "db", "x"]);
  });

  it("images default to the group name", () => {
    expect(s.vms.map((v) => v.image)).toEqual(["web", "web", "web", "web", "web", "web", "db", "web"]);
  });

  it("clones do not share objects", () => {
    s.vms[0].workload[0].active = 1;
    s.vms[0].settings["sched.mem.pshare.salt"] = 3;
    expect(s.vms[1].workload[0].active).not.toBe(1);
    expect(s.vms[1].settings["sched.mem.pshare.salt"]).toBe(-1);
  });
});

describe("workload phases inherit", () => {
  const s = load(
    `${HOST}duration: 2h\nvms:\n  - name: a\n    memory: 8GiB\n    workload:\n` +
      `      - { active: 1GiB, touchRate: 100/s, pattern: uniform }\n` +
      `      - { at: 10m, active: 2GiB }\n` +
      `      - { at: 20m, writeRatio: 0.9, touchRate: 60/min }\n` +
      `events:\n` +
      `  - { at: 15m, vm: a, workload: { touchRate: 300/s } }\n` +
      `  - { at: 20m, vm: a, workload: { pattern: zipf(2) } }\n` +
      `  - { at: 1h, vm: a, workload: { active: 3GiB } }\n`,
  );

  it("later phases inherit from the previous phase, the first from the defaults", () => {
    expect(s.vms[0].workload).toEqual([
      { at: 0, active: GiB, touchRate: 100, pattern: { kind: "uniform" }, writeRatio: 0.2 },
      { at: 600, active: 2 * GiB, touchRate: 100, pattern: { kind: "uniform" }, writeRatio: 0.2 },
      { at: 1200, active: 2 * GiB, touchRate: 1, pattern: { kind: "uniform" }, writeRatio: 0.9 },
    ]);
  });

  it("workload events inherit from what is in effect just before (own phase first at equal times)", () => {
    expect(s.events).toEqual([
      { at: 900, kind: "workload", vms: ["a"], phase: { active: 2 * GiB, touchRate: 300, pattern: { kind: "uniform" }, writeRatio: 0.2 } },
      { at: 1200, kind: "workload", vms: ["a"], phase: { active: 2 * GiB, touchRate: 1, pattern: { kind: "zipf", s: 2 }, writeRatio: 0.9 } },
      { at: 3600, kind: "workload", vms: ["a"], phase: { active: 3 * GiB, touchRate: 1, pattern: { kind: "zipf", s: 2 }, writeRatio: 0.9 } },
    ]);
  });
});

describe("events", () => {
  const s = load(
    `${HOST}duration: 2h\nvms:\n` +
      `  - { name: web, count: 3, memory: 1GiB, powerOn: off }\n` +
      `  - { name: db, memory: 4GiB, workload: [ { touchRate: 10/s } ] }\n` +
      `events:\n` +
      `  - { at: 0s, powerOn: [web-3, web, db] }\n` +
      `  - { at: 30m, powerOff: web-2 }\n` +
      `  - { at: 40m, set: { Mem.IdleTax: 0 }, ksm: { run: 0 } }\n` +
      `  - { at: 50m, vm: [web, db], reservation: 512MiB, limit: 2GiB, shares: high, settings: { sched.mem.pshare.enable: 0 } }\n` +
      `  - { at: 1h, vm: [web-1, db], workload: { active: 1GiB } }\n` +
      `  - { at: 1h, vm: db, limit: unlimited }\n`,
  );

  it("normalizes each kind, expanding groups and removing duplicates", () => {
    expect(s.events[0]).toEqual({ at: 0, kind: "powerOn", vms: ["web-3", "web-1", "web-2", "db"] });
    expect(s.events[1]).toEqual({ at: 1800, kind: "powerOff", vms: ["web-2"] });
    expect(s.events[2]).toEqual({ at: 2400, kind: "setHost", settings: { "Mem.IdleTax": 0 }, ksm: { run: 0 } });
  });

  it("clamps a limit per VM and splits the event where VMs differ", () => {
    expect(s.events[3]).toEqual({
      at: 3000,
      kind: "setVm",
      vms: ["web-1", "web-2", "web-3"],
      reservation: 512 * MiB,
      limit: GiB,
      shares: "high",
      settings: { "sched.mem.pshare.enable": 0 },
    });
    expect(s.events[4]).toEqual({
      at: 3000,
      kind: "setVm",
      vms: ["db"],
      reservation: 512 * MiB,
      limit: 2 * GiB,
      shares: "high",
      settings: { "sched.mem.pshare.enable": 0 },
    });
    expect(s.events[5]).toEqual({ at: 3600, kind: "workload", vms: ["web-1"], phase: { active: GiB, touchRate: 2000, pattern: { kind: "zipf", s: 0.9 }, writeRatio: 0.2 } });
    expect(s.events[6]).toEqual({ at: 3600, kind: "workload", vms: ["db"], phase: { active: GiB, touchRate: 10, pattern: { kind: "zipf", s: 0.9 }, writeRatio: 0.2 } });
    expect(s.events[7]).toEqual({ at: 3600, kind: "setVm", vms: ["db"], limit: null });
    expect(s.events).toHaveLength(8);
  });

  it("a vm event with settings and workload gives two events", () => {
    const r = load(`${HOST}vms:\n  - { name: a, memory: 1GiB }\nevents:\n  - { at: 1m, vm: a, shares: low, workload: { writeRatio: 1 } }\n`);
    expect(r.events.map((e) => e.kind)).toEqual(["setVm", "workload"]);
  });

  it("equal times keep their order", () => {
    const r = load(`${HOST}vms:\n  - { name: a, memory: 1GiB }\nevents:\n  - { at: 1m, powerOff: a }\n  - { at: 1m, powerOn: a }\n`);
    expect(r.events.map((e) => e.kind)).toEqual(["powerOff", "powerOn"]);
  });
});

describe("validation rules", () => {
  const vm = (extra: string) => `${HOST}vms:\n  - { name: a, memory: 4GiB${extra} }\n`;

  it("reports the field and what is allowed", () => {
    const e = expectError(vm(", shares: medium"), "vms[0].shares", 'must be low, normal, high or a positive number (got "medium")');
    expect(e.message).toBe('vms[0].shares: must be low, normal, high or a positive number (got "medium")');
    expect(e.line).toBe(3);
    expect(e.column).toBe(30);
    const named = fails(vm(", shares: medium"), "s.yaml");
    expect(named.message).toBe('s.yaml:3:30: vms[0].shares: must be low, normal, high or a positive number (got "medium")');
  });

  it("sizes", () => {
    expectError(vm(", overhead: -1"), "vms[0].overhead", "must be a size");
    expectError(`host: { memory: 0 }\nvms:\n  - { name: a, memory: 1GiB }\n`, "host.memory", "must be a positive size");
    expectError(`host: { memory: 1 PB }\nvms:\n  - { name: a, memory: 1GiB }\n`, "host.memory", "must be a size");
    expectError(vm(", guest: { pageFile: lots }"), "vms[0].guest.pageFile", "must be a size");
  });

  it("reservation, limit", () => {
    expectError(vm(", reservation: 5GiB"), "vms[0].reservation", "must be <= memory (4 GiB)");
    expectError(vm(", reservation: 2GiB, limit: 1GiB"), "vms[0].limit", 'must be >= reservation (2 GiB) or "unlimited"');
    expectError(vm(", limit: none"), "vms[0].limit", 'must be "unlimited" or a size');
  });

  it("unknown keys name the key and the allowed keys", () => {
    const e = expectError(vm(", colour: red"), "vms[0].colour", 'unknown key "colour"');
    expect(e.detail).toContain("allowed keys: name, count, memory, reservation, limit, shares, overhead, powerOn, guest, image, content, settings, workload");
    expectError(`${HOST}vms:\n  - { name: a, memroy: 4GiB }\n`, "vms[0].memroy", 'did you mean "memory"');
  });

  it("content fractions", () => {
    expectError(vm(", content: { zero: 0.5, image: 0.5, duplicate: 0.1 }"), "vms[0].content", "zero + image + duplicate must be <= 1");
    expectError(vm(", content: { image: 2 }"), "vms[0].content.image", "must be >= 0 and <= 1");
    expectError(vm(", content: { duplicateCopies: 1 }"), "vms[0].content.duplicateCopies", ">= 2");
  });

  it("workload", () => {
    expectError(vm(", workload: [ { at: 1s } ]"), "vms[0].workload[0].at", "the first phase must start at 0");
    expectError(vm(", workload: [ { at: 0 }, { at: 0 } ]"), "vms[0].workload[1].at", "phases must be in time order");
    expectError(vm(", workload: [ { active: 4.5GiB } ]"), "vms[0].workload[0].active", "must be <= the memory of a (4 GiB)");
    expectError(vm(", workload: [ { writeRatio: -0.1 } ]"), "vms[0].workload[0].writeRatio", "must be >= 0 and <= 1");
    expectError(vm(", workload: [ { touchRate: fast } ]"), "vms[0].workload[0].touchRate", "must be a rate");
    expectError(vm(", workload: [ { pattern: zipf(0) } ]"), "vms[0].workload[0].pattern", "> 0");
    expectError(vm(", workload: [ { pattern: { zipf: -1 } } ]"), "vms[0].workload[0].pattern", "must be uniform, zipf(S)");
    expectError(vm(', workload: [ { pattern: "hotcold(0.5,1)" } ]'), "vms[0].workload[0].pattern", "0 < P < 1");
    expectError(vm(", workload: []"), "vms[0].workload", "at least 1 item");
  });

  it("time grid", () => {
    expectError(`${HOST}tick: 0\nvms:\n  - { name: a, memory: 1GiB }\n`, "tick", "must be > 0");
    expectError(`${HOST}duration: 0\nvms:\n  - { name: a, memory: 1GiB }\n`, "duration", "must be > 0");
    expectError(`${HOST}tick: 1m\nvms:\n  - { name: a, memory: 1GiB }\n`, "sampleEvery", "must be >= tick (1m)");
    expectError(`${HOST}tick: 3s\nsampleEvery: 20s\nvms:\n  - { name: a, memory: 1GiB }\n`, "sampleEvery", "must be a multiple of tick (3s)");
    expectError(`${HOST}tick: 2s\nsampleEvery: 20s\nduration: 61s\nvms:\n  - { name: a, memory: 1GiB }\n`, "duration", "must be a multiple of tick (2s)");
    const ok = load(`${HOST}tick: 100ms\nsampleEvery: 1.5s\nduration: 1h\nvms:\n  - { name: a, memory: 1GiB }\n`);
    expect([ok.tick, ok.sampleEvery]).toEqual([0.1, 1.5]);
  });

  it("seed", () => {
    expectError(`${HOST}seed: -1\nvms:\n  - { name: a, memory: 1GiB }\n`, "seed", ">= 0 and <= 4294967295");
    expectError(`${HOST}seed: 2.5\nvms:\n  - { name: a, memory: 1GiB }\n`, "seed", "must be an integer");
    expect(load(`${HOST}seed: 4294967295\nvms:\n  - { name: a, memory: 1GiB }\n`).seed).toBe(4294967295);
  });

  it("names", () => {
    expectError(`${HOST}vms:\n  - { name: a, count: 2, memory: 1GiB }\n  - { name: a-2, memory: 1GiB }\n`, "vms[1].name", '"a-2" is already used by vms[0]');
    expectError(`${HOST}vms:\n  - { name: a, memory: 1GiB }\n  - { name: a, memory: 1GiB }\n`, "vms[1].name", '"a" is already used');
    expectError(`${HOST}vms:\n  - { name: -a, memory: 1GiB }\n`, "vms[0].name", "letters, digits");
  });

  it("events", () => {
    const base = `${HOST}duration: 1h\nvms:\n  - { name: web, count: 2, memory: 1GiB }\nevents:\n`;
    expectError(`${base}  - { at: 2m, powerOn: web }\n  - { at: 1m, powerOn: web }\n`, "events[1].at", "before events[0] at 2m");
    expectError(`${base}  - { at: 2h, powerOn: web }\n`, "events[0].at", "must be within the duration (1h)");
    expectError(`${base}  - { at: 1m, powerOn: db }\n`, "events[0].powerOn", 'unknown VM or group "db"');
    expectError(`${base}  - { at: 1m, vm: [web-1, web-3], shares: low }\n`, "events[0].vm[1]", 'unknown VM or group "web-3"');
    expectError(`${base}  - { at: 1m, shares: low }\n`, "events[0].shares", 'needs "vm"');
    expectError(`${base}  - { at: 1m, set: { Mem.IdleTax: 0 }, powerOff: web }\n`, "events[0].powerOff", 'cannot be combined with "set"');
    expectError(`${base}  - { at: 1m, vm: web, limit: 1GiB, reservation: 2GiB }\n`, "events[0].reservation", "must be <= the memory of web-1");
    expectError(`${base}  - { powerOn: web }\n`, "events[0].at", "is required");
    expectError(`${base}  - { at: 1m, set: { Mem.IdleTax: 100 } }\n`, 'events[0].set["Mem.IdleTax"]', "must be >= 0 and <= 99 (got 100)");
    expectError(`${base}  - { at: 1m, ksm: { run: 3 } }\n`, "events[0].ksm.run", "must be >= 0 and <= 2 (got 3)");
    expectError(`${base}  - { at: 1m, vm: web, workload: { active: 2GiB } }\n`, "events[0].workload.active", "must be <= the memory of web-1 (1 GiB)");
  });

  it("guest memory budget states the arithmetic", () => {
    expect(MAX_GUEST_PAGES).toBe(402_653_184);
    const ok = load(`host: { memory: 1TiB }\nvms:\n  - { name: a, count: 3, memory: 512GiB }\n`);
    expect(ok.vms).toHaveLength(3);
    const e = expectError(`host: { memory: 1TiB }\nvms:\n  - { name: a, count: 3, memory: 512GiB }\n  - { name: b, memory: 4KiB }\n`, "vms", "over the engine budget");
    expect(e.detail).toContain("402653184");
    expect(e.detail).toContain("8 bytes per guest page");
    expect(e.detail).toContain("4 GiB wasm32");
  });
});

describe("documents", () => {
  it("YAML syntax errors give line and column", () => {
    const e = fails(`${HOST}vms:\n  - { name: a, memory: 1GiB\nevents: []\n`, "x.yaml");
    expect(e.field).toBe("");
    expect(e.detail).toMatch(/^YAML syntax error/);
    expect(e.line).toBeGreaterThan(1);
    expect(e.column).toBeGreaterThan(0);
    expect(e.message).toMatch(/^x\.yaml:\d+:\d+: YAML syntax error/);
  });

  it("empty and non-mapping documents", () => {
    for (const text of ["", "   \n", "# only a comment\n", "~\n", "null"]) expect(fails(text).detail, JSON.stringify(text)).toMatch(/empty/);
    expect(fails("[1, 2]").detail).toMatch(/top level must be a mapping .*got a list/);
    expect(fails("42").detail).toMatch(/top level must be a mapping .*got a number/);
    expect(() => normalizeScenario(undefined)).toThrow(ScenarioError);
    expect(() => normalizeScenario("host")).toThrow(/top level must be a mapping/);
  });

  it("reads JSON", () => {
    const s = parseScenarioText(JSON.stringify({ host: { memory: "16GiB" }, vms: [{ name: "a", memory: 2 ** 30 }] }));
    expect(s.vms[0].memory).toBe(GiB);
    const e = fails(`{\n  "host": { "memory": "16GiB" },\n  "vms": [ { "name": "a", "memory": "1GiB", "shares": "medium" } ]\n}\n`, "s.json");
    expect(e.field).toBe("vms[0].shares");
    expect(e.line).toBe(3);
  });

  it("normalizeScenario takes parsed data and does not modify it", () => {
    const input = { host: { memory: "16GiB" }, vms: [{ name: "a", count: 2, memory: "1GiB" }] };
    const copy = structuredClone(input);
    const s = normalizeScenario(input, { defaultName: "n" });
    expect(s.name).toBe("n");
    expect(s.vms).toHaveLength(2);
    expect(input).toEqual(copy);
    expect(() => normalizeScenario({ ...input, host: { memory: new Date() } })).toThrow(/plain data/);
  });

  it("refuses prototype keys and never pollutes prototypes", () => {
    const docs = [
      `__proto__: { polluted: yes }\n${HOST}vms:\n  - { name: a, memory: 1GiB }\n`,
      `${HOST}vms:\n  - { name: a, memory: 1GiB, settings: { __proto__: { polluted: 1 } } }\n`,
      `${HOST}vms:\n  - name: a\n    memory: 1GiB\n    constructor: { prototype: { polluted: 1 } }\n`,
      `{"__proto__": {"polluted": 1}, "host": {"memory": "1GiB"}, "vms": [{"name": "a", "memory": "1GiB"}]}`,
      `{"host": {"memory": "1GiB", "cpu": {"__proto__": {"polluted": 1}}}, "vms": [{"name": "a", "memory": "1GiB"}]}`,
      `x: &a { polluted: 1 }\n"__proto__": *a\n`,
      `prototype: 1\n`,
    ];
    for (const text of docs) {
      const e = fails(text);
      expect(e.detail, text).toMatch(/the key "(__proto__|constructor|prototype)" is not allowed/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => normalizeScenario(JSON.parse('{"__proto__": {"polluted": 1}}'))).toThrow(/__proto__/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses huge documents with a clear message", () => {
    const big = `${HOST}vms:\n  - { name: a, memory: 1GiB }\n#${"x".repeat(10 * 1024 * 1024)}\n`;
    expect(fails(big).detail).toMatch(/larger than the 10 MiB/);
    const multibyte = `${HOST}#${"é".repeat(5.5 * 1024 * 1024)}\n`;
    expect(fails(multibyte).detail).toMatch(/larger than the 10 MiB/);
    expectError(`host: { memory: 1TiB }\nvms:\n  - { name: a, count: 4096, memory: 1MiB }\n  - { name: b, memory: 1MiB }\n`, "vms", "4097 VMs after count expansion; at most 4096");
    const phases = Array.from({ length: 1001 }, (_, i) => ({ at: i }));
    expectError(JSON.stringify({ host: { memory: "16GiB" }, duration: "1h", vms: [{ name: "a", memory: "1GiB", workload: phases }] }), "vms[0].workload", "1001 phases; at most 1000");
    const events = Array.from({ length: 100_001 }, () => ({ at: 0, powerOn: "a" }));
    expectError(JSON.stringify({ host: { memory: "16GiB" }, vms: [{ name: "a", memory: "1GiB" }], events }), "events", "100001 events; at most 100000");
    const aliases = `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    expect(fails(aliases).detail).toMatch(/alias/i);
  });

  it("accepts the largest allowed document shapes", () => {
    const phases = Array.from({ length: 1000 }, (_, i) => ({ at: i }));
    const s = parseScenarioText(JSON.stringify({ host: { memory: "16GiB" }, duration: "1h", vms: [{ name: "a", memory: "1GiB", workload: phases }] }));
    expect(s.vms[0].workload).toHaveLength(1000);
    const events = Array.from({ length: 100_000 }, (_, i) => ({ at: i % 3600 === 0 ? 0 : 0, powerOn: "a" }));
    expect(parseScenarioText(JSON.stringify({ host: { memory: "16GiB" }, vms: [{ name: "a", memory: "1GiB" }], events })).events).toHaveLength(100_000);
  });
});

describe("bad scenario corpus (test/fixtures/bad)", () => {
  const dir = join(root, "test/fixtures/bad");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
  it("has fixtures", () => expect(files.length).toBeGreaterThan(40));
  for (const f of files) {
    it(f, () => {
      const text = readFileSync(join(dir, f), "utf8");
      const first = /^# expect: (.*)$/.exec(text.split("\n")[0]);
      expect(first, `${f}: first line must be "# expect: <field path>"`).not.toBeNull();
      const want = first![1].trim() === "<document>" ? "" : first![1].trim();
      const message = /^# message: (.*)$/m.exec(text)?.[1].trim();
      const e = fails(text, f);
      expect(e.field).toBe(want);
      if (message) expect(e.message).toContain(message);
      expect(e.message.startsWith(`${f}:`)).toBe(true);
    });
  }
});

describe("default scenario and examples", () => {
  it("scenarios/default.yaml equals DEFAULT_SCENARIO_YAML", () => {
    expect(read("scenarios/default.yaml")).toBe(DEFAULT_SCENARIO_YAML);
  });

  it("the default scenario is a 64 GiB host overcommitted about 1.5x by a dozen VMs", () => {
    const s = parseScenarioText(DEFAULT_SCENARIO_YAML, "default.yaml");
    expect(s.host.memory).toBe(64 * GiB);
    expect(s.vms).toHaveLength(12);
    const configured = s.vms.reduce((a, v) => a + v.memory, 0);
    expect(configured / s.host.memory).toBeGreaterThanOrEqual(1.4);
    expect(configured / s.host.memory).toBeLessThanOrEqual(1.6);
    expect(new Set(s.vms.map((v) => v.guest.os))).toEqual(new Set(["linux", "windows"]));
    expect(s.duration).toBe(7200);
    expect([s.tick, s.sampleEvery]).toEqual([1, 20]);
    // total touch rate in the simulator's speed budget at every moment
    for (const t of [0, 1800, 3600, 7200]) {
      let total = 0;
      for (const vm of s.vms) {
        const on = vm.powerOn !== null ? vm.powerOn <= t : s.events.some((e) => e.kind === "powerOn" && e.at <= t && e.vms.includes(vm.name));
        if (!on) continue;
        const phase = [...vm.workload].reverse().find((p) => p.at <= t)!;
        total += phase.touchRate;
        expect(phase.active / vm.memory).toBeGreaterThanOrEqual(0.2);
        expect(phase.active / vm.memory).toBeLessThanOrEqual(0.6);
      }
      expect(total, `t=${t}`).toBeGreaterThanOrEqual(25_000);
      expect(total, `t=${t}`).toBeLessThanOrEqual(35_000);
    }
    expect(s.events.some((e) => e.kind === "powerOn" && e.at === 1800)).toBe(true);
    expect(s.events.some((e) => e.kind === "setHost" && e.at === 3600 && "Mem.IdleTax" in e.settings)).toBe(true);
  });

  const examples = readdirSync(join(root, "examples")).filter((f) => /\.ya?ml$/.test(f)).sort();
  it("has the four examples", () => {
    for (const f of ["web-farm.yaml", "windows-vdi.yaml", "idle-tax.yaml", "ksm.yaml"]) expect(examples).toContain(f);
  });
  for (const f of examples) {
    it(`examples/${f} loads`, () => {
      const s = parseScenarioText(read(`examples/${f}`), `examples/${f}`);
      expect(s.vms.length).toBeGreaterThan(0);
    });
  }

  it("idle-tax has the W02 Fig. 7 shape", () => {
    const s = parseScenarioText(read("examples/idle-tax.yaml"));
    expect(s.vms.map((v) => v.memory)).toEqual([256 * MiB, 256 * MiB]);
    expect(s.vms[0].shares).toBe(s.vms[1].shares);
    expect(s.host.settings["Mem.IdleTaxType"]).toBe(0);
    expect(s.host.settings["Mem.IdleTax"]).toBe(0);
    expect(s.events).toEqual([{ at: s.duration / 2, kind: "setHost", settings: { "Mem.IdleTax": 75 }, ksm: {} }]);
    expect(s.host.memory - s.host.hypervisorReserve).toBeLessThan(2 * 256 * MiB);
  });

  it("ksm example uses policy ksm", () => {
    expect(parseScenarioText(read("examples/ksm.yaml")).host.policy).toBe("ksm");
  });

  it("the example in docs/scenarios.md loads", () => {
    const doc = read("docs/scenarios.md");
    const block = /```yaml\n(name: example[\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    const s = parseScenarioText(block![1]);
    expect(s.vms).toHaveLength(6);
    expect(s.vms[0].settings["sched.mem.maxmemctl"]).toBe(4 * GiB);
  });
});

describe("JSON Schema", () => {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, allErrors: true });
  const validate = ajv.compile(scenarioJsonSchema as unknown as object);
  const check = (data: unknown, name: string) => {
    const ok = validate(data);
    expect(ok, `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  };

  it("compiles in strict mode and accepts the default scenario and examples", () => {
    check(parseYaml(DEFAULT_SCENARIO_YAML), "default");
    for (const f of readdirSync(join(root, "examples")).filter((x) => /\.ya?ml$/.test(x))) check(parseYaml(read(`examples/${f}`)), f);
  });

  it("rejects what the loader rejects structurally", () => {
    expect(validate({ host: { memory: "1GiB" }, vms: [{ name: "a", memory: "1GiB", shares: "medium" }] })).toBe(false);
    expect(validate({ host: { memory: "1GiB" }, vms: [{ name: "a", memory: "1GiB", extra: 1 }] })).toBe(false);
    expect(validate({ host: { memory: "1GiB", settings: { "Mem.IdleTax": 100 } }, vms: [{ name: "a", memory: "1GiB" }] })).toBe(false);
  });

  it("names every setting with its range, and forbids unknown keys everywhere", () => {
    const defs = scenarioJsonSchema.definitions as unknown as Record<string, { properties: Record<string, Record<string, unknown>> }>;
    for (const [table, def] of [
      [HOST_SETTINGS, "hostSettings"],
      [KSM_KNOBS, "ksmKnobs"],
      [VM_SETTINGS, "vmSettings"],
    ] as const) {
      const props = defs[def].properties;
      expect(Object.keys(props).sort()).toEqual(Object.keys(table).sort());
      for (const [name, d] of Object.entries(table as Record<string, SettingDef>)) {
        if (name === "sched.mem.maxmemctl") continue; // a size or -1, see definitions.maxmemctl
        const type = [d.default, d.min, d.max].every(Number.isInteger) ? "integer" : "number";
        expect(props[name]).toMatchObject({ type, minimum: d.min, maximum: d.max, default: d.default });
        expect(typeof props[name].description).toBe("string");
      }
    }
    const objects: Record<string, unknown>[] = [];
    const walk = (node: unknown) => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === "object") {
        const o = node as Record<string, unknown>;
        if (o.type === "object") objects.push(o);
        Object.values(o).forEach(walk);
      }
    };
    walk(scenarioJsonSchema);
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) expect(o.additionalProperties).toBe(false);
  });
});

describe("docs and browser safety", () => {
  function lim(n: number): string {
    if (n === 2 ** 31 - 1) return "2^31-1";
    if (n >= 2 ** 20 && Number.isInteger(Math.log2(n))) return `2^${Math.log2(n)}`;
    return String(n);
  }
  function settingsTable(table: Record<string, SettingDef>): string {
    const rows = ["| setting | default | range | unit | meaning |", "|---|---|---|---|---|"];
    for (const [name, d] of Object.entries(table)) {
      rows.push(`| \`${name}\` | ${d.default} | ${lim(d.min)} … ${lim(d.max)} | ${d.unit} | ${d.doc}${d.pending ? " (accepted, not modelled yet)" : ""} |`);
    }
    return rows.join("\n");
  }

  it("docs/scenarios.md settings tables match settings.ts (paste the expected text on failure)", () => {
    const doc = read("docs/scenarios.md");
    for (const [tag, table] of [
      ["host", HOST_SETTINGS],
      ["vm", VM_SETTINGS],
      ["ksm", KSM_KNOBS],
    ] as const) {
      const m = new RegExp(`<!-- settings:${tag} -->\\n([\\s\\S]*?)\\n<!-- /settings:${tag} -->`).exec(doc);
      expect(m, `markers for ${tag}`).not.toBeNull();
      const want = settingsTable(table);
      expect(m![1], `settings.ts changed: replace the ${tag} table in docs/scenarios.md with:\n${want}\n`).toBe(want);
    }
  });

  it("src/scenario imports nothing from Node", () => {
    const dir = join(root, "src/scenario");
    for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts"))) {
      const text = readFileSync(join(dir, f), "utf8");
      expect(text, f).not.toMatch(/from\s+["']node:/);
      expect(text, f).not.toMatch(/from\s+["'](fs|path|os|url|crypto|child_process)["']/);
      expect(text, f).not.toMatch(/\brequire\(/);
    }
  });
});
