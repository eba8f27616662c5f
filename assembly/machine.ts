// Machine memory (MPNs) of the host: total, the hypervisor's own reserve (vmk), per-VM overhead,
// and free memory kept as whole 2 MiB frames plus loose 4 KiB pages. Spec: esxi-memory.md §1
// (address spaces, overhead) and §4 (large pages, KB1021095 / KB1021896).
//
// Free memory starts as whole frames. A small allocation takes a loose page, splitting a whole
// frame when there is none; a large allocation takes a whole frame. A page freed back is loose: a
// frame becomes whole again only if it is returned whole (a large page that was never broken).
// There is no compaction, so a host that has split its frames backs new guest memory with small
// pages, the fragmentation that keeps real hosts from re-forming large pages.
import { H_TOTAL, H_VMK, H_OVHD, H_FREE_LARGE, H_FREE_SMALL, H_PRIVATE, H_COMMON, REGION_PAGES, hostC, addHostC } from "./memory";
import { H_ZIP_CACHE } from "./memory"; // reclamation (issue 5)

/** Set the host's machine pages and the hypervisor's reserve; all the rest starts free. */
export function initMachine(totalPages: u32, vmkPages: u32): void {
  addHostC(H_TOTAL, <f64>totalPages);
  addHostC(H_VMK, <f64>vmkPages);
  const free = totalPages - vmkPages;
  addHostC(H_FREE_LARGE, <f64>(free / REGION_PAGES));
  addHostC(H_FREE_SMALL, <f64>(free % REGION_PAGES));
}

export function freePages(): f64 {
  return hostC(H_FREE_LARGE) * <f64>REGION_PAGES + hostC(H_FREE_SMALL);
}

/** Take one 4 KiB page; false when machine memory is exhausted. */
export function allocSmall(): bool {
  if (hostC(H_FREE_SMALL) > 0) {
    addHostC(H_FREE_SMALL, -1);
    return true;
  }
  if (hostC(H_FREE_LARGE) > 0) {
    addHostC(H_FREE_LARGE, -1);
    addHostC(H_FREE_SMALL, <f64>(REGION_PAGES - 1));
    return true;
  }
  return false;
}

/** Take one whole 2 MiB frame; false when none is free. */
export function allocLarge(): bool {
  if (hostC(H_FREE_LARGE) < 1) return false;
  addHostC(H_FREE_LARGE, -1);
  return true;
}

export function freeSmall(n: f64): void {
  addHostC(H_FREE_SMALL, n);
}

export function freeLarge(n: f64): void {
  addHostC(H_FREE_LARGE, n);
}

/** Overhead of a VM at power-on: false (nothing taken) when it does not fit. */
export function takeOverhead(pages: u32): bool {
  if (freePages() < <f64>pages) return false;
  for (let i: u32 = 0; i < pages; i++) allocSmall();
  addHostC(H_OVHD, <f64>pages);
  return true;
}

export function returnOverhead(pages: u32): void {
  addHostC(H_OVHD, -<f64>pages);
  freeSmall(<f64>pages);
}

/** Machine conservation: total = vmk + overhead + private + common + free. 0 when it holds. */
export function checkMachine(): i32 {
  // reclamation (issue 5): compression caches hold machine pages too
  const used = hostC(H_VMK) + hostC(H_OVHD) + hostC(H_PRIVATE) + hostC(H_COMMON) + hostC(H_ZIP_CACHE) + freePages();
  if (used != hostC(H_TOTAL)) return 1;
  if (hostC(H_FREE_LARGE) < 0 || hostC(H_FREE_SMALL) < 0) return 2;
  return 0;
}
