// `npm run bench`: runs every bench/*.bench.ts suite (tinybench inside each) and prints one
// markdown table for docs/benchmarks.md, with the machine and date. `--quick` for small sizes;
// `--only WORD` runs the suites whose file name contains WORD.
import { readdirSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";
import type { BenchContext, BenchRecord } from "./lib.js";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const ctx: BenchContext = { quick: args.includes("--quick") };
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;

const load0 = loadavg()[0]; // the machine may be shared: its load is part of the conditions
const records: BenchRecord[] = [];
for (const file of readdirSync(here).filter((f) => f.endsWith(".bench.ts") && (!only || f.includes(only))).sort()) {
  process.stderr.write(`bench: ${file} …\n`);
  const mod = await import(pathToFileURL(join(here, file)).href);
  for (const r of await mod.default(ctx)) {
    records.push(r);
    process.stderr.write(`  ${r.name}: ${r.value} ${r.unit}\n`);
  }
}

console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${load0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end; ${new Date().toISOString().slice(0, 10)}; \`npm run bench${args.length ? " -- " + args.join(" ") : ""}\`\n`);
console.log("| suite | measurement | value | unit | note |\n|---|---|---|---|---|");
for (const r of records) console.log(`| ${r.suite} | ${r.name} | ${r.value} | ${r.unit} | ${r.note ?? ""} |`);
