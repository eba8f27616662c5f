// Memory compression: the per-VM compression cache (ESX 4.1+).
// Spec: esxi-memory.md §6; published-results.md item 7.
//
// Only pages already chosen for host swapping are compressed (swap.ts calls zipRoom / zipPut for
// each victim). A page's compressibility is a property of its content: a hash of its content key
// (of the PPN and image for unique content) against the VM's thresholds P_ZIP_T1 / P_ZIP_T2, which
// come from the image's distribution (src/policy/reclaim.ts). Zero pages compress to nothing (a
// slot of 0 bytes); a page that fits in 1 KB takes a 1 KB slot, in 2 KB a 2 KB slot; any other
// page is swapped instead.
//
// The cache is charged to the VM: it holds ceil(used KB / 4) machine pages (C_ZIP_CACHE, counted
// in the host's H_ZIP_CACHE), grows on demand up to its cap P_ZIP_CAP_KB (Mem.MemZipMaxPct of
// configured and Mem.MemZipMaxAllocPct of allocated memory, set each tick by the policy; 0 when
// Mem.MemZipEnable is 0) and shrinks as slots empty. When a new page does not fit, the least
// recently used compressed page is decompressed and written to swap. A compressed page cannot be
// used without being decompressed (which removes it), so least recently used = compressed first:
// the cache is a FIFO, kept as a ring of (PPN, content key) entries written in turn. While a page is
// compressed its page entry's key field holds its ring slot (exact, no stale entries to guess
// about); entries of pages decompressed since are holes the ring skips.
//
// Side table: one ring per VM, reserved on the VM's first compression and sized by the largest cap
// the settings allow (1.25 entries per KB of cap + 64, 8 bytes each: about 4 bytes per guest page
// at Mem.MemZipMaxPct 10), never by all pages of all VMs.
import {
  PAGE_ENTRY, P_PAGES, P_PAGE_BASE, P_RCL_BASE, P_CLASS_SEED, P_ZIP_CAP_KB, P_ZIP_MAX_KB, P_ZIP_T1, P_ZIP_T2,
  P_ZIP_RING, P_ZIP_SLOTS, P_ZIP_HEAD, C_COMPRESSED, C_ZIP_KB, C_ZIP_CACHE, C_ZIP_OUT, C_ZIP_IN, C_ZIP_EVICT,
  H_ZIP_CACHE, vmI, setVmI, vmC, addVmC, addHostC, reserve,
} from "./memory";
import { STATE_MASK, STATE_COMPRESSED, STATE_PRIVATE, setState } from "./pagetable";
import { allocSmall, freeSmall } from "./machine";
import { KEY_ZERO, KEY_UNIQUE } from "./content";
import { mix32 } from "./rng";
import { swapOutPage, swapRoom, RCL_ZIP_TAIL } from "./swap";

/** Compressed size class, in page meta bits 14-15 while a page is compressed (0 otherwise). */
export const ZIP_SHIFT: u32 = 14;
export const ZIP_MASK: u32 = 3 << ZIP_SHIFT;
export const ZIP_NONE: u32 = 0; // incompressible: swapped instead
export const ZIP_2K: u32 = 1;
export const ZIP_1K: u32 = 2;
export const ZIP_0: u32 = 3; // the zero page: compresses to nothing

const ENTRY: u32 = 8; // ring entry: u32 PPN (DEAD = hole), u32 content key
const DEAD: u32 = 0xffff_ffff;

// @ts-ignore: decorator
@inline export function slotKb(cls: u32): u32 {
  return cls == ZIP_2K ? 2 : cls == ZIP_1K ? 1 : 0;
}

/** The compressed size class of content `key` held by page `ppn` of `vm`. */
export function zipClass(vm: u32, ppn: u32, key: u32): u32 {
  if (key == KEY_ZERO) return ZIP_0;
  const h = key == KEY_UNIQUE ? mix32(vmI(vm, P_CLASS_SEED) ^ mix32(ppn ^ 0x7f4a_7c15)) : mix32(key ^ 0x2545_f491);
  if (h < vmI(vm, P_ZIP_T1)) return ZIP_1K;
  if (h < vmI(vm, P_ZIP_T2)) return ZIP_2K;
  return ZIP_NONE;
}

// @ts-ignore: decorator
@inline function tailAt(vm: u32): u32 {
  return vmI(vm, P_RCL_BASE) + RCL_ZIP_TAIL;
}

// @ts-ignore: decorator
@inline function cachePagesFor(kb: f64): f64 {
  return Math.ceil(kb / 4);
}

/** Resize the cache's machine pages to fit its contents. */
function fitCache(vm: u32): void {
  const want = cachePagesFor(vmC(vm, C_ZIP_KB));
  const have = vmC(vm, C_ZIP_CACHE);
  if (want > have) {
    for (let i: f64 = have; i < want; i++) allocSmall(); // the caller freed a page just before
  } else if (want < have) {
    freeSmall(have - want);
  }
  addVmC(vm, C_ZIP_CACHE, want - have);
  addHostC(H_ZIP_CACHE, want - have);
}

/** Make sure the VM has a ring as large as its settings allow; false when memory cannot hold it. */
function ensureRing(vm: u32): bool {
  const maxKb = max(vmI(vm, P_ZIP_MAX_KB), vmI(vm, P_ZIP_CAP_KB));
  const want = maxKb + (maxKb >>> 2) + 64;
  const have = vmI(vm, P_ZIP_SLOTS);
  if (have >= want) return true;
  const ring = reserve(<u64>want * ENTRY);
  if (ring == 0) return have > 0;
  memory.fill(ring, 0xff, <usize>want * ENTRY);
  // carry the live entries over, oldest first, and point their pages at their new slots
  const old = vmI(vm, P_ZIP_RING);
  const table = vmI(vm, P_PAGE_BASE);
  let n: u32 = 0;
  if (have > 0) {
    let t = load<u32>(tailAt(vm));
    for (let i: u32 = 0; i < have; i++) {
      const s = old + t * ENTRY;
      const ppn = load<u32>(s);
      if (ppn != DEAD) {
        store<u32>(ring + n * ENTRY, ppn);
        store<u32>(ring + n * ENTRY, load<u32>(s, 4), 4);
        store<u32>(table + ppn * PAGE_ENTRY, n, 4);
        n++;
      }
      t = t + 1 == have ? 0 : t + 1;
    }
  }
  setVmI(vm, P_ZIP_RING, ring);
  setVmI(vm, P_ZIP_SLOTS, want);
  setVmI(vm, P_ZIP_HEAD, n);
  store<u32>(tailAt(vm), 0);
  return true;
}

/**
 * The oldest compressed page is decompressed and written to the VM's swap file. False when there
 * is none or the swap file is full.
 */
function evictOldest(vm: u32): bool {
  if (vmC(vm, C_COMPRESSED) < 1 || !swapRoom(vm)) return false;
  const ring = vmI(vm, P_ZIP_RING);
  const slots = vmI(vm, P_ZIP_SLOTS);
  const table = vmI(vm, P_PAGE_BASE);
  let t = load<u32>(tailAt(vm));
  for (let i: u32 = 0; i < slots; i++) {
    const s = ring + t * ENTRY;
    const ppn = load<u32>(s);
    t = t + 1 == slots ? 0 : t + 1;
    if (ppn == DEAD) continue;
    const e = table + ppn * PAGE_ENTRY;
    const m = free(vm, e, load<u32>(e));
    store<u32>(tailAt(vm), t);
    fitCache(vm);
    swapOutPage(vm, ppn, e, m);
    addVmC(vm, C_ZIP_EVICT, 1);
    return true;
  }
  return false;
}

/** A compressed page's slot empties: its key returns to the entry, its size class is cleared. */
function free(vm: u32, e: u32, m: u32): u32 {
  const slot = load<u32>(e, 4);
  const s = vmI(vm, P_ZIP_RING) + slot * ENTRY;
  store<u32>(e, load<u32>(s, 4), 4);
  store<u32>(s, DEAD);
  addVmC(vm, C_ZIP_KB, -<f64>slotKb((m & ZIP_MASK) >>> ZIP_SHIFT));
  const out = m & ~ZIP_MASK;
  store<u32>(e, out);
  return out;
}

/**
 * Room in the VM's cache for a page of size class `cls`, making it by sending the oldest
 * compressed pages to swap. False when compression is off, the class is incompressible, or room
 * cannot be made (the swap file is full).
 */
export function zipRoom(vm: u32, cls: u32): bool {
  const cap = vmI(vm, P_ZIP_CAP_KB);
  if (cap == 0 || cls == ZIP_NONE) return false;
  const kb = <f64>slotKb(cls);
  if (kb > <f64>cap || !ensureRing(vm)) return false;
  const ring = vmI(vm, P_ZIP_RING);
  // the next slot to write still holds the oldest page when the ring has wrapped
  while (load<u32>(ring + vmI(vm, P_ZIP_HEAD) * ENTRY) != DEAD) if (!evictOldest(vm)) return false;
  while (vmC(vm, C_ZIP_KB) + kb > <f64>cap) if (!evictOldest(vm)) return false;
  return true;
}

/** Compress page `ppn` (its machine page already dropped) into the slot zipRoom made. */
export function zipPut(vm: u32, ppn: u32, e: u32, m: u32, cls: u32): void {
  const ring = vmI(vm, P_ZIP_RING);
  const slots = vmI(vm, P_ZIP_SLOTS);
  const h = vmI(vm, P_ZIP_HEAD);
  const s = ring + h * ENTRY;
  store<u32>(s, ppn);
  store<u32>(s, load<u32>(e, 4), 4);
  store<u32>(e, h, 4);
  setState(vm, e, (m & ~ZIP_MASK) | (cls << ZIP_SHIFT), STATE_COMPRESSED);
  const next = h + 1 == slots ? 0 : h + 1;
  const tail = tailAt(vm);
  if (load<u32>(tail) == h) store<u32>(tail, next);
  setVmI(vm, P_ZIP_HEAD, next);
  addVmC(vm, C_ZIP_KB, <f64>slotKb(cls));
  addVmC(vm, C_ZIP_OUT, 1);
  fitCache(vm);
}

/** Machine pages the cache would give back if compressed page `m` left it. */
export function zipTakeFrees(vm: u32, m: u32): f64 {
  const kb = vmC(vm, C_ZIP_KB) - <f64>slotKb((m & ZIP_MASK) >>> ZIP_SHIFT);
  return vmC(vm, C_ZIP_CACHE) - cachePagesFor(kb);
}

/** Decompress a page on a guest touch: it becomes private (the caller takes its machine page). */
export function zipTake(vm: u32, e: u32, m: u32): void {
  m = free(vm, e, m);
  fitCache(vm);
  setState(vm, e, m, STATE_PRIVATE);
  addVmC(vm, C_ZIP_IN, 1);
}

/** The host drops a compressed page's slot (the balloon took the page); state left to the caller. */
export function zipDrop(vm: u32, e: u32, m: u32): u32 {
  m = free(vm, e, m);
  fitCache(vm);
  return m;
}

/** Power-off: the cache's machine pages return to the host and the ring empties. */
export function zipRelease(vm: u32): void {
  const pages = vmC(vm, C_ZIP_CACHE);
  freeSmall(pages);
  addHostC(H_ZIP_CACHE, -pages);
  addVmC(vm, C_ZIP_CACHE, -pages);
  addVmC(vm, C_ZIP_KB, -vmC(vm, C_ZIP_KB));
  const ring = vmI(vm, P_ZIP_RING);
  if (ring != 0) memory.fill(ring, 0xff, <usize>vmI(vm, P_ZIP_SLOTS) * ENTRY);
  setVmI(vm, P_ZIP_HEAD, 0);
  store<u32>(tailAt(vm), 0);
}

/**
 * Recount the cache (--check): every compressed page's slot points back at it, the slots' sizes sum
 * to C_ZIP_KB, the cache holds ceil(KB / 4) pages, and no more ring entries are live than pages
 * compressed. 0 when all hold; 23 a count differs, 24 a slot does not point back, 25 no size class.
 */
export function zipCheck(vm: u32): i32 {
  const pages = vmI(vm, P_PAGES);
  const table = vmI(vm, P_PAGE_BASE);
  const ring = vmI(vm, P_ZIP_RING);
  const slots = vmI(vm, P_ZIP_SLOTS);
  let kb: f64 = 0, n: f64 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn++) {
    const e = table + ppn * PAGE_ENTRY;
    const m = load<u32>(e);
    if ((m & STATE_MASK) != STATE_COMPRESSED) continue;
    const cls = (m & ZIP_MASK) >>> ZIP_SHIFT;
    if (cls == ZIP_NONE) return 25;
    const slot = load<u32>(e, 4);
    if (slot >= slots || load<u32>(ring + slot * ENTRY) != ppn) return 24;
    kb += <f64>slotKb(cls);
    n++;
  }
  let live: f64 = 0;
  for (let i: u32 = 0; i < slots; i++) if (load<u32>(ring + i * ENTRY) != DEAD) live++;
  if (kb != vmC(vm, C_ZIP_KB) || n != live || vmC(vm, C_ZIP_CACHE) != cachePagesFor(kb)) return 23;
  return 0;
}
