// Ballooning (vmmemctl) with a cooperating guest: the guest, not the host, picks the pages.
// Spec: esxi-memory.md §5 (W02 §3, RM40, DOCS); published-results.md items 3 and 6.
//
// The driver (policy: src/policy/reclaim.ts) polls once per tick for its target and inflates or
// deflates toward it at vmw_balloon's rates. Inflating asks the guest model for pages, which gives,
// in this order:
//   1. free pages: pages it holds nothing in (never used, or whose content it already gave up);
//      taken without limit per poll (the driver's non-sleeping allocations);
//   2. page cache, oldest first (dropped: no I/O);
//   3. anonymous pages, oldest first, written to its own page file (guest swap I/O; only while the
//      page file has room).
// Classes 2 and 3 cost the guest reclaim work: as in vmw_balloon, a poll takes free pages with
// non-sleeping allocations up to its non-sleeping rate, and only when they fail (no free page left)
// goes on with sleeping allocations, up to its slower adaptive rate for the whole poll. When the guest has nothing left (no free page, no cache, page file full) the
// balloon stalls: C_MCTL_SHORT reports the pages it could not give, and the policy sends them to
// host swap.
//
// "Least recently used it knows of": the guest knows when it last touched each page (the epoch in
// bits 16-31). For each reclaim it estimates, from 64 pages of the class drawn at random, the age
// above which its oldest `need` pages lie (P_GAGE_*), then a hand per class sweeps the PPNs (at
// most one revolution) taking pages at least that old; what it still needs comes from any page of
// the class before it turns to the next class. No referenced bit is cleared, so the sampler's M_ACCESSED is left alone; ages are
// epochs mod 65536 (a page untouched for more than 65536 ticks looks young again).
//
// A page the balloon takes frees its machine page (or its swap or compression slot: a host-swapped
// page chosen by the guest for its page file must be read in first, which is double paging). Pages
// whose content the guest gave up carry M_GOUT (swap.ts) until touched again; a touch of one
// faults *inside the guest*: a read from its page file (anonymous) or of the dropped file (cache),
// at the guest disk latency, never a host swap-in. A touch of a page the balloon holds makes the
// guest give the balloon another page in exchange (its own reclaim, same order), so the balloon
// keeps its size; when the guest has nothing to give, the balloon gives the page back.
import {
  PAGE_ENTRY, P_PAGES, P_PAGE_BASE, P_GPF_PAGES, P_GHAND_FREE, P_GHAND_CACHE, P_GHAND_ANON, P_GAGE_CACHE,
  P_GAGE_ANON, P_RCL_BASE, C_BALLOONED, C_GUEST_FREE, C_MCTL_FREE, C_GOUT_CACHE, C_GOUT_ANON, C_GSWAP_OUT, C_GSWAP_IN,
  C_GCACHE_MISS, C_MCTL_IN, C_MCTL_OUT, C_MCTL_SHORT, C_MCTL_GIVEBACK, C_DOUBLE_PAGING, C_SWAP_IN,
  C_LAT_SWAP_US, C_LAT_ZIP_US, C_LAT_GUEST_US, C_ZIP_IN, C_GUEST_CACHE, C_GUEST_ANON,
  vmI, setVmI, vmC, addVmC,
} from "./memory";
import {
  STATE_MASK, STATE_UNBACKED, STATE_BALLOONED, STATE_COMPRESSED, STATE_SWAPPED, GUEST_MASK, GUEST_SHIFT,
  GUEST_FREE, GUEST_CACHE, GUEST_ANON, EPOCH_SHIFT, setState,
} from "./pagetable";
import { M_GOUT, hostRelease, swapReadCost, chargeDebt, latUnzip, latGuest } from "./swap";
import { below } from "./rng";

const L_FREE: u32 = 0;
const L_CACHE: u32 = 1;
const L_ANON: u32 = 2;
const NONE: u32 = 0xffff_ffff;

/** Fault time the guest spent inside the last reclaim (double paging, decompression), us. */
let reclaimLat: f64 = 0;

// @ts-ignore: decorator
@inline function setC(vm: u32, i: i32, v: f64): void {
  addVmC(vm, i, v - vmC(vm, i));
}

/** Free pages the guest can give: not ballooned, and empty (free, or content given up). */
// @ts-ignore: decorator
@inline function freeAvail(vm: u32): f64 {
  const ballooned = vmC(vm, C_BALLOONED);
  const bFree = vmC(vm, C_MCTL_FREE);
  return vmC(vm, C_GUEST_FREE) - bFree + (vmC(vm, C_GOUT_CACHE) + vmC(vm, C_GOUT_ANON) - (ballooned - bFree));
}

// @ts-ignore: decorator
@inline function pageFileRoom(vm: u32): bool {
  return vmC(vm, C_GOUT_ANON) < <f64>vmI(vm, P_GPF_PAGES);
}

const SAMPLES: u32 = 64;
const COLD_SCAN: u64 = 256; // entries a sweep for old pages may look at per page it needs
const COLD_SCAN_MIN: u64 = 8192;
const ages = memory.data(SAMPLES * 4);

/**
 * The age (ticks) at or above which about `need` of the guest's `avail` pages of class `want` lie:
 * estimated from up to 64 of them drawn at random (the VM's reclamation stream). 0 (any page) when
 * it needs them all or finds too few to judge.
 */
function coldAge(vm: u32, want: u32, need: u32, avail: f64, epoch: u32): u32 {
  if (<f64>need >= avail) return 0;
  const pages = vmI(vm, P_PAGES);
  const table = vmI(vm, P_PAGE_BASE);
  const rng = vmI(vm, P_RCL_BASE); // its xoshiro128** state is the block's first 16 bytes
  let n: u32 = 0;
  for (let tries: u32 = SAMPLES * 8; n < SAMPLES && tries > 0; tries--) {
    const m = load<u32>(table + below(rng, pages) * PAGE_ENTRY);
    if ((m & STATE_MASK) == STATE_BALLOONED || (m & M_GOUT) != 0 || ((m & GUEST_MASK) >>> GUEST_SHIFT) != want) continue;
    const age = (epoch - (m >>> EPOCH_SHIFT)) & 0xffff;
    // insertion, oldest first
    let i = n;
    while (i > 0 && load<u32>(ages + ((i - 1) << 2)) < age) {
      store<u32>(ages + (i << 2), load<u32>(ages + ((i - 1) << 2)));
      i--;
    }
    store<u32>(ages + (i << 2), age);
    n++;
  }
  if (n < 8) return 0;
  const j = <u32>((<f64>need / avail) * <f64>n);
  return j >= n ? 0 : load<u32>(ages + (j << 2));
}

/**
 * Give the page at `e` to the balloon as level `level` allows. Returns false when it cannot go
 * (shared pages until the sharing mechanism can drop one reference).
 */
function take(vm: u32, ppn: u32, e: u32, m: u32, level: u32): bool {
  const g = (m & GUEST_MASK) >>> GUEST_SHIFT;
  const st = m & STATE_MASK;
  let lat: f64 = 0;
  if (level == L_ANON) {
    // the guest writes the page to its page file: it must read it first if the host holds it elsewhere
    if (st == STATE_SWAPPED) {
      lat = swapReadCost(m);
      addVmC(vm, C_DOUBLE_PAGING, 1);
      addVmC(vm, C_SWAP_IN, 1);
      addVmC(vm, C_LAT_SWAP_US, lat);
    } else if (st == STATE_COMPRESSED) {
      lat = latUnzip;
      addVmC(vm, C_ZIP_IN, 1);
      addVmC(vm, C_LAT_ZIP_US, lat);
    }
  }
  const r = hostRelease(vm, ppn, e, m);
  if (r == NONE) return false;
  m = r;
  if (level == L_CACHE) {
    m |= M_GOUT;
    addVmC(vm, C_GOUT_CACHE, 1);
  } else if (level == L_ANON) {
    m |= M_GOUT;
    addVmC(vm, C_GOUT_ANON, 1);
    addVmC(vm, C_GSWAP_OUT, 1);
    reclaimLat += lat;
  } else if (g == GUEST_FREE) {
    addVmC(vm, C_MCTL_FREE, 1);
  }
  setState(vm, e, m, STATE_BALLOONED);
  return true;
}

/**
 * One sweep of the hand of `level` taking up to `need` pages at least `minAge` ticks old (0: any).
 * At most one revolution; a sweep for old pages looks at most COLD_SCAN entries per page it needs
 * (the hand moves on, so successive sweeps cover the table). Returns the pages taken.
 */
function sweep(vm: u32, level: u32, need: u32, minAge: u32, epoch: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const table = vmI(vm, P_PAGE_BASE);
  const handP = level == L_FREE ? P_GHAND_FREE : level == L_CACHE ? P_GHAND_CACHE : P_GHAND_ANON;
  const want = level == L_CACHE ? GUEST_CACHE : GUEST_ANON;
  let h = vmI(vm, handP);
  if (h >= pages) h = 0;
  let got: u32 = 0;
  const limit = minAge == 0 ? pages : <u32>min(<u64>pages, max(<u64>need * COLD_SCAN, <u64>COLD_SCAN_MIN));
  for (let i: u32 = 0; i < limit && got < need; i++) {
    const e = table + h * PAGE_ENTRY;
    const m = load<u32>(e);
    const st = m & STATE_MASK;
    if (st != STATE_BALLOONED) {
      const g = (m & GUEST_MASK) >>> GUEST_SHIFT;
      const out = (m & M_GOUT) != 0;
      let ok = false;
      if (level == L_FREE) ok = g == GUEST_FREE || out;
      else if (!out && g == want) {
        ok = minAge == 0 || ((epoch - (m >>> EPOCH_SHIFT)) & 0xffff) >= minAge;
        if (ok && level == L_ANON && !pageFileRoom(vm)) break;
      }
      if (ok && take(vm, h, e, m, level)) got++;
    }
    h = h + 1 == pages ? 0 : h + 1;
  }
  setVmI(vm, handP, h);
  return got;
}

/** Free pages only (the driver's non-sleeping allocations). */
function takeFree(vm: u32, need: u32): u32 {
  if (need == 0 || freeAvail(vm) < 1) return 0;
  return sweep(vm, L_FREE, need, 0, 0);
}

/**
 * The guest reclaims up to `need` pages for the balloon, least valuable first (the file comment's
 * order). `fresh`: estimate the age of its oldest pages anew (a balloon poll); else use the last
 * estimate (a single page for an exchange). Fault time it spends (double paging) accumulates in
 * reclaimLat.
 */
function guestReclaim(vm: u32, need: u32, epoch: u32, fresh: bool): u32 {
  let got = takeFree(vm, need);
  if (got < need && cacheAvail(vm) >= 1) {
    const age = fresh ? coldAge(vm, GUEST_CACHE, need - got, cacheAvail(vm), epoch) : vmI(vm, P_GAGE_CACHE);
    setVmI(vm, P_GAGE_CACHE, age);
    got += sweep(vm, L_CACHE, need - got, age, epoch);
    if (got < need && age > 0) got += sweep(vm, L_CACHE, need - got, 0, epoch);
  }
  if (got < need && anonAvail(vm) >= 1 && pageFileRoom(vm)) {
    const age = fresh ? coldAge(vm, GUEST_ANON, need - got, anonAvail(vm), epoch) : vmI(vm, P_GAGE_ANON);
    setVmI(vm, P_GAGE_ANON, age);
    got += sweep(vm, L_ANON, need - got, age, epoch);
    if (got < need && age > 0 && pageFileRoom(vm)) got += sweep(vm, L_ANON, need - got, 0, epoch);
  }
  return got;
}

/** Page cache / anonymous pages the guest still holds (not given up, not ballooned). */
// @ts-ignore: decorator
@inline function cacheAvail(vm: u32): f64 {
  return vmC(vm, C_GUEST_CACHE) - vmC(vm, C_GOUT_CACHE);
}
// @ts-ignore: decorator
@inline function anonAvail(vm: u32): f64 {
  return vmC(vm, C_GUEST_ANON) - vmC(vm, C_GOUT_ANON);
}

/**
 * One poll of the balloon driver of `vm` toward `target` pages: inflate with up to `freeBudget`
 * free pages (non-sleeping allocations), and when the guest has no free page left, up to
 * `reclaimBudget` pages in all for the poll (sleeping allocations: the guest reclaims); or deflate
 * by up to `deflateBudget`. Returns the change in balloon size. Sets C_MCTL_SHORT to the pages still
 * missing when the guest had nothing more to give (0 otherwise). One call per VM per tick.
 */
export function balloonVm(vm: u32, target: u32, freeBudget: u32, reclaimBudget: u32, deflateBudget: u32, epoch: u32): i32 {
  const size = <u32>vmC(vm, C_BALLOONED);
  setC(vm, C_MCTL_SHORT, 0);
  if (size < target) {
    const need = target - size;
    reclaimLat = 0;
    let got = takeFree(vm, min(need, freeBudget));
    if (got < need && got < reclaimBudget && freeAvail(vm) < 1) {
      const want = min(need - got, reclaimBudget - got);
      const r = guestReclaim(vm, want, epoch, true);
      got += r;
      if (r < want) setC(vm, C_MCTL_SHORT, <f64>(need - got));
    }
    addVmC(vm, C_MCTL_IN, <f64>got);
    chargeDebt(vm, reclaimLat);
    return <i32>got;
  }
  if (size > target) return -<i32>deflate(vm, min(size - target, deflateBudget));
  return 0;
}

/** Release up to `n` balloon pages back to the guest (they stay unbacked until touched). */
function deflate(vm: u32, n: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const table = vmI(vm, P_PAGE_BASE);
  let h = vmI(vm, P_GHAND_FREE);
  if (h >= pages) h = 0;
  let got: u32 = 0;
  for (let i: u32 = 0; i < pages && got < n; i++) {
    const e = table + h * PAGE_ENTRY;
    const m = load<u32>(e);
    if ((m & STATE_MASK) == STATE_BALLOONED) {
      unballoon(vm, e, m);
      got++;
    }
    h = h + 1 == pages ? 0 : h + 1;
  }
  setVmI(vm, P_GHAND_FREE, h);
  addVmC(vm, C_MCTL_OUT, <f64>got);
  return got;
}

// @ts-ignore: decorator
@inline function unballoon(vm: u32, e: u32, m: u32): u32 {
  if ((m & GUEST_MASK) == (GUEST_FREE << GUEST_SHIFT)) addVmC(vm, C_MCTL_FREE, -1);
  return setState(vm, e, m, STATE_UNBACKED);
}

/**
 * The guest takes back a page the balloon holds (a guest touch of it): it gives the balloon another
 * page in exchange, by its usual order (or the balloon gives the page back when the guest has
 * nothing). The page is left unbacked, still marked M_GOUT if its content is out (the caller backs
 * it, then guestPageIn). Returns the guest's fault time, us (double paging its reclaim did).
 */
export function guestTakeBack(vm: u32, e: u32, epoch: u32): f64 {
  reclaimLat = 0;
  if (guestReclaim(vm, 1, epoch, false) == 0) {
    addVmC(vm, C_MCTL_GIVEBACK, 1);
    addVmC(vm, C_MCTL_OUT, 1);
  }
  unballoon(vm, e, load<u32>(e));
  return reclaimLat;
}

/**
 * A guest touch of a page whose content it gave up (M_GOUT), now backed again: the content comes
 * back from its page file (anonymous) or from disk (page cache it dropped). Returns the read's
 * time, us (Vmemsim.LatGuestDisk).
 */
export function guestPageIn(vm: u32, e: u32, m: u32): f64 {
  if ((m & GUEST_MASK) == (GUEST_ANON << GUEST_SHIFT)) {
    addVmC(vm, C_GOUT_ANON, -1);
    addVmC(vm, C_GSWAP_IN, 1);
  } else {
    addVmC(vm, C_GOUT_CACHE, -1);
    addVmC(vm, C_GCACHE_MISS, 1);
  }
  addVmC(vm, C_LAT_GUEST_US, latGuest);
  store<u32>(e, m & ~M_GOUT);
  return latGuest;
}
