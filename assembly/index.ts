// vmemsim engine exports: the only surface the TypeScript wrapper calls (src/engine.ts).
// Calls are per tick, per VM or per configuration change; never per page.
import {
  initMemory, reserve, reservedBytes, hostBase, vmBase, setHostI, setVmI, vmI, PAGE_ENTRY, REGION_PAGES,
  REGION_SHIFT, QTABLE_ENTRIES, HP_NVMS, HP_RNG, P_PAGES, P_PAGE_BASE, P_REGION_BASE, P_QTABLE_BASE,
  P_POWERED, P_OVERHEAD, P_RNG, P_SWEEP, HP_LARGE_PAGES,
} from "./memory";
import { seedState } from "./rng";
import { initMachine, takeOverhead, returnOverhead, checkMachine } from "./machine";
import { initPagetable, releaseVm, checkVm as checkVmTable, breakAllLarge } from "./pagetable";
import { reclaimInit, releaseReclaim, checkReclaim, checkReclaimHost } from "./swap"; // reclamation (issue 5)

export * from "./memory";
export { setPattern, touchVm, zeroSweep, PATTERN_UNIFORM, PATTERN_ZIPF, PATTERN_HOTCOLD } from "./workload";
export { KEY_UNIQUE } from "./content";
export { balloonVm } from "./balloon"; // reclamation (issue 5)
export { swapVm, configureReclaim, setSwapCache } from "./swap"; // reclamation (issue 5)
export { sampleInit, samplePeriod, sampleStop } from "./sample"; // scheduler (issue 4)
// sharing (issue 3): ESXi TPS and Linux KSM
export {
  shareInit, tpsScan, shareBreakLarge, shareBeforeSwap, shareUnshare, unshareForReclaim, writePages, shareFloorPass,
  tpsEntries, tpsCapacity, POLICY_NONE, POLICY_TPS, POLICY_KSM, VM_SALT,
} from "./share";
export {
  ksmScan, ksmUnmergeAll, ksmStat, ksmCursorVm, ksmCursorPpn, KSM_PAGES_SHARED, KSM_PAGES_SHARING, KSM_PAGES_UNSHARED,
  KSM_RMAP_ITEMS, KSM_FULL_SCANS, KSM_PAGES_SCANNED, KSM_PAGES_SKIPPED, KSM_STABLE_NODE_CHAINS, KSM_STABLE_NODE_DUPS,
  KSM_ZERO_PAGES, KSM_STATS,
} from "./ksm";
import { shareCheckVm, shareCheckHost } from "./share"; // sharing (issue 3)
export { floorScan, floorCopy, floorTouch } from "./floor"; // benchmarks' floors (issue 6)

/** Set up an empty host. Returns the host record's address. */
export function init(totalPages: u32, vmkPages: u32, largePages: u32, seed: u32): u32 {
  initMemory();
  initMachine(totalPages, vmkPages);
  setHostI(HP_LARGE_PAGES, largePages);
  seedState(hostBase() + (<u32>HP_RNG << 2), seed, 0xffff_ffff);
  return hostBase();
}

/**
 * Lay out VM number `vm` (0, 1, 2, … in order) with `pages` guest pages: page table, region table
 * and pattern table. Returns the VM record's address, or 0 when linear memory cannot hold it.
 */
export function addVm(vm: u32, pages: u32, seed: u32): u32 {
  const table = reserve(<u64>pages * PAGE_ENTRY);
  const regions = reserve(<u64>((pages + REGION_PAGES - 1) >>> REGION_SHIFT));
  const qtable = reserve(<u64>(QTABLE_ENTRIES + 1) << 2);
  if (table == 0 || regions == 0 || qtable == 0) return 0;
  setVmI(vm, P_PAGES, pages);
  setVmI(vm, P_PAGE_BASE, table);
  setVmI(vm, P_REGION_BASE, regions);
  setVmI(vm, P_QTABLE_BASE, qtable);
  seedState(vmBase(vm) + (<u32>P_RNG << 2), seed, vm);
  setHostI(HP_NVMS, vm + 1);
  initPagetable(vm);
  if (!reclaimInit(vm, seed)) return 0; // reclamation (issue 5)
  return vmBase(vm);
}

/** Power a VM on: its overhead is taken from free machine memory. False when it does not fit. */
export function powerOn(vm: u32, overheadPages: u32): bool {
  if (vmI(vm, P_POWERED) != 0) return true;
  if (!takeOverhead(overheadPages)) return false;
  setVmI(vm, P_OVERHEAD, overheadPages);
  setVmI(vm, P_POWERED, 1);
  setVmI(vm, P_SWEEP, 0);
  return true;
}

/** Power a VM off: all its memory and overhead return to the host. */
export function powerOff(vm: u32): void {
  if (vmI(vm, P_POWERED) == 0) return;
  releaseReclaim(vm); // reclamation (issue 5): compression cache, SSD slots, balloon gauges
  releaseVm(vm);
  returnOverhead(vmI(vm, P_OVERHEAD));
  setVmI(vm, P_OVERHEAD, 0);
  setVmI(vm, P_POWERED, 0);
}

/** Break all large pages of a VM (the states logic calls this when the host leaves high). */
export function breakLargePages(vm: u32): u32 {
  return breakAllLarge(vm);
}

/** Conservation checks (--check): 0 when they hold, else a code (docs/architecture.md). */
export function checkVm(vm: u32): i32 {
  const c = checkVmTable(vm);
  const r = c != 0 ? c : checkReclaim(vm); // reclamation (issue 5): codes 20-26
  return r != 0 ? r : shareCheckVm(vm); // sharing (issue 3): codes 30-33
}
export function checkHost(): i32 {
  const c = checkMachine();
  const r = c != 0 ? c : checkReclaimHost(); // reclamation (issue 5): codes 20-21
  return r != 0 ? r : shareCheckHost(); // sharing (issue 3): codes 30-31
}

export function memoryBytes(): u32 {
  return reservedBytes();
}
