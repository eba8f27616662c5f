// Messages between a page and the simulation worker (worker.ts). Everything here is structured-
// cloneable: plain objects, strings, numbers, ArrayBuffers and WebAssembly.Modules.
import type { EventRecord, Sample } from "../sim/simulation.js";
import type { Scenario, Shares } from "../scenario/types.js";
import type { Summary } from "../outputs/summary.js";

/** Where the worker gets the engine: a URL (absolute, or relative to the worker), bytes or a compiled module. */
export type WasmSource = string | BufferSource | WebAssembly.Module;

/**
 * A knob changed mid-run: host settings (ESXi advanced settings by name: Mem.IdleTax,
 * Mem.ShareForceSalting, Mem.MemZipEnable, …, or KSM knobs), or a VM's reservation, limit, shares
 * and .vmx settings. Sizes in bytes. The worker checks names and ranges against the settings
 * tables, then applies the change through Simulation.applyNow: the same path as scenario events.
 */
export type Knob =
  | { kind: "setHost"; settings?: Record<string, number>; ksm?: Record<string, number> }
  | { kind: "setVm"; vms: string[]; reservation?: number; limit?: number | null; shares?: Shares; settings?: Record<string, number> };

export interface StartMessage {
  type: "start";
  /** scenario text (YAML or JSON, as in a file) or an already normalized scenario */
  scenario: string | Scenario;
  /** the engine; default: build/vmemsim.wasm beside the package (what a bundler resolves) */
  wasm?: WasmSource;
  seed?: number;
  /** simulated seconds to run (default: the scenario's duration) */
  duration?: number;
  /** simulated seconds per wall-clock second; 0 (default) = as fast as the engine goes */
  speed?: number;
}

export type ToWorker =
  | StartMessage
  | { type: "knob"; knob: Knob; id?: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "speed"; speed: number }
  | { type: "stop" };

export type FromWorker =
  | { type: "started"; scenario: Scenario; vms: string[] }
  | { type: "sample"; sample: Sample }
  /** a knob change: applied (records: what the simulation logged) or refused (message) */
  | { type: "knob"; id?: number; ok: boolean; message: string; records: EventRecord[] }
  | { type: "paused"; time: number }
  | { type: "resumed"; time: number }
  | { type: "done"; time: number; aborted: boolean; summary: Summary; wallSeconds: number }
  | { type: "error"; message: string; kind: "scenario" | "internal" };
