// `vmemsim sweep`: run the cross product of parameter values over a scenario, one simulation per
// worker thread (each its own WASM instance), one output folder per point, a combined table, and
// progress; `--shard i/n` runs a slice (batch systems), `--merge` joins the slices. The grid, the
// table and the pool are in src/sweep/ (browser-safe); this file is the Node side: files, worker
// threads, signals. docs/sweeps.md.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import cliProgress from "cli-progress";
import { parse as parseYaml } from "yaml";
import { normalizeScenario, ScenarioError } from "../scenario/load.js";
import { DEFAULT_SCENARIO_YAML } from "../scenario/default.js";
import { formatTime } from "../outputs/table.js";
import { parseTime } from "../scenario/units.js";
import { SweepError, applyPoint, inShard, parseParam, parseShard, type Param, type Point } from "../sweep/grid.js";
import { isSweepFile, makePlan, manifestOf, readSweepFile, sameSweep, type Manifest, type Plan } from "../sweep/plan.js";
import { runPool } from "../sweep/pool.js";
import { tableCsv, tableRow, type SummaryLike } from "../sweep/table.js";
import type { PointResult, PointTask } from "./sweep-worker.js";
import { UsageError, readScenarioText } from "./main.js";

import type { Io } from "./main.js";


const OPTIONS = {
  param: { type: "string", multiple: true },
  out: { type: "string" },
  jobs: { type: "string" },
  shard: { type: "string" },
  merge: { type: "boolean" },
  duration: { type: "string" },
  check: { type: "boolean" },
  force: { type: "boolean" },
  quiet: { type: "boolean" },
} as const;

type Doc = Record<string, unknown>;

export async function sweepCommand(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split("\n")[0]} (allowed options: ${Object.keys(OPTIONS).map((o) => `--${o}`).join(", ")})`);
  }
  const { values, positionals } = parsed;
  try {
    if (values.merge) return merge(values.out, positionals, io);
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (one FILE, or --merge DIR ...)`);
    return await sweep(positionals[0], values, io);
  } catch (err) {
    if (err instanceof SweepError) throw new UsageError(err.message);
    throw err;
  }
}

function parseDoc(text: string, source: string): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UsageError(`${source}: not valid YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** The plan of the sweep: base scenario (file, sweep file's scenario, or the default) and the grid. */
function plan(file: string | undefined, cliParams: string[], runArgs: string[]): Plan {
  let base: unknown;
  let source: string;
  let params: Param[] = [];
  if (file === undefined) {
    base = parseYaml(DEFAULT_SCENARIO_YAML);
    source = "default scenario";
  } else {
    const doc = parseDoc(readScenarioText(file), file);
    if (isSweepFile(doc)) {
      const sf = readSweepFile(doc);
      params = sf.params;
      if (typeof sf.scenario === "string") {
        const scenarioFile = resolve(dirname(file), sf.scenario);
        base = parseDoc(readScenarioText(scenarioFile), scenarioFile);
        source = scenarioFile;
      } else if (sf.scenario) {
        base = sf.scenario;
        source = file;
      } else {
        base = parseYaml(DEFAULT_SCENARIO_YAML);
        source = "default scenario";
      }
    } else {
      base = doc;
      source = file;
    }
  }
  if (!base || typeof base !== "object" || Array.isArray(base)) throw new UsageError(`${source}: the scenario must be a mapping`);
  const baseDoc = { ...(base as Doc) };
  // the base must be a valid scenario; its name is kept in every point's own file
  const defaultName = source === "default scenario" ? "default" : basename(source).replace(/\.(ya?ml|json)$/i, "");
  try {
    baseDoc.name = normalizeScenario(base, { defaultName }).name;
  } catch (err) {
    if (err instanceof ScenarioError) throw new UsageError(`${source}: ${err.message}`);
    throw err;
  }
  params = [...params, ...cliParams.map(parseParam)];
  if (params.length === 0) throw new UsageError("a sweep needs at least one parameter: --param PATH=[v1,v2,...] (or a sweep file's params)");
  return makePlan(source, baseDoc, params, runArgs);
}

/**
 * The point's document, checked as `run` checks a scenario and its --duration (throws UsageError
 * naming the point), and the hash `run` writes into summary.json for it.
 */
function checkPoint(p: Plan, point: Point, duration: number | null): { doc: Doc; hash: string } {
  const doc = applyPoint(p.base, p.params, point.values);
  const where = () => `point ${point.index} (${p.params.map((q, i) => `${q.name}=${String(point.values[i])}`).join(", ")})`;
  try {
    const scenario = normalizeScenario(doc);
    if (duration !== null) {
      const ticks = duration / scenario.tick;
      if (Math.abs(ticks - Math.round(ticks)) > 1e-9) throw new UsageError(`${where()}: --duration must be a multiple of the tick (${scenario.tick}s)`);
      scenario.duration = duration;
    }
    return { doc, hash: createHash("sha256").update(JSON.stringify(scenario)).digest("hex") };
  } catch (err) {
    if (err instanceof ScenarioError) throw new UsageError(`${where()}: ${err.message}`);
    throw err;
  }
}

function readSummary(dir: string): (SummaryLike & { scenarioHash?: string }) | null {
  try {
    return JSON.parse(readFileSync(join(dir, "summary.json"), "utf8"));
  } catch {
    return null;
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function readManifest(dir: string): Manifest | null {
  const f = join(dir, "sweep.json");
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, "utf8")) as Manifest;
  } catch (err) {
    throw new UsageError(`${f}: not a sweep manifest: ${(err as Error).message}`);
  }
}

/** Start a worker thread for one point; resolves when it ended (killed on abort). */
function runPointOnWorker(task: PointTask, signal: AbortSignal): Promise<PointResult> {
  const here = import.meta.url;
  let worker: Worker;
  if (here.endsWith(".ts")) {
    // from the TypeScript sources (tests, tsx): the worker loads them through tsx too
    const src = new URL("./sweep-worker.ts", here).href;
    worker = new Worker(`import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(src)}); })`, { eval: true, workerData: task });
  } else {
    worker = new Worker(new URL("./sweep-worker.js", here), { workerData: task });
  }
  return new Promise((resolvePoint) => {
    let result: PointResult | null = null;
    const kill = () => void worker.terminate();
    signal.addEventListener("abort", kill, { once: true });
    worker.on("message", (m: PointResult) => (result = m));
    worker.on("error", (err) => (result = { code: 1, stderr: `vmemsim: internal error: ${err.message}\n` }));
    worker.on("exit", (exitCode) => {
      signal.removeEventListener("abort", kill);
      resolvePoint(result ?? { code: signal.aborted ? 130 : 1, stderr: signal.aborted ? "" : `vmemsim: the worker exited with code ${exitCode}\n` });
    });
  });
}

async function sweep(file: string | undefined, values: Record<string, unknown>, io: Io): Promise<number> {
  // --duration goes to every point's run, as `run --duration` (phases and events past it never come)
  let duration: number | null = null;
  if (values.duration !== undefined) {
    try {
      duration = parseTime(values.duration as string);
    } catch {
      duration = NaN;
    }
    if (!(duration > 0)) throw new UsageError(`--duration must be a time such as 90s, 30m or 2h (got "${values.duration}")`);
  }
  const runArgs = [...(values.duration !== undefined ? ["--duration", values.duration as string] : []), ...(values.check ? ["--check"] : [])];
  const p = plan(file, (values.param as string[] | undefined) ?? [], runArgs);
  const shard = values.shard !== undefined ? parseShard(values.shard as string) : { i: 1, n: 1 };
  const jobs = values.jobs !== undefined ? Number(values.jobs) : availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024) throw new UsageError(`--jobs must be an integer from 1 to 1024 (got ${JSON.stringify(values.jobs)})`);
  const mine = p.points.filter((pt) => inShard(pt, shard));
  // every point of the slice is checked before anything runs
  const checked = new Map(mine.map((pt) => [pt.index, checkPoint(p, pt, duration)]));
  const name = String(p.base.name);
  const out = (values.out as string | undefined) ?? `sweep-${name.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
  const manifest = manifestOf(p);
  try {
    mkdirSync(out, { recursive: true });
  } catch (err) {
    throw new UsageError(`--out ${out}: cannot write there: ${(err as Error).message}`);
  }
  const existing = readManifest(out);
  if (existing && !sameSweep(existing, manifest)) {
    throw new UsageError(`--out ${out} holds another sweep (its sweep.json differs: base scenario or parameters); choose another folder or remove it`);
  }
  if (!existing) writeAtomic(join(out, "sweep.json"), JSON.stringify(manifest, null, 2) + "\n");

  const done = new Map<number, string>(); // point → status
  const todo: Point[] = [];
  for (const pt of mine) {
    const s = readSummary(join(out, pt.dir));
    if (!values.force && s && s.scenarioHash === checked.get(pt.index)!.hash) done.set(pt.index, "ok");
    else todo.push(pt);
  }
  const quiet = !!values.quiet;
  const total = mine.length;
  const started = new Set<number>();
  const t0 = performance.now();
  const pointT0 = new Map<number, number>();
  const bar =
    io.isTTY && !quiet
      ? new cliProgress.SingleBar({ stream: process.stderr, format: "{bar} {value}/{total} points | {running} running | ETA {eta_formatted}", hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
  bar?.start(total, done.size, { running: 0 });
  const workers = Math.min(jobs, Math.max(1, todo.length));
  if (!quiet && !bar) {
    io.stderr(`sweep: ${p.points.length} points${shard.n > 1 ? `, shard ${shard.i}/${shard.n}: ${total} of them` : ""}; ${done.size} done earlier, ${todo.length} to run on ${workers} worker thread${workers === 1 ? "" : "s"} → ${out}\n`);
  }
  const controller = new AbortController();
  let signalName: string | null = null;
  const stop = (sig: NodeJS.Signals) => {
    signalName = sig;
    controller.abort();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let failed = 0;
  try {
    await runPool(todo, {
      jobs,
      signal: controller.signal,
      onStart: (pt) => {
        started.add(pt.index);
        pointT0.set(pt.index, performance.now());
        bar?.update(done.size, { running: started.size });
      },
      start: (pt, signal) => {
        const dir = join(out, pt.dir);
        rmSync(dir, { recursive: true, force: true }); // a stale or partial result of this point
        return runPointOnWorker({ dir, doc: checked.get(pt.index)!.doc, args: p.runArgs }, signal);
      },
      onDone: (pt, r) => {
        started.delete(pt.index);
        const status = r.code === 0 ? "ok" : `error (exit ${r.code}): ${r.stderr.trim().replace(/^vmemsim: /, "").split("\n")[0]}`;
        if (r.code !== 0) failed++;
        done.set(pt.index, status);
        const secs = ((performance.now() - pointT0.get(pt.index)!) / 1000).toFixed(1);
        if (bar) bar.update(done.size, { running: started.size });
        else if (!quiet || r.code !== 0) io.stderr(`sweep: [${done.size}/${total}] ${pt.dir} ${status} (${secs} s)\n`);
      },
    });
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    bar?.stop();
  }
  if (controller.signal.aborted) {
    // nothing half-written: the points that were running lose their folders; finished ones stay
    for (const i of started) rmSync(join(out, p.points[i].dir), { recursive: true, force: true });
    io.stderr(`vmemsim: sweep interrupted: ${done.size} of ${total} points done and kept in ${out}; run the same command again to run the rest\n`);
    return signalName === "SIGTERM" ? 143 : 130;
  }
  const rows = mine.map((pt) => tableRow(pt, done.get(pt.index) ?? "not run", readSummary(join(out, pt.dir))));
  const tableFile = shard.n === 1 ? "sweep.csv" : `sweep-shard-${shard.i}-of-${shard.n}.csv`;
  writeAtomic(join(out, tableFile), tableCsv(p.params, rows));
  if (!quiet) {
    io.stderr(`sweep: ${total} points in ${formatTime((performance.now() - t0) / 1000)} wall${failed ? `, ${failed} failed` : ""}; table ${join(out, tableFile)}\n`);
  }
  return failed > 0 ? 1 : 0;
}

/** `sweep --merge [DIR ...] --out OUT`: every point's folder into OUT, and OUT/sweep.csv. */
function merge(outArg: string | undefined, dirs: string[], io: Io): number {
  const out = outArg ?? dirs[0];
  if (out === undefined) throw new UsageError("--merge needs --out DIR (the merged sweep), and the shards' folders if they are elsewhere");
  const sources = [out, ...dirs.filter((d) => resolve(d) !== resolve(out))];
  const manifests = sources.map((d) => [d, readManifest(d)] as const).filter((x): x is readonly [string, Manifest] => x[1] !== null);
  if (manifests.length === 0) throw new UsageError(`no sweep.json in ${sources.join(", ")}: nothing to merge`);
  const [firstDir, manifest] = manifests[0];
  for (const [d, m] of manifests) {
    if (!sameSweep(m, manifest)) throw new UsageError(`${d} holds another sweep than ${firstDir} (their sweep.json differ)`);
  }
  mkdirSync(out, { recursive: true });
  if (!existsSync(join(out, "sweep.json"))) writeAtomic(join(out, "sweep.json"), JSON.stringify(manifest, null, 2) + "\n");
  const missing: number[] = [];
  const rows: (string | number)[][] = [];
  const params = manifest.params.map((q) => ({ name: q.name, path: [], values: q.values }));
  for (const pt of manifest.points) {
    const from = sources.find((d) => readSummary(join(d, pt.dir)) !== null);
    if (from === undefined) {
      missing.push(pt.index);
      continue;
    }
    if (resolve(from) !== resolve(out)) {
      rmSync(join(out, pt.dir), { recursive: true, force: true });
      cpSync(join(from, pt.dir), join(out, pt.dir), { recursive: true });
    }
    rows.push(tableRow(pt, "ok", readSummary(join(out, pt.dir))));
  }
  if (missing.length > 0) {
    const list = missing.slice(0, 20).join(", ") + (missing.length > 20 ? ", …" : "");
    throw new UsageError(`cannot merge: ${missing.length} of ${manifest.points.length} points have no results in ${sources.join(", ")} (points ${list}); run their shards first`);
  }
  writeAtomic(join(out, "sweep.csv"), tableCsv(params, rows));
  io.stderr(`sweep: merged ${rows.length} points into ${join(out, "sweep.csv")}\n`);
  return 0;
}
