// Ballooning in the reference model (assembly/balloon.ts): the driver inflates toward its target by
// asking the guest for pages, and the guest picks them: free pages first (no limit per poll), then
// page cache, oldest first (dropped), then anonymous pages, oldest first, written to its page file.
// "Oldest" is judged from 64 pages drawn at random (the VM's victim stream): the age above which its
// oldest `need` pages lie; a hand per class sweeps for pages at least that old, then for any. A
// touch of a ballooned page makes the guest give the balloon another page in exchange; a touch of a
// page whose content the guest gave up reads it back from its page file or its disk.
import type { Model, Page, Vm } from "./model.js";

const L_FREE = 0;
const L_CACHE = 1;
const L_ANON = 2;
const SAMPLES = 64;
const COLD_SCAN = 256;
const COLD_SCAN_MIN = 8192;

export class Balloon {
  latGuest = 0;
  /** fault time the guest spent inside the last reclaim (double paging, decompression), us */
  private reclaimLat = 0;

  constructor(private readonly model: Model) {}

  private get rec() {
    return this.model.rec;
  }
  private get k() {
    return this.model.k;
  }
  private c(vm: Vm, name: string): number {
    return this.rec.counter(vm.index, this.k[name]);
  }

  /** Free pages the guest can give: not ballooned, and empty (free, or content given up). */
  private freeAvail(vm: Vm): number {
    const ballooned = this.c(vm, "C_BALLOONED");
    const bFree = this.c(vm, "C_MCTL_FREE");
    return this.c(vm, "C_GUEST_FREE") - bFree + (this.c(vm, "C_GOUT_CACHE") + this.c(vm, "C_GOUT_ANON") - (ballooned - bFree));
  }
  private pageFileRoom(vm: Vm): boolean {
    return this.c(vm, "C_GOUT_ANON") < this.rec.param(vm.index, this.k.P_GPF_PAGES);
  }
  private cacheAvail(vm: Vm): number {
    return this.c(vm, "C_GUEST_CACHE") - this.c(vm, "C_GOUT_CACHE");
  }
  private anonAvail(vm: Vm): number {
    return this.c(vm, "C_GUEST_ANON") - this.c(vm, "C_GOUT_ANON");
  }

  /** The age at or above which about `need` of `avail` pages of class `want` lie (coldAge); 0: any. */
  private coldAge(vm: Vm, want: "cache" | "anon", need: number, avail: number, epoch: number): number {
    if (need >= avail) return 0;
    const ages: number[] = []; // oldest first
    for (let tries = SAMPLES * 8; ages.length < SAMPLES && tries > 0; tries--) {
      const page = vm.pages[vm.victimRng.below(vm.pages.length)];
      if (page.state === "ballooned" || page.guestOut || page.guest !== want) continue;
      const age = (epoch - page.epoch) & 0xffff;
      let i = ages.length;
      while (i > 0 && ages[i - 1] < age) i--;
      ages.splice(i, 0, age);
    }
    const n = ages.length;
    if (n < 8) return 0;
    const j = Math.floor((need / avail) * n);
    return j >= n ? 0 : ages[j];
  }

  /** Give the page to the balloon as `level` allows (take); false when it cannot go. */
  private take(vm: Vm, ppn: number, page: Page, level: number): boolean {
    const { rec, k } = this;
    const g = page.guest;
    let lat = 0;
    if (level === L_ANON) {
      // the guest writes the page to its page file: it reads it first if the host holds it elsewhere
      if (page.state === "swapped") {
        lat = page.ssdSlot >= 0 ? this.model.reclaim.latSwapSsd : this.model.reclaim.latSwapHdd;
        rec.add(vm.index, k.C_DOUBLE_PAGING, 1);
        rec.add(vm.index, k.C_SWAP_IN, 1);
        rec.add(vm.index, k.C_LAT_SWAP_US, lat);
      } else if (page.state === "compressed") {
        lat = this.model.reclaim.latUnzip;
        rec.add(vm.index, k.C_ZIP_IN, 1);
        rec.add(vm.index, k.C_LAT_ZIP_US, lat);
      }
    }
    this.model.reclaim.hostRelease(vm, ppn, page);
    if (level === L_CACHE) {
      page.guestOut = true;
      rec.add(vm.index, k.C_GOUT_CACHE, 1);
    } else if (level === L_ANON) {
      page.guestOut = true;
      rec.add(vm.index, k.C_GOUT_ANON, 1);
      rec.add(vm.index, k.C_GSWAP_OUT, 1);
      this.reclaimLat += lat;
    } else if (g === "free") {
      rec.add(vm.index, k.C_MCTL_FREE, 1);
    }
    this.model.setState(vm, page, "ballooned");
    return true;
  }

  /** One sweep of the hand of `level` for up to `need` pages at least `minAge` old (sweep). */
  private sweep(vm: Vm, level: number, need: number, minAge: number, epoch: number): number {
    const { rec, k } = this;
    const pages = vm.pages.length;
    const handP = level === L_FREE ? k.P_GHAND_FREE : level === L_CACHE ? k.P_GHAND_CACHE : k.P_GHAND_ANON;
    const want = level === L_CACHE ? "cache" : "anon";
    let h = rec.param(vm.index, handP);
    if (h >= pages) h = 0;
    let got = 0;
    const limit = minAge === 0 ? pages : Math.min(pages, Math.max(need * COLD_SCAN, COLD_SCAN_MIN));
    for (let i = 0; i < limit && got < need; i++) {
      const page = vm.pages[h];
      if (page.state !== "ballooned") {
        let ok = false;
        if (level === L_FREE) ok = page.guest === "free" || page.guestOut;
        else if (!page.guestOut && page.guest === want) {
          ok = minAge === 0 || ((epoch - page.epoch) & 0xffff) >= minAge;
          if (ok && level === L_ANON && !this.pageFileRoom(vm)) break;
        }
        if (ok && this.take(vm, h, page, level)) got++;
      }
      h = h + 1 === pages ? 0 : h + 1;
    }
    rec.setParam(vm.index, handP, h);
    return got;
  }

  private takeFree(vm: Vm, need: number): number {
    if (need === 0 || this.freeAvail(vm) < 1) return 0;
    return this.sweep(vm, L_FREE, need, 0, 0);
  }

  /** The guest reclaims up to `need` pages (guestReclaim): free, then cache, then anonymous. */
  private guestReclaim(vm: Vm, need: number, epoch: number, fresh: boolean): number {
    const { rec, k } = this;
    let got = this.takeFree(vm, need);
    if (got < need && this.cacheAvail(vm) >= 1) {
      const age = fresh ? this.coldAge(vm, "cache", need - got, this.cacheAvail(vm), epoch) : rec.param(vm.index, k.P_GAGE_CACHE);
      rec.setParam(vm.index, k.P_GAGE_CACHE, age);
      got += this.sweep(vm, L_CACHE, need - got, age, epoch);
      if (got < need && age > 0) got += this.sweep(vm, L_CACHE, need - got, 0, epoch);
    }
    if (got < need && this.anonAvail(vm) >= 1 && this.pageFileRoom(vm)) {
      const age = fresh ? this.coldAge(vm, "anon", need - got, this.anonAvail(vm), epoch) : rec.param(vm.index, k.P_GAGE_ANON);
      rec.setParam(vm.index, k.P_GAGE_ANON, age);
      got += this.sweep(vm, L_ANON, need - got, age, epoch);
      if (got < need && age > 0 && this.pageFileRoom(vm)) got += this.sweep(vm, L_ANON, need - got, 0, epoch);
    }
    return got;
  }

  /** One poll of the driver toward `target` (balloonVm): returns the change in balloon size. */
  balloonVm(index: number, target: number, freeBudget: number, reclaimBudget: number, deflateBudget: number, epoch: number): number {
    const { rec, k } = this;
    const vm = this.model.vms[index];
    const size = rec.counter(index, k.C_BALLOONED) >>> 0;
    rec.set(index, k.C_MCTL_SHORT, 0);
    if (size < target) {
      const need = target - size;
      this.reclaimLat = 0;
      let got = this.takeFree(vm, Math.min(need, freeBudget));
      if (got < need && got < reclaimBudget && this.freeAvail(vm) < 1) {
        const want = Math.min(need - got, reclaimBudget - got);
        const r = this.guestReclaim(vm, want, epoch, true);
        got += r;
        if (r < want) rec.set(index, k.C_MCTL_SHORT, need - got);
      }
      rec.add(index, k.C_MCTL_IN, got);
      if (this.reclaimLat > 0) {
        rec.add(index, k.C_DEBT_US, this.reclaimLat);
        rec.add(index, k.C_STALL_US, this.reclaimLat);
      }
      return got;
    }
    if (size > target) return -this.deflate(vm, Math.min(size - target, deflateBudget));
    return 0;
  }

  /** Up to `n` balloon pages back to the guest (deflate): they stay unbacked until touched. */
  private deflate(vm: Vm, n: number): number {
    const { rec, k } = this;
    const pages = vm.pages.length;
    let h = rec.param(vm.index, k.P_GHAND_FREE);
    if (h >= pages) h = 0;
    let got = 0;
    for (let i = 0; i < pages && got < n; i++) {
      if (vm.pages[h].state === "ballooned") {
        this.unballoon(vm, vm.pages[h]);
        got++;
      }
      h = h + 1 === pages ? 0 : h + 1;
    }
    rec.setParam(vm.index, k.P_GHAND_FREE, h);
    rec.add(vm.index, k.C_MCTL_OUT, got);
    return got;
  }

  private unballoon(vm: Vm, page: Page): void {
    if (page.guest === "free") this.rec.add(vm.index, this.k.C_MCTL_FREE, -1);
    this.model.setState(vm, page, "unbacked");
  }

  /** A touch of a ballooned page (guestTakeBack): another page goes in exchange. The guest's fault time, us. */
  guestTakeBack(vm: Vm, page: Page, epoch: number): number {
    this.reclaimLat = 0;
    if (this.guestReclaim(vm, 1, epoch, false) === 0) {
      this.rec.add(vm.index, this.k.C_MCTL_GIVEBACK, 1);
      this.rec.add(vm.index, this.k.C_MCTL_OUT, 1);
    }
    this.unballoon(vm, page);
    return this.reclaimLat;
  }

  /** A touch of a page whose content the guest gave up, backed again (guestPageIn): the read, us. */
  guestPageIn(vm: Vm, page: Page): number {
    const { rec, k } = this;
    if (page.guest === "anon") {
      rec.add(vm.index, k.C_GOUT_ANON, -1);
      rec.add(vm.index, k.C_GSWAP_IN, 1);
    } else {
      rec.add(vm.index, k.C_GOUT_CACHE, -1);
      rec.add(vm.index, k.C_GCACHE_MISS, 1);
    }
    rec.add(vm.index, k.C_LAT_GUEST_US, this.latGuest);
    page.guestOut = false;
    return this.latGuest;
  }
}
