// The long run of the property test: random scenarios from test/arbitraries.ts (10,000 by
// default), each run from its YAML with --check (page and machine-memory conservation every tick)
// and the counter checks of test/invariants.ts on every sample. A failure is shrunk by fast-check
// and written as YAML; the result goes in docs/validation.md ("Random scenarios").
//
//   npx tsx scripts/fuzz-scenarios.ts [--runs 10000] [--seed 1] [--size medium|small] [--jobs 2]
//                                     [--failures DIR]
//
// --jobs N splits the runs over N processes (seeds seed, seed+1, …); exit 1 if any scenario failed.
import { fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { MEDIUM, SMALL, scenarioArb, toYaml, type ScenarioInput } from "../test/arbitraries.js";
import { runChecked, WATCHED_CUMULATIVE, type RunReport } from "../test/invariants.js";

interface Result {
  runs: number;
  seconds: number;
  ticks: number;
  samples: number;
  identities: number;
  /** scenarios in which each thing happened at least once */
  coverage: Record<string, number>;
  failure?: { seed: number; path: string; message: string; yaml: string };
}

async function work(runs: number, seed: number, size: typeof SMALL): Promise<Result> {
  const result: Result = { runs: 0, seconds: 0, ticks: 0, samples: 0, identities: 0, coverage: {} };
  const t0 = performance.now();
  const seen = (key: string) => (result.coverage[key] = (result.coverage[key] ?? 0) + 1);
  let failed = false; // after the first failure, runs are fast-check shrinking it: not counted
  const out = await fc.check(
    fc.asyncProperty(scenarioArb(size), async (input: ScenarioInput) => {
      let r: RunReport;
      try {
        r = await runChecked(input);
      } catch (err) {
        failed = true;
        throw err;
      }
      if (failed) return;
      result.runs++;
      result.ticks += r.ticks;
      result.samples += r.samples;
      result.identities += r.identities;
      for (const [k, v] of Object.entries(r.peak)) if (v) seen(k === "lowState" ? "host reached the low state" : `${k} > 0`);
      for (const k of Object.keys(r.events)) seen(`event ${k}`);
      const vms = input.vms as { count?: number; guest?: { os?: string } }[];
      if (vms.some((v) => (v.count ?? 1) > 1)) seen("VM groups (count > 1)");
      if (vms.some((v) => v.guest?.os === "windows")) seen("Windows guests (boot zeroing)");
      if ((input.host as { policy?: string }).policy === "ksm") seen("policy ksm");
    }),
    { numRuns: runs, seed },
  );
  result.seconds = (performance.now() - t0) / 1000;
  if (out.failed) {
    result.failure = {
      seed,
      path: out.counterexamplePath ?? "",
      message: out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance),
      yaml: out.counterexample ? toYaml(out.counterexample[0]) : "",
    };
  }
  return result;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "10000" },
      seed: { type: "string", default: "1" },
      size: { type: "string", default: "medium" },
      jobs: { type: "string", default: String(Math.min(2, availableParallelism())) },
      failures: { type: "string", default: "fuzz-failures" },
      worker: { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  const seed = Number(values.seed);
  const size = values.size === "small" ? SMALL : MEDIUM;
  if (values.worker) {
    const r = await work(runs, seed, size);
    process.send!(r);
    return 0;
  }
  const jobs = Math.max(1, Number(values.jobs));
  const t0 = performance.now();
  const self = fileURLToPath(import.meta.url);
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, j) => {
      const n = Math.floor(runs / jobs) + (j < runs % jobs ? 1 : 0);
      return new Promise<Result>((resolve, reject) => {
        const child = fork(self, ["--worker", "--runs", String(n), "--seed", String(seed + j), "--size", String(values.size)], { execArgv: process.execArgv });
        let got: Result | undefined;
        child.on("message", (m) => (got = m as Result));
        child.on("exit", (code) => (got ? resolve(got) : reject(new Error(`worker ${j} exited with ${code} without a result`))));
      });
    }),
  );
  const total: Result = { runs: 0, seconds: (performance.now() - t0) / 1000, ticks: 0, samples: 0, identities: 0, coverage: {} };
  const failures = parts.flatMap((p) => (p.failure ? [p.failure] : []));
  for (const p of parts) {
    total.runs += p.runs;
    total.ticks += p.ticks;
    total.samples += p.samples;
    total.identities += p.identities;
    for (const [k, v] of Object.entries(p.coverage)) total.coverage[k] = (total.coverage[k] ?? 0) + v;
  }
  console.log(`vmemsim fuzz: ${total.runs} scenarios (${values.size}, seeds ${seed}…${seed + jobs - 1}, ${jobs} processes) in ${total.seconds.toFixed(0)} s`);
  console.log(`  ${total.ticks} ticks with --check, ${total.samples} samples, ${total.identities} counter checks; processes took ${parts.map((p) => `${p.seconds.toFixed(0)} s`).join(", ")}`);
  console.log(`  cumulative counters watched: ${WATCHED_CUMULATIVE.vm.length} per VM, ${WATCHED_CUMULATIVE.host.length} host`);
  console.log("  scenarios in which …");
  for (const [k, v] of Object.entries(total.coverage).sort((a, b) => b[1] - a[1])) console.log(`    ${String(v).padStart(6)}  ${k}`);
  if (failures.length === 0) {
    console.log("  failures: none");
    return 0;
  }
  mkdirSync(values.failures!, { recursive: true });
  for (const f of failures) {
    const file = join(values.failures!, `failure-seed${f.seed}.yaml`);
    writeFileSync(file, `# ${f.message.split("\n")[0]}\n# replay: VMEMSIM_FC_SEED=${f.seed} (path ${f.path})\n${f.yaml}`);
    console.log(`  FAILURE (seed ${f.seed}): ${f.message.split("\n")[0]}\n    shrunk scenario: ${file}`);
  }
  return 1;
}

process.exitCode = await main();
