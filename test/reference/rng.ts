// The reference model's random numbers: the same generator as assembly/rng.ts, written in plain
// TypeScript. xoshiro128** (Blackman & Vigna, 2018) with u32 output, seeded with splitmix32 from
// (scenario seed, stream number). Every draw the engine makes, the reference makes too, from the
// same stream in the same order; that is what lets the differential test compare every tick.

/** splitmix32 finaliser (assembly/rng.ts mix32): a 32-bit integer hash. */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** High 32 bits of the 64-bit product a × n, for a, n < 2^32 (exact: each partial product < 2^48). */
export function mulHi(a: number, n: number): number {
  const hi = (a >>> 16) * n;
  const lo = (a & 0xffff) * n;
  return Math.floor((hi + Math.floor(lo / 65536)) / 65536);
}

export class Xoshiro128 {
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;

  /** A stream seeded as assembly/rng.ts seedState(state, seed, stream) does. */
  constructor(seed: number, stream: number) {
    let x = mix32((seed ^ mix32((stream + 0x632be5ab) >>> 0)) >>> 0);
    const s: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = mix32((x + i) >>> 0);
      s.push((x | (i === 0 ? 1 : 0)) >>> 0); // never all zero
    }
    [this.s0, this.s1, this.s2, this.s3] = s;
  }

  /** Next u32. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform integer in [0, n): Lemire's multiply-shift, as assembly/rng.ts below(). */
  below(n: number): number {
    return mulHi(this.next(), n);
  }
}
