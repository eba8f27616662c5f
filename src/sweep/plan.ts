// A sweep's plan: the base scenario document, the parameters, the points, and the manifest
// (sweep.json) every shard writes alike, so `sweep --merge` can tell slices of one sweep from
// slices of another. Browser-safe.
import { VERSION } from "../version.js";
import { SweepError, crossProduct, paramOf, type Param, type Point, type Value } from "./grid.js";

type Doc = Record<string, unknown>;

export interface Plan {
  /** where the base scenario came from (a file name, or "default scenario") */
  source: string;
  /** the base scenario document, as parsed (units unread) */
  base: Doc;
  params: Param[];
  points: Point[];
  /** options every point's `vmemsim run` gets (--duration, --check) */
  runArgs: string[];
}

export interface Manifest {
  vmemsim: string;
  source: string;
  params: { name: string; values: Value[] }[];
  points: { index: number; dir: string; values: Value[] }[];
  /** options of every point's run: `vmemsim run DIR/scenario.json --out DIR` + these reproduces a point */
  runArgs: string[];
  base: Doc;
}

/** A sweep file: `scenario` (a file name relative to it, or the scenario inline) and `params`. */
export interface SweepFile {
  scenario: string | Doc | undefined;
  params: Param[];
}

/** Whether a parsed document is a sweep file rather than a scenario. */
export function isSweepFile(doc: unknown): doc is Doc {
  return !!doc && typeof doc === "object" && !Array.isArray(doc) && "params" in doc && !("vms" in doc) && !("host" in doc);
}

export function readSweepFile(doc: Doc): SweepFile {
  for (const key of Object.keys(doc)) {
    if (key !== "scenario" && key !== "params") throw new SweepError(`sweep file: unknown key ${JSON.stringify(key)} (allowed: scenario, params)`);
  }
  const params = doc.params;
  if (!params || typeof params !== "object" || Array.isArray(params)) {
    throw new SweepError("sweep file: params must be a mapping of PATH: [values], e.g. { host.memory: [48GiB, 64GiB] }");
  }
  const scenario = doc.scenario;
  if (scenario !== undefined && typeof scenario !== "string" && (typeof scenario !== "object" || scenario === null || Array.isArray(scenario))) {
    throw new SweepError("sweep file: scenario must be a file name or a scenario mapping");
  }
  return { scenario: scenario as SweepFile["scenario"], params: Object.entries(params).map(([name, values]) => paramOf(name, values)) };
}

export function makePlan(source: string, base: Doc, params: Param[], runArgs: string[] = []): Plan {
  const names = new Set<string>();
  for (const p of params) {
    if (names.has(p.name)) throw new SweepError(`parameter ${p.name} is given twice`);
    names.add(p.name);
  }
  return { source, base, params, points: crossProduct(params), runArgs };
}

export function manifestOf(plan: Plan): Manifest {
  return {
    vmemsim: VERSION,
    source: plan.source,
    params: plan.params.map((p) => ({ name: p.name, values: p.values })),
    points: plan.points.map((p) => ({ index: p.index, dir: p.dir, values: p.values })),
    runArgs: plan.runArgs,
    base: plan.base,
  };
}

/** Whether two manifests describe the same sweep (same base document, parameters and points). */
export function sameSweep(a: Manifest, b: Manifest): boolean {
  return JSON.stringify({ ...a, vmemsim: "" }) === JSON.stringify({ ...b, vmemsim: "" });
}
