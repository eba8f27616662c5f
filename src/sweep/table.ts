// The sweep's combined table (sweep.csv): one row per point, its parameter values, then figures
// from the point's summary.json. Browser-safe; docs/sweeps.md lists the columns.
import { csvLine } from "../outputs/csv.js";
import { HOST_COLUMNS } from "../sim/counters.js";
import type { Param, Point, Value } from "./grid.js";

/** The part of a run's summary.json the table reads. */
export interface SummaryLike {
  simulatedSeconds?: number;
  host?: { final?: Record<string, number | string> | null; mean?: Record<string, number> };
  vms?: { name: string; final?: Record<string, number | string> }[];
  events?: { ok: boolean }[];
  wall?: { seconds?: number };
}

/** Host columns averaged over the run (mean.*), and the final free-memory state. */
const MEAN_COLUMNS = HOST_COLUMNS.filter((c) => c !== "time" && c !== "VMKMEM.state");
/** Per-VM columns summed over the VMs at the end of the run (sum.*). */
const VM_SUMS = ["GRANT", "SWCUR", "MCTLSZ", "ZIP", "SHRD", "STALLS"] as const;

export function tableColumns(params: Param[]): string[] {
  return [
    "point", "dir", ...params.map((p) => p.name), "status", "simulatedSeconds", "wallSeconds", "final.VMKMEM.state",
    "refusedEvents", ...MEAN_COLUMNS.map((c) => `mean.${c}`), ...VM_SUMS.map((c) => `sum.${c}`),
  ];
}

/** The row of a point: its values, `status` (ok, or what went wrong) and the summary's figures. */
export function tableRow(point: Point, status: string, summary: SummaryLike | null): (string | number)[] {
  const value = (v: Value): string | number => (typeof v === "number" ? v : String(v));
  const row: (string | number)[] = [point.index, point.dir, ...point.values.map(value), status];
  const mean = summary?.host?.mean ?? {};
  const vms = summary?.vms ?? [];
  row.push(
    summary?.simulatedSeconds ?? "",
    summary?.wall?.seconds ?? "",
    summary?.host?.final?.["VMKMEM.state"] ?? "",
    summary ? (summary.events ?? []).filter((e) => !e.ok).length : "",
    ...MEAN_COLUMNS.map((c) => (summary ? (mean[c] ?? "") : "")),
    ...VM_SUMS.map((c) => (summary ? round(vms.reduce((a, v) => a + (Number(v.final?.[c]) || 0), 0)) : "")),
  );
  return row;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export function tableCsv(params: Param[], rows: (string | number)[][]): string {
  return csvLine(tableColumns(params)) + rows.map((r) => csvLine(r)).join("");
}
