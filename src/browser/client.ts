// The page side of the worker protocol: start a run, receive samples, change knobs mid-run,
// pause, resume, change speed, stop. Wraps a Worker that runs worker.ts.
import type { Sample } from "../sim/simulation.js";
import type { Scenario, Shares } from "../scenario/types.js";
import type { HostSettings, KsmKnobs, VmSettings } from "../scenario/settings.js";
import type { FromWorker, Knob, StartMessage, ToWorker } from "./protocol.js";

export type DoneMessage = Extract<FromWorker, { type: "done" }>;
export type KnobReply = Extract<FromWorker, { type: "knob" }>;

/** The subset of Worker this needs (a real Worker, or a MessagePort-like stand-in). */
export interface WorkerLike {
  postMessage(message: ToWorker): void;
  addEventListener(type: "message", listener: (ev: MessageEvent<FromWorker>) => void): void;
  addEventListener(type: "error", listener: (ev: ErrorEvent) => void): void;
  terminate?(): void;
}

export interface RunHandlers {
  onStarted?: (scenario: Scenario, vms: string[]) => void;
  onSample?: (sample: Sample) => void;
  onPaused?: (time: number) => void;
  onResumed?: (time: number) => void;
}

export class SimulationWorker {
  private handlers: RunHandlers = {};
  private pending: { resolve: (d: DoneMessage) => void; reject: (e: Error) => void } | null = null;
  private knobs = new Map<number, (r: KnobReply) => void>();
  private nextKnob = 1;

  constructor(readonly worker: WorkerLike) {
    worker.addEventListener("message", (ev: MessageEvent<FromWorker>) => this.receive(ev.data));
    worker.addEventListener("error", (ev: ErrorEvent) => {
      this.pending?.reject(new Error(`vmemsim worker failed: ${ev.message || "could not start (see the console)"}`));
      this.pending = null;
    });
  }

  /** Run a scenario to its end (or until stop()); resolves with the summary. */
  run(start: Omit<StartMessage, "type">, handlers: RunHandlers = {}): Promise<DoneMessage> {
    if (this.pending) return Promise.reject(new Error("a run is in progress: stop it first"));
    this.handlers = handlers;
    return new Promise<DoneMessage>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ type: "start", ...start });
    });
  }

  /** Change host settings (ESXi advanced settings by name) or KSM knobs now. */
  setHost(settings: Partial<HostSettings>, ksm?: Partial<KsmKnobs>): Promise<KnobReply> {
    return this.knob({ kind: "setHost", settings: settings as Record<string, number>, ksm: ksm as Record<string, number> | undefined });
  }

  /** Change VMs' reservation / limit (bytes; null = unlimited) / shares / .vmx settings now. */
  setVm(vms: string | string[], change: { reservation?: number; limit?: number | null; shares?: Shares; settings?: Partial<VmSettings> }): Promise<KnobReply> {
    return this.knob({ kind: "setVm", vms: Array.isArray(vms) ? vms : [vms], ...change, settings: change.settings as Record<string, number> | undefined });
  }

  knob(knob: Knob): Promise<KnobReply> {
    const id = this.nextKnob++;
    return new Promise((resolve) => {
      this.knobs.set(id, resolve);
      this.worker.postMessage({ type: "knob", knob, id });
    });
  }

  pause(): void {
    this.worker.postMessage({ type: "pause" });
  }
  resume(): void {
    this.worker.postMessage({ type: "resume" });
  }
  /** simulated seconds per wall-clock second; 0 = as fast as possible */
  setSpeed(speed: number): void {
    this.worker.postMessage({ type: "speed", speed });
  }
  stop(): void {
    this.worker.postMessage({ type: "stop" });
  }
  terminate(): void {
    this.worker.terminate?.();
    this.pending?.reject(new Error("the worker was terminated"));
    this.pending = null;
  }

  private receive(msg: FromWorker): void {
    switch (msg.type) {
      case "started":
        this.handlers.onStarted?.(msg.scenario, msg.vms);
        break;
      case "sample":
        this.handlers.onSample?.(msg.sample);
        break;
      case "paused":
        this.handlers.onPaused?.(msg.time);
        break;
      case "resumed":
        this.handlers.onResumed?.(msg.time);
        break;
      case "knob": {
        const r = msg.id !== undefined ? this.knobs.get(msg.id) : undefined;
        if (msg.id !== undefined) this.knobs.delete(msg.id);
        r?.(msg);
        break;
      }
      case "done":
        this.pending?.resolve(msg);
        this.pending = null;
        break;
      case "error": {
        const err = new Error(msg.message) as Error & { kind?: string };
        err.kind = msg.kind;
        this.pending?.reject(err);
        this.pending = null;
        break;
      }
    }
  }
}
