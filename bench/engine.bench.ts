// Engine core: page touches per second at 1M, 16M and 64M guest pages (4, 64 and 256 GiB of
// guest memory, every page already backed), uniform and zipf(0.9) over the whole memory, 30 %
// writes; and the built-in default scenario's wall time.
import { createSimulation } from "../src/sim/simulation.js";
import { parseScenarioText } from "../src/scenario/load.js";
import { DEFAULT_SCENARIO_YAML } from "../src/scenario/default.js";
import { scenario, vm, GiB } from "../test/helpers.js";
import { medianMs, type BenchContext, type BenchRecord } from "./lib.js";

const BATCH = 1_000_000;

export default async function (ctx: BenchContext): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const sizes = ctx.quick ? [2 ** 20] : [2 ** 20, 2 ** 24, 2 ** 26];
  for (const pages of sizes) {
    for (const pattern of [{ kind: "uniform" as const }, { kind: "zipf" as const, s: 0.9 }]) {
      const memory = pages * 4096;
      const sim = await createSimulation(
        scenario({
          hostMemory: 2 * memory + 4 * GiB,
          vms: [vm("a", { memory, workload: [{ at: 0, active: memory, touchRate: 0, pattern, writeRatio: 0.3 }] })],
        }),
      );
      // back every page first: the guest zeroes all of it, as Windows does at boot
      sim.engine.raw.powerOn(0, 0);
      sim.engine.raw.zeroSweep(0, pages);
      let epoch = 0;
      const ms = await medianMs(`touch ${pages}`, () => sim.engine.raw.touchVm(0, BATCH, epoch++ & 0xffff));
      out.push({ suite: "engine", name: `touches/s, ${pages / 2 ** 20}M pages, ${pattern.kind}`, value: Math.round(BATCH / (ms / 1000)), unit: "touches/s" });
    }
  }
  const sc = parseScenarioText(DEFAULT_SCENARIO_YAML);
  if (ctx.quick) sc.duration = 600;
  const ms = await medianMs("default scenario", async () => (await createSimulation(sc)).run(), { iterations: 1, time: 0 });
  out.push({ suite: "engine", name: `default scenario (${sc.duration} s simulated)`, value: Math.round(ms) / 1000, unit: "s wall" });
  return out;
}
