// Host swapping, the fault costs of every reclamation mechanism, and the SSD host cache.
// Spec: esxi-memory.md §7 (host swap: random victims, swap file of configured - reservation,
// swap-in on access, no proactive swap-in, double paging, swap to host cache) and §6 (compression
// comes first for the pages chosen); published-results.md items 6-9.
//
// Victims are chosen **at random** among the VM's resident private pages: the host has no idea
// which guest pages are idle, so hot pages go as readily as cold ones. For each victim, in order:
// share before swap (issue 3's hook), else compress into the VM's cache if the page compresses to
// 2 KB or less and compression is on (compress.ts), else write it to the VM's swap file. A later
// guest touch of a swapped page faults and waits for the read (swap-in needs a free machine page;
// when none is free, or the VM is blocked, the touch waits for memory instead). Nothing is read back
// when pressure ends: pages come back one fault at a time.
//
// Swap to host cache: an SSD cache (Vmemsim.SwapCacheMB) shared by all VMs, written as a log (a ring
// of slots written in turn). A page swapped out goes to the next slot; the page that slot held, if
// still swapped, has been written back to the swap file (HDD) and leaves the cache. Reads of pages
// in the cache cost the SSD latency instead of the HDD one. While a swapped page is in the cache its
// page entry's key field holds the slot number and the slot holds the content key (exact, with no
// stale slots to guess about).
//
// Costs: every fault kind has a latency (configureReclaim, from the scenario's Vmemsim.Lat*
// settings). touchVm (workload.ts) spends a tick's time on touches and on the latencies of the
// faults they take; fault time outside the touch loop (double paging during balloon inflation, COW
// breaks) is carried into the next tick as C_DEBT_US. Nothing here is a fixed penalty per mechanism.
import {
  PAGE_ENTRY, P_PAGES, C_PRIVATE, P_PAGE_BASE, P_RCL_BASE, P_SWAP_PAGES, P_BLOCKED, P_GPF_PAGES,
  P_ZIP_RING, P_ZIP_SLOTS, P_ZIP_CAP_KB, C_SWAPPED, C_COMPRESSED, C_BALLOONED, C_SWAP_OUT, C_SWAP_IN, C_SSD_OUT,
  C_SSD_IN, C_SSD_PAGES, C_LAT_SWAP_US, C_LAT_ZIP_US, C_LAT_ALLOC_US, C_STALL_US, C_DEBT_US,
  C_SWAP_FULL, C_BLOCKED, C_MCTL_FREE, C_GOUT_CACHE, C_GOUT_ANON, C_ZIP_KB, C_ZIP_CACHE,
  C_ZIP_IN, C_ZIP_OUT, C_ZIP_EVICT, C_DOUBLE_PAGING, C_GSWAP_OUT, C_GSWAP_IN, C_GCACHE_MISS, C_MCTL_IN,
  C_MCTL_OUT, C_MCTL_SHORT, C_MCTL_GIVEBACK, C_LAT_GUEST_US, C_LAT_COW_US, H_PRIVATE, H_SSD_USED,
  H_SSD_SLOTS, H_ZIP_CACHE, HP_NVMS, vmI, setVmI, vmC, addVmC, hostI, hostC, addHostC, reserve,
} from "./memory";
import {
  STATE_MASK, STATE_UNBACKED, STATE_PRIVATE, STATE_SHARED, STATE_BALLOONED, STATE_COMPRESSED, STATE_SWAPPED,
  GUEST_MASK, GUEST_SHIFT, GUEST_FREE, GUEST_CACHE, GUEST_ANON, REGION_NONE, REGION_LARGE, REGION_SMALL,
  regionAt, breakLarge, setState,
} from "./pagetable";
import { allocSmall, freeSmall, freePages } from "./machine";
import { seedState, below } from "./rng";
// page sharing (issue 3): share before swap; a shared page the balloon takes drops its reference
import { shareBeforeSwap, tpsOn, shareSlot, shareSaltMixed, unshareForReclaim } from "./share";
import { KEY_UNIQUE } from "./content";
import { zipClass, zipRoom, zipPut, zipTake, zipDrop, zipTakeFrees, zipRelease, zipCheck, ZIP_NONE, ZIP_SHIFT, ZIP_MASK } from "./compress";

// ---- page meta bits 12-15 (reserved for reclamation) ----
/** The guest holds no copy of this page: page cache it dropped, or a page in its own page file. */
export const M_GOUT: u32 = 1 << 12;
/** A swapped page held in the SSD host cache: the key field is its slot there. */
export const M_SSD: u32 = 1 << 13;

// ---- fault costs, microseconds (configureReclaim) ----
export let tickUs: f64 = 0; // 0: no time model, every touch runs (engines driven by hand)
export let latSwapHdd: f64 = 0;
export let latSwapSsd: f64 = 0;
export let latUnzip: f64 = 0;
export let latCow: f64 = 0;
export let latGuest: f64 = 0;
export let latAlloc: f64 = 0;

/** Set the tick length and the latency of each fault kind (us). Once per configuration change. */
export function configureReclaim(tick: f64, hdd: f64, ssd: f64, unzip: f64, cow: f64, guest: f64, alloc: f64): void {
  tickUs = tick;
  latSwapHdd = hdd;
  latSwapSsd = ssd;
  latUnzip = unzip;
  latCow = cow;
  latGuest = guest;
  latAlloc = alloc;
}

/** Fault time spent outside a touch loop (e.g. double paging while inflating): the next tick pays it. */
export function chargeDebt(vm: u32, us: f64): void {
  if (us <= 0) return;
  addVmC(vm, C_DEBT_US, us);
  addVmC(vm, C_STALL_US, us);
}

// ---- per-VM reclamation block: the victim generator and the compression ring's oldest slot ----
const RCL_BLOCK: u32 = 64;
const RCL_RNG: u32 = 0; // 16 bytes: xoshiro128** state of the host's victim draws for this VM
export const RCL_ZIP_TAIL: u32 = 16; // u32: compression ring position to look for the oldest entry from
const VICTIM_STREAM: u32 = 0x5357_0000;

/** Reserve the VM's reclamation block and seed its victim stream. Once per VM, from addVm. */
export function reclaimInit(vm: u32, seed: u32): bool {
  const b = reserve(RCL_BLOCK);
  if (b == 0) return false;
  setVmI(vm, P_RCL_BASE, b);
  seedState(b + RCL_RNG, seed, VICTIM_STREAM + vm);
  return true;
}

// ---- SSD host cache: a log of slots (vm, ppn, key), 12 bytes each ----
const SSD_ENTRY: u32 = 12;
const DEAD: u32 = 0xffff_ffff;
let ssdRing: u32 = 0;
let ssdSlots: u32 = 0;
let ssdHead: u32 = 0;

/** The SSD cache slot's page, if it is still there: its page entry's address, else 0. */
function ssdLive(slot: u32): u32 {
  const s = ssdRing + slot * SSD_ENTRY;
  const v = load<u32>(s);
  if (v == DEAD) return 0;
  const e = tableOf(v) + load<u32>(s, 4) * PAGE_ENTRY;
  const m = load<u32>(e);
  return (m & STATE_MASK) == STATE_SWAPPED && (m & M_SSD) != 0 && load<u32>(e, 4) == slot ? e : 0;
}

/**
 * Give the host an SSD swap cache of `slots` pages (0: none), at any time: the pages it holds move
 * to the new log, newest kept when it is smaller (the others are in the swap file already). One
 * call per configuration change. False when linear memory cannot hold the log (nothing changed).
 */
export function setSwapCache(slots: u32): bool {
  if (slots == ssdSlots) return true;
  let ring: u32 = 0;
  if (slots > 0) {
    ring = reserve(<u64>slots * SSD_ENTRY);
    if (ring == 0) return false;
    memory.fill(ring, 0xff, <usize>slots * SSD_ENTRY);
  }
  // the live slots, oldest first from the head; the newest `slots` of them stay
  let live: u32 = 0;
  for (let i: u32 = 0; i < ssdSlots; i++) if (ssdLive(i) != 0) live++;
  let skip = live > slots ? live - slots : 0;
  let n: u32 = 0;
  let t = ssdHead;
  for (let i: u32 = 0; i < ssdSlots; i++) {
    if (ssdLive(t) != 0) {
      if (skip > 0) {
        ssdEvict(t);
        skip--;
      } else {
        const s = ssdRing + t * SSD_ENTRY;
        const d = ring + n * SSD_ENTRY;
        store<u32>(d, load<u32>(s));
        store<u32>(d, load<u32>(s, 4), 4);
        store<u32>(d, load<u32>(s, 8), 8);
        store<u32>(tableOf(load<u32>(s)) + load<u32>(s, 4) * PAGE_ENTRY, n, 4);
        n++;
      }
    }
    t = t + 1 == ssdSlots ? 0 : t + 1;
  }
  addHostC(H_SSD_SLOTS, <f64>slots - <f64>ssdSlots);
  ssdRing = ring;
  ssdSlots = slots;
  ssdHead = slots > 0 ? n % slots : 0;
  return true;
}

// @ts-ignore: decorator
@inline function tableOf(vm: u32): u32 {
  return vmI(vm, P_PAGE_BASE);
}

/** The slot's page leaves the cache for the swap file, if it is still there. */
function ssdEvict(slot: u32): void {
  const s = ssdRing + slot * SSD_ENTRY;
  const e = ssdLive(slot);
  if (e != 0) {
    store<u32>(e, load<u32>(s, 8), 4);
    store<u32>(e, load<u32>(e) & ~M_SSD);
    addVmC(load<u32>(s), C_SSD_PAGES, -1);
    addHostC(H_SSD_USED, -1);
  }
  store<u32>(s, DEAD);
}

/** Take a swapped page out of the SSD cache (read or dropped): its key goes back to the entry. */
function ssdForget(vm: u32, e: u32, m: u32): u32 {
  const slot = load<u32>(e, 4);
  const s = ssdRing + slot * SSD_ENTRY;
  store<u32>(e, load<u32>(s, 8), 4);
  store<u32>(s, DEAD);
  addVmC(vm, C_SSD_PAGES, -1);
  addHostC(H_SSD_USED, -1);
  const out = m & ~M_SSD;
  store<u32>(e, out);
  return out;
}

// ---- page-level moves ----

/** A resident private page gives its machine page back (its large page is broken first). */
export function dropResident(vm: u32, ppn: u32): void {
  const r = regionAt(vm, ppn);
  if (load<u8>(r) == REGION_LARGE) breakLarge(vm, ppn);
  addHostC(H_PRIVATE, -1);
  freeSmall(1);
}

/**
 * Write a page whose machine page was just dropped to the VM's swap file (and the SSD cache).
 * Inlined with evict into swapVm's loop, the SSD cache out of line (issue 6: fewer instructions
 * per victim, swapVm 1.15x).
 */
// @ts-ignore: decorator
@inline export function swapOutPage(vm: u32, ppn: u32, e: u32, m: u32): void {
  m = setState(vm, e, m, STATE_SWAPPED);
  addVmC(vm, C_SWAP_OUT, 1);
  if (ssdSlots != 0) ssdPut(vm, ppn, e, m);
}

/** The page just swapped out also goes to the SSD cache, in the log's next slot. */
function ssdPut(vm: u32, ppn: u32, e: u32, m: u32): void {
  const slot = ssdHead;
  ssdHead = slot + 1 == ssdSlots ? 0 : slot + 1;
  ssdEvict(slot);
  const s = ssdRing + slot * SSD_ENTRY;
  store<u32>(s, vm);
  store<u32>(s, ppn, 4);
  store<u32>(s, load<u32>(e, 4), 8);
  store<u32>(e, slot, 4);
  store<u32>(e, m | M_SSD);
  addVmC(vm, C_SSD_PAGES, 1);
  addHostC(H_SSD_USED, 1);
  addVmC(vm, C_SSD_OUT, 1);
}

/** Read a swapped page back (its machine page already taken); returns the read's latency. */
function swapInPage(vm: u32, e: u32, m: u32): f64 {
  let lat = latSwapHdd;
  if (m & M_SSD) {
    m = ssdForget(vm, e, m);
    addVmC(vm, C_SSD_IN, 1);
    lat = latSwapSsd;
  }
  setState(vm, e, m, STATE_PRIVATE);
  addHostC(H_PRIVATE, 1);
  addVmC(vm, C_SWAP_IN, 1);
  addVmC(vm, C_LAT_SWAP_US, lat);
  return lat;
}

/** Read cost of a swapped page without moving it (double paging: the guest reads it to write it out). */
export function swapReadCost(m: u32): f64 {
  return (m & M_SSD) != 0 ? latSwapSsd : latSwapHdd;
}

/**
 * The host forgets whatever it holds for a page that leaves the VM's memory (the balloon took it):
 * a private page's machine page, a swap slot, a compression slot. Returns the meta with the host
 * state unchanged (the caller sets STATE_BALLOONED; a shared page comes back unbacked, its reference
 * dropped), or 0xFFFFFFFF when the page cannot go.
 */
export function hostRelease(vm: u32, ppn: u32, e: u32, m: u32): u32 {
  const st = m & STATE_MASK;
  if (st == STATE_PRIVATE) {
    dropResident(vm, ppn);
  } else if (st == STATE_UNBACKED) {
    // a never-touched page: its region may no longer be backed whole by a large page later
    const r = regionAt(vm, ppn);
    if (load<u8>(r) == REGION_NONE) store<u8>(r, REGION_SMALL);
  } else if (st == STATE_SWAPPED) {
    if (m & M_SSD) m = ssdForget(vm, e, m);
  } else if (st == STATE_COMPRESSED) {
    m = zipDrop(vm, e, m);
  } else if (st == STATE_SHARED) {
    if (!unshareForReclaim(vm, ppn, e, m)) return DEAD;
    m = load<u32>(e);
  }
  return m;
}

// ---- host swap: random victims ----

const PROBE: u32 = 64; // victim candidates drawn ahead
const probe = memory.data(PROBE * 4);
let sink: u32 = 0; // keeps the warming loads from being optimised away

/**
 * Reclaim up to `n` resident private pages of `vm`, chosen at random: share, else compress, else
 * swap each. Returns the pages taken (fewer when the swap file is full and nothing compresses, or
 * when the VM has no private pages left). One call per VM per tick.
 */
export function swapVm(vm: u32, n: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  if (n == 0 || pages == 0) return 0;
  const table = tableOf(vm);
  const rng = vmI(vm, P_RCL_BASE) + RCL_RNG;
  let got: u32 = 0;
  const sharing = tpsOn(vm);
  const salt = sharing ? shareSaltMixed(vm) : 0;
  // rejection sampling: uniform among private pages; bounded so a VM with few private pages
  // falls through to a scan from a random start. Candidates are drawn PROBE at a time, then their
  // entries loaded in a loop of loads alone, so the cache misses of independent pages overlap.
  // The generator's state stays in locals for the batch: the stream is rng.ts below() exactly,
  // without each draw waiting on the last one's stores (issue 6: draws and loads 1.7x faster).
  let tries: u32 = n * 16 + 1024;
  while (got < n && tries > 0) {
    const k = min(PROBE, tries);
    tries -= k;
    let s0 = load<u32>(rng), s1 = load<u32>(rng, 4), s2 = load<u32>(rng, 8), s3 = load<u32>(rng, 12);
    for (let j: u32 = 0; j < k; j++) {
      const u = rotl(s1 * 5, 7) * 9;
      const t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
      store<u32>(probe + (j << 2), <u32>((<u64>u * <u64>pages) >>> 32));
    }
    store<u32>(rng, s0);
    store<u32>(rng, s1, 4);
    store<u32>(rng, s2, 8);
    store<u32>(rng, s3, 12);
    let warm: u32 = 0;
    for (let j: u32 = 0; j < k; j++) warm ^= load<u32>(table + load<u32>(probe + (j << 2)) * PAGE_ENTRY);
    // and the TPS table slots share-before-swap will look at (a unique page looks at none: its
    // load goes to the probe block instead, which is cached)
    if (sharing) {
      for (let j: u32 = 0; j < k; j++) {
        const key = load<u32>(table + load<u32>(probe + (j << 2)) * PAGE_ENTRY, 4);
        warm ^= load<u32>(select<u32>(<u32>probe, shareSlot(key, salt), key == KEY_UNIQUE));
      }
    }
    sink ^= warm;
    for (let j: u32 = 0; j < k && got < n; j++) {
      const ppn = load<u32>(probe + (j << 2));
      const e = table + ppn * PAGE_ENTRY;
      const m = load<u32>(e);
      if ((m & STATE_MASK) != STATE_PRIVATE) continue;
      if (!evict(vm, ppn, e, m)) return got;
      got++;
    }
  }
  if (got < n && vmC(vm, C_PRIVATE) > 0) {
    let ppn = below(rng, pages);
    for (let i: u32 = 0; i < pages && got < n; i++) {
      const e = table + ppn * PAGE_ENTRY;
      const m = load<u32>(e);
      if ((m & STATE_MASK) == STATE_PRIVATE) {
        if (!evict(vm, ppn, e, m)) return got;
        got++;
      }
      ppn = ppn + 1 == pages ? 0 : ppn + 1;
    }
  }
  return got;
}

/** One victim: share, compress or swap. False when it can go nowhere (swap file full). */
// @ts-ignore: decorator
@inline function evict(vm: u32, ppn: u32, e: u32, m: u32): bool {
  // a page of a large page is swapped as a small page: break it first, which lets it be shared
  const r = regionAt(vm, ppn);
  if (load<u8>(r) == REGION_LARGE) breakLarge(vm, ppn);
  if (shareBeforeSwap(vm, ppn)) return true; // counted by share.ts (C_SHARE_BEFORE_SWAP)
  m = load<u32>(e); // sharing may have re-marked its hint
  // without a compression cache zipRoom refuses every class: skip zipClass's hashes (issue 6)
  if (vmI(vm, P_ZIP_CAP_KB) != 0) {
    const cls = zipClass(vm, ppn, load<u32>(e, 4));
    if (cls != ZIP_NONE && zipRoom(vm, cls)) {
      dropResident(vm, ppn);
      zipPut(vm, ppn, e, load<u32>(e), cls);
      return true;
    }
  }
  if (vmC(vm, C_SWAPPED) < <f64>vmI(vm, P_SWAP_PAGES)) {
    dropResident(vm, ppn);
    swapOutPage(vm, ppn, e, m);
    return true;
  }
  addVmC(vm, C_SWAP_FULL, 1);
  return false;
}

/** Room left in the VM's swap file. */
export function swapRoom(vm: u32): bool {
  return vmC(vm, C_SWAPPED) < <f64>vmI(vm, P_SWAP_PAGES);
}

// ---- the host side of a guest touch of a page that is not resident ----

/**
 * Serve a guest touch of a compressed or swapped page: decompress it or read it in, into a free
 * machine page. Returns the latency (us), or -1 when the touch must wait for memory (no free
 * machine page, or the host blocks the VM); the page then stays where it is.
 */
export function hostFault(vm: u32, e: u32, m: u32): f64 {
  const st = m & STATE_MASK;
  if (vmI(vm, P_BLOCKED) != 0) {
    addVmC(vm, C_BLOCKED, 1);
    return -1;
  }
  if (st == STATE_COMPRESSED) {
    if (freePages() + zipTakeFrees(vm, m) < 1) return -1;
    zipTake(vm, e, m);
    allocSmall();
    addHostC(H_PRIVATE, 1);
    addVmC(vm, C_LAT_ZIP_US, latUnzip);
    return latUnzip;
  }
  if (!allocSmall()) return -1;
  return swapInPage(vm, e, m);
}

/** Power-off: the VM's swap file, SSD cache slots and compression cache go. Before releaseVm. */
export function releaseReclaim(vm: u32): void {
  addHostC(H_SSD_USED, -vmC(vm, C_SSD_PAGES)); // its slots go stale: their pages are no longer swapped
  zipRelease(vm);
  // the gauges (no array literal here: it would be allocated on the stub runtime's heap, which is
  // where memory.ts places the host record)
  zero(vm, C_DEBT_US);
  zero(vm, C_MCTL_FREE);
  zero(vm, C_GOUT_CACHE);
  zero(vm, C_GOUT_ANON);
  zero(vm, C_MCTL_SHORT);
  zero(vm, C_SSD_PAGES);
}

// @ts-ignore: decorator
@inline function zero(vm: u32, i: i32): void {
  addVmC(vm, i, -vmC(vm, i));
}

// ---- conservation (--check) ----

/**
 * The reclamation state of one VM recounted page by page. 0 when it holds, else a code
 * (docs/architecture.md): 20 a ballooned page the guest still holds, 21 a page the guest gave
 * up that is resident, 22 a free page marked given up, 23 reclamation counts differ from the
 * table, 24 a compression or SSD slot does not point back at its page, 25 mechanism bits on a page
 * in the wrong state, 26 a page file or swap file holds more than its size.
 */
export function checkReclaim(vm: u32): i32 {
  const pages = vmI(vm, P_PAGES);
  const table = tableOf(vm);
  let mctlFree: u32 = 0, goutCache: u32 = 0, goutAnon: u32 = 0, ssd: u32 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn++) {
    const e = table + ppn * PAGE_ENTRY;
    const m = load<u32>(e);
    const st = m & STATE_MASK;
    const g = (m & GUEST_MASK) >>> GUEST_SHIFT;
    const out = (m & M_GOUT) != 0;
    if (st == STATE_BALLOONED && g != GUEST_FREE && !out) return 20;
    if (out && st != STATE_UNBACKED && st != STATE_BALLOONED) return 21;
    if (out && g == GUEST_FREE) return 22;
    if (st == STATE_BALLOONED && g == GUEST_FREE) mctlFree++;
    if (out && g == GUEST_CACHE) goutCache++;
    if (out && g == GUEST_ANON) goutAnon++;
    if (m & M_SSD) {
      if (st != STATE_SWAPPED) return 25;
      const slot = load<u32>(e, 4);
      if (slot >= ssdSlots) return 24;
      const s = ssdRing + slot * SSD_ENTRY;
      if (load<u32>(s) != vm || load<u32>(s, 4) != ppn) return 24;
      ssd++;
    }
    if (st != STATE_COMPRESSED && (m & ZIP_MASK) != 0) return 25;
  }
  if (<f64>mctlFree != vmC(vm, C_MCTL_FREE) || <f64>goutCache != vmC(vm, C_GOUT_CACHE)) return 23;
  if (<f64>goutAnon != vmC(vm, C_GOUT_ANON) || <f64>ssd != vmC(vm, C_SSD_PAGES)) return 23;
  const z = zipCheck(vm);
  if (z != 0) return z;
  if (vmC(vm, C_GOUT_ANON) > <f64>vmI(vm, P_GPF_PAGES)) return 26;
  if (vmC(vm, C_SWAPPED) > <f64>vmI(vm, P_SWAP_PAGES)) return 26;
  return 0;
}

/** Host side (--check): 0 when it holds; 20 compression caches ≠ H_ZIP_CACHE, 21 SSD slots in use ≠ the VMs'. */
export function checkReclaimHost(): i32 {
  const n = hostI(HP_NVMS);
  let zip: f64 = 0, ssd: f64 = 0;
  for (let vm: u32 = 0; vm < n; vm++) {
    zip += vmC(vm, C_ZIP_CACHE);
    ssd += vmC(vm, C_SSD_PAGES);
  }
  if (zip != hostC(H_ZIP_CACHE)) return 20;
  if (ssd != hostC(H_SSD_USED) || ssd > <f64>ssdSlots) return 21;
  return 0;
}
