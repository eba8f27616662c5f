// Free-memory states of the host. Spec: esxi-memory.md §3.
// minFree by the sliding scale (ESXi 5.0+): 6 % of the first 4 GB, 4 % of 4-12 GB, 2 % of 12-28 GB,
// 1 % of the rest; or Mem.MemMinFreePct % of memory when that is non-zero.

const GB = 1024 ** 3;

/** minFree in bytes for a host whose VMkernel manages `memory` bytes. */
export function minFree(memory: number, minFreePct: number): number {
  if (minFreePct > 0) return (memory * minFreePct) / 100;
  const band = (lo: number, hi: number, pct: number) => (Math.max(0, Math.min(memory, hi) - lo) * pct) / 100;
  return band(0, 4 * GB, 6) + band(4 * GB, 12 * GB, 4) + band(12 * GB, 28 * GB, 2) + band(28 * GB, Infinity, 1);
}

export type MemState = "high" | "clear" | "soft" | "hard" | "low";
