// The host and VM records: the one thing the reference model shares with the WASM engine besides
// its semantics. src/sim/simulation.ts and src/policy/ talk to an engine through these records
// (i32 parameters it writes, f64 counters it reads) at the offsets assembly/memory.ts defines and
// the engine exports as globals (P_PAGES, C_PRIVATE, …). The reference keeps its records in a
// plain ArrayBuffer at the same offsets, with the host record at 0, so the unchanged Simulation
// can drive either engine. Everything per page lives in plain objects (model.ts), not here.
import { loadEngine } from "../../src/engine.js";

/** The memory map's constants by name, as the compiled engine exports them. */
export type Layout = Readonly<Record<string, number>>;

let layout: Promise<Layout> | undefined;

/** The record layout (and the engine's other exported constants), read once from build/vmemsim.wasm. */
export function engineLayout(): Promise<Layout> {
  return (layout ??= loadEngine().then((e) => e.k));
}

/** Host and VM records over one ArrayBuffer: params are u32, counters f64 at +COUNTERS_AT. */
export class Records {
  readonly buffer: ArrayBuffer;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;

  constructor(readonly k: Layout) {
    this.buffer = new ArrayBuffer(k.HOST_RECORD + k.MAX_VMS * k.VM_RECORD);
    this.u32 = new Uint32Array(this.buffer);
    this.f64 = new Float64Array(this.buffer);
  }

  private vmAt(vm: number): number {
    return this.k.HOST_RECORD + vm * this.k.VM_RECORD;
  }

  hostParam(i: number): number {
    return this.u32[i];
  }
  setHostParam(i: number, v: number): void {
    this.u32[i] = v >>> 0;
  }
  host(i: number): number {
    return this.f64[(this.k.COUNTERS_AT >>> 3) + i];
  }
  addHost(i: number, d: number): void {
    this.f64[(this.k.COUNTERS_AT >>> 3) + i] += d;
  }

  param(vm: number, i: number): number {
    return this.u32[(this.vmAt(vm) >>> 2) + i];
  }
  setParam(vm: number, i: number, v: number): void {
    this.u32[(this.vmAt(vm) >>> 2) + i] = v >>> 0;
  }
  counter(vm: number, i: number): number {
    return this.f64[((this.vmAt(vm) + this.k.COUNTERS_AT) >>> 3) + i];
  }
  add(vm: number, i: number, d: number): void {
    this.f64[((this.vmAt(vm) + this.k.COUNTERS_AT) >>> 3) + i] += d;
  }
  /** `c + (v - c)`: how the engine sets a counter (assembly setC), bit for bit. */
  set(vm: number, i: number, v: number): void {
    this.add(vm, i, v - this.counter(vm, i));
  }
}
