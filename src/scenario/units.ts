// Units used in scenario files: sizes (bytes), times (seconds), rates (per second), and formatters
// for messages. Browser-safe: no Node imports.
//
// Sizes: a plain number is bytes; a number with a unit is binary, whatever the spelling:
//   B; K, KB, KiB = 1024; M, MB, MiB = 1024^2; G, GB, GiB = 1024^3; T, TB, TiB = 1024^4.
// MB/GB mean MiB/GiB as they do in ESXi and vSphere (the UI and .vmx files say "MB" for 2^20 bytes).
// Units are case-insensitive ("8gib" == "8GiB"); a space between number and unit is allowed.
// Fractions are allowed ("1.5GiB"); the loader rounds sizes UP to a multiple of the 4 KiB page.
//
// Times: a plain number is seconds; otherwise one or more number+unit parts, units ms, s (sec),
// m (min), h, d, lower case: "90s", "500ms", "2h", "1h30m".
//
// Rates: a plain number is per second; otherwise number "/" unit with unit s (sec), m (min), h:
// "20000/s", "1200/min".

export const PAGE_SIZE = 4096;
export const KiB = 1024;
export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

/** Largest size any field accepts (1 PiB): keeps every byte count an exact double. */
export const MAX_SIZE = 2 ** 50;

const NUM = String.raw`(?:\d+(?:\.\d+)?|\.\d+)`;

/** Size strings, for the JSON Schema too (no flags: case-insensitivity spelled out). */
export const SIZE_PATTERN = String.raw`^\s*${NUM}\s*(?:[bB]|[kKmMgGtT](?:[iI]?[bB])?)?\s*$`;
/** Time strings (one or more parts) */
export const TIME_PATTERN = String.raw`^\s*(?:${NUM}\s*(?:ms|sec|min|s|m|h|d)\s*)+$|^\s*${NUM}\s*$`;
/** Rate strings */
export const RATE_PATTERN = String.raw`^\s*${NUM}\s*(?:/\s*(?:sec|min|s|m|h))?\s*$`;

const SIZE_RE = new RegExp(String.raw`^\s*(${NUM})\s*([bB]|[kKmMgGtT](?:[iI]?[bB])?)?\s*$`);
const TIME_PART_RE = new RegExp(String.raw`\s*(${NUM})\s*(ms|sec|min|s|m|h|d)\s*`, "y");
const PLAIN_RE = new RegExp(String.raw`^\s*(${NUM})\s*$`);
const RATE_RE = new RegExp(String.raw`^\s*(${NUM})\s*(?:/\s*(sec|min|s|m|h))?\s*$`);

const SIZE_UNITS: Record<string, number> = { b: 1, k: KiB, m: MiB, g: GiB, t: TiB };
const TIME_UNITS: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400 };
const RATE_UNITS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600 };

/** Thrown by the parsers; the loader turns it into a ScenarioError with the field path. */
export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnitError";
  }
}

export const SIZE_HELP = "a size: bytes, or a number with a unit B, KiB, MiB, GiB, TiB (KB/MB/GB/TB mean the same), e.g. 8GiB";
export const TIME_HELP = "a time: seconds, or number+unit with ms, s, m, h, d, e.g. 90s, 30m, 1h30m";
export const RATE_HELP = "a rate: per second, or number/unit with s, min, h, e.g. 20000/s, 1200/min";

function finiteNumber(value: number, help: string): number {
  if (!Number.isFinite(value)) throw new UnitError(`must be ${help} (got ${String(value)})`);
  return value;
}

/** Size in bytes (not rounded; may be fractional). Negative numbers are refused. */
export function parseSize(value: unknown): number {
  let bytes: number;
  if (typeof value === "number") bytes = finiteNumber(value, SIZE_HELP);
  else if (typeof value === "string") {
    const m = SIZE_RE.exec(value);
    if (!m) throw new UnitError(`must be ${SIZE_HELP} (got ${JSON.stringify(value)})`);
    const unit = m[2] ? SIZE_UNITS[m[2][0].toLowerCase()] : 1;
    bytes = Number(m[1]) * unit;
  } else throw new UnitError(`must be ${SIZE_HELP} (got ${describe(value)})`);
  if (bytes < 0) throw new UnitError(`must not be negative (got ${describe(value)})`);
  if (bytes > MAX_SIZE) throw new UnitError(`must be at most ${formatBytes(MAX_SIZE)} (got ${describe(value)})`);
  return bytes;
}

/** Round a byte count up to the next multiple of the 4 KiB page. */
export function roundUpToPage(bytes: number): number {
  const pages = Math.ceil(bytes / PAGE_SIZE - 1e-9); // the epsilon absorbs float noise in "0.3GiB"-like products
  return pages > 0 ? pages * PAGE_SIZE : 0;
}

/** Size in bytes rounded up to a 4 KiB multiple. */
export function parsePageSize(value: unknown): number {
  return roundUpToPage(parseSize(value));
}

/** Time in seconds. Negative numbers are refused. */
export function parseTime(value: unknown): number {
  let seconds: number;
  if (typeof value === "number") seconds = finiteNumber(value, TIME_HELP);
  else if (typeof value === "string") {
    const plain = PLAIN_RE.exec(value);
    if (plain) seconds = Number(plain[1]);
    else {
      seconds = 0;
      TIME_PART_RE.lastIndex = 0;
      let parts = 0;
      while (TIME_PART_RE.lastIndex < value.length) {
        const m = TIME_PART_RE.exec(value);
        if (!m) throw new UnitError(`must be ${TIME_HELP} (got ${JSON.stringify(value)})`);
        seconds += Number(m[1]) * TIME_UNITS[m[2]];
        parts++;
      }
      if (parts === 0) throw new UnitError(`must be ${TIME_HELP} (got ${JSON.stringify(value)})`);
      // 0.001 steps: keep "500ms" exactly 0.5 and "1.1s" exactly 1.1
      seconds = Math.round(seconds * 1e9) / 1e9;
    }
  } else throw new UnitError(`must be ${TIME_HELP} (got ${describe(value)})`);
  if (seconds < 0) throw new UnitError(`must not be negative (got ${describe(value)})`);
  return seconds;
}

/** Rate per second. Negative numbers are refused. */
export function parseRate(value: unknown): number {
  let perSecond: number;
  if (typeof value === "number") perSecond = finiteNumber(value, RATE_HELP);
  else if (typeof value === "string") {
    const m = RATE_RE.exec(value);
    if (!m) throw new UnitError(`must be ${RATE_HELP} (got ${JSON.stringify(value)})`);
    perSecond = Number(m[1]) / (m[2] ? RATE_UNITS[m[2]] : 1);
  } else throw new UnitError(`must be ${RATE_HELP} (got ${describe(value)})`);
  if (perSecond < 0) throw new UnitError(`must not be negative (got ${describe(value)})`);
  return perSecond;
}

function trimNumber(x: number, decimals: number): string {
  return x.toFixed(decimals).replace(/\.?0+$/, "");
}

/** 8589934592 → "8 GiB", 1610612736 → "1.5 GiB", 100 → "100 B" (at most 2 decimals). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const sign = bytes < 0 ? "-" : "";
  const abs = Math.abs(bytes);
  const units: [string, number][] = [["TiB", TiB], ["GiB", GiB], ["MiB", MiB], ["KiB", KiB]];
  for (const [name, size] of units) {
    if (abs >= size) return `${sign}${trimNumber(abs / size, 2)} ${name}`;
  }
  return `${sign}${trimNumber(abs, 2)} B`;
}

/** 7200 → "2h", 5400 → "1h30m", 0.5 → "500ms", 0 → "0s"; parseTime() reads the output back. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  if (seconds < 0) return `-${formatSeconds(-seconds)}`;
  if (seconds === 0) return "0s";
  if (seconds < 1) return `${trimNumber(seconds * 1000, 3)}ms`;
  let rest = seconds;
  let out = "";
  for (const [name, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
    const n = Math.floor(rest / size + 1e-9);
    if (n > 0) {
      out += `${n}${name}`;
      rest -= n * size;
    }
  }
  rest = Math.round(rest * 1000) / 1000;
  if (rest > 0) out += `${trimNumber(rest, 3)}s`;
  return out || "0s";
}

/** 20000 → "20000/s" */
export function formatRate(perSecond: number): string {
  return `${trimNumber(perSecond, 3)}/s`;
}

/** A value for "(got ...)" in messages: JSON, cut to 60 characters. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
