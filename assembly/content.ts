// Content identity of guest pages: the abstract content key each page holds after a write.
// Spec: ../shared/notes/design-hints.md "Content identity"; the workload's content model in
// docs/scenarios.md.
//
// Keys never collide by accident. A page's content class is fixed by a hash of (class seed, PPN):
// the class seed is the VM's image, so clones of one image agree page by page.
//   zero       key 0
//   image      imageBase + PPN: the same key in every VM of the image (TypeScript gives each image
//              a key range as long as its largest VM)
//   duplicate  dupBase + hash % dupSize: about `duplicateCopies` pages of this VM per key
//   unique     KEY_UNIQUE, a marker rather than a key: it equals nothing, not even itself
// A write always stores the page's class content: it is a write (COW breaks, KSM sees the page
// change) even when the bytes come out as before.
import { P_ZERO_T, P_IMAGE_T, P_DUP_T, P_CLASS_SEED, P_IMAGE_BASE, P_DUP_BASE, P_DUP_SIZE, vmI } from "./memory";
import { mix32 } from "./rng";

export const KEY_ZERO: u32 = 0;
export const KEY_UNIQUE: u32 = 0xffff_ffff;

/** The content key page `ppn` of `vm` holds after a write. */
// @ts-ignore: decorator
@inline export function classKey(vm: u32, ppn: u32): u32 {
  const h = mix32(vmI(vm, P_CLASS_SEED) ^ mix32(ppn));
  if (h < vmI(vm, P_ZERO_T)) return KEY_ZERO;
  if (h < vmI(vm, P_IMAGE_T)) return vmI(vm, P_IMAGE_BASE) + ppn;
  if (h < vmI(vm, P_DUP_T)) return vmI(vm, P_DUP_BASE) + <u32>((<u64>mix32(h) * <u64>vmI(vm, P_DUP_SIZE)) >>> 32);
  return KEY_UNIQUE;
}

/** True when two pages holding these keys have identical content. */
// @ts-ignore: decorator
@inline export function sameContent(a: u32, b: u32): bool {
  return a == b && a != KEY_UNIQUE;
}
