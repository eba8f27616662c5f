// The TypeScript side of the WASM engine (assembly/): loading, typed access to the records that
// assembly/memory.ts lays out, and thin wrappers of the per-tick calls. Browser-safe: the wasm
// comes from bytes, a compiled module, or a URL (fetched over http(s), read from disk for file:).
import { instantiate } from "@assemblyscript/loader";

export type EngineSource = BufferSource | WebAssembly.Module | URL | string;

/** The raw exports of build/vmemsim.wasm (assembly/index.ts). Globals are the memory map. */
interface RawExports {
  memory: WebAssembly.Memory;
  init(totalPages: number, vmkPages: number, largePages: number, seed: number): number;
  addVm(vm: number, pages: number, seed: number): number;
  powerOn(vm: number, overheadPages: number): number;
  powerOff(vm: number): void;
  breakLargePages(vm: number): number;
  setPattern(vm: number): void;
  touchVm(vm: number, count: number, epoch: number): number;
  zeroSweep(vm: number, count: number): number;
  checkVm(vm: number): number;
  checkHost(): number;
  memoryBytes(): number;
  [global: string]: unknown;
}

const DEFAULT_WASM = new URL("../build/vmemsim.wasm", import.meta.url);
let compiled: Promise<WebAssembly.Module> | undefined;

async function readBytes(url: URL): Promise<BufferSource> {
  if (url.protocol === "file:") {
    const fs = await import(/* @vite-ignore */ "node:fs/promises");
    return new Uint8Array(await fs.readFile(url));
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load the vmemsim engine from ${url}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

async function compile(source: EngineSource | undefined): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (source === undefined || source instanceof URL || typeof source === "string") {
    const url = source === undefined ? DEFAULT_WASM : new URL(source, DEFAULT_WASM);
    if (source === undefined) return (compiled ??= readBytes(url).then((b) => WebAssembly.compile(b)));
    return WebAssembly.compile(await readBytes(url));
  }
  return WebAssembly.compile(source);
}

export class Engine {
  readonly raw: RawExports;
  private buffer: ArrayBuffer;
  private u32v: Uint32Array;
  private f64v: Float64Array;
  private host = 0;
  /** the memory map's constants (exported WASM globals), by name */
  readonly k: Readonly<Record<string, number>>;

  constructor(raw: RawExports) {
    this.raw = raw;
    const k: Record<string, number> = {};
    for (const [name, v] of Object.entries(raw)) if (v instanceof WebAssembly.Global) k[name] = v.value >>> 0;
    this.k = k;
    this.buffer = raw.memory.buffer;
    this.u32v = new Uint32Array(this.buffer);
    this.f64v = new Float64Array(this.buffer);
  }

  /** Views over linear memory, re-made after it grew (old views go silently empty). */
  private views(): void {
    if (this.buffer !== this.raw.memory.buffer) {
      this.buffer = this.raw.memory.buffer;
      this.u32v = new Uint32Array(this.buffer);
      this.f64v = new Float64Array(this.buffer);
    }
  }

  init(totalPages: number, vmkPages: number, largePages: boolean, seed: number): void {
    this.host = this.raw.init(totalPages, vmkPages, largePages ? 1 : 0, seed >>> 0) >>> 0;
  }

  addVm(vm: number, pages: number, seed: number): boolean {
    return (this.raw.addVm(vm, pages, seed >>> 0) >>> 0) !== 0;
  }

  private vmAddr(vm: number): number {
    return this.host + this.k.HOST_RECORD + vm * this.k.VM_RECORD;
  }

  hostParam(index: number): number {
    this.views();
    return this.u32v[(this.host >>> 2) + index];
  }
  setHostParam(index: number, value: number): void {
    this.views();
    this.u32v[(this.host >>> 2) + index] = value >>> 0;
  }
  hostCounter(index: number): number {
    this.views();
    return this.f64v[((this.host + this.k.COUNTERS_AT) >>> 3) + index];
  }
  vmParam(vm: number, index: number): number {
    this.views();
    return this.u32v[(this.vmAddr(vm) >>> 2) + index];
  }
  setVmParam(vm: number, index: number, value: number): void {
    this.views();
    this.u32v[(this.vmAddr(vm) >>> 2) + index] = value >>> 0;
  }
  vmCounter(vm: number, index: number): number {
    this.views();
    return this.f64v[((this.vmAddr(vm) + this.k.COUNTERS_AT) >>> 3) + index];
  }
  /** All counters of a VM record at once (a copy). */
  vmCounters(vm: number): Float64Array {
    this.views();
    const at = (this.vmAddr(vm) + this.k.COUNTERS_AT) >>> 3;
    return this.f64v.slice(at, at + this.k.C_COUNTERS);
  }
  hostCounters(): Float64Array {
    this.views();
    const at = (this.host + this.k.COUNTERS_AT) >>> 3;
    return this.f64v.slice(at, at + this.k.H_COUNTERS);
  }
}

/** Instantiate a fresh engine (one per simulation: each has its own linear memory). */
export async function loadEngine(source?: EngineSource): Promise<Engine> {
  const module = await compile(source);
  const { exports } = await instantiate<Record<string, unknown>>(module, {});
  return new Engine(exports as unknown as RawExports);
}
