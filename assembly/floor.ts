// Floors for the benchmarks (bench/scale.bench.ts, docs/benchmarks.md): the plainest WASM passes over
// the same bytes a mechanism works on, so its throughput can be set beside what this machine does at
// all. Not used by the simulator itself.
//   floorScan    a sequential read of every 8-byte page entry (a full metadata scan can go no faster)
//   floorCopy    memory.copy of the same bytes (the memory-bandwidth yardstick)
//   floorTouch   touches drawn as touchVm draws them, each reduced to one read and write of its page
//                entry (the touch loop's floor)
import { reserve, vmI, P_ACTIVE, P_PATTERN, P_QTABLE_BASE, P_HOT, P_HOT_T, P_WRITE_T, P_PAGE_BASE, PAGE_ENTRY } from "./memory";
import { drawBatch, batch, BATCH, WRITE_BIT } from "./workload";
import { seedState } from "./rng";

let scratch: u32 = 0;
let scratchBytes: u32 = 0;

/** XOR of every u64 in [addr, addr + bytes): one sequential read pass. */
export function floorScan(addr: u32, bytes: u32): u32 {
  let x: u64 = 0;
  const end = addr + (bytes & ~7);
  for (let a = addr; a < end; a += 8) x ^= load<u64>(a);
  return <u32>(x ^ (x >>> 32));
}

/**
 * Copy [addr, addr + bytes) with memory.copy into a scratch block of `chunk` bytes (reserved on first
 * use; the source goes through in chunks, so a 2 GiB table needs no 2 GiB destination). Returns
 * the bytes copied, 0 when no scratch block can be had.
 */
export function floorCopy(addr: u32, bytes: u32, chunk: u32): u32 {
  if (scratchBytes < chunk) {
    scratch = reserve(chunk);
    if (scratch == 0) return 0;
    scratchBytes = chunk;
  }
  let done: u32 = 0;
  while (done < bytes) {
    const n = min(chunk, bytes - done);
    memory.copy(scratch, addr + done, n);
    done += n;
  }
  return done;
}

const floorRng = <u32>memory.data(16);

/**
 * `count` touches of `vm` drawn as touchVm draws them (drawBatch: the VM's pattern and write share,
 * from a stream seeded with `seed`, not the VM's own), each batch's entries loaded ahead as
 * touchVm loads them, then each entry read and written back with `bits` or-ed in: what every touch
 * costs whatever it does, the draws and the memory traffic. With bits = 0 the table is left as it
 * was. Returns the XOR of the loads ahead.
 */
export function floorTouch(vm: u32, count: u32, seed: u32, bits: u32): u32 {
  seedState(floorRng, seed, 0);
  const active = vmI(vm, P_ACTIVE), pattern = vmI(vm, P_PATTERN), writeT = vmI(vm, P_WRITE_T);
  const qtable = vmI(vm, P_QTABLE_BASE), hot = vmI(vm, P_HOT), hotT = vmI(vm, P_HOT_T);
  const table = vmI(vm, P_PAGE_BASE);
  let warm: u32 = 0;
  for (let done: u32 = 0; done < count; ) {
    const n = min(BATCH, count - done);
    done += n;
    drawBatch(floorRng, n, pattern, active, qtable, hot, hotT, writeT);
    for (let j: u32 = 0; j < n; j++) warm ^= load<u32>(table + (load<u32>(batch + (j << 2)) & ~WRITE_BIT) * PAGE_ENTRY);
    for (let j: u32 = 0; j < n; j++) {
      const e = table + (load<u32>(batch + (j << 2)) & ~WRITE_BIT) * PAGE_ENTRY;
      store<u32>(e, load<u32>(e) | bits);
    }
  }
  return warm;
}
