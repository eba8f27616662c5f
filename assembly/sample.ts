// Active memory by statistical sampling, and the true active count beside it.
// Spec: esxi-memory.md §2 "Active memory estimation by statistical sampling" (W02 §5.2).
//
// At the start of each sampling period n distinct guest pages (PPNs) are chosen uniformly at random
// from the VM's configured memory and marked M_SAMPLED (ESX invalidates their mappings). The first
// guest access to a marked page during the period clears the mark and counts one hit (workload.ts,
// touchVm and zeroSweep). At the period's end t hits out of n give f = t / n; the averaging
// (slow, fast, fast with the running period) is policy and lives in src/policy/scheduler.ts.
//
// Beside the estimate the engine measures the truth exactly: every guest touch sets M_ACCESSED, and
// at each period's end this file counts and clears the bit over the pages the guest could have
// touched since the last period (PPNs below P_TOUCH_SPAN, which touchVm / zeroSweep raise: touches
// go to PPN = rank < working set). C_TRUE_ACTIVE is the number of distinct pages touched during the
// period, the quantity f estimates. Cost: one pass over the span per VM per period (about 0.2 ns
// per page), never per touch.
//
// One call per VM per period (samplePeriod). Sampling draws from its own xoshiro128** stream per VM,
// so the sample size never shifts the workload's random sequence.
import {
  PAGE_ENTRY, P_PAGES, P_PAGE_BASE, P_SAMPLE_BASE, P_SAMPLE_CAP, P_SAMPLE_N, P_TOUCH_SPAN, P_SAMPLE_RNG,
  C_SAMPLE_HITS, C_SAMPLE_START, C_SAMPLE_LAST_T, C_SAMPLE_LAST_N, C_TRUE_ACTIVE, C_SAMPLE_PERIODS,
  C_SAMPLE_SCANNED, vmBase, vmI, setVmI, vmC, addVmC, reserve,
} from "./memory";
import { seedState, below } from "./rng";
import { M_ACCESSED, M_SAMPLED } from "./pagetable";

/** Stream number of the samplers' generators (the workload uses stream = VM index). */
const SAMPLE_STREAM: u32 = 0x5a4d_0000;

// @ts-ignore: decorator
@inline function rngOf(vm: u32): u32 {
  return vmBase(vm) + (<u32>P_SAMPLE_RNG << 2);
}

// @ts-ignore: decorator
@inline function setC(vm: u32, i: i32, v: f64): void {
  addVmC(vm, i, v - vmC(vm, i));
}

/** Seed the VM's sampler stream; nothing is marked. Once per VM, after addVm. */
export function sampleInit(vm: u32, seed: u32): void {
  seedState(rngOf(vm), seed, SAMPLE_STREAM + vm);
  setVmI(vm, P_SAMPLE_N, 0);
}

/** Clear the marks still set on the VM's sampled pages (its list). Returns how many are listed. */
function unmark(vm: u32): u32 {
  const base = vmI(vm, P_PAGE_BASE);
  const list = vmI(vm, P_SAMPLE_BASE);
  const marked = vmI(vm, P_SAMPLE_N);
  for (let i: u32 = 0; i < marked; i++) {
    const e = base + load<u32>(list + (i << 2)) * PAGE_ENTRY;
    store<u32>(e, load<u32>(e) & ~M_SAMPLED);
  }
  return marked;
}

/**
 * Close the VM's current sampling period and open the next with `n` sampled pages (at most the
 * VM's pages). Closing: t = hits since the period began goes to C_SAMPLE_LAST_T, the pages marked
 * to C_SAMPLE_LAST_N; marks still set are cleared; the distinct pages touched (M_ACCESSED below
 * the touch span) are counted into C_TRUE_ACTIVE and their bits cleared. Opening: n distinct PPNs
 * by Floyd's algorithm, using M_SAMPLED itself as the set. Returns the pages marked (n, or fewer
 * when linear memory cannot hold a longer list).
 */
export function samplePeriod(vm: u32, n: u32): u32 {
  const pages = vmI(vm, P_PAGES);
  const base = vmI(vm, P_PAGE_BASE);
  let list = vmI(vm, P_SAMPLE_BASE);
  // close
  const marked = unmark(vm);
  setC(vm, C_SAMPLE_LAST_T, vmC(vm, C_SAMPLE_HITS) - vmC(vm, C_SAMPLE_START));
  setC(vm, C_SAMPLE_LAST_N, <f64>marked);
  const span = min(vmI(vm, P_TOUCH_SPAN), pages);
  // issue 6: branch-free (about 70 % of a working set is touched per period, a branch would
  // mispredict) and in WASM SIMD: two 8-byte entries per v128, two vectors per iteration (3x the
  // plain loop); each accessed entry adds M_ACCESSED (8) to lane 0 or 2. The last 0-3 entries one by one.
  const bit = i32x4(M_ACCESSED, 0, M_ACCESSED, 0);
  const keep = v128.not(bit);
  let acc0 = i32x4.splat(0), acc1 = i32x4.splat(0);
  let e = base;
  for (const end4 = base + (span & ~3) * PAGE_ENTRY; e < end4; e += 4 * PAGE_ENTRY) {
    const v0 = v128.load(e), v1 = v128.load(e, 16);
    acc0 = i32x4.add(acc0, v128.and(v0, bit));
    acc1 = i32x4.add(acc1, v128.and(v1, bit));
    v128.store(e, v128.and(v0, keep));
    v128.store(e, v128.and(v1, keep), 16);
  }
  const acc = i32x4.add(acc0, acc1);
  let touched: u32 = (i32x4.extract_lane(acc, 0) + i32x4.extract_lane(acc, 2)) >>> 3;
  for (const end = base + span * PAGE_ENTRY; e < end; e += PAGE_ENTRY) {
    const m = load<u32>(e);
    touched += <u32>((m & M_ACCESSED) != 0);
    store<u32>(e, m & ~M_ACCESSED);
  }
  setVmI(vm, P_TOUCH_SPAN, 0);
  setC(vm, C_TRUE_ACTIVE, <f64>touched);
  addVmC(vm, C_SAMPLE_SCANNED, <f64>span);
  addVmC(vm, C_SAMPLE_PERIODS, 1);
  // open
  if (n > pages) n = pages;
  if (n > vmI(vm, P_SAMPLE_CAP)) {
    const grown = reserve(<u64>n << 2);
    if (grown != 0) {
      list = grown;
      setVmI(vm, P_SAMPLE_BASE, list);
      setVmI(vm, P_SAMPLE_CAP, n);
    } else n = vmI(vm, P_SAMPLE_CAP);
  }
  const rng = rngOf(vm);
  for (let j: u32 = pages - n, i: u32 = 0; j < pages; j++, i++) {
    let ppn = below(rng, j + 1);
    let a = base + ppn * PAGE_ENTRY;
    if (load<u32>(a) & M_SAMPLED) {
      ppn = j;
      a = base + ppn * PAGE_ENTRY;
    }
    store<u32>(a, load<u32>(a) | M_SAMPLED);
    store<u32>(list + (i << 2), ppn);
  }
  setVmI(vm, P_SAMPLE_N, n);
  setC(vm, C_SAMPLE_START, vmC(vm, C_SAMPLE_HITS));
  return n;
}

/** Unmark the VM's sampled pages and forget the period (power-off; the page table is cleared too). */
export function sampleStop(vm: u32): void {
  unmark(vm);
  setVmI(vm, P_SAMPLE_N, 0);
  setVmI(vm, P_TOUCH_SPAN, 0);
  setC(vm, C_SAMPLE_START, vmC(vm, C_SAMPLE_HITS));
}
