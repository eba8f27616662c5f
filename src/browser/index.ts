// vmemsim's browser entry (ESM): the whole public API, plus what a page needs: compiling the
// engine from a URL or bytes, a Web Worker that runs a simulation off the page's thread
// (worker.ts, driven by SimulationWorker), and the charts and HTML report. docs/browser.md.
export * from "../index.js";
export { compileWasm } from "./wasm.js";
export { SimulationWorker } from "./client.js";
export type { DoneMessage, KnobReply, RunHandlers, WorkerLike } from "./client.js";
export type { FromWorker, ToWorker, Knob, StartMessage, WasmSource } from "./protocol.js";
export { knobEvent } from "./knobs.js";
export { serveSimulation } from "./serve.js";
export type { Port } from "./serve.js";
export { EsxtopCsv } from "../outputs/esxtop-csv.js";
export * from "../report/index.js";
