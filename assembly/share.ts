// Content-based page sharing, ESXi style: transparent page sharing (TPS), and the sharing
// operations both policies share (copy-on-write break, power-off release, checks).
// Spec: ../shared/spec/esxi-memory.md §4 (W02 §4, KB1021095, KB2097593); the design in
// docs/sharing.md.
//
// The algorithm (W02 §4), as modelled here:
//
//  * A scanner visits each VM's guest pages in a random order, a few per tick (the rate is policy:
//    src/policy/share.ts). Each pass over a VM visits every page exactly once, in the order of a
//    fresh random affine permutation of the PPNs (ppn_{i+1} = ppn_i + step mod pages, step coprime
//    with pages), so "random order" and "the whole VM once per Mem.ShareScanTime" both hold.
//  * A visited private page is hashed: its content key (content.ts) with the VM's salt is looked
//    up in ONE host-wide open-addressing table of 16-byte entries (W02: 16-byte frames):
//      key, salt, then either  refcount, 0      a shared frame (the page is remapped to it, COW)
//                      or      HINT | vm, ppn   a hint: one page seen with this content
//    - a frame matches: the page joins it (its own machine page is freed, refcount + 1);
//    - a hint matches: the hinted page is rechecked (still private, still hinted, same content,
//      same salt); if it still holds the content both pages become one shared frame (refcount 2,
//      one machine page kept, the other freed); if not, the stale hint is replaced by this page;
//    - nothing matches: the page becomes a hint.
//    Salt and key must both match (Mem.ShareForceSalting, sched.mem.pshare.salt: the salt is a VM
//    parameter set by the policy at power-on).
//  * A page marked unique (KEY_UNIQUE) can match nothing, so it gets no entry; it is still marked
//    hinted (M_HINTED), as real ESXi would have recorded a hint for it: COWH counts hinted pages.
//  * Subpages of a 2 MiB large page are hashed (hinted) but never shared. `shareBreakLarge`
//    breaks a VM's large pages (the host left the high state) and shares the hinted subpages at
//    once from those hashes.
//  * A write to a shared page (workload.ts) breaks copy-on-write: `shareCow` gives the writer a
//    private page and drops the frame's refcount; the last sharer keeps the frame's page.
//  * `shareBeforeSwap` tries to share one page right before it is swapped.
//  * The scanner leaves M_DIRTY alone: a hint is rechecked by its content, not by a dirty bit (KSM's
//    checksum filter is what uses it).
//
// Accounting: a frame's machine page is H_COMMON; the guest pages mapped to frames are the VMs'
// C_SHARED (esxtop SHRD), of them zero pages C_SHARED_ZERO (ZERO), hinted pages C_HINTS (COWH).
// SHRDSVD is computed by the TypeScript side from C_SHARED, C_FRAMES_OWN (frames whose salt is the
// VM's own, so every sharer is in the VM: exact) and C_SHARED_X / H_SHARED_X / H_COMMON_X (frames a
// salt several VMs may hold: the host's saving on them apportioned by shared pages).
//
// No heap: the table lives in memory from `reserve`; when it fills past half it is rebuilt twice as
// large (stale hints dropped), and the old block is abandoned (bump memory is never freed).
import {
  PAGE_ENTRY, REGION_SHIFT, REGION_PAGES, P_PAGES, P_PAGE_BASE, P_REGION_BASE, P_POWERED, HP_NVMS,
  C_COW_BREAKS, C_SHARED, H_PRIVATE, H_COMMON,
  HP_SHARE_POLICY, HP_SHARE_ON, P_SHARE_SALT, P_SHARE_ON, P_SHARE_DONE, P_SHARE_STEP, P_SHARE_PPN,
  P_SHARE_RNG, C_SHARED_ZERO, C_HINTS, C_SHARED_X, C_FRAMES_OWN, C_SHARE_SCANNED, C_SHARE_PASSES,
  C_SHARE_MERGES, C_SHARE_BEFORE_SWAP, H_SHARED_X, H_COMMON_X, H_SHARE_ENTRIES, H_SHARE_TABLE_BYTES,
  H_SHARE_DROPPED,
  vmBase, vmI, setVmI, hostI, setHostI, vmC, addVmC, hostC, addHostC, reserve,
} from "./memory";
import {
  STATE_MASK, STATE_UNBACKED, STATE_PRIVATE, STATE_SHARED, M_DIRTY, REGION_LARGE, GUEST_ANON, setState,
  setGuestClass, breakLarge, backPage,
} from "./pagetable";
import { allocSmall, freeSmall } from "./machine";
import { KEY_UNIQUE, KEY_ZERO } from "./content";
import { mix32, below, seedState } from "./rng";
import { ksmInit, ksmCow, ksmUnmap, ksmReleaseVm, ksmCheckVm, ksmCheckHost } from "./ksm";

export const POLICY_NONE: u32 = 0;
export const POLICY_TPS: u32 = 1;
export const POLICY_KSM: u32 = 2;

/** Salts with this bit are a VM's own (its vc.uuid): every frame with such a salt is intra-VM. */
export const VM_SALT: u32 = 0x8000_0000;
/** Page meta bit 8 under TPS: the scanner hashed this page and left it a hint (COWH). */
export const M_HINTED: u32 = 1 << 8;

// ---- open-addressing tables of 16-byte entries (also used by ksm.ts) ----
// A table header is 16 bytes: +0 base address, +4 capacity (a power of two), +8 live entries.
// Entry: +0 k1 (EMPTY when free), +4 k2, +8 and +12 payload. Linear probing, backward-shift
// deletion (no tombstones).
export const EMPTY: u32 = 0xffff_ffff; // = KEY_UNIQUE: never a key of an entry
export const ENTRY_SHIFT: u32 = 4;
const MAX_CAP: u32 = 1 << 27; // 2 GiB of entries: more cannot be reserved anyway

// @ts-ignore: decorator
@inline export function hashOf(k1: u32, k2: u32): u32 {
  return hashMixed(k1, mixK2(k2));
}
/** hashOf in two halves, so a loop with a fixed k2 mixes it once (issue 6). */
// @ts-ignore: decorator
@inline function mixK2(k2: u32): u32 {
  return mix32(k2 ^ 0x2545_f491);
}
// @ts-ignore: decorator
@inline function hashMixed(k1: u32, k2mixed: u32): u32 {
  return mix32(k1 ^ k2mixed);
}

/** Give the table at header `h` a fresh block of `cap` entries (all free). False: out of memory. */
export function tInit(h: u32, cap: u32): bool {
  const base = reserve(<u64>cap << ENTRY_SHIFT);
  if (base == 0) return false;
  memory.fill(base, 0xff, cap << ENTRY_SHIFT);
  store<u32>(h, base);
  store<u32>(h, cap, 4);
  store<u32>(h, 0, 8);
  addHostC(H_SHARE_TABLE_BYTES, <f64>(cap << ENTRY_SHIFT));
  return true;
}

/** The entry holding (k1, k2), or the free slot where it would go (its k1 is EMPTY). */
// @ts-ignore: decorator
@inline export function tFind(h: u32, k1: u32, k2: u32): u32 {
  const base = load<u32>(h);
  const mask = load<u32>(h, 4) - 1;
  let i = hashOf(k1, k2) & mask;
  while (true) {
    const a = base + (i << ENTRY_SHIFT);
    const k = load<u32>(a);
    if (k == EMPTY || (k == k1 && load<u32>(a, 4) == k2)) return a;
    i = (i + 1) & mask;
  }
  return 0;
}

/** Fill the free slot `a` (from tFind). The caller made room first (tRoom). */
// @ts-ignore: decorator
@inline export function tPut(h: u32, a: u32, k1: u32, k2: u32, v1: u32, v2: u32): void {
  store<u32>(a, k1);
  store<u32>(a, k2, 4);
  store<u32>(a, v1, 8);
  store<u32>(a, v2, 12);
  store<u32>(h, load<u32>(h, 8) + 1, 8);
}

/** Remove entry `a`, shifting later entries of its probe run back (Knuth's algorithm R). */
export function tDelete(h: u32, a: u32): void {
  const base = load<u32>(h);
  const mask = load<u32>(h, 4) - 1;
  let i = (a - base) >>> ENTRY_SHIFT;
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const b = base + (j << ENTRY_SHIFT);
    const k = load<u32>(b);
    if (k == EMPTY) break;
    const home = hashOf(k, load<u32>(b, 4)) & mask;
    // entry j may move to i unless its home lies cyclically in (i, j]
    const stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    const d = base + (i << ENTRY_SHIFT);
    store<u64>(d, load<u64>(b));
    store<u64>(d, load<u64>(b, 8), 8);
    i = j;
  }
  store<u32>(base + (i << ENTRY_SHIFT), EMPTY);
  store<u32>(h, load<u32>(h, 8) - 1, 8);
}

/** Clear every entry (KSM's unstable tree at the start of each full scan). */
export function tClear(h: u32): void {
  memory.fill(load<u32>(h), 0xff, load<u32>(h, 4) << ENTRY_SHIFT);
  store<u32>(h, 0, 8);
}

/**
 * Make room for one more entry: beyond half full the table is rebuilt into a block twice as large
 * (`gc`: TPS hints that no longer hold are dropped on the way). False when it is too full to take
 * one more and no larger block can be had; entries found by tFind before this call are invalid
 * after a rebuild.
 */
export function tRoom(h: u32, gc: bool): bool {
  const cap = load<u32>(h, 4);
  const count = load<u32>(h, 8);
  if (count + 1 <= cap >>> 1) return true;
  const oldBase = load<u32>(h);
  let live = count;
  if (gc) {
    live = 0;
    for (let i: u32 = 0; i < cap; i++) {
      const a = oldBase + (i << ENTRY_SHIFT);
      if (load<u32>(a) != EMPTY && keepEntry(a)) live++;
    }
  }
  let newCap = cap;
  while (newCap < MAX_CAP && (live + 1) * 3 > newCap) newCap <<= 1; // at most a third full after it
  if (newCap == cap && live == count) return count + 1 < cap - (cap >>> 3);
  const base = reserve(<u64>newCap << ENTRY_SHIFT);
  if (base == 0) return count + 1 < cap - (cap >>> 3);
  memory.fill(base, 0xff, newCap << ENTRY_SHIFT);
  addHostC(H_SHARE_TABLE_BYTES, <f64>(newCap << ENTRY_SHIFT));
  store<u32>(h, base);
  store<u32>(h, newCap, 4);
  store<u32>(h, 0, 8);
  for (let i: u32 = 0; i < cap; i++) {
    const a = oldBase + (i << ENTRY_SHIFT);
    const k1 = load<u32>(a);
    if (k1 == EMPTY || (gc && !keepEntry(a))) continue;
    const k2 = load<u32>(a, 4);
    tPut(h, tFind(h, k1, k2), k1, k2, load<u32>(a, 8), load<u32>(a, 12));
  }
  return true;
}

// ---- ESXi TPS ----
const HINT: u32 = 0x8000_0000; // payload word 1 of a hint: HINT | vm; of a frame: refcount
const tps: u32 = <u32>memory.data(16); // header of the TPS table

// @ts-ignore: decorator
@inline function cross(salt: u32): bool {
  return (salt & VM_SALT) == 0;
}

/** A TPS table entry to keep in a rebuild: frames always, hints only while they still hold. */
function keepEntry(a: u32): bool {
  const v1 = load<u32>(a, 8);
  if ((v1 & HINT) == 0) return true;
  return hintHolds(v1 & ~HINT, load<u32>(a, 12), load<u32>(a), load<u32>(a, 4));
}

/** Is page (hv, hp) still a hint of content `key` under `salt`? (W02: the hint page is rehashed.) */
function hintHolds(hv: u32, hp: u32, key: u32, salt: u32): bool {
  if (hv >= hostI(HP_NVMS) || vmI(hv, P_POWERED) == 0 || vmI(hv, P_SHARE_ON) == 0) return false;
  if (hp >= vmI(hv, P_PAGES) || vmI(hv, P_SHARE_SALT) != salt) return false;
  const e = vmI(hv, P_PAGE_BASE) + hp * PAGE_ENTRY;
  const m = load<u32>(e);
  return (m & STATE_MASK) == STATE_PRIVATE && (m & M_HINTED) != 0 && load<u32>(e, 4) == key;
}

/**
 * Set up sharing once all VMs are added: `policy` POLICY_*, `capacity` the expected number of
 * distinct shareable contents (the table starts at twice that, rounded to a power of two), `seed`
 * for the scanners' own random streams. False when linear memory cannot hold the tables.
 */
export function shareInit(policy: u32, capacity: u32, seed: u32): bool {
  setHostI(HP_SHARE_POLICY, policy);
  setHostI(HP_SHARE_ON, policy != POLICY_NONE ? 1 : 0);
  const nvms = hostI(HP_NVMS);
  for (let vm: u32 = 0; vm < nvms; vm++) {
    seedState(vmBase(vm) + (<u32>P_SHARE_RNG << 2), seed, 0x7a5c_0000 + vm);
    setVmI(vm, P_SHARE_ON, 1);
  }
  let cap: u32 = 1024;
  while (cap < MAX_CAP && cap < capacity * 2) cap <<= 1;
  if (policy == POLICY_TPS) return tInit(tps, cap);
  if (policy == POLICY_KSM) return ksmInit(cap);
  return true;
}

function gcd(a: u32, b: u32): u32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Start a new scan pass of the VM: a fresh random affine permutation of its PPNs. */
function newPass(vm: u32, pages: u32): void {
  const rng = vmBase(vm) + (<u32>P_SHARE_RNG << 2);
  let step: u32 = pages > 1 ? 1 + below(rng, pages - 1) : 1;
  while (gcd(step, pages) != 1) step = step + 1 < pages ? step + 1 : 1;
  setVmI(vm, P_SHARE_STEP, step);
  setVmI(vm, P_SHARE_PPN, below(rng, pages));
  setVmI(vm, P_SHARE_DONE, 0);
}

/** Page (vm, ppn) at `e` with meta `m` becomes a sharer of content `key` (the frame is counted). */
// @ts-ignore: decorator
@inline function becomeShared(vm: u32, e: u32, m: u32, key: u32, x: bool): void {
  if (m & M_HINTED) addVmC(vm, C_HINTS, -1);
  setState(vm, e, m & ~M_HINTED, STATE_SHARED);
  if (key == KEY_ZERO) addVmC(vm, C_SHARED_ZERO, 1);
  if (x) {
    addVmC(vm, C_SHARED_X, 1);
    addHostC(H_SHARED_X, 1);
  }
  addVmC(vm, C_SHARE_MERGES, 1);
}

// @ts-ignore: decorator
@inline function markHinted(vm: u32, e: u32, m: u32): void {
  if ((m & M_HINTED) == 0) {
    addVmC(vm, C_HINTS, 1);
    store<u32>(e, m | M_HINTED); // only when new: a page seen again leaves its line clean (issue 6)
  }
}

const OFFER_HINT: i32 = 1; // the page may be left as a new hint
/**
 * Offer private page (vm, ppn) at `e` (meta `m`, content `key` != KEY_UNIQUE, not in a large
 * region) to the table. Returns the pages that became shared: 1 (it joined a frame), 2 (it and the
 * hinted page became a frame) or 0 (hinted when `flags` has OFFER_HINT).
 */
function offer(vm: u32, ppn: u32, e: u32, m: u32, key: u32, salt: u32, flags: i32): i32 {
  let a = tFind(tps, key, salt);
  if (load<u32>(a) == EMPTY) {
    if ((flags & OFFER_HINT) == 0) return 0;
    if (!tRoom(tps, true)) {
      addHostC(H_SHARE_DROPPED, 1);
      markHinted(vm, e, m);
      return 0;
    }
    a = tFind(tps, key, salt); // the table may have been rebuilt
    tPut(tps, a, key, salt, HINT | vm, ppn);
    addHostC(H_SHARE_ENTRIES, 1);
    markHinted(vm, e, m);
    return 0;
  }
  const x = cross(salt);
  const v1 = load<u32>(a, 8);
  if ((v1 & HINT) == 0) {
    // a shared frame: join it, our machine page goes back
    store<u32>(a, v1 + 1, 8);
    becomeShared(vm, e, m, key, x);
    addHostC(H_PRIVATE, -1);
    freeSmall(1);
    return 1;
  }
  const hv = v1 & ~HINT;
  const hp = load<u32>(a, 12);
  if (hv == vm && hp == ppn) {
    markHinted(vm, e, m);
    return 0;
  }
  if (hintHolds(hv, hp, key, salt)) {
    const he = vmI(hv, P_PAGE_BASE) + hp * PAGE_ENTRY;
    if (load<u8>(vmI(hv, P_REGION_BASE) + (hp >>> REGION_SHIFT)) == REGION_LARGE) {
      // the hinted page sits in a large page and cannot be shared yet: this page takes the hint
      if ((flags & OFFER_HINT) == 0) return 0;
      store<u32>(a, HINT | vm, 8);
      store<u32>(a, ppn, 12);
      markHinted(vm, e, m);
      return 0;
    }
    // both pages become one shared frame: the hinted page's machine page backs it
    store<u32>(a, 2, 8);
    store<u32>(a, 0, 12);
    becomeShared(hv, he, load<u32>(he), key, x);
    becomeShared(vm, e, m, key, x);
    addHostC(H_PRIVATE, -2);
    addHostC(H_COMMON, 1);
    freeSmall(1);
    if (x) addHostC(H_COMMON_X, 1);
    else addVmC(vm, C_FRAMES_OWN, 1);
    return 2;
  }
  // a stale hint (content changed, page gone): this page takes its place
  if ((flags & OFFER_HINT) == 0) {
    tDelete(tps, a);
    addHostC(H_SHARE_ENTRIES, -1);
    return 0;
  }
  store<u32>(a, HINT | vm, 8);
  store<u32>(a, ppn, 12);
  markHinted(vm, e, m);
  return 0;
}

const WARM: u32 = 32; // pages whose entries and table slots are loaded ahead
const batch: u32 = <u32>memory.data(WARM * 4);
let sink: u32 = 0; // keeps the warming loads from being optimised away

/**
 * The next `n` (at most WARM) PPNs of a pass through `pages` pages, from `ppn` by `step`, into
 * `batch`, their entries loaded ahead in a loop of loads alone (random order means a cache miss per
 * page: they overlap instead of queueing). Returns the PPN after them.
 */
// @ts-ignore: decorator
@inline function passBatch(base: u32, ppn: u32, step: u32, pages: u32, n: u32): u32 {
  let acc: u32 = 0;
  for (let j: u32 = 0; j < n; j++) {
    store<u32>(batch + (j << 2), ppn);
    acc ^= load<u32>(base + ppn * PAGE_ENTRY);
    ppn += step;
    if (ppn >= pages) ppn -= pages;
  }
  sink ^= acc;
  return ppn;
}

/**
 * The TPS scanner: visit the next `count` pages of the VM in its random pass order. One call per
 * VM per tick. Returns the pages that became shared.
 */
export function tpsScan(vm: u32, count: u32): u32 {
  if (count == 0 || !tpsOn(vm) || vmI(vm, P_POWERED) == 0) return 0;
  const pages = vmI(vm, P_PAGES);
  if (pages == 0) return 0;
  if (vmI(vm, P_SHARE_STEP) == 0) newPass(vm, pages);
  const base = vmI(vm, P_PAGE_BASE);
  const rbase = vmI(vm, P_REGION_BASE);
  const salt = vmI(vm, P_SHARE_SALT);
  let step = vmI(vm, P_SHARE_STEP);
  let ppn = vmI(vm, P_SHARE_PPN);
  let done = vmI(vm, P_SHARE_DONE);
  let shared: u32 = 0;
  for (let i: u32 = 0; i < count; ) {
    if (done >= pages) {
      addVmC(vm, C_SHARE_PASSES, 1);
      newPass(vm, pages);
      step = vmI(vm, P_SHARE_STEP);
      ppn = vmI(vm, P_SHARE_PPN);
      done = 0;
    }
    // the next pages of the pass with their entries loaded ahead, then their table slots
    const n = min(WARM, min(count - i, pages - done));
    ppn = passBatch(base, ppn, step, pages, n);
    const tb = load<u32>(tps), tmask = load<u32>(tps, 4) - 1;
    let acc: u32 = 0;
    for (let j: u32 = 0; j < n; j++) {
      const e = base + load<u32>(batch + (j << 2)) * PAGE_ENTRY;
      const key = load<u32>(e, 4);
      if ((load<u32>(e) & STATE_MASK) == STATE_PRIVATE && key != KEY_UNIQUE) acc ^= load<u32>(tb + ((hashOf(key, salt) & tmask) << ENTRY_SHIFT));
    }
    sink ^= acc;
    done += n;
    i += n;
    for (let j: u32 = 0; j < n; j++) {
      const p = load<u32>(batch + (j << 2));
      const e = base + p * PAGE_ENTRY;
      const m = load<u32>(e);
      if ((m & STATE_MASK) != STATE_PRIVATE) continue;
      const key = load<u32>(e, 4);
      if (key == KEY_UNIQUE) {
        markHinted(vm, e, m);
        continue;
      }
      if (load<u8>(rbase + (p >>> REGION_SHIFT)) == REGION_LARGE) {
        // hashed but not shared: a large page is never shared whole (KB1021095)
        markHinted(vm, e, m);
        const a = tFind(tps, key, salt);
        if (load<u32>(a) == EMPTY && tRoom(tps, true)) {
          tPut(tps, tFind(tps, key, salt), key, salt, HINT | vm, p);
          addHostC(H_SHARE_ENTRIES, 1);
        }
        continue;
      }
      shared += <u32>offer(vm, p, e, m, key, salt, OFFER_HINT);
    }
  }
  setVmI(vm, P_SHARE_PPN, ppn);
  setVmI(vm, P_SHARE_DONE, done);
  addVmC(vm, C_SHARE_SCANNED, <f64>count);
  return shared;
}

/**
 * Break every large page of the VM (the host left the high state) and share its hashed subpages
 * at once from those hashes; subpages not hashed yet wait for the scanner. Returns the pages that
 * became shared.
 */
export function shareBreakLarge(vm: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const rbase = vmI(vm, P_REGION_BASE);
  const base = vmI(vm, P_PAGE_BASE);
  const regions = (pages + REGION_PAGES - 1) >>> REGION_SHIFT;
  const on = tpsOn(vm);
  const salt = vmI(vm, P_SHARE_SALT);
  let shared: u32 = 0;
  for (let r: u32 = 0; r < regions; r++) {
    if (load<u8>(rbase + r) != REGION_LARGE) continue;
    const first = r << REGION_SHIFT;
    breakLarge(vm, first);
    if (!on) continue;
    const end = min(first + REGION_PAGES, pages);
    for (let p = first; p < end; p++) {
      const e = base + p * PAGE_ENTRY;
      const m = load<u32>(e);
      const key = load<u32>(e, 4);
      if ((m & M_HINTED) == 0 || key == KEY_UNIQUE || (m & STATE_MASK) != STATE_PRIVATE) continue;
      shared += <u32>offer(vm, p, e, m, key, salt, OFFER_HINT);
    }
  }
  return shared;
}

/** TPS is on for `vm`: the host's policy, sharing on for the host and for the VM. */
export function tpsOn(vm: u32): bool {
  return hostI(HP_SHARE_POLICY) == POLICY_TPS && hostI(HP_SHARE_ON) != 0 && vmI(vm, P_SHARE_ON) != 0;
}

/**
 * The TPS table slot where shareBeforeSwap starts looking for content `key` of a VM whose salt,
 * mixed, is `saltMixed` (shareSaltMixed): swapVm loads it for a batch of victims ahead of evicting
 * them, so the table's cache misses overlap (issue 6). Only where tpsOn.
 */
// @ts-ignore: decorator
@inline export function shareSlot(key: u32, saltMixed: u32): u32 {
  return load<u32>(tps) + ((hashMixed(key, saltMixed) & (load<u32>(tps, 4) - 1)) << ENTRY_SHIFT);
}
/** `vm`'s salt mixed for shareSlot. */
export function shareSaltMixed(vm: u32): u32 {
  return mixK2(vmI(vm, P_SHARE_SALT));
}

/**
 * Share before swap (W02 §4): try to share private page (vm, ppn) right before it is swapped.
 * True when it became shared (nothing to swap); no new hint is left behind.
 */
export function shareBeforeSwap(vm: u32, ppn: u32): bool {
  if (!tpsOn(vm)) return false;
  if (ppn >= vmI(vm, P_PAGES)) return false;
  const e = vmI(vm, P_PAGE_BASE) + ppn * PAGE_ENTRY;
  const m = load<u32>(e);
  const key = load<u32>(e, 4);
  if ((m & STATE_MASK) != STATE_PRIVATE || key == KEY_UNIQUE) return false;
  if (load<u8>(vmI(vm, P_REGION_BASE) + (ppn >>> REGION_SHIFT)) == REGION_LARGE) return false;
  if (offer(vm, ppn, e, m, key, vmI(vm, P_SHARE_SALT), 0) == 0) return false;
  addVmC(vm, C_SHARE_BEFORE_SWAP, 1);
  return true;
}

/**
 * Page (vm) at `e`, shared under TPS, leaves its frame. `write`: it stays mapped and gets a private
 * page (copy-on-write; false when no machine memory is free: nothing changed); otherwise it is
 * being released (power-off) and becomes unbacked.
 */
function tpsLeave(vm: u32, e: u32, m: u32, write: bool): bool {
  const key = load<u32>(e, 4);
  const salt = vmI(vm, P_SHARE_SALT);
  const x = cross(salt);
  const a = tFind(tps, key, salt);
  const r = load<u32>(a, 8);
  if (load<u32>(a) == EMPTY || (r & HINT) != 0) unreachable(); // a shared page without its frame
  if (r == 1) {
    // the last sharer: the frame's machine page becomes the page's own, or is freed
    tDelete(tps, a);
    addHostC(H_SHARE_ENTRIES, -1);
    addHostC(H_COMMON, -1);
    if (x) addHostC(H_COMMON_X, -1);
    else addVmC(vm, C_FRAMES_OWN, -1);
    if (write) addHostC(H_PRIVATE, 1);
    else freeSmall(1);
  } else {
    if (write) {
      if (!allocSmall()) return false;
      addHostC(H_PRIVATE, 1);
    }
    store<u32>(a, r - 1, 8);
  }
  if (key == KEY_ZERO) addVmC(vm, C_SHARED_ZERO, -1);
  if (x) {
    addVmC(vm, C_SHARED_X, -1);
    addHostC(H_SHARED_X, -1);
  }
  setState(vm, e, m, write ? STATE_PRIVATE : STATE_UNBACKED);
  return true;
}

/**
 * Copy-on-write break (workload.ts, before a write to a STATE_SHARED page): the page gets a private
 * copy. False when no machine memory is free (the write stalls; nothing changed).
 */
export function shareCow(vm: u32, ppn: u32, e: u32): bool {
  const ok = hostI(HP_SHARE_POLICY) == POLICY_KSM ? ksmCow(vm, ppn, e) : tpsLeave(vm, e, load<u32>(e), true);
  if (ok) addVmC(vm, C_COW_BREAKS, 1);
  return ok;
}

/**
 * Unshare page (vm, ppn) for another mechanism (a reclamation that must own a private page):
 * a shared page gets a private copy as on a write. False when it could not (no free memory).
 */
export function shareUnshare(vm: u32, ppn: u32): bool {
  const e = vmI(vm, P_PAGE_BASE) + ppn * PAGE_ENTRY;
  if ((load<u32>(e) & STATE_MASK) != STATE_SHARED) return true;
  return hostI(HP_SHARE_POLICY) == POLICY_KSM ? ksmCow(vm, ppn, e) : tpsLeave(vm, e, load<u32>(e), true);
}

/**
 * A shared page leaves the VM without a copy (the balloon takes it): its reference is dropped (the
 * frame's machine page is freed with the last one) and it becomes STATE_UNBACKED, holding no
 * machine memory; the caller then sets the state it wants. The call site is swap.ts hostRelease
 * (issue 5). Returns true (the page never stays shared).
 */
export function unshareForReclaim(vm: u32, ppn: u32, e: u32, m: u32): bool {
  if ((m & STATE_MASK) != STATE_SHARED) return true;
  if (hostI(HP_SHARE_POLICY) == POLICY_KSM) ksmUnmap(vm, ppn, e, m);
  else tpsLeave(vm, e, m, false);
  return true;
}

/** Power-off (pagetable.releaseVm, before it clears the table): shared pages leave their frames. */
export function shareReleaseVm(vm: u32): void {
  const policy = hostI(HP_SHARE_POLICY);
  if (policy == POLICY_KSM) {
    ksmReleaseVm(vm);
    return;
  }
  if (policy != POLICY_TPS) return;
  const pages = vmI(vm, P_PAGES);
  let e = vmI(vm, P_PAGE_BASE);
  for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
    const m = load<u32>(e);
    if ((m & STATE_MASK) == STATE_SHARED) tpsLeave(vm, e, m, false);
    if (m & M_HINTED) {
      store<u32>(e, load<u32>(e) & ~M_HINTED);
      addVmC(vm, C_HINTS, -1);
    }
  }
  setVmI(vm, P_SHARE_STEP, 0); // a new pass after the next power-on
}

/**
 * A guest write of `count` pages from `first` with content `key` (`step` 1: key, key + 1, …; 0:
 * all the same; KEY_UNIQUE: unique). Backs pages as needed and breaks copy-on-write like the
 * workload's writes. For tests and the KSM comparison harness (bench/ksm-sim.ts): one call per
 * range. Returns the pages written (fewer when machine memory ran out).
 */
export function writePages(vm: u32, first: u32, count: u32, key: u32, step: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const end = min(pages, first + count);
  let k = key;
  let n: u32 = 0;
  for (let ppn = first; ppn < end; ppn++) {
    const e = vmI(vm, P_PAGE_BASE) + ppn * PAGE_ENTRY;
    const st = load<u32>(e) & STATE_MASK;
    if (st == STATE_UNBACKED && !backPage(vm, ppn)) break;
    if (st == STATE_SHARED && !shareCow(vm, ppn, e)) break;
    if ((load<u32>(e) & STATE_MASK) != STATE_PRIVATE) continue;
    store<u32>(e, k, 4);
    store<u32>(e, setGuestClass(vm, e, load<u32>(e) | M_DIRTY, GUEST_ANON));
    if (key != KEY_UNIQUE) k += step;
    n++;
  }
  return n;
}

/**
 * The floor of a scan (bench): one plain pass over the VM's page entries reading meta and key, in
 * PPN order (`randomOrder` 0: the memory-bandwidth floor) or in the TPS scanner's order (1: an
 * affine permutation, a cache miss per page, with the same loads-ahead as tpsScan).
 */
export function shareFloorPass(vm: u32, randomOrder: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const base = vmI(vm, P_PAGE_BASE);
  let acc: u32 = 0;
  if (randomOrder == 0) {
    let e = base;
    for (let i: u32 = 0; i < pages; i++, e += PAGE_ENTRY) acc += load<u32>(e) ^ load<u32>(e, 4);
    return acc;
  }
  let step: u32 = pages > 1 ? <u32>((<u64>pages * 0x9e37_79b9) >>> 32) | 1 : 1;
  while (gcd(step, pages) != 1) step = step + 1 < pages ? step + 1 : 1;
  let ppn: u32 = 0;
  for (let i: u32 = 0; i < pages; i += WARM) {
    const n = min(WARM, pages - i);
    ppn = passBatch(base, ppn, step, pages, n);
    for (let j: u32 = 0; j < n; j++) {
      const e = base + load<u32>(batch + (j << 2)) * PAGE_ENTRY;
      acc += load<u32>(e) ^ load<u32>(e, 4);
    }
  }
  return acc;
}

/**
 * Sharing checks of one VM (--check), after pagetable's and reclamation's: 0 when they hold, else
 * 30 shared zero pages ≠ ZERO counter, 31 hinted pages ≠ COWH counter (TPS) or rmap items ≠ the
 * VM's ksm_rmap_items (KSM), 32 cross-VM shared pages ≠ C_SHARED_X, 33 KSM flags inconsistent.
 */
export function shareCheckVm(vm: u32): i32 {
  const policy = hostI(HP_SHARE_POLICY);
  if (policy == POLICY_KSM) return ksmCheckVm(vm);
  const pages = vmI(vm, P_PAGES);
  let e = vmI(vm, P_PAGE_BASE);
  let zero: u32 = 0, hinted: u32 = 0, shared: u32 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
    const m = load<u32>(e);
    if ((m & STATE_MASK) == STATE_SHARED) {
      shared++;
      if (load<u32>(e, 4) == KEY_ZERO) zero++;
    }
    if (m & M_HINTED) hinted++;
  }
  if (<f64>zero != vmC(vm, C_SHARED_ZERO)) return 30;
  if (<f64>hinted != vmC(vm, C_HINTS)) return 31;
  const x = vmI(vm, P_POWERED) != 0 && cross(vmI(vm, P_SHARE_SALT)) ? shared : 0;
  if (<f64>x != vmC(vm, C_SHARED_X)) return 32;
  return 0;
}

/**
 * Host sharing checks (--check): 0 when they hold, else 30 frames ≠ H_COMMON or refcounts ≠ the
 * shared pages of all VMs (TPS), 31 a KSM tree or counter inconsistent (ksm.ts).
 */
export function shareCheckHost(): i32 {
  const policy = hostI(HP_SHARE_POLICY);
  if (policy == POLICY_KSM) return ksmCheckHost();
  if (policy != POLICY_TPS) return hostC(H_COMMON) == 0 ? 0 : 30;
  const cap = load<u32>(tps, 4);
  const base = load<u32>(tps);
  let frames: f64 = 0, refs: f64 = 0, framesX: f64 = 0, entries: f64 = 0;
  for (let i: u32 = 0; i < cap; i++) {
    const a = base + (i << ENTRY_SHIFT);
    if (load<u32>(a) == EMPTY) continue;
    entries++;
    const v1 = load<u32>(a, 8);
    if (v1 & HINT) continue;
    frames++;
    refs += <f64>v1;
    if (cross(load<u32>(a, 4))) framesX++;
  }
  let shared: f64 = 0, sharedX: f64 = 0;
  const nvms = hostI(HP_NVMS);
  for (let vm: u32 = 0; vm < nvms; vm++) {
    shared += vmC(vm, C_SHARED);
    sharedX += vmC(vm, C_SHARED_X);
  }
  if (frames != hostC(H_COMMON) || refs != shared || framesX != hostC(H_COMMON_X)) return 30;
  if (sharedX != hostC(H_SHARED_X) || entries != <f64>load<u32>(tps, 8) || entries != hostC(H_SHARE_ENTRIES)) return 30;
  return 0;
}

/** Live entries of the TPS table, and its capacity (bench: bytes per tracked page). */
export function tpsEntries(): u32 {
  return load<u32>(tps, 8);
}
export function tpsCapacity(): u32 {
  return load<u32>(tps, 4);
}
