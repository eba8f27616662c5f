// Scale: page touches/s, full-scan pages/s (the sampler's pass, the conservation recount), TPS and
// KSM scan pages/s and host-swap reclaim pages/s at 1M, 16M, 64M and 256M guest pages (4 GiB to
// 1 TiB of guest memory), each beside the reference model (test/reference/, where it fits in the
// V8 heap: up to 16M pages) and the floors (assembly/floor.ts: random reads of the same entries, a
// sequential read and a memory.copy of the same bytes), all in the same run. Bytes of engine memory
// per guest page and peak RSS per size. Each size runs in its own process (bench/scale-child.ts).
// `--quick`: 1M pages only.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRecord } from "./lib.js";

const child = fileURLToPath(new URL("./scale-child.ts", import.meta.url));

export default async function (ctx: BenchContext): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const sizes = ctx.quick ? [2 ** 20] : [2 ** 20, 2 ** 24, 2 ** 26, 2 ** 28];
  for (const pages of sizes) {
    for (const mode of ["tps", "ksm"]) {
      const r = spawnSync(process.execPath, ["--import", "tsx", child, String(pages), mode, ...(ctx.quick ? ["--quick"] : [])], {
        encoding: "utf8",
        maxBuffer: 16 << 20,
      });
      if (r.status !== 0) {
        const why = (r.stderr || String(r.signal)).trim().split("\n").filter(Boolean).pop();
        out.push({ suite: "scale", name: `${mode} run, ${pages / 2 ** 20}M pages`, value: NaN, unit: "", note: `failed: ${why}` });
        continue;
      }
      out.push(...(JSON.parse(r.stdout.trim().split("\n").pop()!) as BenchRecord[]));
    }
  }
  return out;
}
