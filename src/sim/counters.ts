// The counters a sample reports, named as esxtop names them (spec esxi-memory.md §9). Memory is
// in MB as esxtop shows it (MB = MiB), rates per second. docs/outputs.md documents every column;
// columns that a later mechanism fills read 0 until it lands.
import { minFree } from "../policy/states.js";
import type { Simulation, VmState } from "./simulation.js";
import { hostSharing, ksmCounters, vmSharing, KSM_COUNTER_NAMES } from "../policy/share.js"; // sharing (issue 3)

const MB_PAGES = 256; // 4 KiB pages per MB

export const HOST_COLUMNS = [
  "time", "PMEM.total", "PMEM.vmk", "PMEM.other", "PMEM.free", "VMKMEM.minfree", "VMKMEM.state",
  "PSHARE.shared", "PSHARE.common", "PSHARE.saving", "SWAP.curr", "SWAP.rclmtgt", "ZIP.zipped",
  "ZIP.saved", "MEMCTL.curr", "MEMCTL.target", "MEMCTL.max", "VMS.on",
  // sharing (issue 3): Linux KSM (host policy ksm) as /sys/kernel/mm/ksm names them; 0 under esxi
  ...KSM_COUNTER_NAMES.map((n) => `KSM.${n}` as const),
] as const;
export type HostRow = Record<(typeof HOST_COLUMNS)[number], number | string>;

export const VM_COLUMNS = [
  "time", "vm", "on", "MEMSZ", "GRANT", "CNSM", "SZTGT", "ENTL", "TCHD", "TCHD.true", "%ACTV", "%ACTVS", "%ACTVF",
  "%ACTVN", "MCTL?", "MCTLSZ", "MCTLTGT", "MCTLMAX", "SWCUR", "SWTGT", "SWR/s", "SWW/s", "LLSWR/s",
  "LLSWW/s", "CACHESZ", "CACHEUSD", "ZIP", "ZIP/s", "UNZIP/s", "SHRD", "ZERO", "SHRDSVD", "COWH", "OVHD",
  "AMIN", "AMAX", "ASHRS", "LAT%", "TOUCH/s", "FIRST", "STALLS", "LPAGES",
  // reclamation (issue 5): the performance model and the guest's side of ballooning
  "THRU%", "STALL%", "MCTLSHORT", "GSWAP", "GSWR/s", "GSWW/s", "DBLPG",
] as const;
export type VmRow = Record<(typeof VM_COLUMNS)[number], number | string>;

/** Round to 1/100 MB so outputs are short and byte-stable. */
function mb(pages: number): number {
  return Math.round((pages / MB_PAGES) * 100) / 100;
}

export function sharesOf(vm: VmState): number {
  const perMb = { low: 5, normal: 10, high: 20 } as const;
  return typeof vm.shares === "number" ? vm.shares : perMb[vm.shares] * (vm.config.memory / 2 ** 20);
}

export function hostRow(sim: Simulation): HostRow {
  const e = sim.engine;
  const k = e.k;
  const h = e.hostCounters();
  const pshare = hostSharing(sim, h); // sharing (issue 3)
  const ksm = sim.scenario.host.policy === "ksm" ? ksmCounters(sim) : null;
  const free = h[k.H_FREE_LARGE] * 512 + h[k.H_FREE_SMALL];
  const total = h[k.H_TOTAL];
  const vmk = h[k.H_VMK];
  const minfree = minFree(sim.scenario.host.memory, sim.scenario.host.settings["Mem.MemMinFreePct"]) / 4096;
  let mctltgt = 0, swtgt = 0; // scheduler (issue 4): targets of the VMs on, summed
  for (const v of sim.vms) if (v.powered) { mctltgt += v.targets.mctltgt; swtgt += v.targets.swtgt; }
  // reclamation (issue 5): swapped, compressed and ballooned memory of all VMs; running drivers' limits
  let swapped = 0, zipped = 0, zipCache = 0, ballooned = 0, mctlmax = 0;
  for (const v of sim.vms) {
    swapped += e.vmCounter(v.index, k.C_SWAPPED);
    zipped += e.vmCounter(v.index, k.C_COMPRESSED);
    zipCache += e.vmCounter(v.index, k.C_ZIP_CACHE);
    ballooned += e.vmCounter(v.index, k.C_BALLOONED);
    if (v.powered && sim.reclaim.vms[v.index].running) mctlmax += v.targets.mctlmax; // as the VM rows' MCTLMAX
  }
  return {
    time: sim.time,
    "PMEM.total": mb(total),
    "PMEM.vmk": mb(vmk),
    "PMEM.other": mb(total - vmk - free),
    "PMEM.free": mb(free),
    "VMKMEM.minfree": mb(minfree),
    "VMKMEM.state": sim.state,
    "PSHARE.shared": mb(pshare.shared),
    "PSHARE.common": mb(pshare.common),
    "PSHARE.saving": mb(pshare.saving),
    "SWAP.curr": mb(swapped),
    "SWAP.rclmtgt": mb(swtgt),
    "ZIP.zipped": mb(zipped),
    "ZIP.saved": mb(zipped - zipCache),
    "MEMCTL.curr": mb(ballooned),
    "MEMCTL.target": mb(mctltgt),
    "MEMCTL.max": mb(mctlmax),
    "VMS.on": sim.vms.filter((v) => v.powered).length,
    ...(Object.fromEntries(KSM_COUNTER_NAMES.map((n) => [`KSM.${n}`, ksm ? ksm[n] : 0])) as Record<`KSM.${(typeof KSM_COUNTER_NAMES)[number]}`, number>),
  };
}

export function vmRow(sim: Simulation, vm: VmState): VmRow {
  const e = sim.engine;
  const k = e.k;
  const c = e.vmCounters(vm.index);
  const pages = vm.config.memory / 4096;
  const grant = c[k.C_PRIVATE] + c[k.C_SHARED];
  const sh = vmSharing(c, e.hostCounters(), k); // sharing (issue 3)
  // scheduler (issue 4): targets, entitlement and the active-memory estimate (docs/scheduler.md)
  const act = sim.scheduler.activity(vm);
  const pol = sim.scheduler.vms[vm.index];
  const ovhd = e.vmParam(vm.index, k.P_OVERHEAD);
  const pct = (f: number) => Math.round(f * 10000) / 100;
  // reclamation (issue 5): interval figures of the performance model (src/policy/latency.ts)
  const rcl = sim.reclaim.vms[vm.index];
  const w = sim.reclaim.meter.window(vm.index, sim.time);
  return {
    time: sim.time,
    vm: vm.config.name,
    on: vm.powered ? 1 : 0,
    MEMSZ: mb(pages),
    GRANT: mb(grant),
    CNSM: mb(grant - sh.saved + c[k.C_ZIP_CACHE]), // reclamation (issue 5): + the compression cache; sharing (issue 3): − SHRDSVD
    SZTGT: vm.powered ? mb(vm.targets.sztgt + ovhd) : 0,
    ENTL: vm.powered ? mb(pol.entitlement + ovhd) : 0,
    TCHD: mb(act.estimate * pages),
    "TCHD.true": vm.powered ? mb(pol.trueActive) : 0,
    "%ACTV": pct(act.estimate),
    "%ACTVS": pct(act.slow),
    "%ACTVF": pct(act.fast),
    "%ACTVN": pct(act.next),
    "MCTL?": vm.powered && rcl.running ? 1 : 0,
    MCTLSZ: mb(c[k.C_BALLOONED]),
    MCTLTGT: vm.powered ? mb(vm.targets.mctltgt) : 0,
    MCTLMAX: mb(vm.targets.mctlmax),
    SWCUR: mb(c[k.C_SWAPPED]),
    SWTGT: vm.powered ? mb(vm.targets.swtgt) : 0,
    "SWR/s": w.swapIn,
    "SWW/s": w.swapOut,
    "LLSWR/s": w.ssdIn,
    "LLSWW/s": w.ssdOut,
    CACHESZ: mb(c[k.C_ZIP_CACHE]),
    CACHEUSD: Math.round((c[k.C_ZIP_KB] / 1024) * 100) / 100,
    ZIP: mb(c[k.C_COMPRESSED]),
    "ZIP/s": w.zipOut,
    "UNZIP/s": w.zipIn,
    SHRD: mb(c[k.C_SHARED]),
    ZERO: mb(sh.zero),
    SHRDSVD: mb(sh.saved),
    COWH: mb(sh.hints),
    OVHD: mb(e.vmParam(vm.index, k.P_OVERHEAD)),
    AMIN: mb(vm.reservation / 4096),
    AMAX: vm.limit === null ? -1 : mb(vm.limit / 4096),
    ASHRS: sharesOf(vm),
    "LAT%": w.lat,
    "TOUCH/s": vm.powered ? vm.phase.touchRate : 0,
    FIRST: c[k.C_FIRST_TOUCH],
    STALLS: c[k.C_ALLOC_STALLS],
    LPAGES: c[k.C_LARGE_REGIONS],
    "THRU%": w.thru,
    "STALL%": w.stall,
    MCTLSHORT: vm.powered ? mb(rcl.shortfall) : 0,
    GSWAP: mb(c[k.C_GOUT_ANON]),
    "GSWR/s": w.guestIn,
    "GSWW/s": w.guestOut,
    DBLPG: c[k.C_DOUBLE_PAGING],
  };
}
