// `vmemsim run --esxtop FILE.csv`: the run in the layout of esxtop batch mode (`esxtop -b`), which
// is Windows perfmon CSV: a header row whose first cell is "(PDH-CSV 4.0) (UTC)(0)" and whose other
// cells name counters as "\\host\Object(instance)\Counter", then one row per sample with the
// sample time (MM/DD/YYYY HH:MM:SS) first and every value quoted. Host counters live under the
// object "Memory", each VM's under "Group Memory(id:name)", as esxtop names them, so readers of
// esxtop output (esxplot, VisualEsxtop, perfmon, spreadsheets, pandas) open the file.
// docs/outputs.md lists every header name. Browser-safe: strings in, strings out.
import { HOST_COLUMNS, VM_COLUMNS } from "../sim/counters.js";
import type { Sample } from "../sim/simulation.js";

/** The first header cell esxtop writes (perfmon's "PDH-CSV 4.0" with the UTC offset). */
export const PDH_HEADER = "(PDH-CSV 4.0) (UTC)(0)";

/** vmemsim's host columns → esxtop's counters of the `Memory` object. */
export const ESXTOP_HOST_NAMES: Readonly<Record<string, string>> = {
  "PMEM.total": "Machine MBytes",
  "PMEM.vmk": "Kernel MBytes",
  "PMEM.other": "NonKernel MBytes",
  "PMEM.free": "Free MBytes",
  "VMKMEM.minfree": "Kernel MinFree MBytes",
  "VMKMEM.state": "Kernel State",
  "PSHARE.shared": "PShare Shared MBytes",
  "PSHARE.common": "PShare Common MBytes",
  "PSHARE.saving": "PShare Savings MBytes",
  "SWAP.curr": "Swap Used MBytes",
  "SWAP.rclmtgt": "Swap Target MBytes",
  "SWAP.r/s": "Swap MBytes Read/sec",
  "SWAP.w/s": "Swap MBytes Write/sec",
  "ZIP.zipped": "Total Compressed MBytes",
  "ZIP.saved": "Total Saved By Compression MBytes",
  "MEMCTL.curr": "Memctl Current MBytes",
  "MEMCTL.target": "Memctl Target MBytes",
  "MEMCTL.max": "Memctl Max MBytes",
};

/** vmemsim's VM columns → esxtop's counters of the `Group Memory(id:name)` object. */
export const ESXTOP_VM_NAMES: Readonly<Record<string, string>> = {
  MEMSZ: "Memory Size MBytes",
  GRANT: "Memory Granted Size MBytes",
  CNSM: "Memory Consumed Size MBytes",
  SZTGT: "Target Size MBytes",
  TCHD: "Touched MBytes",
  TCHD_W: "Touched Write MBytes",
  "%ACTV": "% Active Estimate",
  "%ACTVS": "% Active Slow Estimate",
  "%ACTVF": "% Active Fast Estimate",
  "%ACTVN": "% Active Next Estimate",
  "MCTL?": "Memctl Installed",
  MCTLSZ: "Memctl MBytes",
  MCTLTGT: "Memctl Target MBytes",
  MCTLMAX: "Memctl Max MBytes",
  SWCUR: "Swapped MBytes",
  SWTGT: "Swap Target MBytes",
  "SWR/s": "Swap Read MBytes/sec",
  "SWW/s": "Swap Written MBytes/sec",
  "LLSWR/s": "LLSwap Read MBytes/sec",
  "LLSWW/s": "LLSwap Written MBytes/sec",
  CACHESZ: "Compression Cache Size MBytes",
  CACHEUSD: "Compression Cache Used MBytes",
  ZIP: "Compressed Memory MBytes",
  "ZIP/s": "Compression MBytes/sec",
  "UNZIP/s": "Decompression MBytes/sec",
  SHRD: "Shared MBytes",
  ZERO: "Zero MBytes",
  SHRDSVD: "Shared Saved MBytes",
  COWH: "Copy-On-Write Hint MBytes",
  OVHD: "Overhead MBytes",
  OVHDMAX: "Overhead Max MBytes",
  AMIN: "Memory Reservation MBytes",
  AMAX: "Memory Limit MBytes",
  ASHRS: "Memory Shares",
};

/** `Kernel State` is numeric in the CSV: the free-memory state's rank, best first. */
export const KERNEL_STATES = ["high", "clear", "soft", "hard", "low"] as const;

/** Columns that are not counters of their own (the time; the VM's name is in the instance). */
const SKIP = new Set(["time", "vm"]);

export interface EsxtopCsvOptions {
  /** the host name in `\\host\…` (default "vmemsim") */
  host?: string;
  /** wall-clock time of simulated second 0, ms since 1970 UTC (default 2000-01-01 00:00:00 UTC) */
  start?: number;
}

export const DEFAULT_START = Date.UTC(2000, 0, 1);

/**
 * The counter name of a column: esxtop's name where esxtop has the counter, else "vmemsim " and
 * the column's own name (counters esxtop does not have: TCHD.true, TOUCH/s, …). Columns added to
 * HOST_COLUMNS / VM_COLUMNS later appear by themselves this way.
 */
export function counterName(column: string, table: Readonly<Record<string, string>>): string {
  return table[column] ?? `vmemsim ${column}`;
}

/** A perfmon path part: backslashes would split it, so they are written as "/". */
function part(s: string): string {
  return s.replace(/\\/g, "/");
}

/** perfmon CSV: every cell quoted, quotes doubled. */
function cell(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function value(v: number | string | undefined): string {
  if (v === undefined) return "";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  return v;
}

/** MM/DD/YYYY HH:MM:SS in UTC, as esxtop writes its sample times. */
export function perfmonTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

/** Writes one run: `header()` once, then `row(sample)` per sample (VMs in scenario order). */
export class EsxtopCsv {
  readonly host: string;
  readonly start: number;
  private readonly hostCols: string[];
  private readonly vmCols: string[];

  constructor(
    readonly vmNames: readonly string[],
    opts: EsxtopCsvOptions = {},
    hostColumns: readonly string[] = HOST_COLUMNS,
    vmColumns: readonly string[] = VM_COLUMNS,
  ) {
    this.host = part(opts.host ?? "vmemsim");
    this.start = opts.start ?? DEFAULT_START;
    this.hostCols = hostColumns.filter((c) => !SKIP.has(c));
    this.vmCols = vmColumns.filter((c) => !SKIP.has(c));
  }

  /** The counter names of the header, without the first (time) cell. */
  names(): string[] {
    const h = `\\\\${this.host}`;
    const out = this.hostCols.map((c) => `${h}\\Memory\\${counterName(c, ESXTOP_HOST_NAMES)}`);
    this.vmNames.forEach((name, i) => {
      const group = `${h}\\Group Memory(${groupId(i)}:${part(name)})`;
      for (const c of this.vmCols) out.push(`${group}\\${counterName(c, ESXTOP_VM_NAMES)}`);
    });
    return out;
  }

  header(): string {
    return [PDH_HEADER, ...this.names()].map(cell).join(",") + "\n";
  }

  row(sample: Sample): string {
    const cells = [perfmonTime(this.start + Math.round(sample.time * 1000))];
    for (const c of this.hostCols) {
      const v = (sample.host as Record<string, number | string>)[c];
      cells.push(c === "VMKMEM.state" ? stateCode(v) : value(v));
    }
    for (let i = 0; i < this.vmNames.length; i++) {
      const vm = sample.vms[i] as Record<string, number | string> | undefined;
      for (const c of this.vmCols) cells.push(value(vm?.[c]));
    }
    return cells.map(cell).join(",") + "\n";
  }
}

/** esxtop's group ids are numbers; vmemsim numbers VMs in scenario order from 1000. */
export function groupId(index: number): number {
  return 1000 + index;
}

function stateCode(v: number | string | undefined): string {
  if (typeof v === "number") return value(v);
  const i = KERNEL_STATES.indexOf(v as (typeof KERNEL_STATES)[number]);
  return i < 0 ? "" : String(i);
}
