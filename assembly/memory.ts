// The memory map: the one place that lays out vmemsim's linear memory.
//
//   [0, __heap_base)         AssemblyScript static data (no heap use: nothing here calls `new`)
//   HOST_BASE                host record: HOST_RECORD bytes of i32 params then f64 counters
//   VM_TABLE                 MAX_VMS VM records of VM_RECORD bytes (params i32, counters f64)
//   then, bump-reserved by layout() and the mechanisms, in this order:
//     per VM   page table    8 bytes per guest page (pagetable.ts): u32 meta, u32 content key
//     per VM   region table  1 byte per 2 MiB region (512 guest pages): large-page state
//     per VM   quantile tbl  (QTABLE_ENTRIES + 1) u32: inverse CDF of the access pattern
//     host     side tables   sized by the mechanisms that need them (sharing hash table, ...)
//
// Everything proportional to all guest pages is in the 8-byte page entry: 2^28 pages (1 TiB) take
// 2 GiB, leaving the rest of the 4 GiB wasm32 space for tables. docs/architecture.md has the
// arithmetic. Records are addressed by the offsets below; they are exported as globals so the
// TypeScript side reads the same numbers instead of repeating them.

export const WASM_PAGE: u32 = 65536;
export const PAGE_ENTRY: u32 = 8;
export const REGION_PAGES: u32 = 512;
export const REGION_SHIFT: u32 = 9;
export const QTABLE_ENTRIES: u32 = 1024;

export const MAX_VMS: u32 = 4096;
export const HOST_RECORD: u32 = 4096;
export const VM_RECORD: u32 = 1024;
/** byte offset of the f64 counters inside a record */
export const COUNTERS_AT: u32 = 256;

// ---- host record: i32 params (index * 4) ----
export const HP_LARGE_PAGES: i32 = 0; // Mem.AllocGuestLargePage
export const HP_NVMS: i32 = 1;
export const HP_EPOCH: i32 = 2; // guest-LRU epoch of the current tick
export const HP_RNG: i32 = 4; // 4 words: host xoshiro128** state
// sharing (issue 3): page sharing (share.ts ESXi TPS, ksm.ts Linux KSM)
export const HP_SHARE_POLICY: i32 = 8; // 0 none, 1 ESXi TPS, 2 Linux KSM
export const HP_SHARE_ON: i32 = 9; // 0: sharing off host-wide (Mem.ShareScanGHz = 0)
export const HP_KSM_MAX_SHARING: i32 = 10; // max_page_sharing in force
export const HP_KSM_ZERO_PAGES: i32 = 11; // use_zero_pages
export const HP_KSM_SMART: i32 = 12; // smart_scan
// ---- host record: f64 counters (COUNTERS_AT + index * 8) ----
export const H_TOTAL: i32 = 0; // machine pages
export const H_VMK: i32 = 1; // hypervisor reserve, pages
export const H_OVHD: i32 = 2; // overhead of powered-on VMs, pages
export const H_FREE_LARGE: i32 = 3; // wholly free 2 MiB frames
export const H_FREE_SMALL: i32 = 4; // free 4 KiB pages outside whole frames
export const H_PRIVATE: i32 = 5; // pages backing private guest pages, all VMs
export const H_COMMON: i32 = 6; // machine pages backing shared content
// sharing (issue 3): host counters
export const H_SHARED_X: i32 = 8; // guest pages shared in frames a salt several VMs may hold (all KSM pages)
export const H_COMMON_X: i32 = 9; // machine pages backing those frames
export const H_SHARE_ENTRIES: i32 = 10; // TPS hash-table entries (frames + hints)
export const H_SHARE_TABLE_BYTES: i32 = 11; // linear memory reserved for sharing tables (incl. outgrown ones)
export const H_SHARE_DROPPED: i32 = 12; // hints or tree entries not made for want of table memory (cumulative)
// reclamation (issue 5): host counters (balloon.ts, compress.ts, swap.ts)
export const H_ZIP_CACHE: i32 = 24; // machine pages held by the VMs' compression caches
export const H_SSD_USED: i32 = 25; // swapped pages held in the SSD host cache
export const H_SSD_SLOTS: i32 = 26; // capacity of the SSD host cache, pages
export const H_COUNTERS: i32 = 32;

// ---- VM record: i32 params (index * 4) ----
export const P_PAGES: i32 = 0; // configured pages (MEMSZ)
export const P_PAGE_BASE: i32 = 1; // address of the page table
export const P_REGION_BASE: i32 = 2; // address of the region table
export const P_QTABLE_BASE: i32 = 3; // address of the pattern quantile table
export const P_POWERED: i32 = 4; // 1 when powered on
export const P_ACTIVE: i32 = 5; // working-set pages
export const P_PATTERN: i32 = 6; // PATTERN_*
export const P_HOT: i32 = 7; // hot pages (hotcold)
export const P_HOT_T: i32 = 8; // share of touches to hot pages, as u32 threshold
export const P_WRITE_T: i32 = 9; // write ratio as u32 threshold
export const P_ZERO_T: i32 = 10; // content class thresholds (cumulative, u32)
export const P_IMAGE_T: i32 = 11;
export const P_DUP_T: i32 = 12;
export const P_CLASS_SEED: i32 = 13; // content class hash seed (per image)
export const P_IMAGE_BASE: i32 = 14; // first content key of the image's range
export const P_DUP_BASE: i32 = 15; // first content key of the VM's duplicate range
export const P_DUP_SIZE: i32 = 16; // keys in the duplicate range
export const P_SWEEP: i32 = 17; // next page of the boot zeroing sweep
export const P_OVERHEAD: i32 = 18; // overhead pages while powered on
export const P_ZIPF_S: i32 = 19; // zipf exponent * 1e6 (for the quantile table)
export const P_RNG: i32 = 20; // 4 words: the VM's xoshiro128** state
// sharing (issue 3): per-VM sharing state
export const P_SHARE_SALT: i32 = 24; // TPS salt (set at power-on); VM_SALT bit: the VM's own
export const P_SHARE_ON: i32 = 25; // sched.mem.pshare.enable (KSM: the VM's memory is mergeable)
export const P_SHARE_DONE: i32 = 26; // TPS: pages visited in the current pass
export const P_SHARE_STEP: i32 = 27; // TPS: the pass's permutation step (0: no pass yet)
export const P_SHARE_PPN: i32 = 28; // TPS: next PPN of the pass
export const P_KSM_RMAP: i32 = 29; // KSM: address of the VM's rmap words (u32 per page)
export const P_SHARE_RNG: i32 = 30; // 4 words (30-33): the TPS scanner's xoshiro128** state
// scheduler (issue 4): active-memory sampling and blocking (sample.ts, workload.ts)
export const P_SAMPLE_BASE: i32 = 36; // address of the VM's list of sampled PPNs (u32 each)
export const P_SAMPLE_CAP: i32 = 37; // entries the list can hold
export const P_SAMPLE_N: i32 = 38; // pages marked M_SAMPLED in the current period
export const P_TOUCH_SPAN: i32 = 39; // guest touches since the last period went below this PPN
export const P_BLOCKED: i32 = 40; // 1: the host blocks this VM's new allocations (low state)
export const P_SAMPLE_RNG: i32 = 41; // 4 words (41-44): the sampler's own xoshiro128** state
// reclamation (issue 5): ballooning, compression, host swap (balloon.ts, compress.ts, swap.ts)
export const P_RCL_BASE: i32 = 48; // address of the VM's reclamation block (its own xoshiro128** state, ...)
export const P_MCTL_ON: i32 = 49; // 1: the balloon driver runs (installed, guest booted, not disabled)
export const P_GPF_PAGES: i32 = 50; // guest page file capacity, pages
export const P_SWAP_PAGES: i32 = 51; // host swap file capacity (configured - reservation), pages
export const P_ZIP_CAP_KB: i32 = 52; // compression cache cap now, KB (0: compression off)
export const P_ZIP_MAX_KB: i32 = 53; // largest cap the settings allow (Mem.MemZipMaxPct), KB: sizes the ring
export const P_ZIP_T1: i32 = 54; // compressibility: hash < T1 fits a 1 KB slot
export const P_ZIP_T2: i32 = 55; // hash < T2 fits a 2 KB slot; else incompressible
export const P_GHAND_FREE: i32 = 56; // guest reclaim clock hands: free pages (and deflation)
export const P_GHAND_CACHE: i32 = 57; // ... page cache
export const P_GHAND_ANON: i32 = 58; // ... anonymous pages
export const P_GAGE_CACHE: i32 = 59; // age (ticks) from which page cache counted cold at the last reclaim
export const P_GAGE_ANON: i32 = 60; // same for anonymous pages
export const P_ZIP_RING: i32 = 61; // address of the compression cache ring (0: none yet)
export const P_ZIP_SLOTS: i32 = 62; // entries in the ring
export const P_ZIP_HEAD: i32 = 63; // next ring entry to write
export const P_PARAMS: i32 = 64;

// ---- VM record: f64 counters ----
// current page counts by host state (sum = P_PAGES)
export const C_UNBACKED: i32 = 0;
export const C_PRIVATE: i32 = 1;
export const C_SHARED: i32 = 2;
export const C_BALLOONED: i32 = 3;
export const C_COMPRESSED: i32 = 4;
export const C_SWAPPED: i32 = 5;
// guest's own view of its pages (sum = P_PAGES)
export const C_GUEST_FREE: i32 = 6;
export const C_GUEST_CACHE: i32 = 7;
export const C_GUEST_ANON: i32 = 8;
// large pages
export const C_LARGE_REGIONS: i32 = 9; // regions backed by one 2 MiB frame now
// cumulative
export const C_TOUCHES: i32 = 16;
export const C_READS: i32 = 17;
export const C_WRITES: i32 = 18;
export const C_FIRST_TOUCH: i32 = 19;
export const C_FAULT_BALLOONED: i32 = 20;
export const C_FAULT_COMPRESSED: i32 = 21;
export const C_FAULT_SWAPPED: i32 = 22;
export const C_COW_BREAKS: i32 = 23;
export const C_ALLOC_STALLS: i32 = 24;
export const C_LARGE_BACKED: i32 = 25; // regions ever backed whole
export const C_LARGE_BROKEN: i32 = 26; // large pages broken into small ones
export const C_ZEROED: i32 = 27; // pages zeroed by the guest's boot sweep
export const C_SAMPLE_HITS: i32 = 28; // touches of sampled pages
// sharing (issue 3)
export const C_SHARED_ZERO: i32 = 32; // shared pages holding zeros (ZERO)
export const C_HINTS: i32 = 33; // pages hashed and left as hints (COWH)
export const C_SHARED_X: i32 = 34; // shared pages in frames a salt several VMs may hold (all KSM pages)
export const C_FRAMES_OWN: i32 = 35; // frames under the VM's own salt (all their sharers are its pages)
export const C_SHARE_SCANNED: i32 = 36; // pages visited by the TPS scanner (cumulative)
export const C_SHARE_PASSES: i32 = 37; // complete TPS passes over the VM (cumulative)
export const C_SHARE_MERGES: i32 = 38; // pages that became shared (cumulative)
export const C_SHARE_BEFORE_SWAP: i32 = 39; // pages shared instead of swapped (cumulative)
export const C_KSM_RMAP_ITEMS: i32 = 40; // KSM rmap_items of the VM (ksm_rmap_items of its mm)
// scheduler (issue 4): active-memory sampling (sample.ts) and blocking
export const C_SAMPLE_START: i32 = 48; // C_SAMPLE_HITS when the current period began
export const C_SAMPLE_LAST_T: i32 = 49; // sampled pages touched in the last complete period (t)
export const C_SAMPLE_LAST_N: i32 = 50; // pages sampled in the last complete period (n)
export const C_TRUE_ACTIVE: i32 = 51; // distinct pages touched in the last complete period
export const C_SAMPLE_PERIODS: i32 = 52; // sampling periods completed (cumulative)
export const C_SAMPLE_SCANNED: i32 = 53; // page entries scanned for the true count (cumulative)
export const C_BLOCKED: i32 = 54; // touches refused because the host blocked the VM (cumulative)
// reclamation (issue 5): fault costs, balloon and guest page file, compression, host swap
export const C_DEMAND: i32 = 64; // touches the workload asked for (cumulative; C_TOUCHES = those it had time for)
export const C_STALL_US: i32 = 65; // time the guest waited on faults of any kind, us (cumulative)
export const C_LAT_SWAP_US: i32 = 66; // ... on host swap-ins (HDD or SSD cache)
export const C_LAT_ZIP_US: i32 = 67; // ... on decompressions
export const C_LAT_GUEST_US: i32 = 68; // ... on its own page file and re-reads of dropped page cache
export const C_LAT_COW_US: i32 = 69; // ... on copy-on-write breaks
export const C_LAT_ALLOC_US: i32 = 70; // ... for a machine page (none free, or blocked)
export const C_DEBT_US: i32 = 71; // fault time that spills into the next tick (gauge)
export const C_MCTL_FREE: i32 = 72; // ballooned pages the guest gave up as free (gauge)
export const C_GOUT_CACHE: i32 = 73; // page-cache pages the guest dropped, not re-read yet (gauge)
export const C_GOUT_ANON: i32 = 74; // pages in the guest page file (gauge)
export const C_GSWAP_OUT: i32 = 75; // guest page-file writes, pages (cumulative)
export const C_GSWAP_IN: i32 = 76; // guest page-file reads, pages (cumulative)
export const C_GCACHE_MISS: i32 = 77; // re-reads of dropped page cache (cumulative)
export const C_MCTL_IN: i32 = 78; // pages inflated (cumulative)
export const C_MCTL_OUT: i32 = 79; // pages deflated, or given back to a guest with nothing left (cumulative)
export const C_MCTL_SHORT: i32 = 80; // pages the guest could not give at the last inflation (gauge)
export const C_SWAP_OUT: i32 = 81; // pages written to host swap (cumulative; SWW)
export const C_SWAP_IN: i32 = 82; // pages read from host swap (cumulative; SWR)
export const C_SSD_OUT: i32 = 83; // of those written, into the SSD host cache (LLSWW)
export const C_SSD_IN: i32 = 84; // of those read, from the SSD host cache (LLSWR)
export const C_SSD_PAGES: i32 = 85; // swapped pages in the SSD host cache now (gauge)
export const C_ZIP_OUT: i32 = 86; // pages compressed (cumulative)
export const C_ZIP_IN: i32 = 87; // pages decompressed (cumulative)
export const C_ZIP_KB: i32 = 88; // compression cache in use, KB (gauge; CACHEUSD)
export const C_ZIP_CACHE: i32 = 89; // machine pages the compression cache holds (gauge; CACHESZ)
export const C_DOUBLE_PAGING: i32 = 90; // host-swapped pages the guest chose for its page file (cumulative)
export const C_ZIP_EVICT: i32 = 92; // compressed pages evicted to swap, oldest first (cumulative)
export const C_MCTL_GIVEBACK: i32 = 93; // balloon pages given back because the guest had nothing else (cumulative)
export const C_SWAP_FULL: i32 = 94; // victims that could not go anywhere (swap file full) (cumulative)
export const C_COUNTERS: i32 = 96;

export function hostBase(): u32 {
  return heapStart;
}
export function vmBase(vm: u32): u32 {
  return heapStart + HOST_RECORD + vm * VM_RECORD;
}

// @ts-ignore: decorator
@inline export function hostI(i: i32): u32 {
  return load<u32>(heapStart + (<u32>i << 2));
}
// @ts-ignore: decorator
@inline export function setHostI(i: i32, v: u32): void {
  store<u32>(heapStart + (<u32>i << 2), v);
}
// @ts-ignore: decorator
@inline export function hostC(i: i32): f64 {
  return load<f64>(heapStart + COUNTERS_AT + (<u32>i << 3));
}
// @ts-ignore: decorator
@inline export function addHostC(i: i32, d: f64): void {
  const a = heapStart + COUNTERS_AT + (<u32>i << 3);
  store<f64>(a, load<f64>(a) + d);
}
// @ts-ignore: decorator
@inline export function vmI(vm: u32, i: i32): u32 {
  return load<u32>(vmBase(vm) + (<u32>i << 2));
}
// @ts-ignore: decorator
@inline export function setVmI(vm: u32, i: i32, v: u32): void {
  store<u32>(vmBase(vm) + (<u32>i << 2), v);
}
// @ts-ignore: decorator
@inline export function vmC(vm: u32, i: i32): f64 {
  return load<f64>(vmBase(vm) + COUNTERS_AT + (<u32>i << 3));
}
// @ts-ignore: decorator
@inline export function addVmC(vm: u32, i: i32, d: f64): void {
  const a = vmBase(vm) + COUNTERS_AT + (<u32>i << 3);
  store<f64>(a, load<f64>(a) + d);
}

// ---- bump reservation of linear memory, with our own bounds ----
let heapStart: u32 = 0;
let top: u32 = 0;

/** Place the host record and VM table after the static data; clears them. */
export function initMemory(): void {
  heapStart = (<u32>__heap_base + 63) & ~63;
  top = heapStart + HOST_RECORD + MAX_VMS * VM_RECORD;
  ensure(top); // fresh memory is zero: no fill needed
}

/** Reserve `bytes` (64-byte aligned, zero). Returns 0 when the 4 GiB space cannot hold them. */
export function reserve(bytes: u64): u32 {
  const at = (<u64>top + 63) & ~(<u64>63);
  const end = at + bytes;
  if (end > 0xFFFF_0000) return 0;
  if (!ensure(<u32>end)) return 0;
  top = <u32>end; // never handed out before, so still zero
  return <u32>at;
}

/** Bytes of linear memory in use (static data, records, tables). */
export function reservedBytes(): u32 {
  return top;
}

function ensure(end: u32): bool {
  const have = <u64>memory.size() * WASM_PAGE;
  if (<u64>end <= have) return true;
  const need = <i32>((<u64>end - have + WASM_PAGE - 1) / WASM_PAGE);
  return memory.grow(need) >= 0;
}
