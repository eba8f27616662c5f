// CSV rows for host.csv and vms.csv. Numbers are written in their shortest round-trip form, so
// the same run writes the same bytes.

export function csvField(v: number | string): string {
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

export function csvLine(values: readonly (number | string)[]): string {
  return values.map(csvField).join(",") + "\n";
}

export function csvRow<C extends string>(columns: readonly C[], row: Record<C, number | string>): string {
  return csvLine(columns.map((c) => row[c]));
}
