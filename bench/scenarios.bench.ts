// Whole scenarios: the built-in default (64 GiB host, 12 VMs, 25M guest pages, 2 simulated hours)
// and examples/large.yaml (1 TiB host, 128 VMs, 268M guest pages, 1 simulated hour). Each runs
// once in a child process (bench/scenario-child.ts): wall and CPU seconds, simulated seconds per
// wall second, peak RSS, engine bytes per guest page. Goals: default under 10 s, large under 120 s.
// `--quick`: 10 simulated minutes of each.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRecord } from "./lib.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default async function (ctx: BenchContext): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const runs = [
    { label: "default scenario", arg: "default", goal: 10 },
    { label: "large scenario (examples/large.yaml)", arg: here("../examples/large.yaml"), goal: 120 },
  ];
  for (const r of runs) {
    const args = ["--import", "tsx", here("./scenario-child.ts"), r.arg, ...(ctx.quick ? ["600"] : [])];
    const child = spawnSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 20 });
    if (child.status !== 0) {
      out.push({ suite: "scenarios", name: r.label, value: NaN, unit: "", note: `failed: ${child.stderr.trim().split("\n").pop()}` });
      continue;
    }
    const m = JSON.parse(child.stdout.trim().split("\n").pop()!);
    const sim = `${m.simulated} s simulated`;
    out.push({ suite: "scenarios", name: `${r.label}: wall time`, value: round(m.wall), unit: "s", note: `${sim}; goal < ${r.goal} s${ctx.quick ? " for the full run" : ""}` });
    out.push({ suite: "scenarios", name: `${r.label}: CPU time`, value: round(m.cpu), unit: "s", note: "user + system, one process" });
    out.push({ suite: "scenarios", name: `${r.label}: simulated seconds per wall second`, value: Math.round(m.simulated / m.wall), unit: "x" });
    out.push({ suite: "scenarios", name: `${r.label}: peak RSS`, value: m.maxRssMiB, unit: "MiB" });
    out.push({ suite: "scenarios", name: `${r.label}: engine memory per guest page`, value: round(m.engineBytes / m.guestPages), unit: "B/page", note: `${round(m.engineBytes / 2 ** 30)} GiB of linear memory for ${m.guestPages} guest pages` });
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
