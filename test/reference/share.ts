// Page sharing in the reference model (assembly/share.ts, assembly/ksm.ts): ESXi TPS and Linux KSM.
// Modelled so far: the set-up (policy, per-VM scanner streams, the TPS table's initial size as the
// engine counts it). Scans, copy-on-write breaks and KSM are not modelled yet: they throw
// NotModelled, and the differential test keeps its scenarios off them (README.md here).
import { NotModelled, type Model } from "./model.js";
import { Xoshiro128 } from "./rng.js";

export const POLICY_NONE = 0;
export const POLICY_TPS = 1;
export const POLICY_KSM = 2;
const SHARE_STREAM = 0x7a5c0000;
const ENTRY_BYTES = 16;
const MAX_CAP = 2 ** 27;

export class Sharing {
  policy = POLICY_NONE;
  /** per VM: the scanner's own stream (a fresh random permutation per pass) */
  rngs: Xoshiro128[] = [];
  /** the TPS table's capacity in entries (a power of two) */
  capacity = 0;

  constructor(private readonly model: Model) {}

  /** shareInit: the policy, the scanners' streams, a table for twice the expected contents. */
  init(policy: number, expected: number, seed: number): number {
    const { rec, k } = this.model;
    rec.setHostParam(k.HP_SHARE_POLICY, policy);
    rec.setHostParam(k.HP_SHARE_ON, policy !== POLICY_NONE ? 1 : 0);
    this.policy = policy;
    this.rngs = this.model.vms.map((vm) => new Xoshiro128(seed, SHARE_STREAM + vm.index));
    for (const vm of this.model.vms) rec.setParam(vm.index, k.P_SHARE_ON, 1);
    let cap = 1024;
    while (cap < MAX_CAP && cap < expected * 2) cap *= 2;
    if (policy === POLICY_KSM) throw new NotModelled("Linux KSM");
    if (policy === POLICY_TPS) {
      this.capacity = cap;
      rec.addHost(k.H_SHARE_TABLE_BYTES, cap * ENTRY_BYTES);
    }
    return 1;
  }
}
