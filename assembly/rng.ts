// The seeded generator: xoshiro128** (Blackman & Vigna, 2018), period 2^128 - 1, u32 output.
// Each VM has its own stream in its record (P_RNG) and the host has one (HP_RNG), all seeded from
// the scenario seed with splitmix32, so one VM's draws never shift another's.
// Spec: ../shared/notes/design-hints.md "Time and randomness".

// @ts-ignore: decorator
@inline function rotl(x: u32, k: u32): u32 {
  return (x << k) | (x >>> (32 - k));
}

/** Next u32 of the xoshiro128** state stored at `s` (4 u32 words). */
// @ts-ignore: decorator
@inline export function next(s: u32): u32 {
  const s0 = load<u32>(s), s1 = load<u32>(s, 4), s2 = load<u32>(s, 8), s3 = load<u32>(s, 12);
  const result = rotl(s1 * 5, 7) * 9;
  const t = s1 << 9;
  const n2 = s2 ^ s0;
  const n3 = s3 ^ s1;
  store<u32>(s, s0 ^ n3);
  store<u32>(s, s1 ^ n2, 4);
  store<u32>(s, n2 ^ t, 8);
  store<u32>(s, rotl(n3, 11), 12);
  return result;
}

/** Uniform integer in [0, n) (Lemire's multiply-shift; bias below 2^-32 * n, documented). */
// @ts-ignore: decorator
@inline export function below(s: u32, n: u32): u32 {
  return <u32>((<u64>next(s) * <u64>n) >>> 32);
}

/** splitmix32 finaliser: a good 32-bit integer hash. */
// @ts-ignore: decorator
@inline export function mix32(x: u32): u32 {
  x += 0x9e3779b9;
  x = (x ^ (x >>> 16)) * 0x85ebca6b;
  x = (x ^ (x >>> 13)) * 0xc2b2ae35;
  return x ^ (x >>> 16);
}

/** Seed the state at `s` from (seed, stream) so every stream differs. */
export function seedState(s: u32, seed: u32, stream: u32): void {
  let x = mix32(seed ^ mix32(stream + 0x632be5ab));
  for (let i: u32 = 0; i < 4; i++) {
    x = mix32(x + i);
    store<u32>(s + (i << 2), x | (i == 0 ? 1 : 0)); // never all zero
  }
}
