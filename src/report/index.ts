// The HTML report (docs/reports.md): data gathered from a run or an output folder, rendered into
// one self-contained HTML file with uPlot charts. Browser-safe.
export { reportHtml, escapeHtml, scriptJson, MAX_VM_CARDS } from "./html.js";
export type { ReportAssets } from "./html.js";
export { ReportBuilder, reportDataFromFiles, parseCsv, ReportInputError, scenarioYaml } from "./data.js";
export type { ReportData, ReportVm, SummaryLike, Cell } from "./data.js";
export { chartsRuntime } from "./charts.js";
export type { ChartSource, ChartKind, ChartsRuntime, Columns, VmemsimChart } from "./charts.js";
