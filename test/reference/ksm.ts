// Linux KSM in the reference model (assembly/ksm.ts), with objects where the engine has a node table
// and hash tables. ksmd walks the mergeable VMs PPN by PPN, pages_to_scan pages per wake-up; every
// present page gets an rmap_item; a page written since its last visit is volatile; a page whose
// content has a KSM page with room merges into it (the stable tree: per content a ring of "dups",
// max_page_sharing mappings each); else one seen with the same content in this full scan (the
// unstable tree) and this one become a new KSM page; else this one waits in the unstable tree.
// smart_scan skips pages that keep failing to merge. A write to a KSM page breaks COW at once; the
// counters follow when ksmd next visits the page, or when a search meets the freed KSM page.
import { KEY_UNIQUE, KEY_ZERO, REGION_PAGES, type Model, type Page, type Vm } from "./model.js";

const AGE_MAX = 15;
const MAX_NODES = 2 ** 24;
const NODE_BYTES = 32;
const ENTRY_BYTES = 16;
const MAX_CAP = 2 ** 27;

/** /sys/kernel/mm/ksm counters, in the engine's order (KSM_* globals) */
export const STAT = {
  PAGES_SHARED: 0,
  PAGES_SHARING: 1,
  PAGES_UNSHARED: 2,
  RMAP_ITEMS: 3,
  FULL_SCANS: 4,
  PAGES_SCANNED: 5,
  PAGES_SKIPPED: 6,
  STABLE_NODE_CHAINS: 7,
  STABLE_NODE_DUPS: 8,
  ZERO_PAGES: 9,
} as const;

/** A KSM page: a stable node ("dup") of its content's ring. */
export class KsmNode {
  /** rmap_items hanging off it (rmap_hlist_len) */
  len = 0;
  /** guest pages mapping it; 0: the KSM page was freed (its last mapping broke COW) */
  map = 0;
  /** removed from the tree as a freed KSM page; kept until its items are visited */
  stale = false;
  next: KsmNode = this;
  prev: KsmNode = this;
  constructor(readonly key: number) {}
}

/** The rmap_item state of a page (the engine's rmap word and meta bits 8-11). */
export interface KsmItem {
  age: number;
  skips: number;
  node: KsmNode | null;
}

/** A table's capacity and growth, as the engine's open-addressing tables (share.ts tRoom, no gc). */
class Sized<V> extends Map<number, V> {
  constructor(public cap: number) {
    super();
  }
}

export class Ksm {
  readonly stats: number[] = new Array(11).fill(0);
  stable = new Sized<{ first: KsmNode; dups: number }>(0);
  unstable = new Sized<{ vm: number; ppn: number }>(0);
  private nodeCap = 0;
  private nodeTop = 1;
  private freeNodes = 0;
  private atHead = true;
  private curVm = 0;
  private curPpn = 0;
  private passEnded = false;

  constructor(private readonly model: Model) {}

  private get rec() {
    return this.model.rec;
  }
  private get k() {
    return this.model.k;
  }
  private stat(i: number, d: number): void {
    this.stats[i] += d;
  }

  /** ksmInit: every VM's rmap words, the trees (the stable one smaller), the node table. */
  init(cap: number): void {
    const { rec, k } = this;
    for (const vm of this.model.vms) rec.addHost(k.H_SHARE_TABLE_BYTES, vm.pages.length * 4);
    this.stable = new Sized(Math.max(1024, cap >>> 2));
    this.unstable = new Sized(cap);
    rec.addHost(k.H_SHARE_TABLE_BYTES, this.stable.cap * ENTRY_BYTES);
    rec.addHost(k.H_SHARE_TABLE_BYTES, this.unstable.cap * ENTRY_BYTES);
    this.nodeCap = Math.max(1024, cap >>> 3);
    rec.addHost(k.H_SHARE_TABLE_BYTES, this.nodeCap * NODE_BYTES);
    this.nodeTop = 1;
    this.freeNodes = 0;
    this.atHead = true;
    this.curVm = 0;
    this.curPpn = 0;
    this.stats.fill(0);
  }

  /** Room for one more entry (tRoom without gc): rebuilt at most a third full past half full. */
  private room<V>(t: Sized<V>): boolean {
    const count = t.size;
    if (count + 1 <= Math.floor(t.cap / 2)) return true;
    let newCap = t.cap;
    while (newCap < MAX_CAP && (count + 1) * 3 > newCap) newCap *= 2;
    if (newCap === t.cap) return count + 1 < t.cap - Math.floor(t.cap / 8);
    this.rec.addHost(this.k.H_SHARE_TABLE_BYTES, newCap * ENTRY_BYTES);
    t.cap = newCap;
    return true;
  }

  private newNode(key: number): KsmNode | null {
    if (this.freeNodes > 0) this.freeNodes--;
    else {
      if (this.nodeTop >= MAX_NODES) return null;
      if (this.nodeTop >= this.nodeCap) {
        const cap = Math.min(this.nodeCap * 2, MAX_NODES);
        this.rec.addHost(this.k.H_SHARE_TABLE_BYTES, cap * NODE_BYTES);
        this.nodeCap = cap;
      }
      this.nodeTop++;
    }
    return new KsmNode(key);
  }

  private freeNode(): void {
    this.freeNodes++;
  }

  // ---- the stable tree: per content a ring of dups ----

  private unlink(n: KsmNode): void {
    n.prev.next = n.next;
    n.next.prev = n.prev;
    n.next = n;
    n.prev = n;
  }

  private linkBefore(n: KsmNode, at: KsmNode): void {
    const p = at.prev;
    n.next = at;
    n.prev = p;
    p.next = n;
    at.prev = n;
  }

  /** A new KSM page of `key`, first in its ring (addDup). False: no room in the tree. */
  private addDup(key: number, n: KsmNode): boolean {
    const entry = this.stable.get(key);
    if (!entry) {
      if (!this.room(this.stable)) return false;
      this.stable.set(key, { first: n, dups: 1 });
      return true;
    }
    this.linkBefore(n, entry.first);
    entry.first = n;
    entry.dups++;
    if (entry.dups === 2) {
      this.stat(STAT.STABLE_NODE_CHAINS, 1);
      this.stat(STAT.STABLE_NODE_DUPS, 2);
    } else this.stat(STAT.STABLE_NODE_DUPS, 1);
    return true;
  }

  private removeDup(key: number, n: KsmNode): void {
    const entry = this.stable.get(key);
    if (!entry) throw new Error(`reference model: KSM dup of ${key} not in the stable tree`);
    const dups = entry.dups - 1;
    if (dups === 0) {
      this.stable.delete(key);
      return;
    }
    if (entry.first === n) entry.first = n.next;
    this.unlink(n);
    entry.dups = dups;
    if (dups === 1) {
      this.stat(STAT.STABLE_NODE_CHAINS, -1);
      this.stat(STAT.STABLE_NODE_DUPS, -2);
    } else this.stat(STAT.STABLE_NODE_DUPS, -1);
  }

  /** A freed KSM page is found (remove_node_from_stable_tree): its items leave the counters. */
  private discoverStale(n: KsmNode): void {
    this.stat(STAT.PAGES_SHARED, -1);
    this.stat(STAT.PAGES_SHARING, -(n.len - 1));
    this.removeDup(n.key, n);
    n.stale = true;
  }

  /** The dup of `key` that takes one more mapping (stable_tree_search), or null. */
  private stableFind(key: number, maxSharing: number): KsmNode | null {
    for (;;) {
      const entry = this.stable.get(key);
      if (!entry) return null;
      const n = entry.first;
      if (n.map === 0) {
        this.discoverStale(n);
        continue;
      }
      return n.len > 0 && n.len < maxSharing ? n : null;
    }
  }

  private toFront(key: number, n: KsmNode): void {
    const entry = this.stable.get(key)!;
    if (entry.first === n) return;
    this.unlink(n);
    this.linkBefore(n, entry.first);
    entry.first = n;
  }

  private toTail(key: number, n: KsmNode): void {
    const entry = this.stable.get(key)!;
    if (n.next === n) return;
    if (entry.first === n) {
      entry.first = n.next;
      return;
    }
    this.unlink(n);
    this.linkBefore(n, entry.first);
  }

  /** The page's rmap_item leaves its tree (remove_rmap_item_from_tree). */
  private removeFromTree(page: Page): void {
    if (page.kStable) {
      const item = page.ksm!;
      const n = item.node!;
      if (!n.stale && n.map === 0) this.discoverStale(n);
      n.len--;
      if (n.stale) {
        if (n.len === 0) this.freeNode();
      } else if (n.len > 0) {
        this.stat(STAT.PAGES_SHARING, -1);
        if (n.len + 1 === this.rec.hostParam(this.k.HP_KSM_MAX_SHARING)) this.toFront(n.key, n);
      } else {
        this.stat(STAT.PAGES_SHARED, -1);
        this.removeDup(n.key, n);
        this.freeNode();
      }
      item.node = null;
      page.kStable = false;
    }
    if (page.kUnstable) {
      this.stat(STAT.PAGES_UNSHARED, -1);
      page.kUnstable = false;
    }
  }

  /** The page loses its rmap_item. */
  private freeItem(vm: Vm, page: Page): void {
    this.removeFromTree(page);
    page.kRmap = false;
    page.ksm = null;
    this.stat(STAT.RMAP_ITEMS, -1);
    this.rec.add(vm.index, this.k.C_KSM_RMAP_ITEMS, -1);
  }

  private splitLarge(vm: Vm, ppn: number): void {
    const r = Math.floor(ppn / REGION_PAGES);
    if (vm.regions[r] === "large") this.model.breakLarge(vm, r);
  }

  /** The private page becomes a mapping of KSM page `n` (mapKsm). */
  private mapKsm(vm: Vm, ppn: number, page: Page, n: KsmNode, key: number): void {
    const { rec, k } = this;
    this.splitLarge(vm, ppn);
    page.ksm!.node = n;
    page.kUnstable = false;
    page.kStable = true;
    this.model.setState(vm, page, "shared");
    n.len++;
    n.map++;
    if (key === KEY_ZERO) rec.add(vm.index, k.C_SHARED_ZERO, 1);
    rec.add(vm.index, k.C_SHARED_X, 1);
    rec.addHost(k.H_SHARED_X, 1);
    rec.add(vm.index, k.C_SHARE_MERGES, 1);
  }

  private unstableHolds(tv: number, tp: number, key: number): boolean {
    const { rec, k } = this;
    const vm = this.model.vms[tv];
    if (!vm || rec.param(tv, k.P_POWERED) === 0 || rec.param(tv, k.P_SHARE_ON) === 0) return false;
    if (tp >= vm.pages.length) return false;
    const page = vm.pages[tp];
    return page.state === "private" && page.kUnstable && page.key === key;
  }

  /** cmp_and_merge_page for a page that is not a KSM page. */
  private cmpAndMerge(vm: Vm, ppn: number, page: Page): void {
    const { rec, k } = this;
    this.removeFromTree(page);
    if (page.dirty) {
      // written since the last visit: volatile
      page.dirty = false;
      return;
    }
    const key = page.key;
    if (key === KEY_ZERO && rec.hostParam(k.HP_KSM_ZERO_PAGES) !== 0) {
      this.splitLarge(vm, ppn);
      page.kZero = true;
      this.model.setState(vm, page, "shared");
      rec.addHost(k.H_PRIVATE, -1);
      rec.addHost(k.H_FREE_SMALL, 1);
      this.stat(STAT.ZERO_PAGES, 1);
      rec.add(vm.index, k.C_SHARED_ZERO, 1);
      rec.add(vm.index, k.C_SHARE_MERGES, 1);
      return;
    }
    if (key === KEY_UNIQUE) {
      page.kUnstable = true;
      this.stat(STAT.PAGES_UNSHARED, 1);
      return;
    }
    const maxSharing = rec.hostParam(k.HP_KSM_MAX_SHARING);
    const found = this.stableFind(key, maxSharing);
    if (found) {
      this.mapKsm(vm, ppn, page, found, key);
      this.stat(STAT.PAGES_SHARING, 1);
      rec.addHost(k.H_PRIVATE, -1);
      rec.addHost(k.H_FREE_SMALL, 1);
      if (found.len >= maxSharing) this.toTail(key, found);
      return;
    }
    const entry = this.unstable.get(key);
    if (entry) {
      if (!(entry.vm === vm.index && entry.ppn === ppn) && this.unstableHolds(entry.vm, entry.ppn, key)) {
        const n = this.newNode(key);
        if (n && this.addDup(key, n)) {
          const tvm = this.model.vms[entry.vm];
          this.stat(STAT.PAGES_UNSHARED, -1);
          this.mapKsm(tvm, entry.ppn, tvm.pages[entry.ppn], n, key);
          this.stat(STAT.PAGES_SHARED, 1);
          this.mapKsm(vm, ppn, page, n, key);
          this.stat(STAT.PAGES_SHARING, 1);
          rec.addHost(k.H_PRIVATE, -2);
          rec.addHost(k.H_COMMON, 1);
          rec.addHost(k.H_COMMON_X, 1);
          rec.addHost(k.H_FREE_SMALL, 1);
          if (maxSharing <= 2) this.toTail(key, n);
          return;
        }
        if (n) this.freeNode();
        rec.addHost(k.H_SHARE_DROPPED, 1);
      }
      // a stale entry: this page takes its place
      entry.vm = vm.index;
      entry.ppn = ppn;
    } else {
      if (!this.room(this.unstable)) {
        rec.addHost(k.H_SHARE_DROPPED, 1);
        return;
      }
      this.unstable.set(key, { vm: vm.index, ppn });
    }
    page.kUnstable = true;
    this.stat(STAT.PAGES_UNSHARED, 1);
  }

  private mergeable(index: number): boolean {
    return this.rec.param(index, this.k.P_POWERED) !== 0 && this.rec.param(index, this.k.P_SHARE_ON) !== 0;
  }

  /** The cursor over up to `budget` pages to visit (scan_get_next_rmap_item + cmp_and_merge_page). */
  private scanSome(budget: number, smart: boolean): number {
    const vms = this.model.vms;
    let n = 0, skipped = 0, newItems = 0;
    for (;;) {
      if (this.curVm >= vms.length) {
        this.passEnded = true;
        break;
      }
      const vm = vms[this.curVm];
      if (!this.mergeable(vm.index)) {
        this.curVm++;
        this.curPpn = 0;
        continue;
      }
      let ppn = this.curPpn;
      let vmItems = 0;
      while (ppn < vm.pages.length && n < budget) {
        const page = vm.pages[ppn];
        const ksmPage = page.state === "shared" && !page.kZero;
        if (page.state !== "private" && !ksmPage) {
          // not a page ksmd can map: its rmap_item goes as ksmd walks past
          if (page.kRmap) this.freeItem(vm, page);
          ppn++;
          continue;
        }
        if (!page.kRmap) {
          // a new rmap_item: no checksum yet, so the first visit only records one
          page.kRmap = true;
          page.dirty = true;
          page.ksm = { age: 0, skips: 0, node: null };
          vmItems++;
        }
        if (smart && !ksmPage) {
          const item = page.ksm!;
          const age = item.age;
          if (age < AGE_MAX) item.age++;
          if (age >= 3) {
            if (item.skips === 0) item.skips = age <= 3 ? 1 : age <= 5 ? 2 : age <= 8 ? 4 : 8;
            else {
              item.skips--;
              this.removeFromTree(page);
              skipped++;
              ppn++;
              continue;
            }
          }
        }
        ppn++;
        n++;
        if (!ksmPage) this.cmpAndMerge(vm, ppn - 1, page);
      }
      this.curPpn = ppn;
      newItems += vmItems;
      this.rec.add(vm.index, this.k.C_KSM_RMAP_ITEMS, vmItems);
      if (n >= budget) break;
      this.curVm++;
      this.curPpn = 0;
    }
    this.stat(STAT.RMAP_ITEMS, newItems);
    this.stat(STAT.PAGES_SKIPPED, skipped);
    this.stat(STAT.PAGES_SCANNED, n);
    return n;
  }

  /** ksmd: `wakeups` wake-ups of `pagesToScan` pages each (ksmScan). Returns the pages scanned. */
  ksmScan(wakeups: number, pagesToScan: number): number {
    const { rec, k } = this;
    if (rec.hostParam(k.HP_SHARE_POLICY) !== 2 || pagesToScan === 0) return 0;
    if (!this.model.vms.some((vm) => this.mergeable(vm.index))) return 0;
    const smart = rec.hostParam(k.HP_KSM_SMART) !== 0;
    let scanned = 0;
    for (let w = 0; w < wakeups; w++) {
      let budget = pagesToScan;
      while (budget > 0) {
        if (this.atHead) {
          // a full scan starts: the unstable tree is flushed
          this.unstable.clear();
          this.atHead = false;
          this.curVm = 0;
          this.curPpn = 0;
        }
        this.passEnded = false;
        const n = this.scanSome(budget, smart);
        budget -= n;
        scanned += n;
        if (this.passEnded) {
          this.stat(STAT.FULL_SCANS, 1);
          this.atHead = true;
          break;
        }
      }
    }
    return scanned;
  }

  /** COW break of a KSM page (or the zero page) for a write (ksmCow). False: no free memory. */
  cow(vm: Vm, page: Page): boolean {
    const { rec, k } = this;
    if (page.kZero) {
      if (!this.model.allocSmall()) return false;
      rec.addHost(k.H_PRIVATE, 1);
      this.stat(STAT.ZERO_PAGES, -1);
      rec.add(vm.index, k.C_SHARED_ZERO, -1);
      page.kZero = false;
      this.model.setState(vm, page, "private");
      return true;
    }
    const n = page.ksm!.node!;
    if (n.map === 1) {
      rec.addHost(k.H_COMMON, -1);
      rec.addHost(k.H_COMMON_X, -1);
    } else if (!this.model.allocSmall()) return false;
    rec.addHost(k.H_PRIVATE, 1);
    n.map--;
    if (page.key === KEY_ZERO) rec.add(vm.index, k.C_SHARED_ZERO, -1);
    rec.add(vm.index, k.C_SHARED_X, -1);
    rec.addHost(k.H_SHARED_X, -1);
    this.model.setState(vm, page, "private");
    return true;
  }

  /** The page's mapping of a KSM page or the zero page goes (ksmUnmap): it becomes unbacked. */
  unmap(vm: Vm, page: Page): void {
    const { rec, k } = this;
    if (page.kZero) {
      this.stat(STAT.ZERO_PAGES, -1);
      rec.add(vm.index, k.C_SHARED_ZERO, -1);
    } else {
      const n = page.ksm!.node!;
      n.map--;
      if (n.map === 0) {
        rec.addHost(k.H_COMMON, -1);
        rec.addHost(k.H_COMMON_X, -1);
        rec.addHost(k.H_FREE_SMALL, 1);
      }
      if (page.key === KEY_ZERO) rec.add(vm.index, k.C_SHARED_ZERO, -1);
      rec.add(vm.index, k.C_SHARED_X, -1);
      rec.addHost(k.H_SHARED_X, -1);
    }
    page.kZero = false;
    this.model.setState(vm, page, "unbacked");
  }

  /** Power-off (ksmReleaseVm): its KSM mappings go, its rmap_items are freed. */
  releaseVm(vm: Vm): void {
    for (const page of vm.pages) {
      if (page.state === "shared") this.unmap(vm, page);
      if (page.kRmap) this.freeItem(vm, page);
      page.ksm = null;
    }
  }

  /** run = 2 (ksmUnmergeAll): every mapping unmerged, every rmap_item freed, full_scans from 0. */
  unmergeAll(): number {
    if (this.rec.hostParam(this.k.HP_SHARE_POLICY) !== 2) return 0;
    let failed = 0;
    for (const vm of this.model.vms) {
      for (const page of vm.pages) {
        if (page.state === "shared") {
          if (!this.cow(vm, page)) {
            failed++;
            continue;
          }
        }
        if (page.kRmap) this.freeItem(vm, page);
      }
    }
    this.unstable.clear();
    this.atHead = true;
    this.curVm = 0;
    this.curPpn = 0;
    this.stats[STAT.FULL_SCANS] = 0;
    return failed;
  }
}
