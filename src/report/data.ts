// What a report shows, gathered either from the samples of a run as it goes (ReportBuilder) or
// from the files of an output folder (reportDataFromFiles: host.csv, vms.csv, summary.json).
// Columnar: one array per column, so the data inlined in the HTML stays compact. Browser-safe.
import { stringify } from "yaml";
import type { EventRecord, Sample } from "../sim/simulation.js";
import type { Scenario } from "../scenario/types.js";
import type { ChartSource } from "./charts.js";

export type Cell = number | string | null;

export interface ReportVm {
  name: string;
  cols: Record<string, Cell[]>;
}

export interface ReportData extends ChartSource {
  /** vmemsim version that ran the simulation */
  vmemsim: string;
  name: string;
  seed: number;
  simulatedSeconds: number;
  time: number[];
  host: Record<string, Cell[]>;
  vms: ReportVm[];
  /** final and mean counters (summary.json's `host` and `vms`) */
  final: { host: Record<string, Cell>; vms: { name: string; final: Record<string, Cell>; mean: Record<string, number> }[]; hostMean: Record<string, number> };
  events: EventRecord[];
  /** the normalized scenario as YAML (sizes in bytes, times in seconds, defaults filled) */
  scenarioYaml: string;
  /** wall-clock figures of the run, when known */
  wall?: { seconds: number; simulatedPerWallSecond: number };
}

/** The parts of summary.json a report reads. */
export interface SummaryLike {
  vmemsim?: string;
  scenario: string;
  seed: number;
  simulatedSeconds: number;
  host: { final: Record<string, number | string> | null; mean: Record<string, number> };
  vms: { name: string; final: Record<string, number | string>; mean: Record<string, number> }[];
  events: EventRecord[];
  scenarioNormalized?: Scenario;
  wall?: { seconds: number; simulatedPerWallSecond: number };
}

export function scenarioYaml(scenario: Scenario | undefined): string {
  return scenario ? stringify(scenario, { lineWidth: 0 }) : "(the scenario is not in summary.json)\n";
}

/** Collects samples of a running simulation, column by column. */
export class ReportBuilder {
  readonly time: number[] = [];
  readonly host: Record<string, Cell[]> = {};
  readonly vms: ReportVm[] = [];
  readonly events: EventRecord[] = [];

  add(sample: Sample): void {
    const n = this.time.length;
    this.time.push(sample.time);
    push(this.host, sample.host as Record<string, Cell>, n);
    sample.vms.forEach((row, i) => {
      const name = String(row.vm);
      let vm = this.vms[i];
      if (!vm) vm = this.vms[i] = { name, cols: {} };
      push(vm.cols, row as Record<string, Cell>, n);
    });
    this.events.push(...sample.events);
  }

  /** The report of the run, with its summary (SummaryBuilder.build plus version, scenario, wall). */
  build(summary: SummaryLike, scenario?: Scenario): ReportData {
    return assemble(this.time, this.host, this.vms, summary, scenario);
  }
}

/** Append a row to columnar arrays; a column first seen late is padded with nulls. */
function push(cols: Record<string, Cell[]>, row: Record<string, Cell>, n: number): void {
  for (const [k, v] of Object.entries(row)) {
    if (k === "time" || k === "vm") continue;
    let a = cols[k];
    if (!a) a = cols[k] = new Array<Cell>(n).fill(null);
    a.push(v);
  }
  for (const a of Object.values(cols)) if (a.length === n) a.push(null);
}

function assemble(time: number[], host: Record<string, Cell[]>, vms: ReportVm[], summary: SummaryLike, scenario?: Scenario): ReportData {
  const sc = scenario ?? summary.scenarioNormalized;
  return {
    vmemsim: summary.vmemsim ?? "",
    name: summary.scenario,
    seed: summary.seed,
    simulatedSeconds: summary.simulatedSeconds,
    time,
    host,
    vms,
    final: {
      host: (summary.host.final ?? {}) as Record<string, Cell>,
      hostMean: summary.host.mean,
      vms: summary.vms.map((v) => ({ name: v.name, final: v.final as Record<string, Cell>, mean: v.mean })),
    },
    events: summary.events,
    scenarioYaml: scenarioYaml(sc),
    wall: summary.wall,
  };
}

/** Parse CSV as host.csv and vms.csv are written (src/outputs/csv.ts): RFC 4180 quoting. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
    i++;
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function cellOf(s: string): Cell {
  if (s === "") return null;
  return NUMBER.test(s) ? Number(s) : s;
}

/** The error for a malformed output folder: names the file and what is wrong. */
export class ReportInputError extends Error {}

/** A report from the text of host.csv, vms.csv and summary.json of one `vmemsim run --out`. */
export function reportDataFromFiles(hostCsv: string, vmsCsv: string, summaryJson: string): ReportData {
  let summary: SummaryLike;
  try {
    summary = JSON.parse(summaryJson) as SummaryLike;
  } catch (err) {
    throw new ReportInputError(`summary.json is not JSON: ${(err as Error).message}`);
  }
  if (!summary || typeof summary !== "object" || !Array.isArray(summary.vms) || !summary.host) {
    throw new ReportInputError("summary.json is not a vmemsim summary (no host or vms)");
  }
  const hostRows = parseCsv(hostCsv);
  const vmRows = parseCsv(vmsCsv);
  if (hostRows.length < 1 || hostRows[0][0] !== "time") throw new ReportInputError('host.csv has no header row starting with "time"');
  if (vmRows.length < 1 || vmRows[0][0] !== "time" || vmRows[0][1] !== "vm") throw new ReportInputError('vms.csv has no header row starting with "time,vm"');
  const hHead = hostRows[0];
  const time: number[] = [];
  const host: Record<string, Cell[]> = {};
  for (const c of hHead.slice(1)) host[c] = [];
  const index = new Map<number, number>();
  for (const [r, row] of hostRows.slice(1).entries()) {
    if (row.length !== hHead.length) throw new ReportInputError(`host.csv row ${r + 2} has ${row.length} fields, the header ${hHead.length}`);
    const t = Number(row[0]);
    index.set(t, time.length);
    time.push(t);
    hHead.slice(1).forEach((c, j) => host[c].push(cellOf(row[j + 1])));
  }
  const vHead = vmRows[0];
  const vms: ReportVm[] = [];
  const byName = new Map<string, ReportVm>();
  for (const [r, row] of vmRows.slice(1).entries()) {
    if (row.length !== vHead.length) throw new ReportInputError(`vms.csv row ${r + 2} has ${row.length} fields, the header ${vHead.length}`);
    const i = index.get(Number(row[0]));
    if (i === undefined) throw new ReportInputError(`vms.csv row ${r + 2}: time ${row[0]} is not a sample time of host.csv`);
    let vm = byName.get(row[1]);
    if (!vm) {
      vm = { name: row[1], cols: {} };
      for (const c of vHead.slice(2)) vm.cols[c] = new Array<Cell>(time.length).fill(null);
      byName.set(row[1], vm);
      vms.push(vm);
    }
    vHead.slice(2).forEach((c, j) => (vm.cols[c][i] = cellOf(row[j + 2])));
  }
  return assemble(time, host, vms, summary);
}
