// Host-side reclamation in the reference model (assembly/swap.ts, assembly/compress.ts): host swap
// of random victims, the per-VM compression cache, the SSD host cache, swap-in and decompression on
// a guest touch, what the balloon makes the host release, and what power-off releases. The balloon
// and the guest's own reclaim are in balloon.ts here.
//
// Victims are private pages drawn at random from the VM's victim stream, 64 at a time. Each has its
// large page broken, is offered to TPS (share before swap), else compressed into the VM's cache when
// it compresses to 2 KB or less and the cache has room (the oldest compressed pages go to swap to
// make it), else written to the swap file (and the SSD log, when the host has one). The compression
// cache is a FIFO ring of (PPN, key) slots; an SSD log slot holds (VM, PPN, key); while a page is in
// one, its page entry's key field holds the slot number (Page.zipSlot, Page.ssdSlot here).
import { KEY_UNIQUE, KEY_ZERO, REGION_PAGES, type Model, type Page, type Vm } from "./model.js";
import { mix32 } from "./rng.js";

export const ZIP_NONE = 0;
export const ZIP_2K = 1;
export const ZIP_1K = 2;
export const ZIP_0 = 3;
const PROBE = 64;

function slotKb(cls: number): number {
  return cls === ZIP_2K ? 2 : cls === ZIP_1K ? 1 : 0;
}

/** A VM's compression ring: slots hold a PPN and the content key it had, or null (a hole). */
interface ZipRing {
  slots: ({ ppn: number; key: number } | null)[];
  head: number;
  /** where to look for the oldest entry from */
  tail: number;
}

export class Reclaim {
  latSwapHdd = 0;
  latSwapSsd = 0;
  latUnzip = 0;
  readonly rings = new Map<number, ZipRing>();
  /** the SSD host cache: a log of slots written in turn */
  ssd: ({ vm: number; ppn: number; key: number } | null)[] = [];
  ssdHead = 0;

  constructor(private readonly model: Model) {}

  private get rec() {
    return this.model.rec;
  }
  private get k() {
    return this.model.k;
  }

  // ---- host swap (swap.ts) ----

  /**
   * Reclaim up to `n` resident private pages of the VM, chosen at random (swapVm): candidates are
   * drawn 64 at a time from the VM's victim stream (all 64 drawn even when fewer are needed), up to
   * 16 n + 1024 of them; when they run out, a walk from a random page takes the private pages it
   * meets. Returns the pages taken; fewer when nothing more can go (swap file full).
   */
  swapVm(index: number, n: number): number {
    const vm = this.model.vms[index];
    const size = vm.pages.length;
    if (n === 0 || size === 0) return 0;
    let got = 0;
    let tries = (Math.imul(n, 16) + 1024) >>> 0;
    while (got < n && tries > 0) {
      const k = Math.min(PROBE, tries);
      tries -= k;
      const candidates: number[] = [];
      for (let j = 0; j < k; j++) candidates.push(vm.victimRng.below(size));
      for (let j = 0; j < k && got < n; j++) {
        const ppn = candidates[j];
        if (vm.pages[ppn].state !== "private") continue;
        if (!this.evict(vm, ppn)) return got;
        got++;
      }
    }
    if (got < n && this.rec.counter(index, this.k.C_PRIVATE) > 0) {
      let ppn = vm.victimRng.below(size);
      for (let i = 0; i < size && got < n; i++) {
        if (vm.pages[ppn].state === "private") {
          if (!this.evict(vm, ppn)) return got;
          got++;
        }
        ppn = ppn + 1 === size ? 0 : ppn + 1;
      }
    }
    return got;
  }

  /** One victim (evict): its large page broken, then sharing, compression, else the swap file. */
  private evict(vm: Vm, ppn: number): boolean {
    const { rec, k } = this;
    const r = Math.floor(ppn / REGION_PAGES);
    if (vm.regions[r] === "large") this.model.breakLarge(vm, r);
    if (this.model.sharing.shareBeforeSwap(vm, ppn)) return true;
    const page = vm.pages[ppn];
    const cls = this.zipClass(vm, ppn, page.key);
    if (cls !== ZIP_NONE && this.zipRoom(vm, cls)) {
      this.dropResident(vm, ppn);
      this.zipPut(vm, ppn, page, cls);
      return true;
    }
    if (this.swapRoom(vm)) {
      this.dropResident(vm, ppn);
      this.swapOutPage(vm, ppn, page);
      return true;
    }
    rec.add(vm.index, k.C_SWAP_FULL, 1);
    return false;
  }

  private swapRoom(vm: Vm): boolean {
    return this.rec.counter(vm.index, this.k.C_SWAPPED) < this.rec.param(vm.index, this.k.P_SWAP_PAGES);
  }

  /** A private page's machine page goes back loose (dropResident), its large page broken first. */
  private dropResident(vm: Vm, ppn: number): void {
    const r = Math.floor(ppn / REGION_PAGES);
    if (vm.regions[r] === "large") this.model.breakLarge(vm, r);
    this.rec.addHost(this.k.H_PRIVATE, -1);
    this.rec.addHost(this.k.H_FREE_SMALL, 1);
  }

  /** To the swap file, and the SSD log's next slot when there is one (swapOutPage). */
  private swapOutPage(vm: Vm, ppn: number, page: Page): void {
    const { rec, k } = this;
    this.model.setState(vm, page, "swapped");
    rec.add(vm.index, k.C_SWAP_OUT, 1);
    if (this.ssd.length === 0) return;
    const slot = this.ssdHead;
    this.ssdHead = slot + 1 === this.ssd.length ? 0 : slot + 1;
    this.ssdEvict(slot);
    this.ssd[slot] = { vm: vm.index, ppn, key: page.key };
    page.ssdSlot = slot;
    rec.add(vm.index, k.C_SSD_PAGES, 1);
    rec.addHost(k.H_SSD_USED, 1);
    rec.add(vm.index, k.C_SSD_OUT, 1);
  }

  /**
   * A guest touch of a compressed or swapped page (hostFault): decompress it or read it in, into a
   * free machine page. The latency (us), or -1 when it must wait (no free page, or a blocked VM).
   */
  hostFault(vm: Vm, page: Page): number {
    const { rec, k } = this;
    if (rec.param(vm.index, k.P_BLOCKED) !== 0) {
      rec.add(vm.index, k.C_BLOCKED, 1);
      return -1;
    }
    if (page.state === "compressed") {
      if (this.model.freePages() + this.zipTakeFrees(vm, page) < 1) return -1;
      this.zipTake(vm, page);
      this.model.allocSmall();
      rec.addHost(k.H_PRIVATE, 1);
      rec.add(vm.index, k.C_LAT_ZIP_US, this.latUnzip);
      return this.latUnzip;
    }
    if (!this.model.allocSmall()) return -1;
    let lat = this.latSwapHdd;
    if (page.ssdSlot >= 0) {
      this.ssdForget(vm, page);
      rec.add(vm.index, k.C_SSD_IN, 1);
      lat = this.latSwapSsd;
    }
    this.model.setState(vm, page, "private");
    rec.addHost(k.H_PRIVATE, 1);
    rec.add(vm.index, k.C_SWAP_IN, 1);
    rec.add(vm.index, k.C_LAT_SWAP_US, lat);
    return lat;
  }

  /**
   * The host forgets what it holds for a page the balloon takes (hostRelease): a private page's
   * machine page, a swap or compression slot, a shared page's reference (it comes back unbacked).
   */
  hostRelease(vm: Vm, ppn: number, page: Page): void {
    if (page.state === "private") this.dropResident(vm, ppn);
    else if (page.state === "unbacked") {
      // a never-touched page: its region may no longer be backed whole by a large page later
      const r = Math.floor(ppn / REGION_PAGES);
      if (vm.regions[r] === "none") vm.regions[r] = "small";
    } else if (page.state === "swapped") {
      if (page.ssdSlot >= 0) this.ssdForget(vm, page);
    } else if (page.state === "compressed") {
      this.free(vm, page);
      this.fitCache(vm);
    } else if (page.state === "shared") {
      this.model.sharing.leave(vm, page, false);
    }
  }

  // ---- the SSD host cache (swap.ts) ----

  /** The slot's page, if it is still there (swapped, in the cache, at this slot). */
  private ssdLive(slot: number): Page | null {
    const s = this.ssd[slot];
    if (!s) return null;
    const page = this.model.vms[s.vm].pages[s.ppn];
    return page.state === "swapped" && page.ssdSlot === slot ? page : null;
  }

  /** The slot's page leaves the cache for the swap file, if it is still there. */
  private ssdEvict(slot: number): void {
    const page = this.ssdLive(slot);
    if (page) {
      page.ssdSlot = -1;
      this.rec.add(this.ssd[slot]!.vm, this.k.C_SSD_PAGES, -1);
      this.rec.addHost(this.k.H_SSD_USED, -1);
    }
    this.ssd[slot] = null;
  }

  /** Take a swapped page out of the cache (read back): its slot empties. */
  private ssdForget(vm: Vm, page: Page): void {
    this.ssd[page.ssdSlot] = null;
    page.ssdSlot = -1;
    this.rec.add(vm.index, this.k.C_SSD_PAGES, -1);
    this.rec.addHost(this.k.H_SSD_USED, -1);
  }

  /** A cache of `slots` pages (setSwapCache): the pages it holds move over, the newest kept. */
  setSwapCache(slots: number): number {
    const old = this.ssd.length;
    if (slots === old) return 1;
    let live = 0;
    for (let i = 0; i < old; i++) if (this.ssdLive(i)) live++;
    let skip = live > slots ? live - slots : 0;
    const ring: ({ vm: number; ppn: number; key: number } | null)[] = new Array(slots).fill(null);
    let n = 0;
    let t = this.ssdHead;
    for (let i = 0; i < old; i++) {
      const page = this.ssdLive(t);
      if (page) {
        if (skip > 0) {
          this.ssdEvict(t);
          skip--;
        } else {
          ring[n] = this.ssd[t];
          page.ssdSlot = n;
          n++;
        }
      }
      t = t + 1 === old ? 0 : t + 1;
    }
    this.rec.addHost(this.k.H_SSD_SLOTS, slots - old);
    this.ssd = ring;
    this.ssdHead = slots > 0 ? n % slots : 0;
    return 1;
  }

  // ---- compression (compress.ts) ----

  /** Compressed size class of the content (zipClass): a hash of the key against the VM's thresholds. */
  zipClass(vm: Vm, ppn: number, key: number): number {
    const { rec, k } = this;
    if (key === KEY_ZERO) return ZIP_0;
    const h =
      key === KEY_UNIQUE ? mix32((rec.param(vm.index, k.P_CLASS_SEED) ^ mix32((ppn ^ 0x7f4a7c15) >>> 0)) >>> 0) : mix32((key ^ 0x2545f491) >>> 0);
    if (h < rec.param(vm.index, k.P_ZIP_T1)) return ZIP_1K;
    if (h < rec.param(vm.index, k.P_ZIP_T2)) return ZIP_2K;
    return ZIP_NONE;
  }

  /** The cache holds ceil(KB / 4) machine pages (fitCache): grow or shrink to that. */
  private fitCache(vm: Vm): void {
    const { rec, k } = this;
    const want = Math.ceil(rec.counter(vm.index, k.C_ZIP_KB) / 4);
    const have = rec.counter(vm.index, k.C_ZIP_CACHE);
    if (want > have) {
      for (let i = have; i < want; i++) this.model.allocSmall();
    } else if (want < have) {
      rec.addHost(k.H_FREE_SMALL, have - want);
    }
    rec.add(vm.index, k.C_ZIP_CACHE, want - have);
    rec.addHost(k.H_ZIP_CACHE, want - have);
  }

  /** The VM's ring, as large as its settings allow (ensureRing); live entries carried over, oldest first. */
  private ensureRing(vm: Vm): ZipRing {
    const { rec, k } = this;
    const maxKb = Math.max(rec.param(vm.index, k.P_ZIP_MAX_KB), rec.param(vm.index, k.P_ZIP_CAP_KB));
    const want = maxKb + (maxKb >>> 2) + 64;
    const ring = this.rings.get(vm.index) ?? { slots: [], head: 0, tail: 0 };
    this.rings.set(vm.index, ring);
    const have = ring.slots.length;
    if (have >= want) return ring;
    const slots: ZipRing["slots"] = new Array(want).fill(null);
    let n = 0;
    let t = ring.tail;
    for (let i = 0; i < have; i++) {
      const s = ring.slots[t];
      if (s) {
        slots[n] = s;
        vm.pages[s.ppn].zipSlot = n;
        n++;
      }
      t = t + 1 === have ? 0 : t + 1;
    }
    ring.slots = slots;
    ring.head = n;
    ring.tail = 0;
    rec.setParam(vm.index, k.P_ZIP_SLOTS, want);
    rec.setParam(vm.index, k.P_ZIP_HEAD, n);
    return ring;
  }

  /** The oldest compressed page is decompressed and written to swap (evictOldest). */
  private evictOldest(vm: Vm, ring: ZipRing): boolean {
    if (this.rec.counter(vm.index, this.k.C_COMPRESSED) < 1 || !this.swapRoom(vm)) return false;
    const size = ring.slots.length;
    let t = ring.tail;
    for (let i = 0; i < size; i++) {
      const s = ring.slots[t];
      t = t + 1 === size ? 0 : t + 1;
      if (!s) continue;
      const page = vm.pages[s.ppn];
      this.free(vm, page);
      ring.tail = t;
      this.fitCache(vm);
      this.swapOutPage(vm, s.ppn, page);
      this.rec.add(vm.index, this.k.C_ZIP_EVICT, 1);
      return true;
    }
    return false;
  }

  /** A compressed page's slot empties (free): its class is cleared. */
  private free(vm: Vm, page: Page): void {
    const ring = this.rings.get(vm.index)!;
    ring.slots[page.zipSlot] = null;
    page.zipSlot = -1;
    this.rec.add(vm.index, this.k.C_ZIP_KB, -slotKb(page.zipClass));
    page.zipClass = ZIP_NONE;
  }

  /** Room for a page of class `cls` (zipRoom), made by sending the oldest to swap. */
  private zipRoom(vm: Vm, cls: number): boolean {
    const { rec, k } = this;
    const cap = rec.param(vm.index, k.P_ZIP_CAP_KB);
    if (cap === 0 || cls === ZIP_NONE) return false;
    const kb = slotKb(cls);
    if (kb > cap) return false;
    const ring = this.ensureRing(vm);
    while (ring.slots[ring.head]) if (!this.evictOldest(vm, ring)) return false;
    while (rec.counter(vm.index, k.C_ZIP_KB) + kb > cap) if (!this.evictOldest(vm, ring)) return false;
    return true;
  }

  /** Compress the page into the slot zipRoom made (zipPut). */
  private zipPut(vm: Vm, ppn: number, page: Page, cls: number): void {
    const ring = this.rings.get(vm.index)!;
    const h = ring.head;
    ring.slots[h] = { ppn, key: page.key };
    page.zipSlot = h;
    page.zipClass = cls;
    this.model.setState(vm, page, "compressed");
    const next = h + 1 === ring.slots.length ? 0 : h + 1;
    if (ring.tail === h) ring.tail = next;
    ring.head = next;
    this.rec.setParam(vm.index, this.k.P_ZIP_HEAD, next);
    this.rec.add(vm.index, this.k.C_ZIP_KB, slotKb(cls));
    this.rec.add(vm.index, this.k.C_ZIP_OUT, 1);
    this.fitCache(vm);
  }

  /** Machine pages the cache would give back if the page left it (zipTakeFrees). */
  private zipTakeFrees(vm: Vm, page: Page): number {
    const kb = this.rec.counter(vm.index, this.k.C_ZIP_KB) - slotKb(page.zipClass);
    return this.rec.counter(vm.index, this.k.C_ZIP_CACHE) - Math.ceil(kb / 4);
  }

  /** Decompress on a guest touch (zipTake): the page becomes private. */
  private zipTake(vm: Vm, page: Page): void {
    this.free(vm, page);
    this.fitCache(vm);
    this.model.setState(vm, page, "private");
    this.rec.add(vm.index, this.k.C_ZIP_IN, 1);
  }

  // ---- power-off (swap.ts releaseReclaim, compress.ts zipRelease) ----

  /** SSD slots go stale, the compression cache's pages return loose, the per-VM gauges read 0. */
  releaseVm(vm: Vm): void {
    const { rec, k } = this;
    const index = vm.index;
    rec.addHost(k.H_SSD_USED, -rec.counter(index, k.C_SSD_PAGES));
    const zipPages = rec.counter(index, k.C_ZIP_CACHE);
    rec.addHost(k.H_FREE_SMALL, zipPages);
    rec.addHost(k.H_ZIP_CACHE, -zipPages);
    rec.add(index, k.C_ZIP_CACHE, -zipPages);
    rec.add(index, k.C_ZIP_KB, -rec.counter(index, k.C_ZIP_KB));
    const ring = this.rings.get(index);
    if (ring) {
      ring.slots.fill(null);
      ring.head = 0;
      ring.tail = 0;
    }
    rec.setParam(index, k.P_ZIP_HEAD, 0);
    for (const gauge of [k.C_DEBT_US, k.C_MCTL_FREE, k.C_GOUT_CACHE, k.C_GOUT_ANON, k.C_MCTL_SHORT, k.C_SSD_PAGES]) {
      rec.add(index, gauge, -rec.counter(index, gauge));
    }
  }
}
