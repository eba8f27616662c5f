// The vmemsim command line: run, validate, schema. Exit 0 on success, 2 on bad input (a message
// naming the field and what is allowed), 1 on an internal error.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { ENGINE_BYTES_PER_PAGE, parseScenarioText, ScenarioError } from "../scenario/load.js";
import { MAX_TEXT_BYTES, scenarioJsonSchema } from "../scenario/schema.js";
import { parseTime } from "../scenario/units.js";
import { DEFAULT_SCENARIO_YAML } from "../scenario/default.js";
import type { Scenario } from "../scenario/types.js";
import { createSimulation, type Sample, type Simulation } from "../sim/simulation.js";
import { HOST_COLUMNS, VM_COLUMNS } from "../sim/counters.js";
import { csvLine, csvRow } from "../outputs/csv.js";
import { SummaryBuilder } from "../outputs/summary.js";
import { esxtopScreen, formatTime } from "../outputs/table.js";
import { OutDir } from "./outdir.js";
import { EsxtopCsv } from "../outputs/esxtop-csv.js";
import { ReportBuilder, reportDataFromFiles, reportHtml, ReportInputError } from "../report/index.js";
import { reportAssets } from "./assets.js";
import { VERSION } from "../version.js";
import { SWEEP_HELP } from "./sweep-help.js"; // issue 6

export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  isTTY: boolean;
}

/** A user mistake: printed without a stack, exit 2. */
export class UsageError extends Error {}

const HELP = `vmemsim ${VERSION}: page-level simulator of hypervisor memory management

Usage:
  vmemsim run [FILE] [options]   run a scenario (no FILE: the built-in default scenario)
  vmemsim validate FILE          check a scenario and print what it expands to
  vmemsim schema                 print the JSON Schema of the scenario format
  vmemsim report DIR             write DIR/report.html from DIR's host.csv, vms.csv, summary.json
  vmemsim sweep [FILE] --param PATH=[v1,v2,...] ...
                                 run the cross product of parameter values (docs/sweeps.md)
  vmemsim --help | --version

Options of run:
  --seed N            override the scenario's seed (integer 0 … 4294967295)
  --duration T        override the simulated duration (e.g. 90s, 30m, 2h)
  --out DIR           write host.csv, vms.csv and summary.json into DIR
  --format csv|jsonl  csv (default): files in --out; jsonl: stream samples to stdout
  --esxtop FILE.csv   also write the run in esxtop batch-mode (perfmon CSV) layout
  --report            also write DIR/report.html (needs --out DIR): charts, tables, the scenario
  --check             verify the conservation invariants after every tick (slow)
  --quiet             no progress bar and no summary table

${SWEEP_HELP}
Exit status: 0 success, 2 bad input, 1 internal error, 130/143 interrupted (SIGINT/SIGTERM). Docs: docs/scenarios.md, docs/outputs.md,
docs/reports.md.
`;

export async function main(argv: string[], io: Io): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    if (err instanceof ScenarioError || err instanceof UsageError || err instanceof ReportInputError) {
      io.stderr(`vmemsim: ${err.message}\n`);
      return 2;
    }
    io.stderr(failureText(err));
    return 1;
  }
}

/**
 * The message of an error that is not the user's input: an operating-system error (a file that
 * cannot be written, a full disk) as it is, anything else as an internal error (a bug in vmemsim:
 * InvariantError, EngineError with the scenario time and VM). VMEMSIM_DEBUG=1 adds the stack.
 */
function failureText(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const system = typeof (e as NodeJS.ErrnoException).syscall === "string";
  return `vmemsim: ${system ? "" : "internal error: "}${e.message}\n${process.env.VMEMSIM_DEBUG ? `${e.stack}\n` : ""}`;
}

/**
 * The simulation of a checked scenario. A RangeError while setting it up (before the first tick)
 * is a scenario the engine cannot take, so bad input (exit 2): the page tables and the
 * mechanisms' tables do not fit in the 4 GiB wasm32 address space (with the arithmetic), or
 * settings that contradict each other.
 */
async function setUp(scenario: Scenario, source: string, check: boolean): Promise<Simulation> {
  try {
    return await createSimulation(scenario, { check });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    let arithmetic = "";
    if (/cannot hold/.test(err.message)) {
      const pages = scenario.vms.reduce((a, v) => a + v.memory / 4096, 0);
      arithmetic = ` (page tables: ${pages} guest pages × ${ENGINE_BYTES_PER_PAGE} B = ${gib(pages * ENGINE_BYTES_PER_PAGE)} of the 4 GiB; configure less guest memory)`;
    }
    throw new UsageError(`${source}: the scenario cannot be simulated: ${err.message}${arithmetic}`);
  }
}

/** Exit status of a run stopped by a signal: 128 + the signal's number, as shells report it. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

async function dispatch(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.stdout(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v") {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
  if (command === "schema") {
    args(rest, {}, 0);
    io.stdout(JSON.stringify(scenarioJsonSchema, null, 2) + "\n");
    return 0;
  }
  if (command === "validate") {
    const { positionals } = args(rest, {}, 1);
    if (positionals.length !== 1) throw new UsageError("validate needs exactly one FILE");
    const sc = loadScenario(positionals[0]);
    await setUp(sc, positionals[0], false); // what run refuses before its first tick, validate refuses too
    io.stdout(
      `${positionals[0]}: valid: scenario "${sc.name}", ${sc.vms.length} VMs, ${gib(sc.vms.reduce((a, v) => a + v.memory, 0))} configured on a ${gib(sc.host.memory)} host, ${formatTime(sc.duration)} simulated, seed ${sc.seed}\n`,
    );
    return 0;
  }
  if (command === "run") return run(rest, io);
  if (command === "report") return report(rest, io);
  if (command === "sweep") return (await import("./sweep.js")).sweepCommand(rest, io); // issue 6
  throw new UsageError(`unknown command "${command}": allowed commands are run, validate, schema, report, sweep (see vmemsim --help)`);
}

const RUN_OPTIONS = {
  seed: { type: "string" },
  duration: { type: "string" },
  out: { type: "string" },
  format: { type: "string" },
  esxtop: { type: "string" },
  report: { type: "boolean" },
  check: { type: "boolean" },
  quiet: { type: "boolean" },
} as const;

function args<O extends Record<string, { type: "string" | "boolean" }>>(argv: string[], options: O, maxPositionals: number) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const allowed = Object.keys(options).map((o) => `--${o}`).join(", ");
    throw new UsageError(`${(err as Error).message.split("\n")[0]}${allowed ? ` (allowed options: ${allowed})` : ""}`);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}"`);
  }
  return parsed;
}

function loadScenario(file: string | undefined): Scenario {
  if (file === undefined) return parseScenarioText(DEFAULT_SCENARIO_YAML, "default scenario");
  return parseScenarioText(readScenarioText(file), file);
}

/**
 * The text of a scenario (or sweep) file, refused as a UsageError naming the file when it cannot
 * be read, is over 10 MiB (without reading it whole: /dev/zero), or is not UTF-8 text (binary,
 * NUL bytes, UTF-16, Latin-1).
 */
export function readScenarioText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readCapped(file, MAX_TEXT_BYTES + 1);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${file}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message}`);
  }
  if (bytes.length > MAX_TEXT_BYTES) {
    throw new UsageError(`${file}: the file is larger than the ${MAX_TEXT_BYTES / 2 ** 20} MiB a scenario may be`);
  }
  return decodeText(bytes, file);
}

/** Read at most `cap` bytes (so /dev/zero or a huge file cannot exhaust memory). */
function readCapped(file: string, cap: number): Buffer {
  const fd = openSync(file, "r");
  try {
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1 << 20, cap - total));
      const n = chunk.length === 0 ? 0 : readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** A scenario file is UTF-8 text (a UTF-8 byte-order mark is allowed); anything else is refused by name. */
function decodeText(bytes: Buffer, file: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new UsageError(`${file}: the file is UTF-16 text; save it as UTF-8`);
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new UsageError(`${file}: not a text file: it holds a NUL byte at offset ${nul} (a scenario is UTF-8 YAML or JSON)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const text = bytes.toString("utf8");
    const bad = text.indexOf("\uFFFD");
    const before = text.slice(0, Math.max(0, bad));
    const line = before.split("\n").length;
    const column = bad - before.lastIndexOf("\n");
    throw new UsageError(`${file}:${line}:${column}: not UTF-8 text (a scenario is UTF-8 YAML or JSON; binary file or another encoding?)`);
  }
}

function gib(bytes: number): string {
  return `${Math.round((bytes / 2 ** 30) * 100) / 100} GiB`;
}

async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = args(argv, RUN_OPTIONS, 1);
  const format = values.format ?? "csv";
  if (format !== "csv" && format !== "jsonl") throw new UsageError(`--format must be csv or jsonl (got "${format}")`);
  if (values.report && values.out === undefined) throw new UsageError("--report writes DIR/report.html: it needs --out DIR");
  const scenario = loadScenario(positionals[0]);
  if (values.seed !== undefined) {
    const seed = Number(values.seed);
    if (!/^\d+$/.test(values.seed) || seed > 2 ** 32 - 1) throw new UsageError(`--seed must be an integer from 0 to 4294967295 (got "${values.seed}")`);
    scenario.seed = seed;
  }
  if (values.duration !== undefined) {
    let d: number;
    try {
      d = parseTime(values.duration);
    } catch {
      throw new UsageError(`--duration must be a time such as 90s, 30m or 2h (got "${values.duration}")`);
    }
    const ticks = d / scenario.tick;
    if (!(d > 0) || Math.abs(ticks - Math.round(ticks)) > 1e-9) {
      throw new UsageError(`--duration must be a positive multiple of the scenario's tick (${scenario.tick}s) (got "${values.duration}")`);
    }
    scenario.duration = d;
  }

  const sim = await setUp(scenario, positionals[0] ?? "default scenario", values.check ?? false);
  let out: OutDir | null = null;
  if (values.out !== undefined) {
    try {
      out = new OutDir(values.out);
      out.write("host.csv", csvLine(HOST_COLUMNS));
      out.write("vms.csv", csvLine(VM_COLUMNS));
    } catch (err) {
      out?.abort();
      throw new UsageError(`--out ${values.out}: cannot write there: ${(err as Error).message}`);
    }
  }
  const summary = new SummaryBuilder();
  // --esxtop FILE: written atomically like --out (a temporary name beside FILE, renamed at the end)
  const esxtop = values.esxtop !== undefined ? new EsxtopCsv(sim.vms.map((v) => v.config.name)) : null;
  const esxtopName = values.esxtop !== undefined ? basename(values.esxtop) : "";
  let esxtopDir: OutDir | null = null;
  if (values.esxtop !== undefined) {
    try {
      esxtopDir = new OutDir(dirname(values.esxtop));
      esxtopDir.write(esxtopName, esxtop!.header());
    } catch (err) {
      out?.abort();
      esxtopDir?.abort();
      throw new UsageError(`--esxtop ${values.esxtop}: cannot write there: ${(err as Error).message}`);
    }
  }
  const reportData = values.report ? new ReportBuilder() : null;
  const quiet = values.quiet ?? false;
  const emit = (line: string) => io.stdout(line);
  const ticks = scenario.duration / scenario.tick;
  const bar =
    io.isTTY && !quiet && ticks >= 600
      ? new cliProgress.SingleBar({ stream: process.stderr, format: "{bar} {percentage}% | {sim} simulated | ETA {eta_formatted}", hideCursor: true }, cliProgress.Presets.shades_classic)
      : null;
  bar?.start(scenario.duration, 0, { sim: "0:00:00" });

  const controller = new AbortController();
  let signal: string | null = null;
  const stop = (sig: NodeJS.Signals) => {
    signal = sig;
    controller.abort();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const wall0 = performance.now();
  let last: Sample | null = null;
  try {
    const result = await sim.run({
      signal: controller.signal,
      onSample: (s) => {
        last = s;
        summary.add(s);
        if (out) {
          out.write("host.csv", csvRow(HOST_COLUMNS, s.host));
          for (const vm of s.vms) out.write("vms.csv", csvRow(VM_COLUMNS, vm));
        }
        esxtopDir?.write(esxtopName, esxtop!.row(s));
        reportData?.add(s);
        if (format === "jsonl") emit(JSON.stringify({ type: "sample", time: s.time, host: s.host, vms: s.vms, events: s.events }) + "\n");
        bar?.update(s.time, { sim: formatTime(s.time) });
      },
    });
    bar?.stop();
    if (result.aborted) {
      out?.abort();
      esxtopDir?.abort();
      const by = signal ?? "SIGINT";
      io.stderr(`vmemsim: interrupted at ${formatTime(result.time)} simulated (t=${result.time}s) by ${by}${out || esxtopDir ? "; no output written" : ""}\n`);
      return SIGNAL_EXIT[by] ?? 130;
    }
  } catch (err) {
    // an error during the run (EngineError, InvariantError with --check, a failed write): the
    // temporary files go, and the message says where the run stopped
    bar?.stop();
    out?.abort();
    esxtopDir?.abort();
    io.stderr(failureText(err));
    io.stderr(`vmemsim: stopped at ${formatTime(sim.time)} simulated (t=${sim.time}s)${out || esxtopDir ? "; no output written" : ""}\n`);
    return 1;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  const wall = (performance.now() - wall0) / 1000;
  let final: Sample;
  let written: string[] = [];
  try {
    final = last ?? sim.sample();
    const body = {
      vmemsim: VERSION,
      scenarioHash: createHash("sha256").update(JSON.stringify(scenario)).digest("hex"),
      ...summary.build(scenario.name, scenario.seed, sim.time),
      scenarioNormalized: scenario,
      wall: { seconds: Math.round(wall * 1000) / 1000, simulatedPerWallSecond: Math.round(sim.time / Math.max(wall, 1e-6)) },
    };
    if (format === "jsonl") emit(JSON.stringify({ type: "summary", ...body, scenarioNormalized: undefined }) + "\n");
    if (out) {
      out.write("summary.json", JSON.stringify(body, null, 2) + "\n");
      if (reportData) out.write("report.html", reportHtml(reportData.build(body, scenario), reportAssets()));
      written = out.commit();
    }
    if (esxtopDir) written.push(...esxtopDir.commit());
  } catch (err) {
    // the run is done but its summary or files failed: the temporary files go too
    out?.abort();
    esxtopDir?.abort();
    io.stderr(failureText(err));
    io.stderr(`vmemsim: stopped at ${formatTime(sim.time)} simulated (t=${sim.time}s), the end of the run, while writing its outputs${out || esxtopDir ? "; no output written" : ""}\n`);
    return 1;
  }
  if (!quiet) {
    const report = esxtopScreen(final) + `\n${scenario.name}: ${formatTime(sim.time)} simulated in ${wall.toFixed(2)} s wall, seed ${scenario.seed}${written.length ? `; wrote ${written.join(", ")}` : ""}\n`;
    if (format === "jsonl") io.stderr(report);
    else io.stdout(report);
  }
  return 0;
}

/** `vmemsim report DIR`: DIR/report.html from the files of a `vmemsim run --out DIR`. */
async function report(argv: string[], io: Io): Promise<number> {
  const { positionals } = args(argv, {}, 1);
  if (positionals.length !== 1) throw new UsageError("report needs exactly one DIR (the --out folder of a run)");
  const dir = positionals[0];
  const read = (name: string) => {
    const f = join(dir, name);
    if (!existsSync(f)) throw new UsageError(`${dir} has no ${name}: report reads host.csv, vms.csv and summary.json written by vmemsim run --out ${dir}`);
    return readFileSync(f, "utf8");
  };
  const data = reportDataFromFiles(read("host.csv"), read("vms.csv"), read("summary.json"));
  const out = new OutDir(dir);
  try {
    out.write("report.html", reportHtml(data, reportAssets()));
  } catch (err) {
    out.abort();
    throw err;
  }
  const [written] = out.commit();
  io.stdout(`wrote ${written}\n`);
  return 0;
}
