// fast-check generators of random scenarios, shared by test/properties.test.ts (a few dozen small
// ones per test run) and scripts/fuzz-scenarios.ts (10,000). A generated value is the scenario as a
// user writes it (sizes and times with units), valid by construction: cross-field rules
// (reservation <= memory, limit >= reservation, events in time order, names that exist, free-memory
// thresholds that fall) are met by drawing fractions and materializing them in order, so shrinking
// the fractions keeps the scenario valid. Every setting is drawn from its range in
// src/scenario/settings.ts, so settings added there are covered without touching this file.
import fc from "fast-check";
import { stringify } from "yaml";
import { HOST_SETTINGS, KSM_KNOBS, type SettingDef } from "../src/scenario/settings.js";

/** How big the generated scenarios get. */
export interface ScenarioSize {
  maxVms: number;
  /** largest `count` of a VM group */
  maxCount: number;
  maxTicks: number;
  /** host memory, MiB */
  minHostMiB: number;
  maxHostMiB: number;
  /** one VM's memory, MiB */
  maxVmMiB: number;
  maxPhases: number;
  maxEvents: number;
  maxTouchRate: number;
}

/** Small: the property test (about 100 ms a scenario with --check). */
export const SMALL: ScenarioSize = {
  maxVms: 4,
  maxCount: 3,
  maxTicks: 40,
  minHostMiB: 48,
  maxHostMiB: 512,
  maxVmMiB: 160,
  maxPhases: 3,
  maxEvents: 6,
  maxTouchRate: 30_000,
};

/** A little larger: the 10,000-scenario script. */
export const MEDIUM: ScenarioSize = {
  maxVms: 5,
  maxCount: 3,
  maxTicks: 60,
  minHostMiB: 48,
  maxHostMiB: 1024,
  maxVmMiB: 192,
  maxPhases: 4,
  maxEvents: 10,
  maxTouchRate: 50_000,
};

/** The scenario as written in a file: YAML/JSON-ready plain data. */
export type ScenarioInput = Record<string, unknown>;

/** YAML of a generated scenario, as printed for a failing (shrunk) case. */
export function toYaml(input: ScenarioInput): string {
  return stringify(input, { lineWidth: 0, flowCollectionPadding: true });
}

const MiB = 2 ** 20;
const frac = () => fc.double({ min: 0, max: 1, noNaN: true, noDefaultInfinity: true });

/** A size as users write it: MiB, KiB or plain bytes (the loader rounds up to 4 KiB pages). */
function sizeText(bytes: number, style: number): string | number {
  const b = Math.max(0, Math.round(bytes));
  if (style === 0 && b % MiB === 0) return `${b / MiB}MiB`;
  if (style === 1) return b;
  return `${Math.ceil(b / 1024)}KiB`;
}

/** A time as users write it, milliseconds resolution. */
function timeText(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

// ---- settings ---------------------------------------------------------------------------------

/**
 * A value of one setting: its default, a small value near the bottom of its range, or anywhere in
 * it (wide ranges such as latencies in us or pages/s would otherwise almost never be small).
 */
function settingValue(def: SettingDef): fc.Arbitrary<number> {
  const lo = Math.ceil(def.min);
  const hi = Math.floor(def.max);
  const near = Math.min(hi, lo + 64);
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(def.default) },
    { weight: 3, arbitrary: fc.integer({ min: lo, max: near }) },
    { weight: 2, arbitrary: fc.integer({ min: lo, max: Math.min(hi, Number.MAX_SAFE_INTEGER) }) },
  );
}

/** The free-memory state thresholds: five values that fall strictly (the scheduler requires it). */
const STATE_THRESHOLDS = ["Vmemsim.StateHighPct", "Vmemsim.StateClearPct", "Vmemsim.StateSoftPct", "Vmemsim.StateHardPct", "Vmemsim.StateBlockPct"];

function thresholdsArb(): fc.Arbitrary<Record<string, number>> {
  const defs = STATE_THRESHOLDS.map((n) => (HOST_SETTINGS as Record<string, SettingDef>)[n]);
  if (defs.some((d) => d === undefined)) return fc.constant({});
  return fc.uniqueArray(fc.integer({ min: 1, max: 800 }), { minLength: 5, maxLength: 5 }).map((vals) => {
    const sorted = [...vals].sort((a, b) => b - a);
    const out: Record<string, number> = {};
    STATE_THRESHOLDS.forEach((n, i) => {
      const d = defs[i];
      out[n] = Math.min(d.max, Math.max(d.min, sorted[i]));
    });
    // clamping to a range can make two equal: keep the defaults then
    const v = STATE_THRESHOLDS.map((n) => out[n]);
    return v.every((x, i) => i === 0 || x < v[i - 1]) ? out : {};
  });
}

/** A few settings of `table` (names from `names`), each drawn from its range. */
function someSettings(table: Record<string, SettingDef>, names: string[], maxLength: number): fc.Arbitrary<Record<string, number>> {
  if (names.length === 0) return fc.constant({});
  const one = fc.oneof(...names.map((n) => settingValue(table[n]).map((v) => [n, v] as const)));
  return fc.array(one, { maxLength }).map((pairs) => Object.fromEntries(pairs));
}

/**
 * Host settings. `consistent`: the free-memory thresholds, when given, fall strictly (a scenario
 * whose own thresholds do not is refused before it runs); `any`: thresholds too, in any order
 * (a setHost event with thresholds that do not fall is refused with an event record).
 */
function hostSettingsArb(thresholds: "consistent" | "any", maxLength: number): fc.Arbitrary<Record<string, number>> {
  const table = HOST_SETTINGS as Record<string, SettingDef>;
  if (thresholds === "any") return someSettings(table, Object.keys(table), maxLength);
  const rest = someSettings(table, Object.keys(table).filter((n) => !STATE_THRESHOLDS.includes(n)), maxLength);
  return fc.tuple(rest, fc.option(thresholdsArb(), { nil: undefined, freq: 4 })).map(([r, t]) => ({ ...r, ...(t ?? {}) }));
}

function ksmKnobsArb(maxLength: number): fc.Arbitrary<Record<string, number>> {
  const table = KSM_KNOBS as Record<string, SettingDef>;
  return someSettings(table, Object.keys(table), maxLength);
}

// ---- the scenario model ------------------------------------------------------------------------

const patternArb = fc.oneof(
  fc.constant("uniform"),
  fc.double({ min: 0.05, max: 3, noNaN: true }).map((s) => `zipf(${Math.round(s * 100) / 100})`),
  fc.tuple(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 99 })).map(([h, p]) => ({ hotcold: [h / 100, p / 100] })),
);

interface PhaseModel {
  at: number;
  active: number;
  touchRate: number | undefined;
  pattern: string | object | undefined;
  writeRatio: number | undefined;
}

function phaseArb(size: ScenarioSize): fc.Arbitrary<PhaseModel> {
  return fc.record({
    at: frac(),
    active: frac(),
    touchRate: fc.option(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: size.maxTouchRate })), { nil: undefined }),
    pattern: fc.option(patternArb, { nil: undefined }),
    writeRatio: fc.option(fc.oneof(fc.constantFrom(0, 1), frac()), { nil: undefined }),
  });
}

interface VmModel {
  count: number;
  /** memory, 4 KiB pages */
  pages: number;
  sizeStyle: number;
  os: "linux" | "windows";
  balloonDriver: boolean | undefined;
  pageFile: number | undefined;
  bootTime: number | undefined;
  image: number | undefined;
  content: { zero: number; image: number; duplicate: number; copies: number } | undefined;
  reservation: number | undefined;
  limit: number | null | undefined;
  shares: string | number | undefined;
  overheadMiB: number | undefined;
  powerOn: number | "off" | undefined;
  phases: PhaseModel[];
  maxmemctl: number | undefined;
  pshareEnable: number | undefined;
  salt: number | undefined;
}

function vmArb(size: ScenarioSize): fc.Arbitrary<VmModel> {
  const maxPages = size.maxVmMiB * 256;
  return fc.record({
    count: fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: size.maxCount }) }),
    // whole 2 MiB regions, or any page count (a partial last large-page region)
    pages: fc.oneof(fc.integer({ min: 1, max: maxPages / 512 }).map((r) => r * 512), fc.integer({ min: 1, max: maxPages })),
    sizeStyle: fc.integer({ min: 0, max: 2 }),
    os: fc.constantFrom("linux" as const, "windows" as const),
    balloonDriver: fc.option(fc.boolean(), { nil: undefined }),
    pageFile: fc.option(fc.double({ min: 0, max: 2, noNaN: true }), { nil: undefined }),
    bootTime: fc.option(frac(), { nil: undefined }),
    image: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
    content: fc.option(
      fc.record({ zero: frac(), image: frac(), duplicate: frac(), copies: fc.integer({ min: 2, max: 16 }) }),
      { nil: undefined },
    ),
    reservation: fc.option(frac(), { nil: undefined }),
    limit: fc.option(fc.oneof(fc.constant(null), frac()), { nil: undefined }),
    shares: fc.option(fc.oneof(fc.constantFrom("low", "normal", "high"), fc.integer({ min: 1, max: 100_000 })), { nil: undefined }),
    overheadMiB: fc.option(fc.integer({ min: 0, max: 24 }), { nil: undefined }),
    powerOn: fc.option(fc.oneof(fc.constant("off" as const), frac()), { nil: undefined }),
    phases: fc.array(phaseArb(size), { minLength: 1, maxLength: size.maxPhases }),
    maxmemctl: fc.option(fc.oneof(fc.constant(-1), fc.double({ min: 0, max: 1.5, noNaN: true })), { nil: undefined }),
    pshareEnable: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
    salt: fc.option(fc.integer({ min: -1, max: 3 }), { nil: undefined }),
  });
}

type EventModel =
  | { at: number; kind: "powerOn" | "powerOff"; vm: number; member: number }
  | { at: number; kind: "set"; settings: Record<string, number> }
  | { at: number; kind: "ksm"; knobs: Record<string, number> }
  | { at: number; kind: "vm"; vm: number; member: number; reservation?: number; limit?: number | null; shares?: string | number; maxmemctl?: number; pshare?: number }
  | { at: number; kind: "workload"; vm: number; member: number; phase: PhaseModel };

function eventArb(size: ScenarioSize): fc.Arbitrary<EventModel> {
  const ref = { at: frac(), vm: fc.nat(), member: fc.nat() };
  return fc.oneof(
    fc.record({ ...ref, kind: fc.constantFrom("powerOn" as const, "powerOff" as const) }),
    // host settings mid-run, thresholds included in any order: an inconsistent set is refused with an event record
    fc.record({ at: frac(), kind: fc.constant("set" as const), settings: hostSettingsArb("any", 3).filter((s) => Object.keys(s).length > 0) }),
    fc.record({ at: frac(), kind: fc.constant("ksm" as const), knobs: ksmKnobsArb(3).filter((s) => Object.keys(s).length > 0) }),
    fc.record(
      {
        ...ref,
        kind: fc.constant("vm" as const),
        reservation: frac(),
        limit: fc.oneof(fc.constant(null), frac()),
        shares: fc.oneof(fc.constantFrom("low", "normal", "high"), fc.integer({ min: 1, max: 100_000 })),
        maxmemctl: fc.oneof(fc.constant(-1), fc.double({ min: 0, max: 1.5, noNaN: true })),
        pshare: fc.constantFrom(0, 1),
      },
      { requiredKeys: ["at", "vm", "member", "kind"] },
    ).filter((e) => Object.keys(e).length > 4),
    fc.record({ ...ref, kind: fc.constant("workload" as const), phase: phaseArb(size) }),
  );
}

interface ScenarioModel {
  seed: number;
  tick: number;
  ticks: number;
  sampleTicks: number;
  hostMiB: number;
  reserveMiB: number;
  policy: "esxi" | "ksm" | undefined;
  cpu: { cores: number; ghz: number } | undefined;
  settings: Record<string, number>;
  ksm: Record<string, number>;
  vms: VmModel[];
  events: EventModel[];
}

function modelArb(size: ScenarioSize): fc.Arbitrary<ScenarioModel> {
  return fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    tick: fc.constantFrom(1, 0.5, 2),
    ticks: fc.integer({ min: 1, max: size.maxTicks }),
    sampleTicks: fc.integer({ min: 1, max: 5 }),
    hostMiB: fc.integer({ min: size.minHostMiB, max: size.maxHostMiB }),
    reserveMiB: fc.integer({ min: 0, max: 48 }),
    policy: fc.option(fc.constantFrom("esxi" as const, "ksm" as const), { nil: undefined }),
    cpu: fc.option(fc.record({ cores: fc.integer({ min: 1, max: 64 }), ghz: fc.constantFrom(1, 2.6, 3.5) }), { nil: undefined }),
    settings: hostSettingsArb("consistent", 8),
    ksm: ksmKnobsArb(4),
    vms: fc.array(vmArb(size), { minLength: 1, maxLength: size.maxVms }),
    events: fc.array(eventArb(size), { maxLength: size.maxEvents }),
  });
}

// ---- model → scenario input --------------------------------------------------------------------

function phaseInput(p: PhaseModel, memory: number, style: number): Record<string, unknown> {
  const out: Record<string, unknown> = { active: sizeText(Math.floor((p.active * memory) / 4096) * 4096, style) };
  if (p.touchRate !== undefined) out.touchRate = p.touchRate % 3 === 0 ? p.touchRate : `${p.touchRate}/s`;
  if (p.pattern !== undefined) out.pattern = p.pattern;
  if (p.writeRatio !== undefined) out.writeRatio = p.writeRatio;
  return out;
}

/** The scenario a model stands for, valid by construction. */
export function materialize(m: ScenarioModel): ScenarioInput {
  const duration = m.tick * m.ticks;
  const hostMemory = m.hostMiB * MiB;
  const reserve = Math.min(m.reserveMiB, m.hostMiB - 8) * MiB;
  const input: ScenarioInput = {
    name: "generated",
    seed: m.seed,
    duration: timeText(duration),
    tick: timeText(m.tick),
    sampleEvery: timeText(m.tick * Math.min(m.sampleTicks, m.ticks)),
  };
  const host: Record<string, unknown> = { memory: `${m.hostMiB}MiB`, hypervisorReserve: sizeText(reserve, 0) };
  if (m.policy) host.policy = m.policy;
  if (m.cpu) host.cpu = m.cpu;
  if (Object.keys(m.settings).length) host.settings = m.settings;
  if (Object.keys(m.ksm).length) host.ksm = m.ksm;
  input.host = host;
  if (hostMemory - reserve <= 0) throw new Error("generator: no memory left for VMs");

  // VMs: names v0, v1 … (a group g2 with count 3 gives g2-1 … g2-3)
  interface Vm {
    memory: number;
    reservation: number;
    limit: number | null;
  }
  const members: Vm[][] = [];
  const names: string[] = [];
  const vms = m.vms.map((v, i) => {
    const memory = v.pages * 4096;
    const name = v.count > 1 ? `g${i}` : `v${i}`;
    names.push(name);
    const out: Record<string, unknown> = { name, memory: sizeText(memory, v.sizeStyle) };
    if (v.count > 1) out.count = v.count;
    const guest: Record<string, unknown> = { os: v.os };
    if (v.balloonDriver !== undefined) guest.balloonDriver = v.balloonDriver;
    if (v.pageFile !== undefined) guest.pageFile = sizeText(v.pageFile * memory, 2);
    if (v.bootTime !== undefined) guest.bootTime = timeText(Math.round(v.bootTime * duration * 1000) / 1000);
    out.guest = guest;
    if (v.image !== undefined) out.image = `img${v.image}`;
    if (v.content) {
      const c = v.content;
      const sum = c.zero + c.image + c.duplicate;
      const scale = sum > 1 ? 1 / sum : 1;
      const r = (x: number) => Math.floor(x * scale * 1000) / 1000;
      out.content = { zero: r(c.zero), image: r(c.image), duplicate: r(c.duplicate), duplicateCopies: c.copies };
    }
    const reservation = v.reservation !== undefined ? Math.floor((v.reservation * memory) / 4096) * 4096 : 0;
    if (v.reservation !== undefined) out.reservation = sizeText(reservation, 2);
    let limit: number | null = null;
    if (v.limit !== undefined) {
      if (v.limit === null) out.limit = "unlimited";
      else {
        limit = reservation + Math.floor((v.limit * (memory - reservation)) / 4096) * 4096;
        out.limit = sizeText(limit, 2);
      }
    }
    if (v.shares !== undefined) out.shares = v.shares;
    if (v.overheadMiB !== undefined) out.overhead = `${v.overheadMiB}MiB`;
    if (v.powerOn !== undefined) out.powerOn = v.powerOn === "off" ? "off" : timeText(Math.round(v.powerOn * duration * 1000) / 1000);
    const ats = v.phases.map((p) => Math.round(p.at * duration * 1000) / 1000);
    const phases: Record<string, unknown>[] = [];
    let last = -1;
    v.phases.forEach((p, j) => {
      const at = j === 0 ? 0 : ats[j];
      if (j > 0 && at <= last) return; // phases strictly in time order: drop the ones that are not
      last = at;
      phases.push({ at: timeText(at), ...phaseInput(p, memory, v.sizeStyle) });
    });
    out.workload = phases;
    const settings: Record<string, unknown> = {};
    if (v.maxmemctl !== undefined) settings["sched.mem.maxmemctl"] = v.maxmemctl < 0 ? -1 : sizeText(v.maxmemctl * memory, 2);
    if (v.pshareEnable !== undefined) settings["sched.mem.pshare.enable"] = v.pshareEnable;
    if (v.salt !== undefined) settings["sched.mem.pshare.salt"] = v.salt;
    if (Object.keys(settings).length) out.settings = settings;
    members.push(Array.from({ length: v.count }, () => ({ memory, reservation, limit: limit === null ? null : Math.min(limit, memory) })));
    return out;
  });
  input.vms = vms;

  // events in time order; each names one VM or one group
  const sorted = [...m.events].sort((a, b) => a.at - b.at);
  const events: Record<string, unknown>[] = [];
  for (const ev0 of sorted) {
    const e = ev0;
    const at = timeText(Math.round(e.at * duration * 1000) / 1000);
    if (e.kind === "set") {
      events.push({ at, set: e.settings });
      continue;
    }
    if (e.kind === "ksm") {
      events.push({ at, ksm: e.knobs });
      continue;
    }
    const i = e.vm % m.vms.length;
    const count = m.vms[i].count;
    const whole = count === 1 || e.member % (count + 1) === count;
    const ref = whole ? names[i] : `${names[i]}-${(e.member % (count + 1)) + 1}`;
    const targets = whole ? members[i] : [members[i][e.member % (count + 1)]];
    const memory = targets[0].memory;
    if (e.kind === "powerOn" || e.kind === "powerOff") {
      events.push({ at, [e.kind]: ref });
    } else if (e.kind === "workload") {
      events.push({ at, vm: ref, workload: phaseInput(e.phase, memory, 0) });
    } else {
      const e = ev0 as Extract<EventModel, { kind: "vm" }>;
      const ev: Record<string, unknown> = { at, vm: ref };
      if (e.shares !== undefined) ev.shares = e.shares;
      const settings: Record<string, unknown> = {};
      if (e.maxmemctl !== undefined) settings["sched.mem.maxmemctl"] = e.maxmemctl < 0 ? -1 : sizeText(e.maxmemctl * memory, 2);
      if (e.pshare !== undefined) settings["sched.mem.pshare.enable"] = e.pshare;
      if (Object.keys(settings).length) ev.settings = settings;
      // reservation and limit as the loader checks them, VM by VM, against what is in force
      let r: number | undefined;
      if (e.reservation !== undefined) {
        const cap = Math.min(...targets.map((t) => (e.limit !== undefined ? t.memory : Math.min(t.memory, t.limit ?? t.memory))));
        r = Math.floor((e.reservation * cap) / 4096) * 4096;
        ev.reservation = sizeText(r, 2);
      }
      let l: number | null | undefined;
      if (e.limit !== undefined) {
        if (e.limit === null) l = null;
        else {
          const floor = Math.max(...targets.map((t) => r ?? t.reservation));
          l = floor + Math.floor((e.limit * Math.max(0, memory - floor)) / 4096) * 4096;
        }
        ev.limit = l === null ? "unlimited" : sizeText(l, 2);
      }
      for (const t of targets) {
        if (r !== undefined) t.reservation = r;
        if (l !== undefined) t.limit = l === null ? null : Math.min(t.memory, l);
      }
      if (Object.keys(ev).length > 2) events.push(ev);
    }
  }
  if (events.length) input.events = events;
  return input;
}

/** Random valid scenarios of the given size, as a user writes them. */
export function scenarioArb(size: ScenarioSize = SMALL): fc.Arbitrary<ScenarioInput> {
  return modelArb(size).map(materialize);
}
