// Floors for the benchmarks (bench/scale.bench.ts, docs/benchmarks.md): the plainest WASM passes over
// the same bytes a mechanism works on, so its throughput can be set beside what this machine does at
// all. Not used by the simulator itself.
//   floorScan    a sequential read of every 8-byte page entry (a full metadata scan can go no faster)
//   floorCopy    memory.copy of the same bytes (the memory-bandwidth yardstick)
//   floorGather  random reads of page entries drawn like uniform touches (a touch loop's floor)
import { reserve } from "./memory";

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

/**
 * `count` reads of 8-byte entries at uniformly random indices below `entries` from `addr`, the
 * indices drawn with xoshiro128** (state in locals) 64 at a time and then loaded, as the touch loop
 * draws and warms a batch. Returns the XOR of what was read.
 */
export function floorGather(addr: u32, entries: u32, count: u32, seed: u32): u32 {
  let s0: u32 = seed | 1, s1: u32 = 0x9e3779b9, s2: u32 = 0x85ebca6b, s3: u32 = 0xc2b2ae35;
  let x: u64 = 0;
  const idx = memory.data(64 * 4);
  for (let done: u32 = 0; done < count; ) {
    const n = min<u32>(64, count - done);
    done += n;
    for (let j: u32 = 0; j < n; j++) {
      const r = rotl<u32>(s1 * 5, 7) * 9;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl<u32>(s3, 11);
      store<u32>(idx + (j << 2), <u32>((<u64>r * <u64>entries) >>> 32));
    }
    for (let j: u32 = 0; j < n; j++) x ^= load<u64>(addr + (load<u32>(idx + (j << 2)) << 3));
  }
  return <u32>(x ^ (x >>> 32));
}
