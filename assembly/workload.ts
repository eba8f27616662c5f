// The guest workload: page touches for one VM and one tick, generated here from the VM's own
// random stream, plus the boot-time zeroing sweep of guests that zero their memory (Windows).
// Spec: esxi-memory.md §1 (first touch backs a page; large pages), §2 (active memory: what the
// sampler observes); the scenario's workload model in docs/scenarios.md.
//
// A touch picks a rank in the working set by the access pattern (rank 0 = hottest, and rank =
// PPN), then reads or writes it: the first touch backs it (pagetable.backPage), a write stores the
// page's class content (content.ts) and marks it dirty, a touch of a sampled page is counted for
// the active-memory estimate. Touches of pages that are not resident are counted as faults by
// state, for the reclamation mechanisms to serve.
import {
  PAGE_ENTRY, QTABLE_ENTRIES, P_PAGE_BASE, P_PAGES, P_ACTIVE, P_PATTERN, P_HOT, P_HOT_T, P_WRITE_T, P_SWEEP,
  P_ZIPF_S, P_QTABLE_BASE, P_RNG, C_TOUCHES, C_READS, C_WRITES, C_ALLOC_STALLS, C_FAULT_BALLOONED,
  C_FAULT_COMPRESSED, C_FAULT_SWAPPED, C_ZEROED, C_SAMPLE_HITS, vmBase, vmI, setVmI, addVmC,
  P_TOUCH_SPAN, P_BLOCKED, C_BLOCKED, // scheduler (issue 4)
} from "./memory";
import {
  entryAt, backPage, setGuestClass, STATE_MASK, STATE_UNBACKED, STATE_PRIVATE, STATE_BALLOONED, STATE_COMPRESSED,
  STATE_SWAPPED, M_ACCESSED, M_DIRTY, M_SAMPLED, GUEST_MASK, GUEST_SHIFT, GUEST_FREE, GUEST_CACHE,
  GUEST_ANON, EPOCH_SHIFT,
} from "./pagetable";
import { contentOf, keyOf } from "./content";
// reclamation (issue 5): fault service and the time a tick's touches take
import { C_DEMAND, C_STALL_US, C_LAT_ALLOC_US, C_DEBT_US, C_LAT_COW_US, vmC } from "./memory";
import { tickUs, latAlloc, latCow, hostFault, M_GOUT } from "./swap";
import { guestTakeBack, guestPageIn } from "./balloon";
import { shareCow } from "./share"; // sharing (issue 3)
import { STATE_SHARED } from "./pagetable"; // sharing (issue 3)

export const PATTERN_UNIFORM: u32 = 0;
export const PATTERN_ZIPF: u32 = 1;
export const PATTERN_HOTCOLD: u32 = 2;

const QBITS: u32 = 10; // log2(QTABLE_ENTRIES)
export const BATCH: u32 = 64; // touches drawn ahead of applying them
export const WRITE_BIT: u32 = 0x8000_0000; // PPNs are below 2^31
export const batch = memory.data(BATCH * 4);
let sink: u32 = 0; // keeps the warming loads from being optimised away
const QFRAC: u32 = 32 - QBITS;

/**
 * Fill the VM's quantile table for a zipf pattern over its working set: entry i is the rank at
 * cumulative probability i / 1024 of the continuous power law x^-s on [1, n + 1]; a draw
 * interpolates linearly inside its bucket. Uniform and hot/cold draws need no table.
 */
export function setPattern(vm: u32): void {
  if (vmI(vm, P_PATTERN) != PATTERN_ZIPF) return;
  const n = <f64>vmI(vm, P_ACTIVE);
  const s = <f64>vmI(vm, P_ZIPF_S) / 1e6;
  const q = vmI(vm, P_QTABLE_BASE);
  const a = 1.0 - s;
  const top = a != 0 ? Math.pow(n + 1, a) - 1 : 0;
  for (let i: u32 = 0; i <= QTABLE_ENTRIES; i++) {
    const u = <f64>i / <f64>QTABLE_ENTRIES;
    const x = a != 0 ? Math.pow(1 + u * top, 1 / a) : Math.pow(n + 1, u);
    store<u32>(q + (i << 2), <u32>min(max(Math.floor(x) - 1, 0), n));
  }
  store<u32>(q + (QTABLE_ENTRIES << 2), <u32>n);
}

// @ts-ignore: decorator
@inline function rotl(x: u32, k: u32): u32 {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Draw `n` touches into `batch`: per touch a rank of the working set (= PPN) by the access pattern,
 * then whether it writes. Draws per touch, from the VM's xoshiro128** stream (rng.ts): uniform and
 * zipf one for the rank (zipf interpolates in the quantile table), hot/cold one for the set and one
 * for the page in it; then one for read/write. The generator's state stays in locals for the batch
 * (through memory, each draw cost more than the draw: issue 6); the stream is rng.ts next() exactly.
 */
export function drawBatch(rng: u32, n: u32, pattern: u32, active: u32, qtable: u32, hot: u32, hotT: u32, writeT: u32): void {
  let s0 = load<u32>(rng), s1 = load<u32>(rng, 4), s2 = load<u32>(rng, 8), s3 = load<u32>(rng, 12);
  for (let j: u32 = 0; j < n; j++) {
    let u = rotl(s1 * 5, 7) * 9;
    let t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
    let ppn: u32;
    if (pattern == PATTERN_ZIPF) {
      const q = qtable + ((u >>> QFRAC) << 2);
      const lo = load<u32>(q), hi = load<u32>(q, 4);
      ppn = min(lo + <u32>((<u64>(hi - lo) * <u64>(u & ((1 << QFRAC) - 1))) >>> QFRAC), active - 1);
    } else if (pattern == PATTERN_HOTCOLD) {
      const inHot = u < hotT;
      u = rotl(s1 * 5, 7) * 9;
      t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
      ppn = inHot ? <u32>((<u64>u * <u64>hot) >>> 32) : hot + <u32>((<u64>u * <u64>(active - hot)) >>> 32);
    } else {
      ppn = <u32>((<u64>u * <u64>active) >>> 32);
    }
    u = rotl(s1 * 5, 7) * 9;
    t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
    store<u32>(batch + (j << 2), ppn | (u < writeT ? WRITE_BIT : 0));
  }
  store<u32>(rng, s0);
  store<u32>(rng, s1, 4);
  store<u32>(rng, s2, 8);
  store<u32>(rng, s3, 12);
}

/**
 * `count` touches of the VM's working set at guest-LRU epoch `epoch`. One call per VM per tick.
 * Returns the number of touches that could not proceed (stalled for memory or faulted).
 */
export function touchVm(vm: u32, count: u32, epoch: u32): u32 {
  const active = vmI(vm, P_ACTIVE);
  if (active == 0 || count == 0) return 0;
  // scheduler (issue 4): sample.ts counts M_ACCESSED below the span; a blocked VM gets no new pages
  if (vmI(vm, P_TOUCH_SPAN) < active) setVmI(vm, P_TOUCH_SPAN, active);
  const blocked = vmI(vm, P_BLOCKED) != 0;
  let nBlocked: u32 = 0;
  const rng = vmBase(vm) + (<u32>P_RNG << 2);
  const pattern = vmI(vm, P_PATTERN);
  const writeT = vmI(vm, P_WRITE_T);
  const qtable = vmI(vm, P_QTABLE_BASE), hot = vmI(vm, P_HOT), hotT = vmI(vm, P_HOT_T);
  const table = vmI(vm, P_PAGE_BASE);
  const content = contentOf(vm);
  const stamp = epoch << EPOCH_SHIFT;
  let reads: u32 = 0, writes: u32 = 0, stalls: u32 = 0, sampled: u32 = 0;
  let fBalloon: u32 = 0, fZip: u32 = 0, fSwap: u32 = 0;
  // reclamation (issue 5): a tick holds `count` touches of t0 each; fault latencies take their share
  // of it, so a VM that waits does fewer touches (C_TOUCHES) than it asked for (C_DEMAND)
  const t0 = tickUs > 0 ? tickUs / <f64>count : 0;
  const budget = tickUs > 0 ? tickUs - vmC(vm, C_DEBT_US) : Infinity;
  let elapsed: f64 = 0, waited: f64 = 0, allocWait: f64 = 0, cowWait: f64 = 0;
  let ran: u32 = 0;
  for (let done: u32 = 0; done < count && elapsed < budget; ) {
    const n = min(BATCH, count - done);
    done += n;
    // pass 1: draw the batch's pages, then start loading their entries in a loop of loads alone, so
    // the cache and TLB misses of independent pages overlap instead of queueing one behind the
    // other (interleaved with the draws, few loads fit in the CPU's window: 2x slower, issue 6)
    let warm: u32 = 0;
    drawBatch(rng, n, pattern, active, qtable, hot, hotT, writeT);
    for (let j: u32 = 0; j < n; j++) warm ^= load<u32>(table + (load<u32>(batch + (j << 2)) & ~WRITE_BIT) * PAGE_ENTRY);
    sink ^= warm;
    // pass 2: apply the touches in order
    for (let j: u32 = 0; j < n; j++) {
      if (elapsed >= budget) break;
      ran++;
      elapsed += t0;
      const x = load<u32>(batch + (j << 2));
      const ppn = x & ~WRITE_BIT;
      const write = (x & WRITE_BIT) != 0;
      const e = table + ppn * PAGE_ENTRY;
      let m = load<u32>(e);
      const st = m & STATE_MASK;
      if (st == STATE_UNBACKED) {
        if (blocked || !backPage(vm, ppn)) {
          if (blocked) nBlocked++;
          stalls++;
          elapsed += latAlloc;
          allocWait += latAlloc;
          continue;
        }
        m = load<u32>(e);
        if (m & M_GOUT) {
          // reclamation (issue 5): content the guest gave up comes back from its page file or disk
          const l = guestPageIn(vm, e, m);
          elapsed += l;
          waited += l;
          m = load<u32>(e);
        }
      } else if (st == STATE_SHARED && write) {
        // sharing (issue 3): a write to a shared page breaks copy-on-write: a private copy (share.ts)
        if (blocked || !shareCow(vm, ppn, e)) {
          stalls++;
          elapsed += latAlloc;
          allocWait += latAlloc;
          continue;
        }
        elapsed += latCow; // reclamation (issue 5): the copy's cost
        cowWait += latCow;
        m = load<u32>(e);
      } else if (st >= STATE_BALLOONED) {
        // reclamation (issue 5): a ballooned page faults inside the guest; a compressed or swapped
        // one is decompressed or read in by the host (balloon.ts, swap.ts)
        let l: f64 = 0;
        if (st == STATE_BALLOONED) {
          // the guest takes the page back from the balloon (another page goes in exchange), the
          // host backs it, and content the guest had given up is read back
          fBalloon++;
          l = guestTakeBack(vm, e, epoch);
          elapsed += l;
          waited += l;
          if (blocked || !backPage(vm, ppn)) l = -1;
          else if (load<u32>(e) & M_GOUT) {
            const r = guestPageIn(vm, e, load<u32>(e));
            elapsed += r;
            waited += r;
          }
        } else {
          if (st == STATE_COMPRESSED) fZip++;
          else if (st == STATE_SWAPPED) fSwap++;
          l = hostFault(vm, e, m);
          if (l >= 0) {
            elapsed += l;
            waited += l;
          }
        }
        if (l < 0) {
          stalls++;
          elapsed += latAlloc;
          allocWait += latAlloc;
          continue;
        }
        m = load<u32>(e);
      }
      if (m & M_SAMPLED) {
        sampled++;
        m &= ~M_SAMPLED;
      }
      m = (m & 0xffff) | M_ACCESSED | stamp;
      if (write) {
        writes++;
        store<u32>(e, keyOf(content, ppn), 4);
        m = setGuestClass(vm, e, m | M_DIRTY, GUEST_ANON);
      } else {
        reads++;
        if ((m & GUEST_MASK) >>> GUEST_SHIFT == GUEST_FREE) m = setGuestClass(vm, e, m, GUEST_CACHE);
      }
      store<u32>(e, m);
    }
  }
  // reclamation (issue 5): fault time past the end of the tick is paid next tick
  const debt = tickUs > 0 ? max(0.0, elapsed - budget) : 0.0;
  addVmC(vm, C_DEBT_US, debt - vmC(vm, C_DEBT_US));
  addVmC(vm, C_DEMAND, <f64>count);
  addVmC(vm, C_STALL_US, waited + allocWait + cowWait);
  addVmC(vm, C_LAT_ALLOC_US, allocWait);
  addVmC(vm, C_LAT_COW_US, cowWait);
  addVmC(vm, C_TOUCHES, <f64>ran);
  addVmC(vm, C_READS, <f64>reads);
  addVmC(vm, C_WRITES, <f64>writes);
  addVmC(vm, C_ALLOC_STALLS, <f64>stalls);
  addVmC(vm, C_FAULT_BALLOONED, <f64>fBalloon);
  addVmC(vm, C_FAULT_COMPRESSED, <f64>fZip);
  addVmC(vm, C_FAULT_SWAPPED, <f64>fSwap);
  addVmC(vm, C_SAMPLE_HITS, <f64>sampled);
  addVmC(vm, C_BLOCKED, <f64>nBlocked);
  return count - reads - writes;
}

/**
 * The guest zeroes up to `count` more of its pages in PPN order (Windows at boot): each is backed
 * if need be and written with zeros; the guest still counts it free. Returns the pages still to
 * zero (0 when the sweep is done); a sweep that meets no free machine memory waits.
 */
export function zeroSweep(vm: u32, count: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  let ppn = vmI(vm, P_SWEEP);
  const end = min(pages, ppn + count);
  let zeroed: u32 = 0, sampled: u32 = 0;
  const blocked = vmI(vm, P_BLOCKED) != 0;
  while (ppn < end) {
    const e = entryAt(vm, ppn);
    const st = load<u32>(e) & STATE_MASK;
    if (st == STATE_UNBACKED && (blocked || !backPage(vm, ppn))) break;
    if (st <= STATE_PRIVATE) {
      // pages in other states already read as zeros from the host's side or wait for their mechanism
      store<u32>(e, 0, 4);
      let m = load<u32>(e) | M_DIRTY | M_ACCESSED; // a guest access: the sampler sees it (W02 Fig. 6)
      if (m & M_SAMPLED) {
        sampled++;
        m &= ~M_SAMPLED;
      }
      store<u32>(e, m);
      zeroed++;
    }
    ppn++;
  }
  setVmI(vm, P_SWEEP, ppn);
  if (vmI(vm, P_TOUCH_SPAN) < ppn) setVmI(vm, P_TOUCH_SPAN, ppn);
  addVmC(vm, C_ZEROED, <f64>zeroed);
  addVmC(vm, C_SAMPLE_HITS, <f64>sampled);
  return pages - ppn;
}
