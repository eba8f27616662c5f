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

/** A VM's content model, copied out of its record (memory.data scratch, one VM at a time). */
const model = <u32>memory.data(32);

/** Load `vm`'s content model into the scratch block for keyOf; returns its address. */
export function contentOf(vm: u32): u32 {
  store<u32>(model, vmI(vm, P_CLASS_SEED));
  store<u32>(model, vmI(vm, P_ZERO_T), 4);
  store<u32>(model, vmI(vm, P_IMAGE_T), 8);
  store<u32>(model, vmI(vm, P_DUP_T), 12);
  store<u32>(model, vmI(vm, P_IMAGE_BASE), 16);
  store<u32>(model, vmI(vm, P_DUP_BASE), 20);
  store<u32>(model, vmI(vm, P_DUP_SIZE), 24);
  return model;
}

/** The content key page `ppn` holds after a write, under the model at `c` (contentOf). */
// @ts-ignore: decorator
@inline export function keyOf(c: u32, ppn: u32): u32 {
  const h = mix32(load<u32>(c) ^ mix32(ppn));
  // selects rather than branches: a page's class is random, so a branch on it mispredicts (issue 6)
  const dup = load<u32>(c, 20) + <u32>((<u64>mix32(h) * <u64>load<u32>(c, 24)) >>> 32);
  const key = select<u32>(dup, KEY_UNIQUE, h < load<u32>(c, 12));
  return select<u32>(KEY_ZERO, select<u32>(load<u32>(c, 16) + ppn, key, h < load<u32>(c, 8)), h < load<u32>(c, 4));
}

/** The content key page `ppn` of `vm` holds after a write. */
export function classKey(vm: u32, ppn: u32): u32 {
  return keyOf(contentOf(vm), ppn);
}

/** True when two pages holding these keys have identical content. */
// @ts-ignore: decorator
@inline export function sameContent(a: u32, b: u32): bool {
  return a == b && a != KEY_UNIQUE;
}
