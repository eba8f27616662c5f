// Page sharing in the reference model: ESXi TPS (assembly/share.ts), written with a Map where the
// engine has an open-addressing table, and the entry points both policies share (set-up, COW,
// release); Linux KSM itself is in ksm.ts here.
//
// The scanner visits each VM's pages in the order of a random affine permutation (a fresh one per
// pass, from the VM's own stream). A private page with shareable content is looked up by (content
// key, salt): a frame there → the page joins it (its machine page is freed); a hint there that
// still holds → both pages become one frame; a stale hint → this page takes its place; nothing →
// this page becomes the hint. Unique pages and subpages of large pages are marked hinted but never
// shared. A write to a shared page breaks copy-on-write. The table's capacity grows as the engine's
// does (rebuilt larger past half full, stale hints dropped on the way), because the engine reports
// its size (H_SHARE_TABLE_BYTES).
import { KEY_UNIQUE, KEY_ZERO, REGION_PAGES, type Model, type Page, type Vm } from "./model.js";
import { Ksm } from "./ksm.js";
import { Xoshiro128 } from "./rng.js";

export const POLICY_NONE = 0;
export const POLICY_TPS = 1;
export const POLICY_KSM = 2;
/** a salt with this bit is a VM's own: its frames are intra-VM */
const VM_SALT = 0x80000000;
const SHARE_STREAM = 0x7a5c0000;
const ENTRY_BYTES = 16;
const MAX_CAP = 2 ** 27;

type Entry = { frame: true; refs: number } | { frame: false; vm: number; ppn: number };

export class Sharing {
  policy = POLICY_NONE;
  /** per VM: the scanner's stream (a fresh random permutation per pass) */
  rngs: Xoshiro128[] = [];
  /** (content key, salt) → a shared frame or a hint */
  readonly table = new Map<string, Entry>();
  /** the engine's table capacity in entries (a power of two) */
  capacity = 0;
  readonly ksm: Ksm;

  constructor(private readonly model: Model) {
    this.ksm = new Ksm(model);
  }

  private get rec() {
    return this.model.rec;
  }
  private get k() {
    return this.model.k;
  }

  /** shareInit: the policy, the scanners' streams, a table for twice the expected contents. */
  init(policy: number, expected: number, seed: number): number {
    const { rec, k } = this;
    rec.setHostParam(k.HP_SHARE_POLICY, policy);
    rec.setHostParam(k.HP_SHARE_ON, policy !== POLICY_NONE ? 1 : 0);
    this.policy = policy;
    this.rngs = this.model.vms.map((vm) => new Xoshiro128(seed, SHARE_STREAM + vm.index));
    for (const vm of this.model.vms) rec.setParam(vm.index, k.P_SHARE_ON, 1);
    let cap = 1024;
    while (cap < MAX_CAP && cap < expected * 2) cap *= 2;
    if (policy === POLICY_KSM) this.ksm.init(cap);
    if (policy === POLICY_TPS) {
      this.capacity = cap;
      rec.addHost(k.H_SHARE_TABLE_BYTES, cap * ENTRY_BYTES);
    }
    return 1;
  }

  /** TPS is on for this VM: the policy, the host switch and the VM's own. */
  tpsOn(vm: Vm): boolean {
    const { rec, k } = this;
    return rec.hostParam(k.HP_SHARE_POLICY) === POLICY_TPS && rec.hostParam(k.HP_SHARE_ON) !== 0 && rec.param(vm.index, k.P_SHARE_ON) !== 0;
  }

  private keyOf(key: number, salt: number): string {
    return `${key}:${salt}`;
  }

  private markHinted(vm: Vm, page: Page): void {
    if (!page.hinted) this.rec.add(vm.index, this.k.C_HINTS, 1);
    page.hinted = true;
  }

  /** The page joins a frame of content `key` (`cross`: a salt several VMs may hold). */
  private becomeShared(vm: Vm, page: Page, key: number, cross: boolean): void {
    const { rec, k } = this;
    if (page.hinted) rec.add(vm.index, k.C_HINTS, -1);
    page.hinted = false;
    this.model.setState(vm, page, "shared");
    if (key === KEY_ZERO) rec.add(vm.index, k.C_SHARED_ZERO, 1);
    if (cross) {
      rec.add(vm.index, k.C_SHARED_X, 1);
      rec.addHost(k.H_SHARED_X, 1);
    }
    rec.add(vm.index, k.C_SHARE_MERGES, 1);
  }

  /** Is page (hv, hp) still a hint of `key` under `salt` (hintHolds: the hinted page is rehashed)? */
  private hintHolds(hv: number, hp: number, key: number, salt: number): boolean {
    const { rec, k } = this;
    const vm = this.model.vms[hv];
    if (!vm || rec.param(hv, k.P_POWERED) === 0 || rec.param(hv, k.P_SHARE_ON) === 0) return false;
    if (hp >= vm.pages.length || rec.param(hv, k.P_SHARE_SALT) !== salt) return false;
    const page = vm.pages[hp];
    return page.state === "private" && page.hinted && page.key === key;
  }

  /**
   * Room for one more entry (tRoom with garbage collection): past half full the table is rebuilt at
   * most a third full, its stale hints dropped.
   */
  private room(): boolean {
    const count = this.table.size;
    const cap = this.capacity;
    if (count + 1 <= Math.floor(cap / 2)) return true;
    const stale: string[] = [];
    for (const [id, entry] of this.table) {
      if (entry.frame) continue;
      const [key, salt] = id.split(":").map(Number);
      if (!this.hintHolds(entry.vm, entry.ppn, key, salt)) stale.push(id);
    }
    const live = count - stale.length;
    let newCap = cap;
    while (newCap < MAX_CAP && (live + 1) * 3 > newCap) newCap *= 2; // at most a third full after it
    if (newCap === cap && live === count) return count + 1 < cap - Math.floor(cap / 8);
    this.rec.addHost(this.k.H_SHARE_TABLE_BYTES, newCap * ENTRY_BYTES);
    for (const id of stale) this.table.delete(id);
    this.capacity = newCap;
    return true;
  }

  /**
   * Offer private page `ppn` (shareable content, not in a large region) to the table (offer).
   * Returns the pages that became shared: 1, 2, or 0 (left a hint when `hint` allows).
   */
  offer(vm: Vm, ppn: number, key: number, salt: number, hint: boolean): number {
    const { rec, k } = this;
    const page = vm.pages[ppn];
    const id = this.keyOf(key, salt);
    const entry = this.table.get(id);
    if (!entry) {
      if (!hint) return 0;
      if (!this.room()) {
        rec.addHost(k.H_SHARE_DROPPED, 1);
        this.markHinted(vm, page);
        return 0;
      }
      this.table.set(id, { frame: false, vm: vm.index, ppn });
      rec.addHost(k.H_SHARE_ENTRIES, 1);
      this.markHinted(vm, page);
      return 0;
    }
    const cross = ((salt & VM_SALT) >>> 0) === 0;
    if (entry.frame) {
      // a shared frame: join it, this page's machine page goes back
      entry.refs++;
      this.becomeShared(vm, page, key, cross);
      rec.addHost(k.H_PRIVATE, -1);
      rec.addHost(k.H_FREE_SMALL, 1);
      return 1;
    }
    if (entry.vm === vm.index && entry.ppn === ppn) {
      this.markHinted(vm, page);
      return 0;
    }
    if (this.hintHolds(entry.vm, entry.ppn, key, salt)) {
      const hvm = this.model.vms[entry.vm];
      if (hvm.regions[Math.floor(entry.ppn / REGION_PAGES)] === "large") {
        // the hinted page sits in a large page and cannot be shared yet: this page takes the hint
        if (!hint) return 0;
        this.table.set(id, { frame: false, vm: vm.index, ppn });
        this.markHinted(vm, page);
        return 0;
      }
      // both pages become one frame: the hinted page's machine page backs it
      this.table.set(id, { frame: true, refs: 2 });
      this.becomeShared(hvm, hvm.pages[entry.ppn], key, cross);
      this.becomeShared(vm, page, key, cross);
      rec.addHost(k.H_PRIVATE, -2);
      rec.addHost(k.H_COMMON, 1);
      rec.addHost(k.H_FREE_SMALL, 1);
      if (cross) rec.addHost(k.H_COMMON_X, 1);
      else rec.add(vm.index, k.C_FRAMES_OWN, 1);
      return 2;
    }
    // a stale hint: this page takes its place
    if (!hint) {
      this.table.delete(id);
      rec.addHost(k.H_SHARE_ENTRIES, -1);
      return 0;
    }
    this.table.set(id, { frame: false, vm: vm.index, ppn });
    this.markHinted(vm, page);
    return 0;
  }

  /** A fresh pass (newPass): step coprime with the VM's pages, a random start. */
  private newPass(vm: Vm): void {
    const { rec, k } = this;
    const pages = vm.pages.length;
    const rng = this.rngs[vm.index];
    let step = pages > 1 ? 1 + rng.below(pages - 1) : 1;
    while (gcd(step, pages) !== 1) step = step + 1 < pages ? step + 1 : 1;
    rec.setParam(vm.index, k.P_SHARE_STEP, step);
    rec.setParam(vm.index, k.P_SHARE_PPN, rng.below(pages));
    rec.setParam(vm.index, k.P_SHARE_DONE, 0);
  }

  /** The TPS scanner (tpsScan): the next `count` pages of the VM's pass. Returns pages shared. */
  tpsScan(index: number, count: number): number {
    const { rec, k } = this;
    const vm = this.model.vms[index];
    if (rec.hostParam(k.HP_SHARE_POLICY) !== POLICY_TPS || rec.hostParam(k.HP_SHARE_ON) === 0) return 0;
    if (count === 0 || rec.param(index, k.P_POWERED) === 0 || rec.param(index, k.P_SHARE_ON) === 0) return 0;
    const pages = vm.pages.length;
    if (pages === 0) return 0;
    if (rec.param(index, k.P_SHARE_STEP) === 0) this.newPass(vm);
    const salt = rec.param(index, k.P_SHARE_SALT);
    let step = rec.param(index, k.P_SHARE_STEP);
    let ppn = rec.param(index, k.P_SHARE_PPN);
    let done = rec.param(index, k.P_SHARE_DONE);
    let shared = 0;
    for (let i = 0; i < count; i++) {
      if (done >= pages) {
        rec.add(index, k.C_SHARE_PASSES, 1);
        this.newPass(vm);
        step = rec.param(index, k.P_SHARE_STEP);
        ppn = rec.param(index, k.P_SHARE_PPN);
        done = 0;
      }
      const p = ppn;
      ppn += step;
      if (ppn >= pages) ppn -= pages;
      done++;
      const page = vm.pages[p];
      if (page.state !== "private") continue;
      if (page.key === KEY_UNIQUE) {
        this.markHinted(vm, page);
        continue;
      }
      if (vm.regions[Math.floor(p / REGION_PAGES)] === "large") {
        // hashed, never shared: a large page is not shared whole (KB1021095)
        this.markHinted(vm, page);
        const id = this.keyOf(page.key, salt);
        if (!this.table.has(id) && this.room()) {
          this.table.set(id, { frame: false, vm: index, ppn: p });
          rec.addHost(k.H_SHARE_ENTRIES, 1);
        }
        continue;
      }
      shared += this.offer(vm, p, page.key, salt, true);
    }
    rec.setParam(index, k.P_SHARE_PPN, ppn);
    rec.setParam(index, k.P_SHARE_DONE, done);
    rec.add(index, k.C_SHARE_SCANNED, count);
    return shared;
  }

  /** Break the VM's large pages and share their hinted subpages at once (shareBreakLarge). */
  shareBreakLarge(index: number): number {
    const vm = this.model.vms[index];
    const on = this.tpsOn(vm);
    const salt = this.rec.param(index, this.k.P_SHARE_SALT);
    let shared = 0;
    for (let r = 0; r < vm.regions.length; r++) {
      if (vm.regions[r] !== "large") continue;
      this.model.breakLarge(vm, r);
      if (!on) continue;
      const end = Math.min((r + 1) * REGION_PAGES, vm.pages.length);
      for (let p = r * REGION_PAGES; p < end; p++) {
        const page = vm.pages[p];
        if (!page.hinted || page.key === KEY_UNIQUE || page.state !== "private") continue;
        shared += this.offer(vm, p, page.key, salt, true);
      }
    }
    return shared;
  }

  /** Share before swap (shareBeforeSwap): true when the victim became shared (nothing to swap). */
  shareBeforeSwap(vm: Vm, ppn: number): boolean {
    if (!this.tpsOn(vm)) return false;
    const page = vm.pages[ppn];
    if (page.state !== "private" || page.key === KEY_UNIQUE) return false;
    if (vm.regions[Math.floor(ppn / REGION_PAGES)] === "large") return false;
    if (this.offer(vm, ppn, page.key, this.rec.param(vm.index, this.k.P_SHARE_SALT), false) === 0) return false;
    this.rec.add(vm.index, this.k.C_SHARE_BEFORE_SWAP, 1);
    return true;
  }

  /**
   * A shared page leaves its frame (tpsLeave): on a write it gets a private page (false when no
   * machine memory is free: nothing changes); at power-off it becomes unbacked.
   */
  leave(vm: Vm, page: Page, write: boolean): boolean {
    const { rec, k } = this;
    if (rec.hostParam(k.HP_SHARE_POLICY) === POLICY_KSM) {
      // KSM: a write breaks COW; a page leaving without a copy (the balloon took it) is unmapped
      if (write) return this.ksm.cow(vm, page);
      this.ksm.unmap(vm, page);
      return true;
    }
    const salt = rec.param(vm.index, k.P_SHARE_SALT);
    const cross = ((salt & VM_SALT) >>> 0) === 0;
    const id = this.keyOf(page.key, salt);
    const entry = this.table.get(id);
    if (!entry || !entry.frame) throw new Error(`reference model: a shared page without its frame (${id})`);
    if (entry.refs === 1) {
      // the last sharer: the frame's machine page becomes the page's own, or is freed
      this.table.delete(id);
      rec.addHost(k.H_SHARE_ENTRIES, -1);
      rec.addHost(k.H_COMMON, -1);
      if (cross) rec.addHost(k.H_COMMON_X, -1);
      else rec.add(vm.index, k.C_FRAMES_OWN, -1);
      if (write) rec.addHost(k.H_PRIVATE, 1);
      else rec.addHost(k.H_FREE_SMALL, 1);
    } else {
      if (write) {
        if (!this.model.allocSmall()) return false;
        rec.addHost(k.H_PRIVATE, 1);
      }
      entry.refs--;
    }
    if (page.key === KEY_ZERO) rec.add(vm.index, k.C_SHARED_ZERO, -1);
    if (cross) {
      rec.add(vm.index, k.C_SHARED_X, -1);
      rec.addHost(k.H_SHARED_X, -1);
    }
    this.model.setState(vm, page, write ? "private" : "unbacked");
    return true;
  }

  /** Copy-on-write break before a write to a shared page (shareCow). */
  cow(vm: Vm, page: Page): boolean {
    const ok = this.leave(vm, page, true);
    if (ok) this.rec.add(vm.index, this.k.C_COW_BREAKS, 1);
    return ok;
  }

  /** Power-off (shareReleaseVm): shared pages leave their frames, hints are forgotten. */
  releaseVm(vm: Vm): void {
    const policy = this.rec.hostParam(this.k.HP_SHARE_POLICY);
    if (policy === POLICY_KSM) return this.ksm.releaseVm(vm);
    if (policy !== POLICY_TPS) return;
    for (const page of vm.pages) {
      if (page.state === "shared") this.leave(vm, page, false);
      if (page.hinted) {
        page.hinted = false;
        this.rec.add(vm.index, this.k.C_HINTS, -1);
      }
    }
    this.rec.setParam(vm.index, this.k.P_SHARE_STEP, 0);
  }

  tpsEntries(): number {
    return this.table.size;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
