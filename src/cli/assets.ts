// uPlot's browser build and stylesheet read from node_modules, for the HTML report the CLI writes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { ReportAssets } from "../report/html.js";

let cached: ReportAssets | undefined;

export function reportAssets(): ReportAssets {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  cached = {
    uplotJs: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    uplotCss: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  };
  return cached;
}
