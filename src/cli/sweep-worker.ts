// A sweep point on a worker thread (src/cli/sweep.ts starts one per point): the point's scenario
// goes to DIR/scenario.json and runs through `vmemsim run` itself, so a point's outputs are byte for
// byte those of `vmemsim run DIR/scenario.json --out DIR` (summary.json's wall figures aside).
import { parentPort, workerData } from "node:worker_threads";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main } from "./main.js";

export interface PointTask {
  dir: string;
  doc: Record<string, unknown>;
  /** extra options of `run` (--check) */
  args: string[];
}

export interface PointResult {
  code: number;
  stderr: string;
}

const task = workerData as PointTask;
mkdirSync(task.dir, { recursive: true });
const file = join(task.dir, "scenario.json");
writeFileSync(file, JSON.stringify(task.doc, null, 2) + "\n");
let stderr = "";
const code = await main(["run", file, "--out", task.dir, "--quiet", ...task.args], {
  stdout: () => {},
  stderr: (s) => (stderr += s),
  isTTY: false,
});
parentPort!.postMessage({ code, stderr } satisfies PointResult);
