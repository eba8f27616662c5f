// vmemsim's public API: browser-safe (no node: imports here or below, except the engine loader's
// dynamic read of a file: URL in Node).
export { createSimulation, Simulation, InvariantError } from "./sim/simulation.js";
export type { Sample, EventRecord, RunOptions, SimulationOptions, VmState } from "./sim/simulation.js";
export { HOST_COLUMNS, VM_COLUMNS } from "./sim/counters.js";
export type { HostRow, VmRow } from "./sim/counters.js";
export { loadEngine, Engine } from "./engine.js";
export type { EngineSource } from "./engine.js";
export { parseScenarioText, normalizeScenario, ScenarioError } from "./scenario/load.js";
export { scenarioJsonSchema } from "./scenario/schema.js";
export { DEFAULT_SCENARIO_YAML } from "./scenario/default.js";
export { HOST_SETTINGS, VM_SETTINGS, KSM_KNOBS } from "./scenario/settings.js";
export type * from "./scenario/types.js";
export { csvLine, csvRow } from "./outputs/csv.js";
export { SummaryBuilder } from "./outputs/summary.js";
export { esxtopScreen } from "./outputs/table.js";
export { EsxtopCsv, ESXTOP_HOST_NAMES, ESXTOP_VM_NAMES, PDH_HEADER } from "./outputs/esxtop-csv.js";
export type { EsxtopCsvOptions } from "./outputs/esxtop-csv.js";
export { reportHtml, ReportBuilder, reportDataFromFiles, chartsRuntime } from "./report/index.js";
export type { ReportData, ReportAssets, ChartSource, ChartKind } from "./report/index.js";
export { VERSION } from "./version.js";
