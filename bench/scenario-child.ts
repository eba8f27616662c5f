// One whole scenario for bench/scenarios.bench.ts, in a process of its own so its peak RSS is its
// own: `tsx bench/scenario-child.ts FILE|default [SECONDS]`. Runs it as `vmemsim run` does (samples
// every sampleEvery, no files) and prints one JSON line: wall and CPU seconds, simulated seconds,
// peak RSS, the engine's linear memory and the guest pages.
import { readFileSync } from "node:fs";
import { createSimulation } from "../src/sim/simulation.js";
import { parseScenarioText } from "../src/scenario/load.js";
import { DEFAULT_SCENARIO_YAML } from "../src/scenario/default.js";

const [file, seconds] = process.argv.slice(2);
const sc = file === "default" ? parseScenarioText(DEFAULT_SCENARIO_YAML) : parseScenarioText(readFileSync(file, "utf8"), file);
if (seconds) sc.duration = Number(seconds);
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const sim = await createSimulation(sc);
let samples = 0;
await sim.run({ onSample: () => samples++ });
const wall = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  name: sc.name,
  simulated: sim.time,
  wall,
  cpu: (cpu.user + cpu.system) / 1e6,
  samples,
  maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  engineBytes: sim.engine.raw.memoryBytes() >>> 0,
  guestPages: sc.vms.reduce((a, v) => a + v.memory / 4096, 0),
}));
