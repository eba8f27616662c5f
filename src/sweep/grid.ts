// Parameter sweeps: the grid of a sweep and its points. Browser-safe (no Node modules): the CLI
// (src/cli/sweep.ts) runs the points on worker threads and writes their folders; docs/sweeps.md.
//
// A parameter is a path into the scenario document (the YAML/JSON as written, before units are
// read) and a list of values:
//   host.memory=[48GiB,64GiB,96GiB]      a field, by dotted path
//   Mem.IdleTax=[0,75]                   an ESXi host setting: host.settings["Mem.IdleTax"]
//   ksm.pages_to_scan=[100,1000]         a KSM knob: host.ksm.pages_to_scan
//   vms.web.memory=[4GiB,8GiB]           the field of the VM (or group) named web; vms.* = every VM
//   vms.db.sched.mem.maxmemctl=[0,-1]    a per-VM setting: vms[…].settings["sched.mem.maxmemctl"]
//   vms[0].workload[1].touchRate=[…]     indices in brackets; ["odd.key"] quotes a key
//   seed=1..10                           integers from 1 to 10 (a..b or a..b:step)
// The points are the cross product of the parameters' values, the first parameter varying
// slowest. Values are set into a copy of the document, which the scenario loader then checks as
// it checks any scenario, units and all.
import { parse as parseYaml } from "yaml";
import { HOST_SETTINGS, KSM_KNOBS, VM_SETTINGS } from "../scenario/settings.js";

export type Value = string | number | boolean | null;
type Doc = Record<string, unknown>;

/** A mistake in a sweep's parameters: exit 2, the message names the parameter. */
export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SweepError";
  }
}

export interface Param {
  /** as the user wrote it: the column name of the combined table */
  name: string;
  path: PathSeg[];
  values: Value[];
}

/** A path segment: a key, an index, or a selection of `vms` entries by name ("*": all). */
export type PathSeg = { key: string } | { index: number } | { vms: string };

export interface Point {
  /** position in the cross product, 0-based */
  index: number;
  /** one value per parameter, in the parameters' order */
  values: Value[];
  /** folder name: the index and the values, safe on every file system */
  dir: string;
}

const MAX_POINTS = 100_000;
const MAX_RANGE = 100_000;

/** `PATH=VALUES` as given to --param. */
export function parseParam(spec: string): Param {
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new SweepError(`--param ${JSON.stringify(spec)}: expected PATH=VALUES, e.g. host.memory=[48GiB,64GiB] or seed=1..5`);
  const name = spec.slice(0, eq).trim();
  return { name, path: parsePath(name), values: parseValues(name, spec.slice(eq + 1).trim()) };
}

/** A parameter from a sweep file's `params` mapping (values: a list, a range string or one value). */
export function paramOf(name: string, values: unknown): Param {
  let list: Value[];
  if (Array.isArray(values)) list = values.map((v) => scalar(name, v));
  else if (typeof values === "string") list = parseValues(name, values);
  else list = [scalar(name, values)];
  if (list.length === 0) throw new SweepError(`parameter ${name}: no values`);
  return { name, path: parsePath(name), values: list };
}

function scalar(name: string, v: unknown): Value {
  if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  throw new SweepError(`parameter ${name}: values must be numbers, strings or booleans (got ${JSON.stringify(v)})`);
}

function parseValues(name: string, text: string): Value[] {
  const range = /^(-?\d+)\.\.(-?\d+)(?::(\d+))?$/.exec(text);
  if (range) {
    const [a, b, step] = [Number(range[1]), Number(range[2]), Number(range[3] ?? 1)];
    if (step <= 0 || b < a) throw new SweepError(`parameter ${name}: range ${text} must go up (a..b with a <= b, step >= 1)`);
    if ((b - a) / step + 1 > MAX_RANGE) throw new SweepError(`parameter ${name}: range ${text} has more than ${MAX_RANGE} values`);
    const out: number[] = [];
    for (let v = a; v <= b; v += step) out.push(v);
    return out;
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text.startsWith("[") ? text : `[${text}]`);
  } catch (err) {
    throw new SweepError(`parameter ${name}: cannot read the values ${JSON.stringify(text)}: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!Array.isArray(parsed)) throw new SweepError(`parameter ${name}: values must be a list such as [1,2,3] or a range 1..3`);
  if (parsed.length === 0) throw new SweepError(`parameter ${name}: the list of values is empty`);
  return parsed.map((v) => scalar(name, v));
}

/** The path of a parameter name, with its shorthands resolved. */
export function parsePath(name: string): PathSeg[] {
  if (name in HOST_SETTINGS) return [{ key: "host" }, { key: "settings" }, { key: name }];
  const ksm = /^ksm\.(\w+)$/.exec(name);
  if (ksm && ksm[1] in KSM_KNOBS) return [{ key: "host" }, { key: "ksm" }, { key: ksm[1] }];
  const segs: PathSeg[] = [];
  let i = 0;
  while (i < name.length) {
    if (name[i] === ".") {
      i++;
      continue;
    }
    if (name[i] === "[") {
      const close = name.indexOf("]", i);
      if (close < 0) throw new SweepError(`parameter ${name}: unclosed [`);
      const inner = name.slice(i + 1, close).trim();
      if (/^\d+$/.test(inner)) segs.push({ index: Number(inner) });
      else if (/^".*"$|^'.*'$/.test(inner)) segs.push({ key: inner.slice(1, -1) });
      else throw new SweepError(`parameter ${name}: [${inner}] must be an index or a quoted key`);
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < name.length && name[j] !== "." && name[j] !== "[") j++;
    segs.push({ key: name.slice(i, j) });
    i = j;
  }
  if (segs.length === 0) throw new SweepError(`parameter ${JSON.stringify(name)}: empty path`);
  // host.settings.Mem.IdleTax: a setting's name has dots of its own
  const keys = segs.map((s) => ("key" in s ? s.key : null));
  if (keys[0] === "host" && keys[1] === "settings" && keys.slice(2).join(".") in HOST_SETTINGS) {
    return [{ key: "host" }, { key: "settings" }, { key: keys.slice(2).join(".") }];
  }
  // vms.NAME…: the entries named NAME (or *), then a VM setting may be written without `settings`
  const first = segs[0];
  if ("key" in first && first.key === "vms" && segs.length > 1 && "key" in segs[1]) {
    let rest = segs.slice(2);
    if (rest.length > 1 && "key" in rest[0] && rest[0].key === "settings") rest = rest.slice(1);
    const tail = rest.map((s) => ("key" in s ? s.key : "")).join(".");
    if (tail in VM_SETTINGS) return [first, { vms: segs[1].key }, { key: "settings" }, { key: tail }];
    rest = segs.slice(2);
    return [first, { vms: segs[1].key }, ...rest];
  }
  return segs;
}

/** The cross product of the parameters' values (the first parameter varies slowest). */
export function crossProduct(params: Param[]): Point[] {
  const total = params.reduce((n, p) => n * p.values.length, 1);
  if (total > MAX_POINTS) throw new SweepError(`the sweep has ${total} points; at most ${MAX_POINTS} are allowed`);
  const points: Point[] = [];
  const width = String(Math.max(0, total - 1)).length;
  for (let index = 0; index < total; index++) {
    let rest = index;
    const values: Value[] = new Array(params.length);
    for (let p = params.length - 1; p >= 0; p--) {
      const n = params[p].values.length;
      values[p] = params[p].values[rest % n];
      rest = Math.floor(rest / n);
    }
    points.push({ index, values, dir: dirName(index, width, params, values) });
  }
  return points;
}

function dirName(index: number, width: number, params: Param[], values: Value[]): string {
  const label = params.map((p, i) => `${p.name}=${String(values[i])}`).join("_");
  const safe = label.replace(/[^A-Za-z0-9.=+-]+/g, "_").slice(0, 150);
  return `${String(index).padStart(width, "0")}${safe ? `_${safe}` : ""}`;
}

/** `--shard i/n` (1 <= i <= n): the points with index mod n = i − 1. */
export function parseShard(spec: string): { i: number; n: number } {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n >= 1) || !(i >= 1) || i > n) throw new SweepError(`--shard must be i/n with 1 <= i <= n, e.g. 2/8 (got ${JSON.stringify(spec)})`);
  return { i, n };
}

export function inShard(point: Point, shard: { i: number; n: number }): boolean {
  return point.index % shard.n === shard.i - 1;
}

/** A deep copy of the scenario document with the point's values set. */
export function applyPoint(doc: Doc, params: Param[], values: Value[]): Doc {
  const copy = structuredClone(doc);
  params.forEach((p, i) => setPath(copy, p, values[i]));
  return copy;
}

function setPath(doc: Doc, param: Param, value: Value): void {
  let targets: unknown[] = [doc];
  const where: string[] = [];
  param.path.forEach((seg, s) => {
    const last = s === param.path.length - 1;
    const next: unknown[] = [];
    for (const t of targets) {
      if ("vms" in seg) {
        const list = t; // the document's vms list (the segment before)
        if (!Array.isArray(list)) throw new SweepError(`parameter ${param.name}: the scenario has no vms list`);
        const chosen = list.filter((v) => seg.vms === "*" || (v && typeof v === "object" && (v as Doc).name === seg.vms));
        if (chosen.length === 0) {
          const names = list.map((v) => (v && typeof v === "object" ? (v as Doc).name : undefined)).filter((n) => typeof n === "string");
          throw new SweepError(`parameter ${param.name}: no VM entry named ${JSON.stringify(seg.vms)} (the scenario's vms: ${names.join(", ") || "none named"}; * means all)`);
        }
        next.push(...chosen);
        continue;
      }
      const key = "key" in seg ? seg.key : seg.index;
      if (t === null || typeof t !== "object") throw new SweepError(`parameter ${param.name}: ${where.join(".") || "the document"} is not a mapping or list`);
      if ("index" in seg && !Array.isArray(t)) throw new SweepError(`parameter ${param.name}: ${where.join(".")} is not a list`);
      if ("index" in seg && seg.index >= (t as unknown[]).length) throw new SweepError(`parameter ${param.name}: ${where.join(".")} has no entry [${seg.index}]`);
      if (["__proto__", "constructor", "prototype"].includes(String(key))) throw new SweepError(`parameter ${param.name}: ${String(key)} is not a scenario field`);
      const obj = t as Record<string | number, unknown>;
      if (last) obj[key] = value;
      else {
        if (obj[key] === undefined || obj[key] === null) obj[key] = {};
        next.push(obj[key]);
      }
    }
    where.push("key" in seg ? seg.key : "index" in seg ? `[${seg.index}]` : seg.vms);
    targets = next;
  });
}
