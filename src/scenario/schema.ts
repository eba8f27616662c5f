// JSON Schema (draft-07, the draft editors support best) of the scenario INPUT format: what users
// write in YAML or JSON, before units are parsed and defaults filled (see load.ts, docs/scenarios.md).
// Published by `vmemsim schema`; the loader validates against this same object with ajv, then runs the
// cross-field checks a schema cannot express. Browser-safe: no Node imports.
import { HOST_SETTINGS, KSM_KNOBS, VM_SETTINGS, type SettingDef } from "./settings.js";
import { MAX_SIZE, RATE_PATTERN, SIZE_PATTERN, TIME_PATTERN } from "./units.js";

/** Caps on document size (refused with a clear message above these). */
export const MAX_TEXT_BYTES = 10 * 1024 * 1024;
export const MAX_VMS = 4096;
export const MAX_PHASES = 1000;
export const MAX_EVENTS = 100_000;
export const MAX_NAME_LENGTH = 64;

/** VM and group names: letters, digits, `_`, `.`, `-`; start with a letter or digit. */
export const NAME_PATTERN = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,${MAX_NAME_LENGTH - 1}}$`;

const NUM = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;
export const PATTERN_PATTERN = String.raw`^\s*(?:uniform|zipf\(\s*${NUM}\s*\)|hotcold\(\s*${NUM}\s*,\s*${NUM}\s*\))\s*$`;

type Json = Record<string, unknown>;

/** A setting takes integers when its default and range are integers (all ESXi settings and KSM knobs). */
export function settingType(def: SettingDef): "integer" | "number" {
  return [def.default, def.min, def.max].every(Number.isInteger) ? "integer" : "number";
}

function settingSchema(name: string, def: SettingDef): Json {
  const unit = def.unit ? ` [${def.unit}]` : "";
  const pending = def.pending ? " (accepted, not modelled yet)" : "";
  const description = `${def.doc}${unit}. Default ${def.default}, range ${def.min}..${def.max}${pending}.`;
  if (name === "sched.mem.maxmemctl") {
    return {
      type: ["number", "string"],
      minimum: -1,
      maximum: def.max,
      pattern: SIZE_PATTERN,
      default: def.default,
      description: `${def.doc}. A size (e.g. 4GiB; plain number = bytes) or -1. Default -1.`,
    };
  }
  return { type: settingType(def), minimum: def.min, maximum: def.max, default: def.default, description };
}

function settingsObject(table: Record<string, SettingDef>, description: string): Json {
  const properties: Json = {};
  for (const [name, def] of Object.entries(table)) {
    properties[name] = name === "sched.mem.maxmemctl" ? { ...ref("maxmemctl"), description: def.doc } : settingSchema(name, def);
  }
  return { type: "object", description, properties, additionalProperties: false };
}

/**
 * One line per definition, used by the loader to word errors found inside that definition
 * ("vms[0].shares: must be low, normal, high or a positive number (got "medium")").
 */
export const SCHEMA_HELP: Record<string, string> = {
  size: "must be a size: bytes, or a number with a unit B, KiB, MiB, GiB, TiB (KB/MB/GB/TB mean the same), e.g. 8GiB",
  time: "must be a time: seconds, or number+unit with ms, s, m, h, d, e.g. 90s, 30m, 1h30m",
  rate: "must be a rate: per second, or number/unit with s, min, h, e.g. 20000/s, 1200/min",
  limit: 'must be "unlimited" or a size, e.g. 4GiB',
  powerOn: 'must be a time (e.g. 0s, 30m) or "off" (stays off until a powerOn event)',
  shares: "must be low, normal, high or a positive number",
  pattern:
    "must be uniform, zipf(S) with S > 0, hotcold(H,P) with 0 < H < 1 and 0 < P < 1, or an object { zipf: S } / { hotcold: [H, P] } / { uniform: true }",
  vmRef: "must be a VM or group name, or a list of them",
  name: `must be a name of 1-${MAX_NAME_LENGTH} letters, digits, "_", "." or "-", starting with a letter or digit`,
  maxmemctl: "must be -1 (use Mem.CtlMaxPercent) or a size, e.g. 4GiB",
};

const ref = (name: string): Json => ({ $ref: `#/definitions/${name}` });
const withDescription = (name: string, description: string): Json => ({ ...ref(name), description });

const workloadFields: Json = {
  active: withDescription("size", "working set, a size <= the VM's memory. First phase default: 25 % of memory; later phases inherit."),
  touchRate: withDescription("rate", "page touches per second. First phase default: 2000/s; later phases inherit."),
  pattern: withDescription("pattern", "which active pages are touched. First phase default: zipf(0.9); later phases inherit."),
  writeRatio: { type: "number", minimum: 0, maximum: 1, description: "fraction of touches that write, 0..1. First phase default: 0.2; later phases inherit." },
};

export const scenarioJsonSchema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "urn:vmemsim:scenario",
  title: "vmemsim scenario",
  description:
    "A vmemsim scenario: one host, its VMs and their workloads, and timed events. Sizes: bytes or 8GiB/512MiB (MB = MiB as in ESXi); times: seconds or 90s/30m/2h; rates: per second or 20000/s. See docs/scenarios.md.",
  type: "object",
  properties: {
    $schema: { type: "string", description: "ignored; lets editors find this schema" },
    name: { type: "string", minLength: 1, maxLength: 200, description: "scenario name. Default: the file name, else \"scenario\"." },
    seed: { type: "integer", minimum: 0, maximum: 2 ** 32 - 1, default: 1, description: "random seed, 0..2^32-1. Default 1." },
    duration: withDescription("time", "simulated time to run, a multiple of tick. Default 1h."),
    tick: withDescription("time", "simulation step, > 0. Default 1s."),
    sampleEvery: withDescription("time", "output sample interval, a multiple of tick. Default 20s."),
    host: ref("host"),
    vms: {
      type: "array",
      minItems: 1,
      maxItems: MAX_VMS,
      items: ref("vm"),
      description: `the VMs; an entry with count n expands to name-1 … name-n (at most ${MAX_VMS} VMs in all)`,
    },
    events: {
      type: "array",
      maxItems: MAX_EVENTS,
      items: ref("event"),
      description: "timed changes, in time order",
    },
  },
  required: ["host", "vms"],
  additionalProperties: false,
  definitions: {
    size: {
      type: ["number", "string"],
      minimum: 0,
      maximum: MAX_SIZE,
      pattern: SIZE_PATTERN,
      description: "bytes, or a number with a unit B, KiB, MiB, GiB, TiB (KB, MB, GB, TB mean the same binary units); rounded up to a multiple of 4 KiB",
    },
    time: {
      type: ["number", "string"],
      minimum: 0,
      pattern: TIME_PATTERN,
      description: "seconds, or number+unit parts with ms, s, m, h, d (e.g. 90s, 1h30m)",
    },
    rate: {
      type: ["number", "string"],
      minimum: 0,
      pattern: RATE_PATTERN,
      description: "per second, or number/unit with s, min, h (e.g. 20000/s, 1200/min)",
    },
    limit: {
      type: ["number", "string", "null"],
      minimum: 0,
      maximum: MAX_SIZE,
      pattern: String.raw`^\s*unlimited\s*$|${SIZE_PATTERN}`,
      description: '"unlimited" (or null) or a size; a limit above memory is clamped to memory',
    },
    powerOn: {
      type: ["number", "string", "null"],
      minimum: 0,
      pattern: String.raw`^\s*off\s*$|${TIME_PATTERN}`,
      description: 'power-on time, or "off" (or null) to stay off until a powerOn event',
    },
    shares: {
      anyOf: [
        { type: "string", enum: ["low", "normal", "high"] },
        { type: "number", exclusiveMinimum: 0 },
      ],
      description: "low, normal, high (5, 10, 20 shares per MiB of memory) or a number of shares",
    },
    pattern: {
      anyOf: [
        { type: "string", pattern: PATTERN_PATTERN },
        {
          type: "object",
          properties: { uniform: { type: "boolean", const: true } },
          required: ["uniform"],
          additionalProperties: false,
        },
        {
          type: "object",
          properties: { zipf: { type: "number", exclusiveMinimum: 0, description: "exponent S > 0" } },
          required: ["zipf"],
          additionalProperties: false,
        },
        {
          type: "object",
          properties: {
            hotcold: {
              anyOf: [
                {
                  type: "array",
                  items: [
                    { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 },
                    { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1 },
                  ],
                  minItems: 2,
                  additionalItems: false,
                },
                {
                  type: "object",
                  properties: {
                    hot: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1, description: "hot fraction of the active pages" },
                    hotShare: { type: "number", exclusiveMinimum: 0, exclusiveMaximum: 1, description: "share of touches that go to them" },
                  },
                  required: ["hot", "hotShare"],
                  additionalProperties: false,
                },
              ],
            },
          },
          required: ["hotcold"],
          additionalProperties: false,
        },
      ],
      description:
        "uniform | zipf(S) (rank r touched ∝ 1/(r+1)^S, S > 0) | hotcold(H,P) (fraction H of the pages gets share P of the touches, 0<H<1, 0<P<1); or { zipf: S } / { hotcold: [H, P] }",
    },
    name: { type: "string", pattern: NAME_PATTERN },
    vmRef: {
      anyOf: [
        ref("name"),
        { type: "array", items: ref("name"), minItems: 1, maxItems: MAX_VMS },
      ],
      description: "a VM name, a group name (all VMs of an entry with count), or a list of them",
    },
    maxmemctl: settingSchema("sched.mem.maxmemctl", VM_SETTINGS["sched.mem.maxmemctl"]),
    hostSettings: settingsObject(HOST_SETTINGS, "ESXi host advanced settings; unnamed ones keep their defaults"),
    vmSettings: settingsObject(VM_SETTINGS, "per-VM .vmx settings; unnamed ones keep their defaults"),
    ksmKnobs: settingsObject(KSM_KNOBS, "Linux KSM knobs (/sys/kernel/mm/ksm) for policy: ksm; unnamed ones keep their defaults"),
    host: {
      type: "object",
      description: "the physical host",
      properties: {
        memory: withDescription("size", "machine memory, > 0"),
        cpu: {
          type: "object",
          description: "host CPU (the TPS scan rate cap is per GHz). Default { cores: 16, ghz: 2.6 }.",
          properties: {
            cores: { type: "integer", minimum: 1, maximum: 4096, default: 16 },
            ghz: { type: "number", exclusiveMinimum: 0, maximum: 100, default: 2.6 },
          },
          additionalProperties: false,
        },
        policy: { type: "string", enum: ["esxi", "ksm"], default: "esxi", description: "esxi (TPS, ballooning, compression, swap) or ksm (Linux KSM)" },
        hypervisorReserve: withDescription("size", "memory kept by the hypervisor itself. Default 1 GiB + 1 % of host memory."),
        settings: ref("hostSettings"),
        ksm: ref("ksmKnobs"),
      },
      required: ["memory"],
      additionalProperties: false,
    },
    guest: {
      type: "object",
      description: "the guest OS",
      properties: {
        os: { type: "string", enum: ["linux", "windows"], default: "linux" },
        balloonDriver: { type: "boolean", default: true, description: "vmmemctl installed" },
        pageFile: withDescription("size", "guest page file / swap partition. Default: the VM's memory."),
        bootTime: withDescription("time", "seconds after power-on before the balloon driver runs. Default 60s windows, 30s linux."),
      },
      additionalProperties: false,
    },
    content: {
      type: "object",
      description:
        "what written pages hold, fractions of the VM's pages (the rest is unique); each 0..1, zero + image + duplicate <= 1. Defaults by OS: linux 0.05/0.15/0.02, windows 0.15/0.2/0.02, duplicateCopies 4.",
      properties: {
        zero: { type: "number", minimum: 0, maximum: 1, description: "all-zero pages" },
        image: { type: "number", minimum: 0, maximum: 1, description: "pages equal to the same page of the VM's image" },
        duplicate: { type: "number", minimum: 0, maximum: 1, description: "pages equal to other pages of the same VM" },
        duplicateCopies: { type: "integer", minimum: 2, maximum: 1_000_000, description: "pages per duplicated content, >= 2" },
        compress: {
          type: "object",
          description:
            "compressibility of the VM's non-zero pages (default: the host's Vmemsim.Zip1KPct / Vmemsim.Zip2KPct): le1k compress to 1 KB or less, le2k to more than 1 KB and at most 2 KB, the rest is swapped uncompressed; le1k + le2k <= 1",
          properties: {
            le1k: { type: "number", minimum: 0, maximum: 1, description: "fraction that compresses to 1 KB or less" },
            le2k: { type: "number", minimum: 0, maximum: 1, description: "fraction that compresses to more than 1 KB and at most 2 KB" },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
    phase: {
      type: "object",
      description: "a workload phase from time `at`; fields left out inherit from the previous phase",
      properties: {
        at: withDescription("time", "start of the phase, from the start of the run; the first phase starts at 0"),
        ...workloadFields,
      },
      additionalProperties: false,
    },
    workloadChange: {
      type: "object",
      description: "a workload change; fields left out keep the VM's current value",
      properties: workloadFields,
      additionalProperties: false,
    },
    vm: {
      type: "object",
      description: "a VM, or with count n a group of n identical VMs",
      properties: {
        name: { ...ref("name"), description: "unique; with count n the VMs are name-1 … name-n" },
        count: { type: "integer", minimum: 1, maximum: MAX_VMS, default: 1, description: "number of identical VMs (clones)" },
        memory: withDescription("size", "configured memory (MEMSZ), > 0"),
        reservation: withDescription("size", "sched.mem.min, <= memory. Default 0."),
        limit: withDescription("limit", "sched.mem.max, >= reservation. Default unlimited."),
        shares: withDescription("shares", "sched.mem.shares. Default normal."),
        overhead: withDescription("size", "monitor overhead. Default 24 MiB + memory/128."),
        powerOn: withDescription("powerOn", "power-on time. Default 0s."),
        guest: ref("guest"),
        image: { type: "string", minLength: 1, maxLength: 200, description: "VMs with the same image share image pages. Default: the entry's name." },
        content: ref("content"),
        settings: ref("vmSettings"),
        workload: {
          type: "array",
          items: ref("phase"),
          minItems: 1,
          maxItems: MAX_PHASES,
          description:
            "workload phases in time order, the first at 0. Default: one phase { active: 25 % of memory, touchRate: 2000/s, pattern: zipf(0.9), writeRatio: 0.2 }.",
        },
      },
      required: ["name", "memory"],
      additionalProperties: false,
    },
    event: {
      type: "object",
      description:
        "a timed change: set/ksm (host settings), powerOn, powerOff, or vm with reservation/limit/shares/settings/workload",
      properties: {
        at: withDescription("time", "when, from the start of the run; events in time order, at <= duration"),
        set: ref("hostSettings"),
        ksm: ref("ksmKnobs"),
        powerOn: withDescription("vmRef", "VMs or groups to power on"),
        powerOff: withDescription("vmRef", "VMs or groups to power off"),
        vm: withDescription("vmRef", "VMs or groups the change applies to"),
        reservation: ref("size"),
        limit: ref("limit"),
        shares: ref("shares"),
        settings: ref("vmSettings"),
        workload: ref("workloadChange"),
      },
      required: ["at"],
      dependencies: {
        reservation: ["vm"],
        limit: ["vm"],
        shares: ["vm"],
        settings: ["vm"],
        workload: ["vm"],
      },
      additionalProperties: false,
    },
  },
} as const;
