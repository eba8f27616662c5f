// The reference model of vmemsim's engine core, in plain TypeScript: one object per guest page, an
// array of region states per VM, machine memory as two counts. It is what someone would write
// without WASM, and it must agree with assembly/ exactly: the differential test
// (test/differential.test.ts) runs both on the same scenarios and compares every counter every
// tick, and whole page tables now and then. It also is the baseline of the benchmarks
// (bench/scale.bench.ts). A test and bench asset, not part of the product.
//
// Covered (each function names the assembly function it mirrors; page sharing is in share.ts):
//   machine memory: whole 2 MiB frames + loose pages, overhead            assembly/machine.ts
//   page table: first touch, large pages, breaking, power-off, checks     assembly/pagetable.ts
//   content keys of written pages                                         assembly/content.ts
//   the workload's touches (patterns, batches, time budget), boot zeroing assembly/workload.ts
//   active-memory sampling and the true active count                     assembly/sample.ts
//   TPS: the scanner, hints, frames, copy-on-write, share before swap     share.ts here, assembly/share.ts
//   Linux KSM: ksmd's scan, rmap_items, stable and unstable trees, COW    ksm.ts here, assembly/ksm.ts
//   host swap, compression cache, SSD host cache, swap-in, decompression  reclaim.ts here, assembly/swap.ts, compress.ts
//   ballooning and the guest's reclaim, faults inside the guest            balloon.ts here, assembly/balloon.ts
// An engine export the model does not mirror throws NotModelled (README.md here).
import type { Records } from "./records.js";
import type { Sharing } from "./share.js";
import type { Reclaim } from "./reclaim.js";
import type { Balloon } from "./balloon.js";
import type { KsmItem } from "./ksm.js";
import { Xoshiro128, mix32, mulHi } from "./rng.js";

/** Host-side state of a guest page; the index is the engine's code (page meta bits 0-2). */
export const HOST_STATES = ["unbacked", "private", "shared", "ballooned", "compressed", "swapped"] as const;
export type HostState = (typeof HOST_STATES)[number];
/** The guest's view of its page; the index is the engine's code (bits 6-7). */
export const GUEST_CLASSES = ["free", "cache", "anon"] as const;
export type GuestClass = (typeof GUEST_CLASSES)[number];
/** A 2 MiB region: nothing backed, backed by one large frame, or backed page by page. */
export type Region = "none" | "large" | "small";

export const REGION_PAGES = 512;
export const KEY_ZERO = 0;
export const KEY_UNIQUE = 0xffffffff;
/** touches drawn ahead of applying them (assembly/workload.ts BATCH): a cut-off tick wastes the rest */
export const TOUCH_BATCH = 64;
export const QTABLE_ENTRIES = 1024;
/** stream numbers of the per-VM generators besides the workload's (stream = VM index) */
export const SAMPLE_STREAM = 0x5a4d0000;
export const VICTIM_STREAM = 0x53570000;
export const HOST_STREAM = 0xffffffff;

export const PATTERN_UNIFORM = 0;
export const PATTERN_ZIPF = 1;
export const PATTERN_HOTCOLD = 2;

export interface ContentModel {
  classSeed: number;
  zeroT: number;
  imageT: number;
  dupT: number;
  imageBase: number;
  dupBase: number;
  dupSize: number;
}

/** A part of the engine the reference does not model yet, reached by a scenario. */
export class NotModelled extends Error {
  constructor(what: string) {
    super(`the reference model does not model ${what} yet`);
    this.name = "NotModelled";
  }
}

export class Page {
  state: HostState = "unbacked";
  guest: GuestClass = "free";
  /** touched by the guest since the sampler last counted */
  accessed = false;
  /** written since the sharing scanner last looked */
  dirty = false;
  /** chosen by the active-memory sampler this period, not yet touched */
  sampled = false;
  /** tick number mod 65536 of the last guest touch */
  epoch = 0;
  /** TPS: hashed by the scanner and left a hint (or unique, or in a large page): COWH (bit 8) */
  hinted = false;
  /** KSM (bits 8-11): has an rmap_item, hangs off a stable node, waits in the unstable tree, maps the zero page */
  kRmap = false;
  kStable = false;
  kUnstable = false;
  kZero = false;
  /** KSM: the rmap_item's age and skips (smart_scan) and its KSM page (the engine's rmap word), once ksmd saw the page */
  ksm: KsmItem | null = null;
  /** the guest holds no copy: page cache it dropped, or a page in its page file (bit 12) */
  guestOut = false;
  /** a swapped page in the SSD host cache: its slot there (bit 13; the entry's key field holds it) */
  ssdSlot = -1;
  /** a compressed page: its size class (bits 14-15) and ring slot (the entry's key field holds it) */
  zipClass = 0;
  zipSlot = -1;
  /** content: 0 the zero page, KEY_UNIQUE like nothing else, else a shareable key */
  key = KEY_ZERO;

  /** The engine's 8-byte page entry for this page (docs/architecture.md): [meta, key]. */
  encode(): [number, number] {
    const meta =
      HOST_STATES.indexOf(this.state) |
      (this.accessed ? 1 << 3 : 0) |
      (this.dirty ? 1 << 4 : 0) |
      (this.sampled ? 1 << 5 : 0) |
      (GUEST_CLASSES.indexOf(this.guest) << 6) |
      (this.hinted || this.kRmap ? 1 << 8 : 0) |
      (this.kStable ? 1 << 9 : 0) |
      (this.kUnstable ? 1 << 10 : 0) |
      (this.kZero ? 1 << 11 : 0) |
      (this.guestOut ? 1 << 12 : 0) |
      (this.ssdSlot >= 0 ? 1 << 13 : 0) |
      (this.zipClass << 14) |
      (this.epoch << 16);
    const key = this.zipSlot >= 0 ? this.zipSlot : this.ssdSlot >= 0 ? this.ssdSlot : this.key;
    return [meta >>> 0, key >>> 0];
  }
}

export class Vm {
  readonly pages: Page[] = [];
  readonly regions: Region[] = [];
  /** zipf quantile table: rank at cumulative probability i / 1024 (setPattern) */
  qtable: number[] = [];
  readonly rng: Xoshiro128;
  /** the host's victim draws for this VM (reclamation; seeded, not used yet) */
  readonly victimRng: Xoshiro128;
  sampleRng: Xoshiro128 | null = null;
  /** PPNs marked sampled this period, in the order drawn */
  sampleList: number[] = [];

  constructor(readonly index: number, size: number, seed: number) {
    for (let p = 0; p < size; p++) this.pages.push(new Page());
    for (let r = 0; r < Math.ceil(size / REGION_PAGES); r++) this.regions.push("none");
    this.rng = new Xoshiro128(seed, index);
    this.victimRng = new Xoshiro128(seed, VICTIM_STREAM + index);
  }
}

/** The engine core over Records: what assembly/index.ts exports, mirrored function by function. */
export class Model {
  readonly vms: Vm[] = [];
  /** page sharing and reclamation (share.ts, reclaim.ts here), set by engine.ts */
  sharing!: Sharing;
  reclaim!: Reclaim;
  balloon!: Balloon;
  hostRng: Xoshiro128 | null = null;
  /** the time model (assembly/swap.ts configureReclaim), microseconds; 0: every touch runs */
  tickUs = 0;
  latAlloc = 0;
  latCow = 0;
  readonly k: Records["k"];

  constructor(readonly rec: Records) {
    this.k = rec.k;
  }

  // ---- machine memory (assembly/machine.ts) ----

  freePages(): number {
    return this.rec.host(this.k.H_FREE_LARGE) * REGION_PAGES + this.rec.host(this.k.H_FREE_SMALL);
  }

  /** Take one 4 KiB page: a loose one, else split a whole frame. False when memory is exhausted. */
  allocSmall(): boolean {
    const { rec, k } = this;
    if (rec.host(k.H_FREE_SMALL) > 0) {
      rec.addHost(k.H_FREE_SMALL, -1);
      return true;
    }
    if (rec.host(k.H_FREE_LARGE) > 0) {
      rec.addHost(k.H_FREE_LARGE, -1);
      rec.addHost(k.H_FREE_SMALL, REGION_PAGES - 1);
      return true;
    }
    return false;
  }

  allocLarge(): boolean {
    if (this.rec.host(this.k.H_FREE_LARGE) < 1) return false;
    this.rec.addHost(this.k.H_FREE_LARGE, -1);
    return true;
  }

  init(totalPages: number, vmkPages: number, largePages: number, seed: number): number {
    const { rec, k } = this;
    rec.addHost(k.H_TOTAL, totalPages);
    rec.addHost(k.H_VMK, vmkPages);
    const free = totalPages - vmkPages;
    rec.addHost(k.H_FREE_LARGE, Math.floor(free / REGION_PAGES));
    rec.addHost(k.H_FREE_SMALL, free % REGION_PAGES);
    rec.setHostParam(k.HP_LARGE_PAGES, largePages);
    this.hostRng = new Xoshiro128(seed, HOST_STREAM);
    return 0; // the host record's address in Records
  }

  // ---- VMs (assembly/index.ts addVm, powerOn, powerOff; pagetable.ts initPagetable) ----

  addVm(index: number, size: number, seed: number): number {
    const { rec, k } = this;
    const vm = new Vm(index, size, seed);
    this.vms[index] = vm;
    rec.setParam(index, k.P_PAGES, size);
    rec.setHostParam(k.HP_NVMS, index + 1);
    rec.add(index, k.C_UNBACKED, size);
    rec.add(index, k.C_GUEST_FREE, size);
    return k.HOST_RECORD + index * k.VM_RECORD;
  }

  powerOn(index: number, overheadPages: number): number {
    const { rec, k } = this;
    if (rec.param(index, k.P_POWERED) !== 0) return 1;
    if (this.freePages() < overheadPages) return 0;
    for (let i = 0; i < overheadPages; i++) this.allocSmall();
    rec.addHost(k.H_OVHD, overheadPages);
    rec.setParam(index, k.P_OVERHEAD, overheadPages);
    rec.setParam(index, k.P_POWERED, 1);
    rec.setParam(index, k.P_SWEEP, 0);
    return 1;
  }

  powerOff(index: number): void {
    const { rec, k } = this;
    if (rec.param(index, k.P_POWERED) === 0) return;
    this.reclaim.releaseVm(this.vms[index]); // compression cache, SSD slots, gauges
    this.releaseVm(index);
    const overhead = rec.param(index, k.P_OVERHEAD);
    rec.addHost(k.H_OVHD, -overhead);
    rec.addHost(k.H_FREE_SMALL, overhead);
    rec.setParam(index, k.P_OVERHEAD, 0);
    rec.setParam(index, k.P_POWERED, 0);
  }

  // ---- page table (assembly/pagetable.ts) ----

  setState(vm: Vm, page: Page, state: HostState): void {
    const { rec, k } = this;
    rec.add(vm.index, k.C_UNBACKED + HOST_STATES.indexOf(page.state), -1);
    rec.add(vm.index, k.C_UNBACKED + HOST_STATES.indexOf(state), 1);
    page.state = state;
  }

  private setGuestClass(vm: Vm, page: Page, cls: GuestClass): void {
    if (page.guest === cls) return;
    const { rec, k } = this;
    rec.add(vm.index, k.C_GUEST_FREE + GUEST_CLASSES.indexOf(page.guest), -1);
    rec.add(vm.index, k.C_GUEST_FREE + GUEST_CLASSES.indexOf(cls), 1);
    page.guest = cls;
  }

  /**
   * First touch of an unbacked page (backPage): a whole 2 MiB frame for all 512 pages of an
   * untouched, complete region when large pages are on and a frame is free; else one small page.
   */
  backPage(vm: Vm, ppn: number): boolean {
    const { rec, k } = this;
    const r = Math.floor(ppn / REGION_PAGES);
    const first = r * REGION_PAGES;
    if (
      vm.regions[r] === "none" &&
      rec.hostParam(k.HP_LARGE_PAGES) !== 0 &&
      first + REGION_PAGES <= vm.pages.length &&
      this.allocLarge()
    ) {
      vm.regions[r] = "large";
      for (let p = first; p < first + REGION_PAGES; p++) vm.pages[p].state = "private";
      rec.add(vm.index, k.C_UNBACKED, -REGION_PAGES);
      rec.add(vm.index, k.C_PRIVATE, REGION_PAGES);
      rec.addHost(k.H_PRIVATE, REGION_PAGES);
      rec.add(vm.index, k.C_LARGE_REGIONS, 1);
      rec.add(vm.index, k.C_LARGE_BACKED, 1);
      rec.add(vm.index, k.C_FIRST_TOUCH, 1);
      return true;
    }
    if (!this.allocSmall()) return false;
    if (vm.regions[r] === "none") vm.regions[r] = "small";
    this.setState(vm, vm.pages[ppn], "private");
    rec.addHost(k.H_PRIVATE, 1);
    rec.add(vm.index, k.C_FIRST_TOUCH, 1);
    return true;
  }

  /** Break the large page of region `r` into 512 small pages (breakLarge): same machine memory. */
  breakLarge(vm: Vm, r: number): void {
    if (vm.regions[r] !== "large") return;
    vm.regions[r] = "small";
    this.rec.add(vm.index, this.k.C_LARGE_REGIONS, -1);
    this.rec.add(vm.index, this.k.C_LARGE_BROKEN, 1);
  }

  breakLargePages(index: number): number {
    const vm = this.vms[index];
    let n = 0;
    for (let r = 0; r < vm.regions.length; r++) {
      if (vm.regions[r] !== "large") continue;
      this.breakLarge(vm, r);
      n++;
    }
    return n;
  }

  /** Power-off (releaseVm): every page unbacked and free; frames of unbroken large pages go back whole. */
  releaseVm(index: number): void {
    const { rec, k } = this;
    const vm = this.vms[index];
    this.sharing.releaseVm(vm); // shared pages leave their frames first
    let loose = 0;
    let large = 0;
    for (let r = 0; r < vm.regions.length; r++) {
      const first = r * REGION_PAGES;
      const last = Math.min(first + REGION_PAGES, vm.pages.length);
      if (vm.regions[r] === "large") large++;
      else for (let p = first; p < last; p++) if (vm.pages[p].state === "private") loose++;
      for (let p = first; p < last; p++) {
        // a swapped, compressed or ballooned page holds no machine page of its own
        vm.pages[p] = new Page();
      }
      vm.regions[r] = "none";
    }
    rec.addHost(k.H_FREE_LARGE, large);
    rec.addHost(k.H_FREE_SMALL, loose);
    rec.addHost(k.H_PRIVATE, -(loose + large * REGION_PAGES));
    for (let s = 0; s < HOST_STATES.length; s++) rec.add(index, k.C_UNBACKED + s, -rec.counter(index, k.C_UNBACKED + s));
    for (let g = 0; g < GUEST_CLASSES.length; g++) rec.add(index, k.C_GUEST_FREE + g, -rec.counter(index, k.C_GUEST_FREE + g));
    rec.add(index, k.C_LARGE_REGIONS, -rec.counter(index, k.C_LARGE_REGIONS));
    rec.add(index, k.C_UNBACKED, vm.pages.length);
    rec.add(index, k.C_GUEST_FREE, vm.pages.length);
  }

  /** Conservation of one VM recounted from its pages (checkVm): 0, or the engine's code. */
  checkVm(index: number): number {
    const { rec, k } = this;
    const vm = this.vms[index];
    const states = HOST_STATES.map(() => 0);
    const guests = GUEST_CLASSES.map(() => 0);
    let largeRegions = 0;
    vm.pages.forEach((page, ppn) => {
      states[HOST_STATES.indexOf(page.state)]++;
      guests[GUEST_CLASSES.indexOf(page.guest)]++;
      const region = vm.regions[Math.floor(ppn / REGION_PAGES)];
      if (region === "large" && page.state !== "private") throw new Error(`reference model: large region holds a ${page.state} page`);
      if (region === "large" && ppn % REGION_PAGES === 0) largeRegions++;
      if (region === "none" && page.state !== "unbacked") throw new Error("reference model: a backed page in an untouched region");
    });
    if (states.some((n, s) => n !== rec.counter(index, k.C_UNBACKED + s))) return 5;
    if (guests.some((n, g) => n !== rec.counter(index, k.C_GUEST_FREE + g))) return 6;
    if (largeRegions !== rec.counter(index, k.C_LARGE_REGIONS)) return 7;
    return 0;
  }

  checkHost(): number {
    const { rec, k } = this;
    const zipCache = k.H_ZIP_CACHE !== undefined ? rec.host(k.H_ZIP_CACHE) : 0;
    const used = rec.host(k.H_VMK) + rec.host(k.H_OVHD) + rec.host(k.H_PRIVATE) + rec.host(k.H_COMMON) + zipCache + this.freePages();
    if (used !== rec.host(k.H_TOTAL)) return 1;
    if (rec.host(k.H_FREE_LARGE) < 0 || rec.host(k.H_FREE_SMALL) < 0) return 2;
    return 0;
  }

  // ---- content (assembly/content.ts) ----

  /** A VM's content model as the policy set it (contentOf). */
  contentOf(index: number): ContentModel {
    const { rec, k } = this;
    return {
      classSeed: rec.param(index, k.P_CLASS_SEED),
      zeroT: rec.param(index, k.P_ZERO_T),
      imageT: rec.param(index, k.P_IMAGE_T),
      dupT: rec.param(index, k.P_DUP_T),
      imageBase: rec.param(index, k.P_IMAGE_BASE),
      dupBase: rec.param(index, k.P_DUP_BASE),
      dupSize: rec.param(index, k.P_DUP_SIZE),
    };
  }

  /**
   * The content key page `ppn` holds after a write (keyOf): a hash of (image, PPN) picks its class,
   * so clones of one image agree page by page; zero, image (same key in every VM of the image),
   * duplicate (about duplicateCopies pages of the VM per key) or unique.
   */
  keyOf(c: ContentModel, ppn: number): number {
    const h = mix32((c.classSeed ^ mix32(ppn)) >>> 0);
    if (h < c.zeroT) return KEY_ZERO;
    if (h < c.imageT) return (c.imageBase + ppn) >>> 0;
    if (h < c.dupT) return (c.dupBase + mulHi(mix32(h), c.dupSize)) >>> 0;
    return KEY_UNIQUE;
  }

  // ---- workload (assembly/workload.ts) ----

  /**
   * The zipf pattern's quantile table (setPattern): entry i is the rank at cumulative probability
   * i / 1024 of the continuous power law x^-s on [1, n + 1].
   */
  setPattern(index: number): void {
    const { rec, k } = this;
    if (rec.param(index, k.P_PATTERN) !== PATTERN_ZIPF) return;
    const n = rec.param(index, k.P_ACTIVE);
    const s = rec.param(index, k.P_ZIPF_S) / 1e6;
    const a = 1.0 - s;
    const top = a !== 0 ? Math.pow(n + 1, a) - 1 : 0;
    const q: number[] = [];
    for (let i = 0; i <= QTABLE_ENTRIES; i++) {
      const u = i / QTABLE_ENTRIES;
      const x = a !== 0 ? Math.pow(1 + u * top, 1 / a) : Math.pow(n + 1, u);
      q.push(Math.min(Math.max(Math.floor(x) - 1, 0), n) >>> 0);
    }
    q[QTABLE_ENTRIES] = n;
    this.vms[index].qtable = q;
  }

  /** A rank of the working set (= PPN) by the VM's access pattern: 1 draw, 2 for hot/cold. */
  drawRank(vm: Vm, pattern: number, active: number, hot: number, hotT: number): number {
    if (pattern === PATTERN_ZIPF) {
      const u = vm.rng.next();
      const i = u >>> 22;
      const lo = vm.qtable[i];
      const hi = vm.qtable[i + 1];
      const r = lo + Math.floor(((hi - lo) * (u & 0x3fffff)) / 0x400000);
      return Math.min(r, active - 1);
    }
    if (pattern === PATTERN_HOTCOLD) {
      if (vm.rng.next() < hotT) return vm.rng.below(hot);
      return hot + vm.rng.below(active - hot);
    }
    return vm.rng.below(active);
  }

  /**
   * `count` touches of the working set at LRU epoch `epoch` (touchVm). Touches are drawn in batches
   * of TOUCH_BATCH and then applied; each takes tickUs / count of the tick, and a touch that waits
   * for memory takes latAlloc more. When the tick's time is spent, the rest of the batch is drawn but
   * not applied, and time past the tick is carried to the next one as debt.
   */
  touchVm(index: number, count: number, epoch: number): number {
    const { rec, k } = this;
    const vm = this.vms[index];
    const active = rec.param(index, k.P_ACTIVE);
    if (active === 0 || count === 0) return 0;
    if (rec.param(index, k.P_TOUCH_SPAN) < active) rec.setParam(index, k.P_TOUCH_SPAN, active);
    const blocked = rec.param(index, k.P_BLOCKED) !== 0;
    const pattern = rec.param(index, k.P_PATTERN);
    const writeT = rec.param(index, k.P_WRITE_T);
    const hot = rec.param(index, k.P_HOT);
    const hotT = rec.param(index, k.P_HOT_T);
    const content = this.contentOf(index);
    let reads = 0, writes = 0, stalls = 0, sampled = 0, nBlocked = 0, ran = 0, fSwap = 0, fZip = 0, fBalloon = 0;
    let cowWait = 0;
    const t0 = this.tickUs > 0 ? this.tickUs / count : 0;
    const budget = this.tickUs > 0 ? this.tickUs - rec.counter(index, k.C_DEBT_US) : Infinity;
    let elapsed = 0, allocWait = 0, waited = 0;
    const ppns: number[] = [];
    const isWrite: boolean[] = [];
    for (let done = 0; done < count && elapsed < budget; ) {
      const n = Math.min(TOUCH_BATCH, count - done);
      done += n;
      for (let j = 0; j < n; j++) {
        ppns[j] = this.drawRank(vm, pattern, active, hot, hotT);
        isWrite[j] = vm.rng.next() < writeT;
      }
      for (let j = 0; j < n; j++) {
        if (elapsed >= budget) break;
        ran++;
        elapsed += t0;
        const ppn = ppns[j];
        const page = vm.pages[ppn];
        if (page.state === "unbacked") {
          if (blocked || !this.backPage(vm, ppn)) {
            if (blocked) nBlocked++;
            stalls++;
            elapsed += this.latAlloc;
            allocWait += this.latAlloc;
            continue;
          }
          if (page.guestOut) {
            // content the guest gave up comes back from its page file or its disk
            const l = this.balloon.guestPageIn(vm, page);
            elapsed += l;
            waited += l;
          }
        } else if (page.state === "shared" && isWrite[j]) {
          // a write to a shared page breaks copy-on-write: a private copy, which costs latCow
          if (blocked || !this.sharing.cow(vm, page)) {
            stalls++;
            elapsed += this.latAlloc;
            allocWait += this.latAlloc;
            continue;
          }
          elapsed += this.latCow;
          cowWait += this.latCow;
        } else if (page.state === "swapped" || page.state === "compressed") {
          // the host reads the page back or decompresses it into a free machine page; none free,
          // or a blocked VM: the touch waits
          if (page.state === "compressed") fZip++;
          else fSwap++;
          const l = this.reclaim.hostFault(vm, page);
          if (l < 0) {
            stalls++;
            elapsed += this.latAlloc;
            allocWait += this.latAlloc;
            continue;
          }
          elapsed += l;
          waited += l;
        } else if (page.state === "ballooned") {
          // the guest takes the page back from the balloon (another page goes in exchange), the
          // host backs it, and content the guest had given up is read back
          fBalloon++;
          let l = this.balloon.guestTakeBack(vm, page, epoch);
          elapsed += l;
          waited += l;
          if (blocked || !this.backPage(vm, ppn)) l = -1;
          else if (page.guestOut) {
            const r = this.balloon.guestPageIn(vm, page);
            elapsed += r;
            waited += r;
          }
          if (l < 0) {
            stalls++;
            elapsed += this.latAlloc;
            allocWait += this.latAlloc;
            continue;
          }
        }
        if (page.sampled) {
          sampled++;
          page.sampled = false;
        }
        page.accessed = true;
        page.epoch = epoch;
        if (isWrite[j]) {
          writes++;
          page.key = this.keyOf(content, ppn);
          page.dirty = true;
          this.setGuestClass(vm, page, "anon");
        } else {
          reads++;
          if (page.guest === "free") this.setGuestClass(vm, page, "cache");
        }
      }
    }
    const debt = this.tickUs > 0 ? Math.max(0, elapsed - budget) : 0;
    rec.set(index, k.C_DEBT_US, debt);
    rec.add(index, k.C_DEMAND, count);
    rec.add(index, k.C_STALL_US, waited + allocWait + cowWait);
    rec.add(index, k.C_LAT_ALLOC_US, allocWait);
    rec.add(index, k.C_LAT_COW_US, cowWait);
    rec.add(index, k.C_TOUCHES, ran);
    rec.add(index, k.C_READS, reads);
    rec.add(index, k.C_WRITES, writes);
    rec.add(index, k.C_ALLOC_STALLS, stalls);
    rec.add(index, k.C_FAULT_BALLOONED, fBalloon);
    rec.add(index, k.C_FAULT_COMPRESSED, fZip);
    rec.add(index, k.C_FAULT_SWAPPED, fSwap);
    rec.add(index, k.C_SAMPLE_HITS, sampled);
    rec.add(index, k.C_BLOCKED, nBlocked);
    return count - reads - writes;
  }

  /**
   * The guest zeroes up to `count` more pages in PPN order (zeroSweep, Windows at boot): each is
   * backed if need be and gets the zero page's content; the guest still counts it free. Returns the
   * pages left; a sweep that finds no machine memory (or a blocked VM) waits.
   */
  zeroSweep(index: number, count: number): number {
    const { rec, k } = this;
    const vm = this.vms[index];
    const size = vm.pages.length;
    let ppn = rec.param(index, k.P_SWEEP);
    const end = Math.min(size, ppn + count);
    const blocked = rec.param(index, k.P_BLOCKED) !== 0;
    let zeroed = 0, sampled = 0;
    while (ppn < end) {
      const page = vm.pages[ppn];
      if (page.state === "unbacked" && (blocked || !this.backPage(vm, ppn))) break;
      if (page.state === "private" || page.state === "unbacked") {
        page.key = KEY_ZERO;
        page.dirty = true;
        page.accessed = true;
        if (page.sampled) {
          sampled++;
          page.sampled = false;
        }
        zeroed++;
      }
      ppn++;
    }
    rec.setParam(index, k.P_SWEEP, ppn);
    if (rec.param(index, k.P_TOUCH_SPAN) < ppn) rec.setParam(index, k.P_TOUCH_SPAN, ppn);
    rec.add(index, k.C_ZEROED, zeroed);
    rec.add(index, k.C_SAMPLE_HITS, sampled);
    return size - ppn;
  }

  // ---- active-memory sampling (assembly/sample.ts) ----

  sampleInit(index: number, seed: number): void {
    this.vms[index].sampleRng = new Xoshiro128(seed, SAMPLE_STREAM + index);
    this.vms[index].sampleList = [];
    this.rec.setParam(index, this.k.P_SAMPLE_N, 0);
  }

  /**
   * Close the sampling period (t hits of n marks; the true count of distinct pages touched below the
   * touch span, clearing their accessed bits) and open the next with n distinct pages (Floyd).
   */
  samplePeriod(index: number, n: number): number {
    const { rec, k } = this;
    const vm = this.vms[index];
    const size = vm.pages.length;
    for (const ppn of vm.sampleList) vm.pages[ppn].sampled = false;
    rec.set(index, k.C_SAMPLE_LAST_T, rec.counter(index, k.C_SAMPLE_HITS) - rec.counter(index, k.C_SAMPLE_START));
    rec.set(index, k.C_SAMPLE_LAST_N, vm.sampleList.length);
    const span = Math.min(rec.param(index, k.P_TOUCH_SPAN), size);
    let touched = 0;
    for (let ppn = 0; ppn < span; ppn++) {
      if (vm.pages[ppn].accessed) {
        touched++;
        vm.pages[ppn].accessed = false;
      }
    }
    rec.setParam(index, k.P_TOUCH_SPAN, 0);
    rec.set(index, k.C_TRUE_ACTIVE, touched);
    rec.add(index, k.C_SAMPLE_SCANNED, span);
    rec.add(index, k.C_SAMPLE_PERIODS, 1);
    n = Math.min(n, size);
    const rng = vm.sampleRng!;
    vm.sampleList = [];
    for (let j = size - n; j < size; j++) {
      let ppn = rng.below(j + 1);
      if (vm.pages[ppn].sampled) ppn = j;
      vm.pages[ppn].sampled = true;
      vm.sampleList.push(ppn);
    }
    rec.setParam(index, k.P_SAMPLE_N, n);
    rec.set(index, k.C_SAMPLE_START, rec.counter(index, k.C_SAMPLE_HITS));
    return n;
  }

  sampleStop(index: number): void {
    const { rec, k } = this;
    const vm = this.vms[index];
    for (const ppn of vm.sampleList) vm.pages[ppn].sampled = false;
    vm.sampleList = [];
    rec.setParam(index, k.P_SAMPLE_N, 0);
    rec.setParam(index, k.P_TOUCH_SPAN, 0);
    rec.set(index, k.C_SAMPLE_START, rec.counter(index, k.C_SAMPLE_HITS));
  }
}
