// The esxtop-like memory screen printed at the end of `vmemsim run`: the host lines of esxtop's
// memory header, then one row per VM.
import type { Sample } from "../sim/simulation.js";

const VM_TABLE = ["MEMSZ", "GRANT", "CNSM", "SZTGT", "TCHD", "MCTLSZ", "SWCUR", "ZIP", "SHRD", "ZERO", "OVHD", "LAT%"] as const;

function fmt(v: number | string): string {
  if (typeof v === "string") return v;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

export function esxtopScreen(sample: Sample): string {
  const h = sample.host;
  const lines = [
    `${formatTime(sample.time)} simulated`,
    `PMEM  /MB: ${fmt(h["PMEM.total"])} total: ${fmt(h["PMEM.vmk"])} vmk, ${fmt(h["PMEM.other"])} other, ${fmt(h["PMEM.free"])} free`,
    `VMKMEM/MB: ${fmt(h["VMKMEM.minfree"])} minfree, state ${h["VMKMEM.state"]}`,
    `PSHARE/MB: ${fmt(h["PSHARE.shared"])} shared, ${fmt(h["PSHARE.common"])} common: ${fmt(h["PSHARE.saving"])} saving`,
    `SWAP  /MB: ${fmt(h["SWAP.curr"])} curr, ${fmt(h["SWAP.rclmtgt"])} rclmtgt`,
    `ZIP   /MB: ${fmt(h["ZIP.zipped"])} zipped, ${fmt(h["ZIP.saved"])} saved`,
    `MEMCTL/MB: ${fmt(h["MEMCTL.curr"])} curr, ${fmt(h["MEMCTL.target"])} target, ${fmt(h["MEMCTL.max"])} max`,
    "",
  ];
  const header = ["NAME", ...VM_TABLE];
  const rows = sample.vms.map((vm) => [String(vm.vm) + (vm.on ? "" : " (off)"), ...VM_TABLE.map((c) => fmt(vm[c]))]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  lines.push(line(header), ...rows.map(line));
  return lines.join("\n") + "\n";
}

export function formatTime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(Math.floor(s)).padStart(2, "0")}`;
}
