// The long run of the property test: random scenarios from test/arbitraries.ts (10,000 by
// default), each run from its YAML with --check (page and machine-memory conservation every tick)
// and the counter checks of test/invariants.ts on every sample. A failure is shrunk by fast-check
// and written as YAML; the result goes in docs/validation.md ("Random scenarios").
//
//   npx tsx scripts/fuzz-scenarios.ts [--runs 10000] [--seed 1] [--size medium|small] [--jobs 2]
//                                     [--failures DIR (out/fuzz-failures)] [--quiet]
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

interface Failure {
  /** the message with its numbers taken out: failures of one kind share it */
  kind: string;
  message: string;
  /** scenarios that failed this way */
  count: number;
  seed: number;
  path: string;
  /** the first one, shrunk */
  yaml: string;
}

interface Result {
  runs: number;
  seconds: number;
  ticks: number;
  samples: number;
  identities: number;
  /** scenarios refused before running (tables the engine cannot hold) */
  refused: number;
  /** scenarios in which each thing happened at least once */
  coverage: Record<string, number>;
  failures: Failure[];
}

const kindOf = (message: string) => message.split("\n")[0].replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/g, "N").replace(/VM [\w.-]+/g, "VM X");

/**
 * `runs` scenarios from seed `seed`. A failing scenario does not end the run: it is counted, the
 * first of each kind is shrunk (fast-check replays it by seed and path), and the run goes on with
 * a fresh seed for the rest.
 */
async function work(runs: number, seed: number, size: typeof SMALL): Promise<Result> {
  const result: Result = { runs: 0, seconds: 0, ticks: 0, samples: 0, identities: 0, refused: 0, coverage: {}, failures: [] };
  const t0 = performance.now();
  const seen = (key: string) => (result.coverage[key] = (result.coverage[key] ?? 0) + 1);
  let counting = true; // off while fast-check shrinks a failure
  const property = fc.asyncProperty(scenarioArb(size), async (input: ScenarioInput) => {
    if (counting && ++result.runs % 250 === 0) process.send?.({ progress: result.runs });
    // each run has its own WASM instance; collect the old ones' linear memory before it piles up
    if (result.runs % 20 === 0) (globalThis as { gc?: () => void }).gc?.();
    const r: RunReport = await runChecked(input);
    if (!counting) return;
    if (r.refused) result.refused++;
    result.ticks += r.ticks;
    result.samples += r.samples;
    result.identities += r.identities;
    for (const [k, v] of Object.entries(r.peak)) if (v) seen(k === "lowState" ? "host reached the low state" : `${k} > 0`);
    for (const k of Object.keys(r.events)) seen(`event ${k}`);
    const vms = input.vms as { count?: number; guest?: { os?: string } }[];
    if (vms.some((v) => (v.count ?? 1) > 1)) seen("VM groups (count > 1)");
    if (vms.some((v) => v.guest?.os === "windows")) seen("Windows guests (boot zeroing)");
    if ((input.host as { policy?: string }).policy === "ksm") seen("policy ksm");
  });
  let s = seed;
  while (result.runs < runs) {
    const out = await fc.check(property, { numRuns: runs - result.runs, seed: s, endOnFailure: true });
    if (!out.failed) break;
    const message = out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance);
    const kind = kindOf(message);
    const known = result.failures.find((f) => f.kind === kind);
    if (known) known.count++;
    else {
      counting = false;
      const shrunk = await fc.check(property, { seed: s, path: out.counterexamplePath ?? undefined });
      counting = true;
      const input = (shrunk.counterexample ?? out.counterexample)?.[0];
      const why = shrunk.errorInstance instanceof Error ? shrunk.errorInstance.message : message;
      result.failures.push({ kind, message: why.split("\n")[0], count: 1, seed: s, path: out.counterexamplePath ?? "", yaml: input ? toYaml(input) : "" });
    }
    s += 1_000_003; // the rest from another stream
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "10000" },
      seed: { type: "string", default: "1" },
      size: { type: "string", default: "medium" },
      jobs: { type: "string", default: String(Math.min(2, availableParallelism())) },
      failures: { type: "string", default: "out/fuzz-failures" },
      worker: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
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
  const done: number[] = Array.from({ length: jobs }, () => 0);
  const parts = await Promise.all(
    Array.from({ length: jobs }, (_, j) => {
      const n = Math.floor(runs / jobs) + (j < runs % jobs ? 1 : 0);
      return new Promise<Result>((resolve, reject) => {
        const child = fork(self, ["--worker", "--runs", String(n), "--seed", String(seed + j), "--size", String(values.size)], { execArgv: [...process.execArgv, "--expose-gc"] });
        let got: Result | undefined;
        child.on("message", (m) => {
          const msg = m as Result | { progress: number };
          if ("progress" in msg) {
            done[j] = msg.progress;
            if (!values.quiet) process.stderr.write(`\r${done.reduce((a, b) => a + b, 0)} / ${runs} scenarios, ${((performance.now() - t0) / 1000).toFixed(0)} s `);
          } else got = msg;
        });
        child.on("exit", (code) => (got ? resolve(got) : reject(new Error(`worker ${j} exited with ${code} without a result`))));
      });
    }),
  );
  if (!values.quiet) process.stderr.write("\n");
  const total: Result = { runs: 0, seconds: (performance.now() - t0) / 1000, ticks: 0, samples: 0, identities: 0, refused: 0, coverage: {}, failures: [] };
  for (const p of parts) {
    total.runs += p.runs;
    total.ticks += p.ticks;
    total.samples += p.samples;
    total.identities += p.identities;
    total.refused += p.refused;
    for (const [k, v] of Object.entries(p.coverage)) total.coverage[k] = (total.coverage[k] ?? 0) + v;
    for (const f of p.failures) {
      const known = total.failures.find((g) => g.kind === f.kind);
      if (known) known.count += f.count;
      else total.failures.push({ ...f });
    }
  }
  const failed = total.failures.reduce((a, f) => a + f.count, 0);
  console.log(`vmemsim fuzz: ${total.runs} scenarios (${values.size}, seeds from ${seed}, ${jobs} processes) in ${total.seconds.toFixed(0)} s`);
  console.log(`  ${total.ticks} ticks with --check, ${total.samples} samples, ${total.identities} counter checks; processes took ${parts.map((p) => `${p.seconds.toFixed(0)} s`).join(", ")}`);
  console.log(`  refused before running (engine tables too large): ${total.refused}`);
  console.log(`  cumulative counters watched: ${WATCHED_CUMULATIVE.vm.length} per VM, ${WATCHED_CUMULATIVE.host.length} host`);
  console.log("  scenarios in which …");
  for (const [k, v] of Object.entries(total.coverage).sort((a, b) => b[1] - a[1])) console.log(`    ${String(v).padStart(6)}  ${k}`);
  console.log(`  failed: ${failed} of ${total.runs}${failed ? `, ${total.failures.length} kinds:` : ""}`);
  if (failed === 0) return 0;
  mkdirSync(values.failures!, { recursive: true });
  total.failures.forEach((f, i) => {
    const file = join(values.failures!, `failure-${i + 1}.yaml`);
    writeFileSync(file, `# ${f.message}\n# ${f.count} scenarios failed this way; replay the first: VMEMSIM_FC_SEED=${f.seed} (path ${f.path})\n${f.yaml}`);
    console.log(`    ${String(f.count).padStart(6)}  ${f.message}\n            shrunk: ${file}`);
  });
  return 1;
}

process.exitCode = await main();
