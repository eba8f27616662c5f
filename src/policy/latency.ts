// The performance model's outputs: what the faults a VM's pages took cost it, per sample interval.
// docs/reclamation.md "What it costs".
//
// The engine does the accounting (assembly/workload.ts touchVm): a tick of `tick` seconds holds the
// workload's `touchRate × tick` touches of tick / count each; every fault a touch takes adds its
// latency (Vmemsim.Lat* settings: host swap-in from disk or SSD cache, decompression, COW break,
// guest page-file read, waiting for a machine page), so a VM that waits gets fewer touches done
// than it asked for. Fault time that does not fit the tick (or that happens outside the touch loop,
// e.g. double paging while the balloon inflates) is paid from the next tick. Nothing here is a
// fixed penalty per mechanism: every cost comes from a fault a page actually took.
//
// From the cumulative counters, over the interval since the previous row:
//   THRU%   touches done / touches demanded: relative throughput (100 = unhurt)
//   STALL%  share of the time the guest waited on faults of any kind
//   LAT%    share of the time it waited on host swap-ins or decompression (vCenter mem.latency)
// and the mechanisms' rates in MB/s as esxtop shows them.
import type { Engine } from "../engine.js";

const MB_PAGES = 256;

/** Per-interval figures of one VM. */
export interface PerfWindow {
  /** seconds the window covers (0: no interval yet) */
  seconds: number;
  /** touches done / demanded, % */
  thru: number;
  /** time waiting on any fault, % */
  stall: number;
  /** time waiting on host swap-in or decompression, % (mem.latency) */
  lat: number;
  /** MB/s */
  swapIn: number;
  swapOut: number;
  ssdIn: number;
  ssdOut: number;
  zipIn: number;
  zipOut: number;
  guestIn: number;
  guestOut: number;
}

const EMPTY: PerfWindow = {
  seconds: 0, thru: 100, stall: 0, lat: 0, swapIn: 0, swapOut: 0, ssdIn: 0, ssdOut: 0, zipIn: 0, zipOut: 0, guestIn: 0, guestOut: 0,
};

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The window between two counter snapshots of one VM (engine VM counter records). */
export function perfWindow(k: Readonly<Record<string, number>>, before: Float64Array, now: Float64Array, seconds: number): PerfWindow {
  if (!(seconds > 0)) return { ...EMPTY };
  const d = (i: number) => now[i] - before[i];
  const us = seconds * 1e6;
  const demand = d(k.C_DEMAND);
  const done = d(k.C_READS) + d(k.C_WRITES);
  const pct = (x: number) => round2(Math.min(100, Math.max(0, x)));
  const rate = (i: number) => round2(d(i) / MB_PAGES / seconds);
  return {
    seconds,
    thru: demand > 0 ? pct((done / demand) * 100) : 100,
    stall: pct((d(k.C_STALL_US) / us) * 100),
    lat: pct(((d(k.C_LAT_SWAP_US) + d(k.C_LAT_ZIP_US)) / us) * 100),
    swapIn: rate(k.C_SWAP_IN),
    swapOut: rate(k.C_SWAP_OUT),
    ssdIn: rate(k.C_SSD_IN),
    ssdOut: rate(k.C_SSD_OUT),
    zipIn: rate(k.C_ZIP_IN),
    zipOut: rate(k.C_ZIP_OUT),
    guestIn: rate(k.C_GSWAP_IN),
    guestOut: rate(k.C_GSWAP_OUT),
  };
}

/**
 * Interval figures per VM for the output rows: each call at a later time closes the interval since
 * the previous one; calls at the same time return the same figures.
 */
export class PerfMeter {
  private last: { time: number; counters: Float64Array; window: PerfWindow }[];

  constructor(private readonly engine: Engine, vms: number) {
    const zero = new Float64Array(engine.k.C_COUNTERS);
    this.last = Array.from({ length: vms }, () => ({ time: 0, counters: zero, window: { ...EMPTY } }));
  }

  window(vm: number, time: number): PerfWindow {
    const l = this.last[vm];
    if (time <= l.time) return l.window;
    const now = this.engine.vmCounters(vm);
    l.window = perfWindow(this.engine.k, l.counters, now, time - l.time);
    l.counters = now;
    l.time = time;
    return l.window;
  }
}
