// The simulation side of the worker protocol (protocol.ts), written against a minimal port so the
// same code runs in a Web Worker (worker.ts) and in tests. One simulation at a time: `start` runs
// it in chunks of one sample period, yielding between chunks so that knob changes, pause, speed
// and stop messages are handled mid-run; each sample is posted as it is taken.
import { createSimulation, type Simulation } from "../sim/simulation.js";
import { parseScenarioText, ScenarioError } from "../scenario/load.js";
import { SummaryBuilder } from "../outputs/summary.js";
import type { Scenario } from "../scenario/types.js";
import { compileWasm } from "./wasm.js";
import { knobEvent } from "./knobs.js";
import type { FromWorker, StartMessage, ToWorker } from "./protocol.js";

export interface Port {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (ev: { data: ToWorker }) => void): void;
}

/** A zero-delay yield to the event loop (setTimeout(0) is clamped to 4 ms when nested). */
function yieldNow(): Promise<void> {
  if (typeof MessageChannel === "undefined") return new Promise((r) => setTimeout(r, 0));
  return new Promise((r) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      r();
    };
    ch.port2.postMessage(0);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function serveSimulation(port: Port, base?: string): void {
  let sim: Simulation | null = null;
  let running = false;
  let paused = false;
  let stopped = false;
  let speed = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    wake?.();
    wake = null;
  };

  port.addEventListener("message", (ev) => {
    const msg = ev.data;
    switch (msg.type) {
      case "start":
        if (running) {
          port.postMessage({ type: "error", kind: "internal", message: "a simulation is already running in this worker: stop it first" });
          return;
        }
        void start(msg);
        break;
      case "knob": {
        if (!sim) {
          port.postMessage({ type: "knob", id: msg.id, ok: false, message: "no simulation is running", records: [] });
          return;
        }
        try {
          const event = knobEvent(msg.knob, sim.scenario, sim.time);
          const before = sim.log.length;
          sim.applyNow(event);
          const records = sim.log.slice(before);
          port.postMessage({ type: "knob", id: msg.id, ok: true, message: records.map((r) => r.message).join("; "), records });
        } catch (err) {
          port.postMessage({ type: "knob", id: msg.id, ok: false, message: (err as Error).message, records: [] });
        }
        break;
      }
      case "pause":
        paused = true;
        break;
      case "resume":
        paused = false;
        poke();
        break;
      case "speed":
        speed = Number.isFinite(msg.speed) && msg.speed > 0 ? msg.speed : 0;
        poke();
        break;
      case "stop":
        stopped = true;
        poke();
        break;
    }
  });

  async function start(msg: StartMessage): Promise<void> {
    running = true;
    paused = false;
    stopped = false;
    speed = msg.speed && msg.speed > 0 ? msg.speed : 0;
    try {
      let scenario: Scenario;
      try {
        scenario = typeof msg.scenario === "string" ? parseScenarioText(msg.scenario, "scenario") : structuredClone(msg.scenario);
      } catch (err) {
        if (err instanceof ScenarioError) {
          port.postMessage({ type: "error", kind: "scenario", message: err.message });
          return;
        }
        throw err;
      }
      if (msg.seed !== undefined) scenario.seed = msg.seed >>> 0;
      if (msg.duration !== undefined && msg.duration > 0) scenario.duration = msg.duration;
      const wasm = msg.wasm === undefined ? undefined : await compileWasm(msg.wasm, base);
      sim = await createSimulation(scenario, { wasm });
      const s = sim;
      port.postMessage({ type: "started", scenario: s.scenario, vms: s.vms.map((v) => v.config.name) });
      const summary = new SummaryBuilder();
      const until = s.scenario.duration;
      const chunk = s.scenario.sampleEvery;
      const wall0 = performance.now();
      let paceWall = wall0;
      let paceSim = 0;
      while (s.time < until - 1e-9 && !stopped) {
        if (paused) {
          port.postMessage({ type: "paused", time: s.time });
          while (paused && !stopped) await new Promise<void>((r) => (wake = r));
          port.postMessage({ type: "resumed", time: s.time });
          paceWall = performance.now();
          paceSim = s.time;
          continue;
        }
        const next = Math.min(until, (Math.floor(s.time / chunk + 1e-9) + 1) * chunk);
        await s.run({
          until: next,
          onSample: (sample) => {
            summary.add(sample);
            port.postMessage({ type: "sample", sample });
          },
        });
        if (speed > 0) {
          const due = paceWall + ((s.time - paceSim) / speed) * 1000;
          const wait = due - performance.now();
          if (wait > 0) await Promise.race([sleep(wait), new Promise<void>((r) => (wake = r))]);
          if (performance.now() - due > 1000) {
            paceWall = performance.now();
            paceSim = s.time;
          }
        } else {
          await yieldNow();
          paceWall = performance.now();
          paceSim = s.time;
        }
      }
      port.postMessage({
        type: "done",
        time: s.time,
        aborted: stopped && s.time < until - 1e-9,
        summary: summary.build(s.scenario.name, s.scenario.seed, s.time),
        wallSeconds: (performance.now() - wall0) / 1000,
      });
    } catch (err) {
      port.postMessage({ type: "error", kind: "internal", message: (err as Error).message ?? String(err) });
    } finally {
      running = false;
      wake = null;
    }
  }
}
