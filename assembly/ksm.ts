// Linux Kernel Samepage Merging (mm/ksm.c) as a sharing policy: what ksmd does and what
// /sys/kernel/mm/ksm reports, reproduced page by page. Spec: ../shared/spec/linux-ksm.md; the real
// kernel's observed behaviour: docs/validation.md "Real Linux KSM harness"; design: docs/sharing.md.
//
// The algorithm, as mm/ksm.c opens with it and as modelled here:
//
//  * ksmd wakes every sleep_millisecs and scans pages_to_scan pages (policy: src/policy/share.ts
//    turns a tick into wake-ups; `ksmScan` runs them). The cursor walks the mergeable VMs (KVM: one
//    qemu mm each) in order, PPN by PPN; a wake-up's batch ends early when a full scan completes
//    (full_scans + 1), as ksm_do_scan returns when scan_get_next_rmap_item does.
//  * Every present page visited gets an rmap_item (K_RMAP; ksm_rmap_items). Pages not present
//    (unbacked, ballooned, compressed, swapped, or mapping the kernel zero page) are passed over
//    without cost and lose their rmap_item, as get_next_rmap_item frees the items it walks past.
//  * smart_scan: each item has an age (visits of a non-KSM page, never reset) and a skip budget;
//    ages 0-2 are never skipped, then a page is visited once and skipped 1, 2, 4 or 8 times (ages
//    <= 3, <= 5, <= 8, more). A skip costs no budget, counts pages_skipped and takes the item out
//    of its tree.
//  * cmp_and_merge_page: a KSM page (STATE_SHARED, its item in the stable tree) needs nothing. Any
//    other page leaves its tree, then its checksum is compared with the previous visit's: a page
//    written since (M_DIRTY, set by every write; a new item counts as changed) is volatile and
//    stops there, so merging takes two full scans. Then: use_zero_pages and an empty page -> it
//    maps the kernel zero page (K_ZERO, ksm_zero_pages); the stable tree (content key -> KSM pages,
//    "dups" when max_page_sharing forces several) -> merge into the first dup with room; else the
//    unstable tree (key -> the page seen with this content in this scan) -> both pages become a
//    new KSM page (a new dup, a chain when its content had one); else insert into the unstable
//    tree (pages_unshared). The unstable tree is emptied when a full scan starts.
//  * A write to a KSM page (workload.ts via share.ts) breaks COW at once: a private copy, the KSM
//    page freed with its last mapping. The counters change only when ksmd next visits the page
//    (remove_rmap_item_from_tree), or all at once when a search walks over a KSM page that was
//    freed (a stale stable node).
//
// Data (no heap): per VM one u32 per page, the rmap word (bits 0-3 age, 4-7 skips left, 8-31 the
// stable node), allocated at ksmInit for every VM; page meta bits 8-11 (K_*); a node table of
// 32-byte records (key, rmap_hlist_len, mapcount, next, prev); the stable tree as a hash table key
// -> (first dup, dups) whose dups form a ring, and the unstable tree as a hash table key -> (vm,
// ppn), both share.ts tables. Content keys are the contents, so "memcmp" is key equality; a
// KEY_UNIQUE page can match nothing and takes no tree entry, but is counted as KSM counts it.
import {
  PAGE_ENTRY, REGION_SHIFT, C_PRIVATE, C_SHARED, P_PAGES, P_PAGE_BASE, P_REGION_BASE, P_POWERED, HP_NVMS, H_PRIVATE, H_COMMON,
  HP_SHARE_POLICY, HP_KSM_MAX_SHARING, HP_KSM_ZERO_PAGES, HP_KSM_SMART, P_SHARE_ON, P_KSM_RMAP,
  C_SHARED_ZERO, C_SHARED_X, C_SHARE_MERGES, C_KSM_RMAP_ITEMS, H_SHARED_X, H_COMMON_X, H_SHARE_DROPPED,
  H_SHARE_TABLE_BYTES, vmI, setVmI, hostI, vmC, addVmC, hostC, addHostC, reserve,
} from "./memory";
import { STATE_MASK, STATE_UNBACKED, STATE_PRIVATE, STATE_SHARED, M_DIRTY, REGION_LARGE, setState, stateCounter, breakLarge } from "./pagetable";
import { allocSmall, freeSmall } from "./machine";
import { KEY_UNIQUE, KEY_ZERO } from "./content";
import { tInit, tFind, tPut, tDelete, tClear, tRoom, hashOf, EMPTY } from "./share";

const POLICY_KSM: u32 = 2;

// page meta bits 8-11 under KSM
export const K_RMAP: u32 = 1 << 8; // the page has an rmap_item
export const K_STABLE: u32 = 1 << 9; // its rmap_item hangs off a stable node (rmap word bits 8-31)
export const K_UNSTABLE: u32 = 1 << 10; // its rmap_item is in the unstable tree
export const K_ZERO: u32 = 1 << 11; // the page maps the kernel zero page (use_zero_pages)

// rmap word
const AGE_MAX: u32 = 15; // ages saturate here (the kernel's at 255: skip_age is the same above 8)
const SKIP_ONE: u32 = 1 << 4;
const NODE_SHIFT: u32 = 8;
const MAX_NODES: u32 = 1 << 24;

// counters, named as in /sys/kernel/mm/ksm (read with ksmStat)
export const KSM_PAGES_SHARED: i32 = 0;
export const KSM_PAGES_SHARING: i32 = 1;
export const KSM_PAGES_UNSHARED: i32 = 2;
export const KSM_RMAP_ITEMS: i32 = 3; // pages_volatile = rmap_items - shared - sharing - unshared
export const KSM_FULL_SCANS: i32 = 4;
export const KSM_PAGES_SCANNED: i32 = 5;
export const KSM_PAGES_SKIPPED: i32 = 6;
export const KSM_STABLE_NODE_CHAINS: i32 = 7;
export const KSM_STABLE_NODE_DUPS: i32 = 8;
export const KSM_ZERO_PAGES: i32 = 9;
export const KSM_STATS: i32 = 10;
const stat: u32 = <u32>memory.data(16 * 8);

// @ts-ignore: decorator
@inline function addStat(i: i32, d: f64): void {
  const a = stat + (<u32>i << 3);
  store<f64>(a, load<f64>(a) + d);
}

/** A KSM counter (KSM_*). */
export function ksmStat(i: i32): f64 {
  return load<f64>(stat + (<u32>i << 3));
}

const stable: u32 = <u32>memory.data(16); // table header: key -> first dup, number of dups
const unstable: u32 = <u32>memory.data(16); // table header: key -> vm, ppn
// node table: 32-byte records, id 0 unused
const N_KEY: u32 = 0;
const N_LEN: u32 = 4; // rmap_hlist_len; STALE | items still pointing here once the node was removed
const N_MAP: u32 = 8; // guest pages mapping this KSM page (0: the page was freed)
const N_NEXT: u32 = 12;
const N_PREV: u32 = 16;
const STALE: u32 = 0x8000_0000;
let nodes: u32 = 0;
let nodeCap: u32 = 0;
let nodeTop: u32 = 1;
let freeNodes: u32 = 0;
// scan cursor
let atHead: bool = true;
let curVm: u32 = 0;
let curPpn: u32 = 0;

// @ts-ignore: decorator
@inline function nodeAt(id: u32): u32 {
  return nodes + (id << 5);
}

/** Set up KSM (share.ts shareInit): every VM's rmap words and the trees. False: out of memory. */
export function ksmInit(cap: u32): bool {
  const nvms = hostI(HP_NVMS);
  for (let vm: u32 = 0; vm < nvms; vm++) {
    const words = reserve(<u64>vmI(vm, P_PAGES) << 2);
    if (words == 0) return false;
    setVmI(vm, P_KSM_RMAP, words);
    addHostC(H_SHARE_TABLE_BYTES, <f64>vmI(vm, P_PAGES) * 4);
  }
  // the unstable tree holds every candidate content; the stable tree and the nodes only the merged
  // ones, so they start smaller and grow
  if (!tInit(stable, max<u32>(1024, cap >>> 2)) || !tInit(unstable, cap)) return false;
  nodeCap = max<u32>(1024, cap >>> 3);
  nodes = reserve(<u64>nodeCap << 5);
  if (nodes == 0) return false;
  addHostC(H_SHARE_TABLE_BYTES, <f64>(nodeCap << 5));
  nodeTop = 1;
  freeNodes = 0;
  atHead = true;
  curVm = 0;
  curPpn = 0;
  memory.fill(stat, 0, 16 * 8);
  return true;
}

function newNode(key: u32): u32 {
  let id = freeNodes;
  if (id != 0) {
    freeNodes = load<u32>(nodeAt(id), N_NEXT);
  } else {
    if (nodeTop >= MAX_NODES) return 0;
    if (nodeTop >= nodeCap) {
      const cap = min<u32>(nodeCap << 1, MAX_NODES);
      const at = reserve(<u64>cap << 5);
      if (at == 0) return 0;
      memory.copy(at, nodes, nodeCap << 5);
      addHostC(H_SHARE_TABLE_BYTES, <f64>(cap << 5));
      nodes = at;
      nodeCap = cap;
    }
    id = nodeTop++;
  }
  const n = nodeAt(id);
  store<u32>(n, key, N_KEY);
  store<u32>(n, 0, N_LEN);
  store<u32>(n, 0, N_MAP);
  store<u32>(n, id, N_NEXT);
  store<u32>(n, id, N_PREV);
  return id;
}

function freeNode(id: u32): void {
  const n = nodeAt(id);
  store<u32>(n, EMPTY, N_KEY);
  store<u32>(n, 0, N_LEN);
  store<u32>(n, freeNodes, N_NEXT);
  freeNodes = id;
}

// ---- the stable tree: per content key a ring of dups, entry payload (first dup, dups) ----

/** Unlink dup `id` from its ring (the caller fixes the entry's first dup). */
// @ts-ignore: decorator
@inline function unlink(id: u32): void {
  const n = nodeAt(id);
  const p = load<u32>(n, N_PREV), q = load<u32>(n, N_NEXT);
  store<u32>(nodeAt(p), q, N_NEXT);
  store<u32>(nodeAt(q), p, N_PREV);
  store<u32>(n, id, N_NEXT);
  store<u32>(n, id, N_PREV);
}

/** Link dup `id` just before `at` in its ring (so at the tail when `at` is the first). */
// @ts-ignore: decorator
@inline function linkBefore(id: u32, at: u32): void {
  const n = nodeAt(id), a = nodeAt(at);
  const p = load<u32>(a, N_PREV);
  store<u32>(n, at, N_NEXT);
  store<u32>(n, p, N_PREV);
  store<u32>(nodeAt(p), id, N_NEXT);
  store<u32>(a, id, N_PREV);
}

/** Add a new KSM page (dup) of `key` to the stable tree, first in its ring. False: no room. */
function addDup(key: u32, id: u32): bool {
  let a = tFind(stable, key, 0);
  if (load<u32>(a) == EMPTY) {
    if (!tRoom(stable, false)) return false;
    tPut(stable, tFind(stable, key, 0), key, 0, id, 1);
    return true;
  }
  const first = load<u32>(a, 8);
  const dups = load<u32>(a, 12) + 1;
  linkBefore(id, first);
  store<u32>(a, id, 8);
  store<u32>(a, dups, 12);
  // a second KSM page of one content turns the node into a chain of dups
  if (dups == 2) {
    addStat(KSM_STABLE_NODE_CHAINS, 1);
    addStat(KSM_STABLE_NODE_DUPS, 2);
  } else addStat(KSM_STABLE_NODE_DUPS, 1);
  return true;
}

/** Take dup `id` of `key` out of the stable tree (a chain of one collapses into a plain node). */
function removeDup(key: u32, id: u32): void {
  const a = tFind(stable, key, 0);
  if (load<u32>(a) == EMPTY) unreachable();
  const dups = load<u32>(a, 12) - 1;
  if (dups == 0) {
    tDelete(stable, a);
    return;
  }
  if (load<u32>(a, 8) == id) store<u32>(a, load<u32>(nodeAt(id), N_NEXT), 8);
  unlink(id);
  store<u32>(a, dups, 12);
  if (dups == 1) {
    addStat(KSM_STABLE_NODE_CHAINS, -1);
    addStat(KSM_STABLE_NODE_DUPS, -2);
  } else addStat(KSM_STABLE_NODE_DUPS, -1);
}

/**
 * A stable node whose KSM page was freed (every mapping broken) is found: as the kernel's
 * remove_node_from_stable_tree, all its rmap_items leave the counters at once; the node stays
 * (STALE) until the items that still point at it are visited.
 */
function discoverStale(id: u32): void {
  const n = nodeAt(id);
  const len = load<u32>(n, N_LEN);
  addStat(KSM_PAGES_SHARED, -1);
  addStat(KSM_PAGES_SHARING, -<f64>(len - 1));
  removeDup(load<u32>(n, N_KEY), id);
  store<u32>(n, STALE | len, N_LEN);
}

/**
 * stable_tree_search: the dup of `key` that takes one more page (at least one mapping and fewer
 * than max_page_sharing); 0 when there is none (no KSM page of this content, or all full). The
 * ring keeps the dups with room before the full ones (a dup that fills goes to the tail, one that
 * gets room back to the front), so its first dup answers; freed dups met there are dropped.
 */
function stableFind(key: u32, maxSharing: u32): u32 {
  while (true) {
    const a = tFind(stable, key, 0);
    if (load<u32>(a) == EMPTY) return 0;
    const id = load<u32>(a, 8);
    const n = nodeAt(id);
    if (load<u32>(n, N_MAP) == 0) {
      discoverStale(id); // the KSM page was freed: the search walks over a stale node
      continue;
    }
    const len = load<u32>(n, N_LEN);
    return len > 0 && len < maxSharing ? id : 0;
  }
  return 0;
}

/** A full dup that got room back moves to the front of its ring. */
function toFront(key: u32, id: u32): void {
  const a = tFind(stable, key, 0);
  const first = load<u32>(a, 8);
  if (first == id) return;
  unlink(id);
  linkBefore(id, first);
  store<u32>(a, id, 8);
}

/** The page's rmap_item leaves its tree (remove_rmap_item_from_tree). Returns the new meta. */
function removeFromTree(vm: u32, e: u32, m: u32, wa: u32): u32 {
  if (m & K_STABLE) {
    const w = load<u32>(wa);
    const id = w >>> NODE_SHIFT;
    const n = nodeAt(id);
    let len = load<u32>(n, N_LEN);
    if ((len & STALE) == 0 && load<u32>(n, N_MAP) == 0) {
      discoverStale(id);
      len = load<u32>(n, N_LEN);
    }
    if (len & STALE) {
      len--;
      if ((len & ~STALE) == 0) freeNode(id);
      else store<u32>(n, len, N_LEN);
    } else {
      len--;
      store<u32>(n, len, N_LEN);
      if (len > 0) {
        addStat(KSM_PAGES_SHARING, -1);
        if (len + 1 == hostI(HP_KSM_MAX_SHARING)) toFront(load<u32>(n, N_KEY), id);
      } else {
        addStat(KSM_PAGES_SHARED, -1);
        removeDup(load<u32>(n, N_KEY), id);
        freeNode(id);
      }
    }
    store<u32>(wa, w & ((1 << NODE_SHIFT) - 1));
    m &= ~K_STABLE;
  }
  if (m & K_UNSTABLE) {
    addStat(KSM_PAGES_UNSHARED, -1);
    m &= ~K_UNSTABLE;
  }
  return m;
}

/** The page loses its rmap_item. */
// @ts-ignore: decorator
@inline function freeItem(vm: u32, e: u32, m: u32, wa: u32): void {
  m = removeFromTree(vm, e, m, wa);
  store<u32>(e, m & ~K_RMAP);
  store<u32>(wa, 0);
  addStat(KSM_RMAP_ITEMS, -1);
  addVmC(vm, C_KSM_RMAP_ITEMS, -1);
}

// @ts-ignore: decorator
@inline function splitLarge(vm: u32, ppn: u32): void {
  if (load<u8>(vmI(vm, P_REGION_BASE) + (ppn >>> REGION_SHIFT)) == REGION_LARGE) breakLarge(vm, ppn);
}

/** The page side of mapKsm: private page (vm, ppn) maps KSM page `id`; no counters. */
// @ts-ignore: decorator
@inline function linkKsm(vm: u32, ppn: u32, e: u32, m: u32, id: u32): void {
  splitLarge(vm, ppn);
  const wa = vmI(vm, P_KSM_RMAP) + (ppn << 2);
  store<u32>(wa, (load<u32>(wa) & ((1 << NODE_SHIFT) - 1)) | (id << NODE_SHIFT));
  store<u32>(e, (m & ~(K_UNSTABLE | STATE_MASK)) | K_STABLE | STATE_SHARED);
  const n = nodeAt(id);
  store<u32>(n, load<u32>(n, N_LEN) + 1, N_LEN);
  store<u32>(n, load<u32>(n, N_MAP) + 1, N_MAP);
}

/** Private page (vm, ppn) becomes a mapping of KSM page `id` (content `key`). */
function mapKsm(vm: u32, ppn: u32, e: u32, m: u32, id: u32, key: u32): void {
  linkKsm(vm, ppn, e, m, id);
  addVmC(vm, stateCounter(m & STATE_MASK), -1);
  addVmC(vm, C_SHARED, 1);
  if (key == KEY_ZERO) addVmC(vm, C_SHARED_ZERO, 1);
  addVmC(vm, C_SHARED_X, 1);
  addHostC(H_SHARED_X, 1);
  addVmC(vm, C_SHARE_MERGES, 1);
}

/** Is (tv, tp) still the unstable-tree page of content `key`? (memcmp against the tree page) */
function unstableHolds(tv: u32, tp: u32, key: u32): bool {
  if (tv >= hostI(HP_NVMS) || vmI(tv, P_POWERED) == 0 || vmI(tv, P_SHARE_ON) == 0) return false;
  if (tp >= vmI(tv, P_PAGES)) return false;
  const te = vmI(tv, P_PAGE_BASE) + tp * PAGE_ENTRY;
  const tm = load<u32>(te);
  return (tm & STATE_MASK) == STATE_PRIVATE && (tm & K_UNSTABLE) != 0 && load<u32>(te, 4) == key;
}

/**
 * cmp_and_merge_page, from the unstable tree search on (searchAll did the rest), for a page that
 * is not a KSM page: `m` has K_RMAP, is out of its tree and unchanged since the last visit, and
 * `key` (its content) is not KEY_UNIQUE and in no stable node with room.
 */
function unstableMerge(vm: u32, ppn: u32, e: u32, m: u32, key: u32, maxSharing: u32): void {
  let a = tFind(unstable, key, 0);
  if (load<u32>(a) != EMPTY) {
    const tv = load<u32>(a, 8), tp = load<u32>(a, 12);
    if (!(tv == vm && tp == ppn) && unstableHolds(tv, tp, key)) {
      const nid = newNode(key);
      if (nid != 0 && addDup(key, nid)) {
        // the tree page leaves the unstable tree; its entry stays behind and reads as stale (the
        // page is a KSM page now) until the next full scan empties the tree
        const te = vmI(tv, P_PAGE_BASE) + tp * PAGE_ENTRY;
        addStat(KSM_PAGES_UNSHARED, -1); // the tree page leaves the unstable tree
        mapKsm(tv, tp, te, load<u32>(te), nid, key);
        addStat(KSM_PAGES_SHARED, 1);
        mapKsm(vm, ppn, e, m, nid, key);
        addStat(KSM_PAGES_SHARING, 1);
        addHostC(H_PRIVATE, -2);
        addHostC(H_COMMON, 1);
        addHostC(H_COMMON_X, 1);
        freeSmall(1);
        if (maxSharing <= 2) toTail(key, nid);
        return;
      }
      if (nid != 0) freeNode(nid);
      addHostC(H_SHARE_DROPPED, 1);
    }
    // a stale entry (the tree page changed or went): this page takes its place
    store<u32>(a, vm, 8);
    store<u32>(a, ppn, 12);
  } else {
    if (!tRoom(unstable, false)) {
      addHostC(H_SHARE_DROPPED, 1);
      store<u32>(e, m);
      return;
    }
    a = tFind(unstable, key, 0);
    tPut(unstable, a, key, 0, vm, ppn);
  }
  store<u32>(e, m | K_UNSTABLE);
  addStat(KSM_PAGES_UNSHARED, 1);
}

/** A dup that just became full goes to the tail of its ring, so the dups with room stay first. */
function toTail(key: u32, id: u32): void {
  const a = tFind(stable, key, 0);
  const first = load<u32>(a, 8);
  const next = load<u32>(nodeAt(id), N_NEXT);
  if (next == id) return; // alone
  if (first == id) {
    store<u32>(a, next, 8); // the ring's tail is just before its first: moving the head is a rotation
    return;
  }
  unlink(id);
  linkBefore(id, first);
}

// @ts-ignore: decorator
@inline function skipAge(age: u32): u32 {
  return age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
}

// @ts-ignore: decorator
@inline function mergeable(vm: u32): bool {
  return vmI(vm, P_POWERED) != 0 && vmI(vm, P_SHARE_ON) != 0;
}

let passEnded: bool = false;
let sink: u32 = 0; // keeps the warming loads from being optimised away
const BATCH: u32 = 64; // pages visited ahead of their tree searches
const todo: u32 = <u32>memory.data(BATCH * 4); // PPNs of the batch's pages that need a search
const hashes: u32 = <u32>memory.data(BATCH * 4); // the hashes of their contents, runs of one once

/**
 * The tree searches of the `k` pages listed in `todo` (vm's, page table at `base`), in scan order.
 * First the tree slots of the `j` hashes in `hashes` are loaded in a tight loop of independent
 * loads, so that the cache misses overlap instead of queueing one behind the other in the
 * searches (issue 6). WASM has no prefetch: a load that misses holds up the instructions after it
 * once the reorder window is full, so the loop lists a run of one content (zero pages) once, and
 * does not load what a hit points at (the dup's node, the unstable tree's page: it cost more).
 */
function searchAll(vm: u32, base: u32, k: u32, j: u32): void {
  const sb = load<u32>(stable), smask = load<u32>(stable, 4) - 1;
  const ub = load<u32>(unstable), umask = load<u32>(unstable, 4) - 1;
  let acc: u32 = 0;
  for (let i: u32 = 0; i < j; i++) {
    const h = load<u32>(hashes + (i << 2));
    acc ^= load<u32>(sb + ((h & smask) << 4)) ^ load<u32>(ub + ((h & umask) << 4));
  }
  sink ^= acc;
  const zeroPages = hostI(HP_KSM_ZERO_PAGES) != 0;
  const maxSharing = hostI(HP_KSM_MAX_SHARING);
  let merged: u32 = 0, mergedZero: u32 = 0; // pages merged into a KSM page, of them zero-filled
  for (let i: u32 = 0; i < k; i++) {
    const ppn = load<u32>(todo + (i << 2));
    const e = base + ppn * PAGE_ENTRY;
    const m = load<u32>(e), key = load<u32>(e, 4);
    if (key == KEY_ZERO && zeroPages) {
      // use_zero_pages: an empty page maps the kernel zero page
      splitLarge(vm, ppn);
      setState(vm, e, m | K_ZERO, STATE_SHARED);
      addHostC(H_PRIVATE, -1);
      freeSmall(1);
      addStat(KSM_ZERO_PAGES, 1);
      addVmC(vm, C_SHARED_ZERO, 1);
      addVmC(vm, C_SHARE_MERGES, 1);
      continue;
    }
    const id = stableFind(key, maxSharing);
    if (id == 0) {
      unstableMerge(vm, ppn, e, m, key, maxSharing);
      continue;
    }
    // the stable tree has a KSM page of this content with room: the page maps it (mapKsm, its
    // counters summed below: issue 6); its own page is freed
    linkKsm(vm, ppn, e, m, id);
    merged++;
    mergedZero += <u32>(key == KEY_ZERO);
    if (load<u32>(nodeAt(id), N_LEN) >= maxSharing) toTail(key, id);
  }
  const d = <f64>merged;
  addVmC(vm, C_PRIVATE, -d);
  addVmC(vm, C_SHARED, d);
  addVmC(vm, C_SHARED_ZERO, <f64>mergedZero);
  addVmC(vm, C_SHARED_X, d);
  addHostC(H_SHARED_X, d);
  addVmC(vm, C_SHARE_MERGES, d);
  addStat(KSM_PAGES_SHARING, d);
  addHostC(H_PRIVATE, -d);
  freeSmall(d);
}

/**
 * Advance the cursor over up to `budget` pages to visit (scan_get_next_rmap_item +
 * cmp_and_merge_page). Returns the pages visited; `passEnded` when the full scan completed.
 *
 * A batch of pages is visited in two steps (issue 6): first every page as far as it goes without
 * a tree search (a KSM page, a new or changed page, a KEY_UNIQUE page; leaving the unstable tree),
 * with selects rather than branches on its kind, which is random, and the counters in locals;
 * then the tree searches of the rest (searchAll), in order. The order of events is the kernel's:
 * a search changes only its page, earlier pages (the unstable tree holds pages scanned before in
 * this full scan) and the trees, which the first step does not read; the rare steps that do touch
 * the stable tree (freeing the item of a page gone, a COW-broken KSM page leaving its node) run
 * after the searches listed before them.
 */
function scanSome(budget: u32, nvms: u32, smart: bool): u32 {
  let n: u32 = 0;
  let skipped: u32 = 0;
  let newItems: u32 = 0;
  let unshared: i32 = 0; // pages_unshared change
  while (true) {
    if (curVm >= nvms) {
      passEnded = true;
      break;
    }
    const vm = curVm;
    if (!mergeable(vm)) {
      curVm++;
      curPpn = 0;
      continue;
    }
    const pages = vmI(vm, P_PAGES);
    const base = vmI(vm, P_PAGE_BASE);
    const words = vmI(vm, P_KSM_RMAP);
    let ppn = curPpn;
    let vmItems: u32 = 0;
    while (ppn < pages && n < budget) {
      const end = min(pages, ppn + BATCH);
      let k: u32 = 0; // pages listed in todo
      let j: u32 = 0, last: u32 = 0; // hashes listed, the last one
      while (ppn < end && n < budget) {
        const e = base + ppn * PAGE_ENTRY;
        const wa = words + (ppn << 2);
        let m = load<u32>(e);
        const st = m & STATE_MASK;
        const ksmPage = (st == STATE_SHARED) & ((m & K_ZERO) == 0); // & not &&: no branch (issue 6)
        if (st != STATE_PRIVATE && !ksmPage) {
          // not an anonymous page ksmd can map: its rmap_item (if any) is freed as ksmd walks past
          if (m & K_RMAP) {
            searchAll(vm, base, k, j);
            k = j = 0;
            freeItem(vm, e, m, wa);
          }
          ppn++;
          continue;
        }
        if (!ksmPage && (m & K_STABLE) != 0) {
          // a KSM page since broken by a write leaves its stable node now (only the rmap word's
          // node bits change, so this can come before the aging below)
          searchAll(vm, base, k, j);
          k = j = 0;
          m = removeFromTree(vm, e, m, wa);
          store<u32>(e, m);
        }
        let w = load<u32>(wa);
        if ((m & K_RMAP) == 0) {
          m |= K_RMAP | M_DIRTY; // a new rmap_item: oldchecksum 0, so the first visit only records it
          w = 0;
          vmItems++;
        }
        if (smart && !ksmPage) {
          const age = w & 15;
          if (age < AGE_MAX) w++;
          if (age >= 3) {
            if ((w & 0xf0) == 0) {
              w |= skipAge(age) << 4;
            } else {
              // skipped: it leaves its tree
              w -= SKIP_ONE;
              store<u32>(wa, w);
              store<u32>(e, m & ~K_UNSTABLE);
              unshared -= <i32>((m & K_UNSTABLE) != 0);
              skipped++;
              ppn++;
              continue;
            }
          }
        }
        store<u32>(wa, w);
        // cmp_and_merge_page; nothing for a KSM page. Else out of the unstable tree; a page changed
        // since the last visit (checksum) is volatile, not worth a tree; a KEY_UNIQUE page equals
        // nothing, it can only wait in the unstable tree; any other page needs a tree search.
        const plain = !ksmPage;
        const out = plain & ((m & K_UNSTABLE) != 0);
        const dirty = plain & ((m & M_DIRTY) != 0);
        const key = load<u32>(e, 4);
        const unique = plain & !dirty & (key == KEY_UNIQUE);
        m = select<u32>(m & ~(K_UNSTABLE | M_DIRTY), m, plain);
        store<u32>(e, m | select<u32>(K_UNSTABLE, 0, unique));
        unshared += <i32>unique - <i32>out;
        store<u32>(todo + (k << 2), ppn);
        const listed = plain & !dirty & !unique;
        const h = hashOf(key, 0);
        store<u32>(hashes + (j << 2), h); // so that searchAll's loads ahead are a short loop
        j += <u32>(listed & (h != last));
        last = select<u32>(h, last, listed);
        k += <u32>listed;
        ppn++;
        n++;
      }
      searchAll(vm, base, k, j);
    }
    curPpn = ppn;
    newItems += vmItems;
    addVmC(vm, C_KSM_RMAP_ITEMS, <f64>vmItems);
    if (n >= budget) break;
    curVm++;
    curPpn = 0;
  }
  addStat(KSM_RMAP_ITEMS, <f64>newItems);
  addStat(KSM_PAGES_SKIPPED, <f64>skipped);
  addStat(KSM_PAGES_SCANNED, <f64>n);
  addStat(KSM_PAGES_UNSHARED, <f64>unshared);
  return n;
}

/**
 * ksmd: `wakeups` wake-ups of `pagesToScan` pages each (ksm_do_scan). One call per tick.
 * Returns the pages scanned.
 */
export function ksmScan(wakeups: u32, pagesToScan: u32): f64 {
  if (hostI(HP_SHARE_POLICY) != POLICY_KSM || pagesToScan == 0) return 0;
  const nvms = hostI(HP_NVMS);
  let any = false;
  for (let vm: u32 = 0; vm < nvms; vm++) if (mergeable(vm)) any = true;
  if (!any) return 0; // no mm on ksm_mm_head: ksmd sleeps
  const smart = hostI(HP_KSM_SMART) != 0;
  let scanned: f64 = 0;
  for (let w: u32 = 0; w < wakeups; w++) {
    let budget = pagesToScan;
    while (budget > 0) {
      if (atHead) {
        // a full scan starts: the unstable tree is flushed
        tClear(unstable);
        atHead = false;
        curVm = 0;
        curPpn = 0;
      }
      passEnded = false;
      const n = scanSome(budget, nvms, smart);
      budget -= n;
      scanned += <f64>n;
      if (passEnded) {
        addStat(KSM_FULL_SCANS, 1);
        atHead = true;
        break; // scan_get_next_rmap_item returned NULL: this batch is over
      }
    }
  }
  return scanned;
}

/**
 * Copy-on-write break of KSM page (vm, ppn) at `e` for a write: a private copy; the KSM page is
 * freed with its last mapping. The counters wait for ksmd's next visit. False: no free memory.
 */
export function ksmCow(vm: u32, ppn: u32, e: u32): bool {
  const m = load<u32>(e);
  if (m & K_ZERO) {
    if (!allocSmall()) return false;
    addHostC(H_PRIVATE, 1);
    addStat(KSM_ZERO_PAGES, -1);
    addVmC(vm, C_SHARED_ZERO, -1);
    setState(vm, e, m & ~K_ZERO, STATE_PRIVATE);
    return true;
  }
  const id = load<u32>(vmI(vm, P_KSM_RMAP) + (ppn << 2)) >>> NODE_SHIFT;
  const n = nodeAt(id);
  const map = load<u32>(n, N_MAP);
  if (map == 1) {
    // the last mapping: the copy replaces the KSM page, which is freed
    addHostC(H_COMMON, -1);
    addHostC(H_COMMON_X, -1);
  } else if (!allocSmall()) return false;
  addHostC(H_PRIVATE, 1);
  store<u32>(n, map - 1, N_MAP);
  if (load<u32>(e, 4) == KEY_ZERO) addVmC(vm, C_SHARED_ZERO, -1);
  addVmC(vm, C_SHARED_X, -1);
  addHostC(H_SHARED_X, -1);
  setState(vm, e, m, STATE_PRIVATE);
  return true;
}

/**
 * Drop page (vm, ppn)'s mapping of a KSM page or of the zero page: it becomes unbacked (its
 * rmap_item stays until ksmd walks past it).
 */
export function ksmUnmap(vm: u32, ppn: u32, e: u32, m: u32): void {
  if (m & K_ZERO) {
    addStat(KSM_ZERO_PAGES, -1);
    addVmC(vm, C_SHARED_ZERO, -1);
  } else {
    const n = nodeAt(load<u32>(vmI(vm, P_KSM_RMAP) + (ppn << 2)) >>> NODE_SHIFT);
    const map = load<u32>(n, N_MAP) - 1;
    store<u32>(n, map, N_MAP);
    if (map == 0) {
      addHostC(H_COMMON, -1);
      addHostC(H_COMMON_X, -1);
      freeSmall(1);
    }
    if (load<u32>(e, 4) == KEY_ZERO) addVmC(vm, C_SHARED_ZERO, -1);
    addVmC(vm, C_SHARED_X, -1);
    addHostC(H_SHARED_X, -1);
  }
  setState(vm, e, m & ~K_ZERO, STATE_UNBACKED);
}

/** Power-off (the qemu process exits): its KSM mappings go, its rmap_items are freed. */
export function ksmReleaseVm(vm: u32): void {
  const pages = vmI(vm, P_PAGES);
  const words = vmI(vm, P_KSM_RMAP);
  let e = vmI(vm, P_PAGE_BASE);
  for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
    let m = load<u32>(e);
    if ((m & STATE_MASK) == STATE_SHARED) {
      ksmUnmap(vm, ppn, e, m);
      m = load<u32>(e);
    }
    if (m & K_RMAP) freeItem(vm, e, m, words + (ppn << 2));
  }
  memory.fill(words, 0, pages << 2);
}

/**
 * `run` = 2: unmerge every KSM page (each mapping gets a private copy) and free every rmap_item;
 * full_scans restarts at 0. Returns the mappings that could not be unmerged (no free memory).
 */
export function ksmUnmergeAll(): u32 {
  if (hostI(HP_SHARE_POLICY) != POLICY_KSM) return 0;
  const nvms = hostI(HP_NVMS);
  let failed: u32 = 0;
  for (let vm: u32 = 0; vm < nvms; vm++) {
    const pages = vmI(vm, P_PAGES);
    const words = vmI(vm, P_KSM_RMAP);
    let e = vmI(vm, P_PAGE_BASE);
    for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
      let m = load<u32>(e);
      if ((m & STATE_MASK) == STATE_SHARED) {
        if (!ksmCow(vm, ppn, e)) {
          failed++;
          continue;
        }
        m = load<u32>(e);
      }
      if (m & K_RMAP) freeItem(vm, e, m, words + (ppn << 2));
    }
  }
  tClear(unstable);
  atHead = true;
  curVm = 0;
  curPpn = 0;
  store<f64>(stat + (<u32>KSM_FULL_SCANS << 3), 0);
  return failed;
}

/** Where ksmd is: full scans done + fraction of the current one (for progress and tests). */
export function ksmCursorVm(): u32 {
  return atHead ? 0xffff_ffff : curVm;
}
export function ksmCursorPpn(): u32 {
  return curPpn;
}

/** KSM checks of one VM (share.ts shareCheckVm codes 30-33). */
export function ksmCheckVm(vm: u32): i32 {
  const pages = vmI(vm, P_PAGES);
  const words = vmI(vm, P_KSM_RMAP);
  let e = vmI(vm, P_PAGE_BASE);
  let zero: u32 = 0, items: u32 = 0, ksmPages: u32 = 0;
  for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
    const m = load<u32>(e);
    const st = m & STATE_MASK;
    if (m & K_RMAP) items++;
    else if (m & (K_STABLE | K_UNSTABLE)) return 33;
    if ((m & K_STABLE) != 0 && (m & K_UNSTABLE) != 0) return 33;
    if ((m & K_ZERO) != 0 && st != STATE_SHARED) return 33;
    if (st == STATE_SHARED) {
      if (m & K_ZERO) {
        zero++;
        continue;
      }
      ksmPages++;
      if (load<u32>(e, 4) == KEY_ZERO) zero++;
      if ((m & K_STABLE) == 0) return 33;
      const n = nodeAt(load<u32>(words + (ppn << 2)) >>> NODE_SHIFT);
      if (load<u32>(n, N_MAP) == 0 || (load<u32>(n, N_LEN) & STALE) != 0 || load<u32>(n, N_KEY) != load<u32>(e, 4)) return 33;
    }
  }
  if (<f64>zero != vmC(vm, C_SHARED_ZERO)) return 30;
  if (<f64>items != vmC(vm, C_KSM_RMAP_ITEMS)) return 31;
  if (<f64>ksmPages != vmC(vm, C_SHARED_X)) return 32;
  return 0;
}

/** KSM checks of the host: the trees against the pages and the sysfs counters. 0 or 31. */
export function ksmCheckHost(): i32 {
  const nvms = hostI(HP_NVMS);
  let items: f64 = 0, unshared: f64 = 0, zeroPages: f64 = 0, stableItems: f64 = 0, mapped: f64 = 0;
  for (let vm: u32 = 0; vm < nvms; vm++) {
    const pages = vmI(vm, P_PAGES);
    const words = vmI(vm, P_KSM_RMAP);
    let e = vmI(vm, P_PAGE_BASE);
    for (let ppn: u32 = 0; ppn < pages; ppn++, e += PAGE_ENTRY) {
      const m = load<u32>(e);
      if (m & K_RMAP) items++;
      if (m & K_UNSTABLE) unshared++;
      if ((m & STATE_MASK) == STATE_SHARED) {
        if (m & K_ZERO) zeroPages++;
        else mapped++;
      }
      if (m & K_STABLE) {
        const n = nodeAt(load<u32>(words + (ppn << 2)) >>> NODE_SHIFT);
        if ((load<u32>(n, N_LEN) & STALE) == 0) stableItems++;
      }
    }
  }
  let shared: f64 = 0, lenSum: f64 = 0, live: f64 = 0, mapSum: f64 = 0, inTree: f64 = 0;
  for (let id: u32 = 1; id < nodeTop; id++) {
    const n = nodeAt(id);
    if (load<u32>(n, N_KEY) == EMPTY) continue;
    const len = load<u32>(n, N_LEN);
    const map = load<u32>(n, N_MAP);
    if (map > 0) live++;
    mapSum += <f64>map;
    if (len & STALE) {
      if (map != 0) return 31;
      continue;
    }
    inTree++;
    if (len == 0 || map > len) return 31;
    shared++;
    lenSum += <f64>len;
  }
  let dupsInIndex: f64 = 0, chains: f64 = 0, dupsInChains: f64 = 0;
  const base = load<u32>(stable);
  const cap = load<u32>(stable, 4);
  for (let i: u32 = 0; i < cap; i++) {
    const a = base + (i << 4);
    if (load<u32>(a) == EMPTY) continue;
    const d = <f64>load<u32>(a, 12);
    dupsInIndex += d;
    if (d >= 2) {
      chains++;
      dupsInChains += d;
    }
  }
  if (items != ksmStat(KSM_RMAP_ITEMS) || unshared != ksmStat(KSM_PAGES_UNSHARED)) return 31;
  if (zeroPages != ksmStat(KSM_ZERO_PAGES) || shared != ksmStat(KSM_PAGES_SHARED)) return 31;
  if (lenSum != ksmStat(KSM_PAGES_SHARED) + ksmStat(KSM_PAGES_SHARING) || lenSum != stableItems) return 31;
  if (live != hostC(H_COMMON) || live != hostC(H_COMMON_X) || mapSum != mapped || mapped != hostC(H_SHARED_X)) return 31;
  if (dupsInIndex != inTree || chains != ksmStat(KSM_STABLE_NODE_CHAINS) || dupsInChains != ksmStat(KSM_STABLE_NODE_DUPS)) return 31;
  return 0;
}
