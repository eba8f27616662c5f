// Shared by the bench/*.bench.ts suites: a tinybench measurement and the record every suite
// returns, which bench/run.ts prints as the table pasted into docs/benchmarks.md.
import { Bench } from "tinybench";

export interface BenchRecord {
  suite: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export interface BenchContext {
  /** smaller sizes and fewer iterations (bench --quick) */
  quick: boolean;
}

/** Median wall milliseconds of `fn` over tinybench's samples (warm-up included, not counted). */
export async function medianMs(name: string, fn: () => unknown, opts: { iterations?: number; time?: number } = {}): Promise<number> {
  const bench = new Bench({ name, iterations: opts.iterations ?? 10, time: opts.time ?? 500, warmupIterations: 2, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== "completed") throw new Error(`benchmark ${name} did not complete: ${r.state}`);
  return r.latency.p50 ?? r.latency.mean;
}
