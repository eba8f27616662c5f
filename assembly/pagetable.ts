// The pmap: per VM, guest-physical page (PPN) -> host-side state, and the 2 MiB region table.
// Spec: esxi-memory.md §1 (PPN states and what each costs in machine memory) and §4 (large pages:
// touching one 4 KiB page of an untouched 2 MiB region backs all 512, KB1021896).
//
// One 8-byte entry per guest page (memory.ts places the table):
//   +0 u32 meta   bits 0-2   host state (STATE_*)
//                 bit  3     accessed by the guest since last cleared
//                 bit  4     dirty: written since the sharing scanner last looked
//                 bit  5     sampled: marked by the active-memory sampler
//                 bits 6-7   guest's view (GUEST_FREE, GUEST_CACHE, GUEST_ANON)
//                 bits 8-15  reserved for the reclamation mechanisms
//                 bits 16-31 epoch of the last guest touch (guest LRU)
//   +4 u32 key    content identity (content.ts): 0 = zero page, KEY_UNIQUE = unlike every other
//                 page, else a shareable content key
// Region table: one byte per 512 pages: REGION_NONE (nothing backed), REGION_LARGE (backed by one
// 2 MiB frame: all 512 pages private), REGION_SMALL (pages backed one by one).
import {
  PAGE_ENTRY, REGION_SHIFT, REGION_PAGES, P_PAGES, P_PAGE_BASE, P_REGION_BASE, HP_LARGE_PAGES,
  C_UNBACKED, C_PRIVATE, C_SHARED, C_BALLOONED, C_COMPRESSED, C_SWAPPED, C_GUEST_FREE, C_GUEST_CACHE,
  C_GUEST_ANON, C_LARGE_REGIONS, C_LARGE_BACKED, C_LARGE_BROKEN, C_FIRST_TOUCH, H_PRIVATE,
  vmI, hostI, vmC, addVmC, addHostC,
} from "./memory";
import { allocSmall, allocLarge, freeSmall, freeLarge } from "./machine";
import { shareReleaseVm } from "./share"; // sharing (issue 3)

export const STATE_UNBACKED: u32 = 0;
export const STATE_PRIVATE: u32 = 1;
export const STATE_SHARED: u32 = 2;
export const STATE_BALLOONED: u32 = 3;
export const STATE_COMPRESSED: u32 = 4;
export const STATE_SWAPPED: u32 = 5;
export const STATE_MASK: u32 = 7;

export const M_ACCESSED: u32 = 1 << 3;
export const M_DIRTY: u32 = 1 << 4;
export const M_SAMPLED: u32 = 1 << 5;
export const GUEST_SHIFT: u32 = 6;
export const GUEST_MASK: u32 = 3 << GUEST_SHIFT;
export const GUEST_FREE: u32 = 0;
export const GUEST_CACHE: u32 = 1;
export const GUEST_ANON: u32 = 2;
export const EPOCH_SHIFT: u32 = 16;

export const REGION_NONE: u8 = 0;
export const REGION_LARGE: u8 = 1;
export const REGION_SMALL: u8 = 2;

/** Counter index of the VM's page count in `state` (C_UNBACKED .. C_SWAPPED are consecutive). */
// @ts-ignore: decorator
@inline export function stateCounter(state: u32): i32 {
  return C_UNBACKED + <i32>state;
}
// @ts-ignore: decorator
@inline export function guestCounter(cls: u32): i32 {
  return C_GUEST_FREE + <i32>cls;
}

// @ts-ignore: decorator
@inline export function entryAt(vm: u32, ppn: u32): u32 {
  return vmI(vm, P_PAGE_BASE) + ppn * PAGE_ENTRY;
}
// @ts-ignore: decorator
@inline export function regionAt(vm: u32, ppn: u32): u32 {
  return vmI(vm, P_REGION_BASE) + (ppn >>> REGION_SHIFT);
}

/** Move one page's host state, keeping the VM's counts in step. */
// @ts-ignore: decorator
@inline export function setState(vm: u32, e: u32, meta: u32, state: u32): u32 {
  const old = meta & STATE_MASK;
  addVmC(vm, stateCounter(old), -1);
  addVmC(vm, stateCounter(state), 1);
  const m = (meta & ~STATE_MASK) | state;
  store<u32>(e, m);
  return m;
}

/** Move one page's guest-view class, keeping the VM's guest counts in step. */
// @ts-ignore: decorator
@inline export function setGuestClass(vm: u32, e: u32, meta: u32, cls: u32): u32 {
  const old = (meta & GUEST_MASK) >>> GUEST_SHIFT;
  if (old == cls) return meta;
  addVmC(vm, guestCounter(old), -1);
  addVmC(vm, guestCounter(cls), 1);
  const m = (meta & ~GUEST_MASK) | (cls << GUEST_SHIFT);
  store<u32>(e, m);
  return m;
}

/** Page table and region table of a VM just laid out: all pages unbacked and free in the guest. */
export function initPagetable(vm: u32): void {
  const pages = <f64>vmI(vm, P_PAGES);
  addVmC(vm, C_UNBACKED, pages);
  addVmC(vm, C_GUEST_FREE, pages);
}

/**
 * Back an unbacked page on its first touch: with large pages on and the region untouched, one
 * whole 2 MiB frame backs all 512 pages (the others stay zero-filled, content key 0); otherwise a
 * 4 KiB page. Returns false when no machine memory can be had (the touch stalls).
 */
export function backPage(vm: u32, ppn: u32): bool {
  const r = regionAt(vm, ppn);
  const region = load<u8>(r);
  const pages = vmI(vm, P_PAGES);
  const first = (ppn >>> REGION_SHIFT) << REGION_SHIFT;
  if (region == REGION_NONE && hostI(HP_LARGE_PAGES) != 0 && first + REGION_PAGES <= pages && allocLarge()) {
    store<u8>(r, REGION_LARGE);
    let e = entryAt(vm, first);
    for (let i: u32 = 0; i < REGION_PAGES; i++, e += PAGE_ENTRY) {
      store<u32>(e, (load<u32>(e) & ~STATE_MASK) | STATE_PRIVATE);
    }
    addVmC(vm, C_UNBACKED, -<f64>REGION_PAGES);
    addVmC(vm, C_PRIVATE, <f64>REGION_PAGES);
    addHostC(H_PRIVATE, <f64>REGION_PAGES);
    addVmC(vm, C_LARGE_REGIONS, 1);
    addVmC(vm, C_LARGE_BACKED, 1);
    addVmC(vm, C_FIRST_TOUCH, 1);
    return true;
  }
  if (!allocSmall()) return false;
  if (region == REGION_NONE) store<u8>(r, REGION_SMALL);
  const e = entryAt(vm, ppn);
  setState(vm, e, load<u32>(e), STATE_PRIVATE);
  addHostC(H_PRIVATE, 1);
  addVmC(vm, C_FIRST_TOUCH, 1);
  return true;
}

/** Break the large page holding `ppn` into 512 small pages (same machine memory). */
export function breakLarge(vm: u32, ppn: u32): void {
  const r = regionAt(vm, ppn);
  if (load<u8>(r) != REGION_LARGE) return;
  store<u8>(r, REGION_SMALL);
  addVmC(vm, C_LARGE_REGIONS, -1);
  addVmC(vm, C_LARGE_BROKEN, 1);
}

/** Break every large page of a VM; returns how many were broken. */
export function breakAllLarge(vm: u32): u32 {
  const regions = (vmI(vm, P_PAGES) + REGION_PAGES - 1) >>> REGION_SHIFT;
  const base = vmI(vm, P_REGION_BASE);
  let n: u32 = 0;
  for (let i: u32 = 0; i < regions; i++) {
    if (load<u8>(base + i) == REGION_LARGE) {
      breakLarge(vm, i << REGION_SHIFT);
      n++;
    }
  }
  return n;
}

/**
 * Power-off: every page returns to unbacked and free, the guest forgets its contents. Whole large
 * pages go back as whole frames, small pages as loose pages. Pages in other states are released
 * by `release(state, ppn)` hooks of their mechanisms (none yet besides private).
 */
export function releaseVm(vm: u32): void {
  shareReleaseVm(vm); // sharing (issue 3): shared pages leave their frames, hints and rmap items go
  const pages = vmI(vm, P_PAGES);
  const rbase = vmI(vm, P_REGION_BASE);
  let e = vmI(vm, P_PAGE_BASE);
  let loose: f64 = 0, large: f64 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn += REGION_PAGES) {
    const n = min(REGION_PAGES, pages - ppn);
    if (load<u8>(rbase + (ppn >>> REGION_SHIFT)) == REGION_LARGE) large += 1;
    else {
      for (let i: u32 = 0; i < n; i++) {
        const st = load<u32>(e + i * PAGE_ENTRY) & STATE_MASK;
        if (st == STATE_PRIVATE) loose += 1;
      }
    }
    memory.fill(e, 0, n * PAGE_ENTRY);
    store<u8>(rbase + (ppn >>> REGION_SHIFT), REGION_NONE);
    e += n * PAGE_ENTRY;
  }
  freeLarge(large);
  freeSmall(loose);
  addHostC(H_PRIVATE, -(loose + large * <f64>REGION_PAGES));
  for (let s: u32 = STATE_UNBACKED; s <= STATE_SWAPPED; s++) addVmC(vm, stateCounter(s), -vmC(vm, stateCounter(s)));
  for (let c: u32 = GUEST_FREE; c <= GUEST_ANON; c++) addVmC(vm, guestCounter(c), -vmC(vm, guestCounter(c)));
  addVmC(vm, C_LARGE_REGIONS, -vmC(vm, C_LARGE_REGIONS));
  initPagetable(vm);
}

/**
 * Conservation of one VM, recounted page by page: the state counts and guest counts match the
 * table and sum to the configured pages, and every large region is wholly private. 0 when all
 * hold, else a code naming the first that failed (docs/architecture.md lists them).
 */
export function checkVm(vm: u32): i32 {
  const pages = vmI(vm, P_PAGES);
  const base = vmI(vm, P_PAGE_BASE);
  const rbase = vmI(vm, P_REGION_BASE);
  let st0: u32 = 0, st1: u32 = 0, st2: u32 = 0, st3: u32 = 0, st4: u32 = 0, st5: u32 = 0;
  let g0: u32 = 0, g1: u32 = 0, g2: u32 = 0, largeRegions: u32 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn++) {
    const m = load<u32>(base + ppn * PAGE_ENTRY);
    const st = m & STATE_MASK;
    if (st == 0) st0++; else if (st == 1) st1++; else if (st == 2) st2++;
    else if (st == 3) st3++; else if (st == 4) st4++; else if (st == 5) st5++; else return 1;
    const g = (m & GUEST_MASK) >>> GUEST_SHIFT;
    if (g == 0) g0++; else if (g == 1) g1++; else if (g == 2) g2++; else return 2;
    const region = load<u8>(rbase + (ppn >>> REGION_SHIFT));
    if (region == REGION_LARGE) {
      if (st != STATE_PRIVATE) return 3;
      if ((ppn & (REGION_PAGES - 1)) == 0) largeRegions++;
    } else if (region == REGION_NONE && st != STATE_UNBACKED) return 4;
  }
  if (<f64>st0 != vmC(vm, C_UNBACKED) || <f64>st1 != vmC(vm, C_PRIVATE) || <f64>st2 != vmC(vm, C_SHARED)) return 5;
  if (<f64>st3 != vmC(vm, C_BALLOONED) || <f64>st4 != vmC(vm, C_COMPRESSED) || <f64>st5 != vmC(vm, C_SWAPPED)) return 5;
  if (<f64>g0 != vmC(vm, C_GUEST_FREE) || <f64>g1 != vmC(vm, C_GUEST_CACHE) || <f64>g2 != vmC(vm, C_GUEST_ANON)) return 6;
  if (<f64>largeRegions != vmC(vm, C_LARGE_REGIONS)) return 7;
  return 0;
}
