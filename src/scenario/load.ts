// The scenario loader: YAML/JSON text → checked, normalized Scenario (bytes, seconds, per second,
// every default filled). Structural checks use ajv against the published JSON Schema (schema.ts);
// cross-field rules are checked here by hand. Every problem is thrown as ONE ScenarioError naming
// the field path (e.g. `vms[2].workload[0].touchRate`) and what is allowed.
// Browser-safe: no Node imports. Input format and rules: docs/scenarios.md.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  Lexer,
  CST,
  type Document,
  type Node as YamlNode,
} from "yaml";
import {
  defaults,
  HOST_SETTINGS,
  KSM_KNOBS,
  VM_SETTINGS,
  type HostSettings,
  type KsmKnobs,
  type SettingDef,
  type VmSettings,
} from "./settings.js";
import {
  MAX_EVENTS,
  MAX_PHASES,
  MAX_TEXT_BYTES,
  MAX_VMS,
  SCHEMA_HELP,
  scenarioJsonSchema,
  settingType,
} from "./schema.js";
import { thresholdProblem, thresholds } from "../policy/states.js";
import type {
  ContentModel,
  GuestOs,
  HostConfig,
  Pattern,
  Scenario,
  ScenarioEvent,
  Shares,
  VmConfig,
  WorkloadPhase,
} from "./types.js";
import {
  describe,
  formatBytes,
  formatSeconds,
  GiB,
  MiB,
  PAGE_SIZE,
  parsePageSize,
  parseRate,
  parseTime,
  roundUpToPage,
  UnitError,
} from "./units.js";

/**
 * Engine budget: the engine keeps 8 bytes of state per guest page in wasm32 linear memory (4 GiB
 * address space); 2^28 + 2^27 pages (1.5 TiB of guest memory) × 8 bytes = 3 GiB, leaving 1 GiB for
 * everything else.
 */
export const MAX_GUEST_PAGES = 2 ** 28 + 2 ** 27;
/** Bytes of engine state per guest page (for the budget message). */
export const ENGINE_BYTES_PER_PAGE = 8;
/** The engine counts machine memory in 4 KiB pages with 32-bit numbers: host.memory < 16 TiB. */
export const MAX_HOST_PAGES = 2 ** 32 - 1;
/** Page touches per second of one VM: 10^9/s is 4 TB/s, beyond any memory bus. */
export const MAX_TOUCH_RATE = 1e9;
/** Sum over events of the VMs each event names (after group expansion). */
export const MAX_EVENT_VM_REFS = 2 ** 22;
/** Nesting depth of the input document. */
const MAX_DEPTH = 64;

export const DEFAULT_SEED = 1;
export const DEFAULT_DURATION = 3600;
export const DEFAULT_TICK = 1;
export const DEFAULT_SAMPLE_EVERY = 20;
export const DEFAULT_CPU = { cores: 16, ghz: 2.6 } as const;
export const DEFAULT_TOUCH_RATE = 2000;
export const DEFAULT_WRITE_RATIO = 0.2;
export const DEFAULT_ACTIVE_FRACTION = 0.25;
export const DEFAULT_PATTERN: Pattern = { kind: "zipf", s: 0.9 };
export const DEFAULT_BOOT_TIME: Record<GuestOs, number> = { linux: 30, windows: 60 };
export const DEFAULT_CONTENT: Record<GuestOs, ContentModel> = {
  linux: { zero: 0.05, image: 0.15, duplicate: 0.02, duplicateCopies: 4 },
  windows: { zero: 0.15, image: 0.2, duplicate: 0.02, duplicateCopies: 4 },
};

/** Default hypervisor reserve: 1 GiB + 1 % of host memory, rounded up to a page. */
export function defaultHypervisorReserve(hostMemory: number): number {
  return roundUpToPage(GiB + hostMemory / 100);
}

/** Default per-VM overhead: 24 MiB + memory/128, rounded up to a page (approximates vSphere's table). */
export function defaultOverhead(memory: number): number {
  return roundUpToPage(24 * MiB + memory / 128);
}

type Path = (string | number)[];

/** `["vms", 2, "workload", 0, "touchRate"]` → `vms[2].workload[0].touchRate`; odd keys quoted: `host.settings["Mem.IdleTax"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  let s = "";
  for (const seg of path) {
    if (typeof seg === "number") s += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) s += s ? `.${seg}` : seg;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s;
}

/** A problem with a scenario. `message` = `[source[:line:column]: ]field: detail`. */
export class ScenarioError extends Error {
  /** path of the offending field, e.g. `vms[2].workload[0].touchRate`; "" for the whole document */
  readonly field: string;
  /** the same path as segments */
  readonly path: readonly (string | number)[];
  /** what is wrong and what is allowed, without the field */
  readonly detail: string;
  /** file or other source name given to parseScenarioText */
  readonly source?: string;
  /** 1-based position in the text, when known */
  readonly line?: number;
  readonly column?: number;

  constructor(
    path: readonly (string | number)[],
    detail: string,
    where: { source?: string; line?: number; column?: number } = {},
  ) {
    const field = formatPath(path);
    let prefix = "";
    if (where.source !== undefined) {
      prefix = where.source;
      if (where.line !== undefined) prefix += `:${where.line}:${where.column ?? 1}`;
      prefix += ": ";
    }
    super(`${prefix}${field ? `${field}: ` : ""}${detail}`);
    this.name = "ScenarioError";
    this.field = field;
    this.path = [...path];
    this.detail = detail;
    this.source = where.source;
    this.line = where.line;
    this.column = where.column;
  }
}

function fail(path: Path, detail: string): never {
  throw new ScenarioError(path, detail);
}

// ---------------------------------------------------------------------------------------------
// Text → plain data

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function utf8Length(text: string): number {
  if (text.length * 3 <= MAX_TEXT_BYTES) return text.length; // cannot be over the cap either way
  return new TextEncoder().encode(text).length;
}

/**
 * Parse YAML or JSON text (YAML 1.2 is a superset of JSON) and normalize it.
 * Errors are ScenarioErrors with `source`, `line` and `column` set where the text locates them.
 */
export function parseScenarioText(text: string, sourceName?: string): Scenario {
  if (typeof text !== "string") throw new ScenarioError([], "scenario text must be a string", { source: sourceName });
  if (text.length > MAX_TEXT_BYTES || utf8Length(text) > MAX_TEXT_BYTES) {
    throw new ScenarioError(
      [],
      `the document is ${formatBytes(utf8Length(text))}, larger than the ${formatBytes(MAX_TEXT_BYTES)} a scenario may be`,
      { source: sourceName },
    );
  }
  const defaultName = nameFromSource(sourceName);
  // JSON by content: JSON.parse is many times faster than a YAML parser on large documents. Text
  // that is not valid JSON goes to the YAML parser (YAML 1.2 is a superset of JSON), which also
  // gives positions for syntax errors. With JSON.parse a key given twice keeps its last value.
  const head = text.trimStart()[0];
  if (head === "{" || head === "[") {
    let data: unknown;
    let parsed = false;
    try {
      data = JSON.parse(text);
      parsed = true;
    } catch {
      // not JSON: read it as YAML below
    }
    if (parsed) {
      try {
        return normalizeScenario(data, { defaultName });
      } catch (err) {
        if (!(err instanceof ScenarioError)) throw err;
        // locating the field re-reads the text as YAML; not when it nests too deep for that parser
        if (nestingTooDeep(text)) throw new ScenarioError(err.path, err.detail, { source: sourceName });
        const lineCounter = new LineCounter();
        const doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter });
        const pos = doc.errors.length === 0 ? locate(doc, lineCounter, err.path) : undefined;
        throw new ScenarioError(err.path, err.detail, { source: sourceName, line: pos?.line, column: pos?.col });
      }
    }
  }
  const deep = nestingTooDeep(text);
  if (deep) {
    throw new ScenarioError([], `nested more than ${MAX_DEPTH} levels deep (indentation and brackets go on past ${MAX_SCAN_DEPTH} here)`, {
      source: sourceName,
      ...deep,
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter });
  const errors = [...doc.errors, ...duplicateKeys(doc, lineCounter)];
  const problems = [...errors, ...doc.warnings];
  if (problems.length > 0) {
    const e = problems[0];
    const pos = e.linePos?.[0];
    const kind = errors.length > 0 ? "YAML syntax error" : "YAML problem";
    throw new ScenarioError([], `${kind}: ${e.message.trimEnd()}`, {
      source: sourceName,
      line: pos?.line,
      column: pos?.col,
    });
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new ScenarioError([], "the document is empty; a scenario needs at least `host` and `vms`", { source: sourceName });
  }
  try {
    // mapAsMap: mappings come out as Map, so no key of the document is ever assigned to a plain
    // object before toPlain() has checked it; maxAliasCount bounds alias expansion ("billion laughs").
    const raw = doc.toJS({ mapAsMap: true, maxAliasCount: 100 }) as unknown;
    return normalizeScenario(raw, { defaultName });
  } catch (err) {
    if (err instanceof ScenarioError) {
      const pos = locate(doc, lineCounter, err.path);
      throw new ScenarioError(err.path, err.detail, { source: sourceName, line: pos?.line, column: pos?.col });
    }
    if (err instanceof Error && /alias/i.test(err.message)) {
      throw new ScenarioError([], `YAML problem: ${err.message}`, { source: sourceName });
    }
    throw err;
  }
}

/**
 * YAML 1.2 core schema (no `<<` merge keys, no custom tags). Duplicate keys are refused by
 * duplicateKeys() below: the parser's own check (uniqueKeys) compares each key with every other key
 * of its mapping, hours for a 10 MiB document of short keys.
 */
const YAML_OPTIONS = {
  prettyErrors: true,
  uniqueKeys: false,
  strict: true,
  version: "1.2",
  schema: "core",
  merge: false,
  intAsBigInt: false,
} as const;

/**
 * Bound on the nesting a text is allowed to reach before it goes to the YAML parser, which
 * recurses once per level: past several hundred levels it overflows the stack, and after one
 * overflow V8 may abort the whole process on the next (a fatal error, not an exception). A
 * scenario needs fewer than 10 levels; MAX_DEPTH (64) is the limit reported to users.
 */
const MAX_SCAN_DEPTH = 256;

/**
 * Where the text nests deeper than MAX_SCAN_DEPTH, counted without recursion from the YAML
 * lexer's tokens: at each token, the line's indentation plus the block indicators (`-`, `?`, `:`)
 * before it on the line plus the open flow brackets. That is at least the real depth; undefined
 * when the text stays within the bound.
 */
function nestingTooDeep(text: string): { line: number; column: number } | undefined {
  let flow = 0;
  let indent = 0;
  let indicators = 0;
  let lineStart = true;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (token === CST.DOCUMENT || token === CST.SCALAR || token === CST.FLOW_END) continue; // not in the text
    if (type === "newline") {
      indent = 0;
      indicators = 0;
      lineStart = true;
    } else if (type === "space") {
      if (lineStart) indent = token.length;
    } else {
      lineStart = false;
      if (type === "flow-map-start" || type === "flow-seq-start") flow++;
      else if (type === "flow-map-end" || type === "flow-seq-end") flow = Math.max(0, flow - 1);
      else if (flow === 0 && (type === "seq-item-ind" || type === "explicit-key-ind" || type === "map-value-ind")) indicators++;
      if (indent + indicators + flow > MAX_SCAN_DEPTH) {
        const before = text.slice(0, offset);
        const line = before.split("\n").length;
        return { line, column: offset - before.lastIndexOf("\n") };
      }
    }
    offset += token.length;
  }
  return undefined;
}

/** Keys given twice in one mapping (compared as the strings they become), as YAML problems. */
function duplicateKeys(doc: Document, lc: LineCounter): { message: string; linePos?: [{ line: number; col: number }] }[] {
  const found: { message: string; linePos?: [{ line: number; col: number }] }[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue; // toPlain() refuses keys that are not plain names
        const key = String(pair.key.value);
        if (seen.has(key)) {
          const at = rangeStart(pair.key);
          found.push({ message: `Map keys must be unique: "${key}" is given twice in one mapping`, linePos: at === undefined ? undefined : [lc.linePos(at)] });
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

function nameFromSource(sourceName: string | undefined): string | undefined {
  if (!sourceName) return undefined;
  const base = sourceName.split(/[\\/]/).pop() ?? sourceName;
  const stem = base.replace(/\.(ya?ml|json)$/i, "");
  return stem || undefined;
}

/** Line and column (1-based) of the node at `path`: the key for a map entry, else the value. */
function locate(doc: Document, lc: LineCounter, path: readonly (string | number)[]): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = rangeStart(node);
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : lc.linePos(offset);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return Array.isArray(range) ? range[0] : undefined;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Map || typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

/**
 * Deep copy into plain JSON-like data: objects get only checked string keys (never `__proto__`,
 * `constructor` or `prototype`), numbers must be finite, and nothing else but strings, booleans,
 * null and arrays is allowed. The caller's data is never modified.
 */
function toPlain(value: unknown, path: Path): unknown {
  const depth = path.length;
  if (depth > MAX_DEPTH) fail([...path], `nested more than ${MAX_DEPTH} levels deep`);
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) fail([...path], `must be a finite number (got ${String(value)})`);
    return value;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      out[i] = toPlain(value[i], path);
      path.pop();
    }
    return out;
  }
  let entries: Iterable<[unknown, unknown]>;
  if (value instanceof Map) entries = value.entries();
  else if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) fail([...path], `must be plain data (got ${kindOf(value)} of another kind)`);
    entries = Object.keys(value).map((key): [unknown, unknown] => [key, (value as Record<string, unknown>)[key]]);
  } else {
    return fail([...path], `must be a string, number, boolean, list or mapping (got ${typeof value})`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    if (typeof k !== "string" && typeof k !== "number" && typeof k !== "boolean") {
      fail([...path], `keys must be plain names (got ${kindOf(k)} as a key)`);
    }
    const key = String(k);
    if (FORBIDDEN_KEYS.has(key)) fail([...path, key], `the key "${key}" is not allowed (it could alter JavaScript prototypes)`);
    path.push(key);
    // defineProperty, not assignment: even a key that slipped through could never reach a prototype
    Object.defineProperty(out, key, { value: toPlain(v, path), enumerable: true, writable: true, configurable: true });
    path.pop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Structural check (ajv)

let validator: ValidateFunction | undefined;
const helpBySchema = new Map<object, string>();

function getValidator(): ValidateFunction {
  if (!validator) {
    // allErrors false: stop at the first problem, reported as one message; strict: the schema itself
    // is checked for mistakes; allowUnionTypes: sizes are `number | string`.
    const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true });
    validator = ajv.compile(scenarioJsonSchema as unknown as object);
    const defs = scenarioJsonSchema.definitions as Record<string, object>;
    for (const [name, help] of Object.entries(SCHEMA_HELP)) if (defs[name]) helpBySchema.set(defs[name], help);
  }
  return validator;
}

function pointerToPath(pointer: string, data: unknown): Path {
  const path: Path = [];
  if (!pointer) return path;
  let node = data;
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      const i = Number(seg);
      path.push(i);
      node = node[i];
    } else {
      path.push(seg);
      node = node && typeof node === "object" ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return path;
}

function listWords(words: readonly string[], last = "or"): string {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} ${last} ${words[words.length - 1]}`;
}

function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function suggest(word: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : "";
}

function rangeText(schema: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof schema.minimum === "number") parts.push(`>= ${schema.minimum}`);
  if (typeof schema.exclusiveMinimum === "number") parts.push(`> ${schema.exclusiveMinimum}`);
  if (typeof schema.maximum === "number") parts.push(`<= ${schema.maximum}`);
  if (typeof schema.exclusiveMaximum === "number") parts.push(`< ${schema.exclusiveMaximum}`);
  return parts.join(" and ");
}

const TYPE_WORDS: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "true or false",
  null: "null",
};

const FLOW_COMMA_HINT =
  '. Inside { } (a YAML flow mapping) the comma of hotcold(H,P) ends the value: quote it, pattern: "hotcold(0.2,0.8)", or write { hotcold: [0.2, 0.8] }';

/** Turn the ajv error list (one failure, plus branch errors of anyOf) into one ScenarioError. */
function ajvToError(errors: ErrorObject[], data: unknown): ScenarioError {
  const e = errors[errors.length - 1];
  const path = pointerToPath(e.instancePath, data);
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  const got = ` (got ${describe(e.data)})`;
  const help = helpBySchema.get(parent);
  if (help) {
    const hint = typeof e.data === "string" && /^\s*hotcold\(\s*[\d.]+\s*$/.test(e.data) ? FLOW_COMMA_HINT : "";
    return new ScenarioError(path, `${help}${got}${hint}`);
  }
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(params.additionalProperty);
      const allowed = Object.keys((parent.properties ?? {}) as object);
      const hint = /^\s*[\d.]+\s*\)\s*$/.test(key) ? FLOW_COMMA_HINT : "";
      return new ScenarioError(
        [...path, key],
        `unknown key "${key}"${suggest(key, allowed)}; allowed keys: ${allowed.join(", ")}${hint}`,
      );
    }
    case "required": {
      // A misspelt required key shows up as "missing": report the unknown key instead.
      const allowed = Object.keys((parent.properties ?? {}) as object);
      const unknown = e.data && typeof e.data === "object" ? Object.keys(e.data).filter((k) => !allowed.includes(k)) : [];
      if (unknown.length > 0 && parent.additionalProperties === false) {
        return new ScenarioError(
          [...path, unknown[0]],
          `unknown key "${unknown[0]}"${suggest(unknown[0], allowed)}; allowed keys: ${allowed.join(", ")}`,
        );
      }
      const key = String(params.missingProperty);
      const prop = ((parent.properties ?? {}) as Record<string, Record<string, unknown>>)[key];
      const what = typeof prop?.description === "string" ? `: ${prop.description}` : "";
      return new ScenarioError([...path, key], `is required${what}`);
    }
    case "dependencies":
      return new ScenarioError(
        [...path, String(params.property)],
        `needs "vm" in the same event, naming the VMs or groups to change`,
      );
    case "enum":
      return new ScenarioError(path, `must be ${listWords((params.allowedValues as unknown[]).map(String))}${got}`);
    case "const":
      return new ScenarioError(path, `must be ${describe(params.allowedValue)}${got}`);
    case "type": {
      const types = (Array.isArray(params.type) ? params.type : String(params.type).split(",")) as string[];
      const range = rangeText(parent);
      const rangeWords = range && (types.includes("number") || types.includes("integer")) ? ` ${range}` : "";
      return new ScenarioError(path, `must be ${listWords(types.map((t) => TYPE_WORDS[t] ?? t))}${rangeWords}${got}`);
    }
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return new ScenarioError(path, `must be ${rangeText(parent)}${got}`);
    case "minItems":
      return new ScenarioError(path, `must have at least ${String(params.limit)} item${params.limit === 1 ? "" : "s"}`);
    case "maxItems":
      return new ScenarioError(
        path,
        `has ${Array.isArray(e.data) ? e.data.length : "too many"} items; at most ${String(params.limit)} are allowed`,
      );
    case "minLength":
      return new ScenarioError(path, `must not be empty${got}`);
    case "maxLength":
      return new ScenarioError(path, `must be at most ${String(params.limit)} characters long`);
    case "anyOf":
      return new ScenarioError(path, `is not in any of the allowed forms${got}`);
    default:
      return new ScenarioError(path, `${e.message ?? "is not valid"}${got}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Normalization

type Obj = Record<string, unknown>;

function has(o: Obj, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function unit<T>(path: Path, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UnitError) fail(path, err.message);
    throw err;
  }
}

function size(o: Obj, key: string, path: Path): number {
  return unit([...path, key], () => parsePageSize(o[key]));
}

function positiveSize(o: Obj, key: string, path: Path): number {
  const bytes = size(o, key, path);
  if (bytes <= 0) fail([...path, key], `must be a positive size, e.g. 8GiB (got ${describe(o[key])})`);
  return bytes;
}

function time(o: Obj, key: string, path: Path): number {
  return unit([...path, key], () => parseTime(o[key]));
}

function isMultiple(a: number, b: number): boolean {
  const r = a / b;
  return Math.abs(r - Math.round(r)) <= 1e-9 * Math.max(1, r);
}

const PATTERN_STRING = /^\s*(uniform|zipf|hotcold)\s*(?:\(\s*([^,()]*?)\s*(?:,\s*([^,()]*?)\s*)?\))?\s*$/;

function parsePattern(value: unknown, path: Path): Pattern {
  const bad = (): never => fail(path, `${SCHEMA_HELP.pattern} (got ${describe(value)})`);
  let kind: string;
  let a: unknown;
  let b: unknown;
  if (typeof value === "string") {
    const m = PATTERN_STRING.exec(value);
    if (!m) return bad();
    kind = m[1];
    if (kind === "uniform") {
      if (m[2] !== undefined) return bad();
      return { kind: "uniform" };
    }
    if (m[2] === undefined || (kind === "zipf") !== (m[3] === undefined)) return bad();
    a = Number(m[2]);
    b = m[3] === undefined ? undefined : Number(m[3]);
  } else if (value && typeof value === "object" && !Array.isArray(value)) {
    const o = value as Obj;
    const keys = Object.keys(o);
    if (keys.length !== 1) return bad();
    kind = keys[0];
    if (kind === "uniform") return o.uniform === true ? { kind: "uniform" } : bad();
    if (kind === "zipf") a = o.zipf;
    else if (kind === "hotcold") {
      const hc = o.hotcold;
      if (Array.isArray(hc) && hc.length === 2) [a, b] = hc;
      else if (hc && typeof hc === "object" && !Array.isArray(hc)) ({ hot: a, hotShare: b } = hc as Obj);
      else return bad();
    } else return bad();
  } else return bad();
  if (kind === "zipf") {
    if (typeof a !== "number" || !Number.isFinite(a) || a <= 0) {
      fail(path, `the zipf exponent S must be a number > 0 (got ${describe(value)})`);
    }
    return { kind: "zipf", s: a };
  }
  const inOpen01 = (x: unknown): x is number => typeof x === "number" && x > 0 && x < 1;
  if (!inOpen01(a) || !inOpen01(b)) {
    fail(path, `hotcold(H,P) needs 0 < H < 1 (hot fraction) and 0 < P < 1 (share of touches) (got ${describe(value)})`);
  }
  return { kind: "hotcold", hot: a, hotShare: b };
}

function parseShares(value: unknown, path: Path): Shares {
  if (value === "low" || value === "normal" || value === "high") return value;
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  return fail(path, `${SCHEMA_HELP.shares} (got ${describe(value)})`);
}

/** null = unlimited */
function parseLimit(value: unknown, path: Path): number | null {
  if (value === null || value === undefined || (typeof value === "string" && value.trim() === "unlimited")) return null;
  return unit(path, () => parsePageSize(value));
}

/** Settings given in the input, checked against the table (ajv already did; this is the authority). */
function parseSettings<K extends string>(
  table: Record<K, SettingDef>,
  value: unknown,
  path: Path,
): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  if (value === undefined) return out;
  if (!value || typeof value !== "object" || Array.isArray(value)) fail(path, `must be a mapping of setting names to values (got ${describe(value)})`);
  const names = Object.keys(table);
  for (const [key, v] of Object.entries(value as Obj)) {
    if (!names.includes(key)) fail([...path, key], `unknown setting "${key}"${suggest(key, names)}; allowed: ${names.join(", ")}`);
    const def = table[key as K];
    let n: number;
    if (key === "sched.mem.maxmemctl") {
      if (v === -1) n = -1;
      else n = unit([...path, key], () => parsePageSize(v));
    } else {
      const integer = settingType(def) === "integer";
      if (typeof v !== "number" || (integer && !Number.isInteger(v))) {
        fail([...path, key], `must be ${integer ? "an integer" : "a number"} >= ${def.min} and <= ${def.max} (got ${describe(v)})`);
      }
      n = v;
    }
    if (n < def.min || n > def.max) fail([...path, key], `must be >= ${def.min} and <= ${def.max} (got ${describe(v)})`);
    out[key as K] = n;
  }
  return out;
}

interface PhaseInput {
  active?: unknown;
  touchRate?: unknown;
  pattern?: unknown;
  writeRatio?: unknown;
}

/** Fill a phase from `o`, inheriting missing fields from `prev`. */
function phaseFields(o: PhaseInput & Obj, prev: Omit<WorkloadPhase, "at">, memory: number, path: Path, vmName: string) {
  const active = has(o, "active") ? size(o, "active", path) : prev.active;
  if (active > memory) {
    fail([...path, "active"], `must be <= the memory of ${vmName} (${formatBytes(memory)}) (got ${describe(o.active)})`);
  }
  const touchRate = has(o, "touchRate") ? unit([...path, "touchRate"], () => parseRate(o.touchRate)) : prev.touchRate;
  if (touchRate > MAX_TOUCH_RATE) {
    fail([...path, "touchRate"], `must be at most 1000000000/s (4 TB/s of 4 KiB pages, beyond any memory bus) (got ${describe(o.touchRate)})`);
  }
  const pattern = has(o, "pattern") ? parsePattern(o.pattern, [...path, "pattern"]) : prev.pattern;
  let writeRatio = prev.writeRatio;
  if (has(o, "writeRatio")) {
    const w = o.writeRatio;
    if (typeof w !== "number" || !(w >= 0 && w <= 1)) fail([...path, "writeRatio"], `must be a number >= 0 and <= 1 (got ${describe(w)})`);
    writeRatio = w;
  }
  return { active, touchRate, pattern, writeRatio };
}

function checkFraction(o: Obj, key: string, path: Path): number {
  const v = o[key];
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) fail([...path, key], `must be a number >= 0 and <= 1 (got ${describe(v)})`);
  return v;
}

interface Entry {
  index: number;
  group: string;
  names: string[];
  config: Omit<VmConfig, "name" | "group">;
}

/**
 * Check and normalize already-parsed scenario data (e.g. from JSON.parse or a YAML library).
 * `options.defaultName` names the scenario when it has no `name` (default "scenario").
 */
export function normalizeScenario(input: unknown, options: { defaultName?: string } = {}): Scenario {
  if (input === undefined || input === null) fail([], "the document is empty; a scenario needs at least `host` and `vms`");
  const isMapping = input instanceof Map || (typeof input === "object" && !Array.isArray(input));
  if (!isMapping) {
    fail([], `the top level must be a mapping with keys such as name, duration, host, vms, events (got ${kindOf(input)})`);
  }
  const data = toPlain(input, []) as Obj;

  // Refuse huge documents before validating them element by element.
  if (Array.isArray(data.vms)) {
    let total = 0;
    for (const vm of data.vms) {
      const c = vm && typeof vm === "object" ? (vm as Obj).count : undefined;
      total += typeof c === "number" && Number.isInteger(c) && c >= 1 && c <= MAX_VMS ? c : 1; // ajv reports bad counts
    }
    if (total > MAX_VMS) fail(["vms"], `${total} VMs after count expansion; at most ${MAX_VMS} are allowed`);
    data.vms.forEach((vm, i) => {
      const w = vm && typeof vm === "object" ? (vm as Obj).workload : undefined;
      if (Array.isArray(w) && w.length > MAX_PHASES) {
        fail(["vms", i, "workload"], `has ${w.length} phases; at most ${MAX_PHASES} are allowed per VM`);
      }
    });
  }
  if (Array.isArray(data.events) && data.events.length > MAX_EVENTS) {
    fail(["events"], `has ${data.events.length} events; at most ${MAX_EVENTS} are allowed`);
  }

  const validate = getValidator();
  if (!validate(data)) throw ajvToError(validate.errors ?? [], data);

  // --- top level -----------------------------------------------------------------------------
  const name = typeof data.name === "string" ? data.name : (options.defaultName ?? "scenario");
  const seed = has(data, "seed") ? (data.seed as number) : DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 2 ** 32 - 1) fail(["seed"], `must be an integer >= 0 and <= 4294967295 (got ${describe(seed)})`);
  const duration = has(data, "duration") ? time(data, "duration", []) : DEFAULT_DURATION;
  const tick = has(data, "tick") ? time(data, "tick", []) : DEFAULT_TICK;
  const sampleEvery = has(data, "sampleEvery") ? time(data, "sampleEvery", []) : DEFAULT_SAMPLE_EVERY;
  if (!(tick > 0)) fail(["tick"], `must be > 0 (got ${describe(data.tick)})`);
  if (!(duration > 0)) fail(["duration"], `must be > 0 (got ${describe(data.duration)})`);
  if (sampleEvery < tick) {
    fail(["sampleEvery"], `must be >= tick (${formatSeconds(tick)}) (got ${formatSeconds(sampleEvery)})`);
  }
  if (!isMultiple(sampleEvery, tick)) {
    fail(["sampleEvery"], `must be a multiple of tick (${formatSeconds(tick)}) (got ${formatSeconds(sampleEvery)})`);
  }
  if (!isMultiple(duration, tick)) {
    fail(["duration"], `must be a multiple of tick (${formatSeconds(tick)}) (got ${formatSeconds(duration)})`);
  }

  // --- host ----------------------------------------------------------------------------------
  const h = data.host as Obj;
  const hostMemory = positiveSize(h, "memory", ["host"]);
  if (hostMemory / PAGE_SIZE > MAX_HOST_PAGES) {
    fail(
      ["host", "memory"],
      `must be less than 16 TiB (got ${describe(h.memory)}): ${formatBytes(hostMemory)} = ${hostMemory / PAGE_SIZE} pages of 4 KiB, more than the ${MAX_HOST_PAGES} the engine counts with 32-bit numbers`,
    );
  }
  const cpuIn = (h.cpu ?? {}) as Obj;
  const cpu = {
    cores: has(cpuIn, "cores") ? (cpuIn.cores as number) : DEFAULT_CPU.cores,
    ghz: has(cpuIn, "ghz") ? (cpuIn.ghz as number) : DEFAULT_CPU.ghz,
  };
  let hypervisorReserve: number;
  if (has(h, "hypervisorReserve")) {
    hypervisorReserve = size(h, "hypervisorReserve", ["host"]);
    if (hypervisorReserve >= hostMemory) {
      fail(["host", "hypervisorReserve"], `must be less than host.memory (${formatBytes(hostMemory)}) (got ${formatBytes(hypervisorReserve)})`);
    }
  } else {
    hypervisorReserve = defaultHypervisorReserve(hostMemory);
    if (hypervisorReserve >= hostMemory) {
      fail(
        ["host", "hypervisorReserve"],
        `the default (1 GiB + 1 % of host memory = ${formatBytes(hypervisorReserve)}) is not less than host.memory (${formatBytes(hostMemory)}); set host.hypervisorReserve`,
      );
    }
  }
  const host: HostConfig = {
    memory: hostMemory,
    cpu,
    policy: (h.policy as HostConfig["policy"] | undefined) ?? "esxi",
    hypervisorReserve,
    settings: { ...defaults(HOST_SETTINGS), ...parseSettings(HOST_SETTINGS, h.settings, ["host", "settings"]) } as HostSettings,
    ksm: { ...defaults(KSM_KNOBS), ...parseSettings(KSM_KNOBS, h.ksm, ["host", "ksm"]) } as KsmKnobs,
  };
  // the free-memory state thresholds must fall strictly (the scheduler refuses them otherwise)
  const thresholdsWrong = thresholdProblem(thresholds(host.settings));
  if (thresholdsWrong) fail(["host", "settings"], thresholdsWrong);

  // --- VMs -----------------------------------------------------------------------------------
  const entries: Entry[] = [];
  const owner = new Map<string, { index: number; group: string; count: number }>(); // VM or group name → entry
  const vmsIn = data.vms as Obj[];
  let totalPages = 0;
  vmsIn.forEach((v, i) => {
    const path: Path = ["vms", i];
    const group = v.name as string;
    const count = has(v, "count") ? (v.count as number) : 1;
    const memory = positiveSize(v, "memory", path);
    totalPages += (memory / PAGE_SIZE) * count;

    const reservation = has(v, "reservation") ? size(v, "reservation", path) : 0;
    if (reservation > memory) {
      fail([...path, "reservation"], `must be <= memory (${formatBytes(memory)}) (got ${describe(v.reservation)})`);
    }
    let limit = has(v, "limit") ? parseLimit(v.limit, [...path, "limit"]) : null;
    if (limit !== null && limit < reservation) {
      fail([...path, "limit"], `must be >= reservation (${formatBytes(reservation)}) or "unlimited" (got ${describe(v.limit)})`);
    }
    if (limit !== null && limit > memory) limit = memory; // a limit never exceeds configured memory
    const shares = has(v, "shares") ? parseShares(v.shares, [...path, "shares"]) : "normal";
    const overhead = has(v, "overhead") ? size(v, "overhead", path) : defaultOverhead(memory);

    let powerOn: number | null = 0;
    if (has(v, "powerOn")) {
      const p = v.powerOn;
      if (p === null || (typeof p === "string" && p.trim() === "off")) powerOn = null;
      else {
        powerOn = time(v, "powerOn", path);
        if (powerOn > duration) {
          fail([...path, "powerOn"], `must be within the duration (${formatSeconds(duration)}) or "off" (got ${describe(p)})`);
        }
      }
    }

    const g = (v.guest ?? {}) as Obj;
    const os = (g.os as GuestOs | undefined) ?? "linux";
    const guest = {
      os,
      balloonDriver: has(g, "balloonDriver") ? (g.balloonDriver as boolean) : true,
      pageFile: has(g, "pageFile") ? size(g, "pageFile", [...path, "guest"]) : memory,
      bootTime: has(g, "bootTime") ? time(g, "bootTime", [...path, "guest"]) : DEFAULT_BOOT_TIME[os],
    };

    const c = (v.content ?? {}) as Obj;
    const cPath: Path = [...path, "content"];
    const content: ContentModel = { ...DEFAULT_CONTENT[os] };
    for (const k of ["zero", "image", "duplicate"] as const) if (has(c, k)) content[k] = checkFraction(c, k, cPath);
    if (has(c, "duplicateCopies")) {
      const d = c.duplicateCopies;
      if (typeof d !== "number" || !Number.isInteger(d) || d < 2) fail([...cPath, "duplicateCopies"], `must be an integer >= 2 (got ${describe(d)})`);
      content.duplicateCopies = d;
    }
    if (has(c, "compress")) {
      const z = c.compress as Obj;
      const zPath: Path = [...cPath, "compress"];
      const compress = { le1k: has(z, "le1k") ? checkFraction(z, "le1k", zPath) : 0, le2k: has(z, "le2k") ? checkFraction(z, "le2k", zPath) : 0 };
      if (compress.le1k + compress.le2k > 1 + 1e-9) fail(zPath, `le1k + le2k must be <= 1 (got ${compress.le1k} + ${compress.le2k})`);
      content.compress = compress;
    }
    const sum = content.zero + content.image + content.duplicate;
    if (sum > 1 + 1e-9) {
      fail(
        cPath,
        `zero + image + duplicate must be <= 1 (got ${content.zero} + ${content.image} + ${content.duplicate} = ${Math.round(sum * 1e6) / 1e6}, defaults for ${os} filling what is not given)`,
      );
    }

    const settings = { ...defaults(VM_SETTINGS), ...parseSettings(VM_SETTINGS, v.settings, [...path, "settings"]) } as VmSettings;

    const workload: WorkloadPhase[] = [];
    const displayName = count === 1 ? group : `${group}-1 … ${group}-${count}`;
    if (!has(v, "workload")) {
      workload.push({
        at: 0,
        active: roundUpToPage(memory * DEFAULT_ACTIVE_FRACTION),
        touchRate: DEFAULT_TOUCH_RATE,
        pattern: DEFAULT_PATTERN,
        writeRatio: DEFAULT_WRITE_RATIO,
      });
    } else {
      const phases = v.workload as Obj[];
      let prev: Omit<WorkloadPhase, "at"> = {
        active: roundUpToPage(memory * DEFAULT_ACTIVE_FRACTION),
        touchRate: DEFAULT_TOUCH_RATE,
        pattern: DEFAULT_PATTERN,
        writeRatio: DEFAULT_WRITE_RATIO,
      };
      phases.forEach((ph, j) => {
        const pPath: Path = [...path, "workload", j];
        let at: number;
        if (j === 0) {
          at = has(ph, "at") ? time(ph, "at", pPath) : 0;
          if (at !== 0) {
            fail([...pPath, "at"], `the first phase must start at 0 (got ${describe(ph.at)}); give the workload from 0s (the VM may power on later)`);
          }
        } else {
          if (!has(ph, "at")) fail([...pPath, "at"], "is required for every phase after the first");
          at = time(ph, "at", pPath);
          const before = workload[j - 1].at;
          if (at <= before) {
            fail([...pPath, "at"], `phases must be in time order: ${formatSeconds(at)} is not after the previous phase at ${formatSeconds(before)}`);
          }
          if (at > duration) fail([...pPath, "at"], `must be within the duration (${formatSeconds(duration)}) (got ${describe(ph.at)})`);
        }
        const fields = phaseFields(ph, prev, memory, pPath, displayName);
        workload.push({ at, ...fields });
        prev = fields;
      });
    }

    const image = typeof v.image === "string" ? v.image : group;
    const names = count === 1 ? [group] : Array.from({ length: count }, (_, k) => `${group}-${k + 1}`);
    entries.push({
      index: i,
      group,
      names,
      config: { memory, reservation, limit, shares, overhead, guest, image, content, powerOn, workload, settings },
    });
  });

  // Names: every VM name and every group name must be unambiguous.
  const describeOwner = (o: { index: number; group: string; count: number }) =>
    o.count === 1 ? `vms[${o.index}]` : `vms[${o.index}] (${o.group} with count ${o.count} makes ${o.group}-1 … ${o.group}-${o.count})`;
  for (const e of entries) {
    const count = e.names.length;
    const me = { index: e.index, group: e.group, count };
    const claim = (n: string, what: string) => {
      const prior = owner.get(n);
      if (prior && prior.index !== e.index) {
        fail(["vms", e.index, "name"], `${what} "${n}" is already used by ${describeOwner(prior)}; names must be unique`);
      }
      owner.set(n, me);
    };
    claim(e.group, count === 1 ? "VM name" : "group name");
    if (count > 1) for (const n of e.names) claim(n, "VM name");
  }

  if (totalPages > MAX_GUEST_PAGES) {
    const budgetBytes = MAX_GUEST_PAGES * ENGINE_BYTES_PER_PAGE;
    fail(
      ["vms"],
      `total configured guest memory ${formatBytes(totalPages * PAGE_SIZE)} = ${totalPages} pages is over the engine budget of ${MAX_GUEST_PAGES} pages (${formatBytes(MAX_GUEST_PAGES * PAGE_SIZE)}): ` +
        `the engine keeps ${ENGINE_BYTES_PER_PAGE} bytes per guest page, ${totalPages} × ${ENGINE_BYTES_PER_PAGE} B = ${formatBytes(totalPages * ENGINE_BYTES_PER_PAGE)}, ` +
        `more than the ${formatBytes(budgetBytes)} (${MAX_GUEST_PAGES} × ${ENGINE_BYTES_PER_PAGE} B) it may use of the 4 GiB wasm32 address space`,
    );
  }

  const vms: VmConfig[] = [];
  const members = new Map<string, string[]>(); // reference name → VM names
  for (const e of entries) {
    for (const n of e.names) {
      vms.push({ name: n, group: e.group, ...structuredCloneConfig(e.config) });
      members.set(n, [n]);
    }
    members.set(e.group, e.names);
  }

  // --- events --------------------------------------------------------------------------------
  const events = normalizeEvents((data.events ?? []) as Obj[], vms, members, duration);

  return { name, seed, duration, tick, sampleEvery, host, vms, events };
}

function structuredCloneConfig(c: Entry["config"]): Entry["config"] {
  return {
    ...c,
    guest: { ...c.guest },
    content: { ...c.content },
    settings: { ...c.settings },
    workload: c.workload.map((p) => ({ ...p, pattern: { ...p.pattern } })),
  };
}

function patternKey(p: Pattern): string {
  return p.kind === "zipf" ? `z${p.s}` : p.kind === "hotcold" ? `h${p.hot},${p.hotShare}` : "u";
}

const VM_EVENT_FIELDS = ["reservation", "limit", "shares", "settings", "workload"] as const;

function normalizeEvents(list: Obj[], vms: VmConfig[], members: Map<string, string[]>, duration: number): ScenarioEvent[] {
  const byName = new Map(vms.map((vm) => [vm.name, vm]));
  const state = new Map(
    vms.map((vm) => [
      vm.name,
      {
        reservation: vm.reservation,
        limit: vm.limit,
        phaseIndex: 0,
        lastEvent: undefined as { at: number; phase: Omit<WorkloadPhase, "at"> } | undefined,
      },
    ]),
  );
  const out: ScenarioEvent[] = [];
  let refs = 0;
  let prevAt = 0;

  const resolve = (value: unknown, path: Path): string[] => {
    const list = Array.isArray(value) ? value : [value];
    const names: string[] = [];
    const seen = new Set<string>();
    list.forEach((ref, k) => {
      const p = Array.isArray(value) ? [...path, k] : path;
      const found = typeof ref === "string" ? members.get(ref) : undefined;
      if (!found) {
        const known = [...members.keys()];
        const shown = known.length > 20 ? `${known.slice(0, 20).join(", ")}, … (${known.length} in all)` : known.join(", ");
        fail(p, `unknown VM or group "${String(ref)}"${suggest(String(ref), known)}; known: ${shown}`);
      }
      for (const n of found) {
        if (!seen.has(n)) {
          seen.add(n);
          names.push(n);
        }
      }
    });
    refs += names.length;
    if (refs > MAX_EVENT_VM_REFS) {
      fail(path, `the events name ${refs} VMs in all (groups expanded); at most ${MAX_EVENT_VM_REFS} are allowed`);
    }
    return names;
  };

  /** One event per distinct payload, VMs in order. */
  const grouped = <P>(
    names: string[],
    payload: (vm: string) => P,
    make: (vms: string[], p: P) => ScenarioEvent,
    keyOf: (p: P) => string = (p) => JSON.stringify(p),
  ) => {
    const groups = new Map<string, { vms: string[]; p: P }>();
    for (const n of names) {
      const p = payload(n);
      const key = keyOf(p);
      const g = groups.get(key);
      if (g) g.vms.push(n);
      else groups.set(key, { vms: [n], p });
    }
    for (const g of groups.values()) out.push(make(g.vms, g.p));
  };

  list.forEach((ev, j) => {
    const path: Path = ["events", j];
    const at = time(ev, "at", path);
    if (at < prevAt) {
      fail([...path, "at"], `events must be in time order: ${formatSeconds(at)} is before events[${j - 1}] at ${formatSeconds(prevAt)}`);
    }
    if (at > duration) fail([...path, "at"], `must be within the duration (${formatSeconds(duration)}) (got ${describe(ev.at)})`);
    prevAt = at;

    const actions: string[] = [];
    if (has(ev, "set") || has(ev, "ksm")) actions.push(has(ev, "set") ? "set" : "ksm");
    for (const k of ["powerOn", "powerOff", "vm"]) if (has(ev, k)) actions.push(k);
    if (actions.length === 0) fail(path, "needs one of set, ksm, powerOn, powerOff or vm");
    if (actions.length > 1) fail([...path, actions[1]], `cannot be combined with "${actions[0]}" in one event; give one action per event`);

    switch (actions[0]) {
      case "set":
      case "ksm":
        out.push({
          at,
          kind: "setHost",
          settings: parseSettings(HOST_SETTINGS, ev.set, [...path, "set"]),
          ksm: parseSettings(KSM_KNOBS, ev.ksm, [...path, "ksm"]),
        });
        break;
      case "powerOn":
      case "powerOff":
        out.push({ at, kind: actions[0], vms: resolve(ev[actions[0]], [...path, actions[0]]) });
        break;
      case "vm": {
        if (!VM_EVENT_FIELDS.some((k) => has(ev, k))) fail(path, `"vm" needs at least one of ${listWords([...VM_EVENT_FIELDS])}`);
        const names = resolve(ev.vm, [...path, "vm"]);
        if (has(ev, "reservation") || has(ev, "limit") || has(ev, "shares") || has(ev, "settings")) {
          const reservation = has(ev, "reservation") ? size(ev, "reservation", path) : undefined;
          const limit = has(ev, "limit") ? parseLimit(ev.limit, [...path, "limit"]) : undefined;
          const shares = has(ev, "shares") ? parseShares(ev.shares, [...path, "shares"]) : undefined;
          const settings = has(ev, "settings") ? parseSettings(VM_SETTINGS, ev.settings, [...path, "settings"]) : undefined;
          grouped(
            names,
            (n) => {
              const vm = byName.get(n)!;
              const s = state.get(n)!;
              const r = reservation ?? s.reservation;
              if (r > vm.memory) {
                fail([...path, "reservation"], `must be <= the memory of ${n} (${formatBytes(vm.memory)}) (got ${describe(ev.reservation)})`);
              }
              let l = limit === undefined ? s.limit : limit;
              if (l !== null && l > vm.memory) l = vm.memory;
              if (l !== null && l < r) {
                const field = limit !== undefined ? "limit" : "reservation";
                fail(
                  [...path, field],
                  `${n} would have limit ${formatBytes(l)} below its reservation ${formatBytes(r)}; limit must be >= reservation`,
                );
              }
              s.reservation = r;
              s.limit = l;
              const p: { reservation?: number; limit?: number | null; shares?: Shares; settings?: Partial<VmSettings> } = {};
              if (reservation !== undefined) p.reservation = r;
              if (limit !== undefined) p.limit = l;
              if (shares !== undefined) p.shares = shares;
              if (settings !== undefined) p.settings = { ...settings };
              return p;
            },
            (vmsList, p) => ({ at, kind: "setVm", vms: vmsList, ...p }),
          );
        }
        if (has(ev, "workload")) {
          const w = ev.workload as Obj;
          grouped(
            names,
            (n) => {
              const vm = byName.get(n)!;
              const s = state.get(n)!;
              while (s.phaseIndex + 1 < vm.workload.length && vm.workload[s.phaseIndex + 1].at <= at) s.phaseIndex++;
              const own = vm.workload[s.phaseIndex];
              const { at: _ownAt, ...ownFields } = own;
              const current = s.lastEvent && s.lastEvent.at >= own.at ? s.lastEvent.phase : ownFields;
              const phase = phaseFields(w, current, vm.memory, [...path, "workload"], n);
              s.lastEvent = { at, phase };
              return phase;
            },
            (vmsList, phase) => ({ at, kind: "workload", vms: vmsList, phase: { ...phase, pattern: { ...phase.pattern } } }),
            (p) => `${p.active}|${p.touchRate}|${p.writeRatio}|${patternKey(p.pattern)}`,
          );
        }
        break;
      }
    }
  });
  return out;
}
