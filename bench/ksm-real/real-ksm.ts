/**
 * Harness that runs the REAL Linux KSM (ksmd, /sys/kernel/mm/ksm) on a known
 * page pattern and reports its counters, as an oracle for the simulator's KSM
 * policy. See docs/validation.md, section "Real Linux KSM harness".
 *
 * - ksmAvailable(): can this machine/user drive KSM at all?
 * - withKsmKnobs(): save every writable knob, unmerge (run=2), apply knobs,
 *   run a callback, and always restore (also on throw, SIGINT, SIGTERM, exit).
 * - runRealKsm(): build and start bench/ksm-real/ksm-pages.c with a pattern,
 *   let ksmd merge it, sample the counters after every full scan and report.
 *
 * KSM state is global to the machine: runs are serialised by an in-process
 * queue and a lock file in the OS temp dir (other processes using the harness
 * wait for it). Other processes that have mergeable memory of their own are
 * not under our control: they are detected and reported in `warnings`.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomInt } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const KSM_DIR = "/sys/kernel/mm/ksm";

/** Counters reported by runRealKsm. */
export const KSM_COUNTERS = [
  "pages_shared",
  "pages_sharing",
  "pages_unshared",
  "pages_volatile",
  "ksm_zero_pages",
  "full_scans",
  "pages_scanned",
  "pages_skipped",
  "stable_node_chains",
  "stable_node_dups",
  "general_profit",
] as const;
export type KsmCounterName = (typeof KSM_COUNTERS)[number];
export type KsmCounters = Record<KsmCounterName, number>;

/** Cumulative counters: reported as deltas against the baseline. */
export const KSM_CUMULATIVE: readonly KsmCounterName[] = ["full_scans", "pages_scanned", "pages_skipped"];

/**
 * Knob values to apply. Numbers for the numeric knobs; `advisor_mode` takes
 * "none" or "scan-time". Unknown or read-only names are rejected.
 */
export type KsmKnobs = Partial<Record<string, number | string>>;

export type KsmAvailability = { ok: true } | { ok: false; reason: string };

export interface KsmPattern {
  /** D distinct contents ... */
  distinct?: number;
  /** ... each present in C pages (copy-major layout: page c*D+d holds content d). */
  copies?: number;
  /** Z zero-filled pages (touched, so really allocated). */
  zero?: number;
  /** U pages with unique content. */
  unique?: number;
  /**
   * The first K unique pages are made identical to each other and then
   * rewritten every few ms by a thread (same value in all K), so they would
   * merge if they held still. K <= unique.
   */
  volatile?: number;
  /** After convergence, write one byte into the first page of K distinct groups. K <= distinct. */
  writesAfterMerge?: number;
}

export interface RealKsmOptions {
  /** Give up waiting for convergence after this long (default 20 000 ms). */
  timeoutMs?: number;
  /** Poll period for full_scans (default 1 ms). */
  pollMs?: number;
  /** Converged when shared/sharing/zero stayed put for this many more full scans (default 2). */
  stableScans?: number;
  /** Complete full scans (started after the write) to wait after `write K` before reading afterWrites (default 2). */
  afterWriteScans?: number;
  /** Period of the volatile-page rewriting thread (default 2 ms). */
  volatilePeriodMs?: number;
  /** Called with every sample as it is taken. */
  onSample?: (s: KsmSample) => void;
}

/** One sample, taken right after full_scans advanced (values as in the result). */
export interface KsmSample {
  /** full_scans since the start (baseline subtracted). */
  fullScans: number;
  /** ms since run=1 was written. */
  tMs: number;
  pages_shared: number;
  pages_sharing: number;
  pages_unshared: number;
  pages_volatile: number;
  ksm_zero_pages: number;
  /** Cumulative, baseline subtracted. */
  pages_scanned: number;
  /** Cumulative, baseline subtracted. */
  pages_skipped: number;
  /** ksmd kept scanning through 50 re-reads: the counters may mix two moments */
  torn?: boolean;
}

export interface KsmAfterWrites extends KsmCounters {
  /** Pages written (= pattern.writesAfterMerge). */
  written: number;
  /**
   * ksmd was inside a full scan when the write landed; that scan was not
   * counted (afterWrites is read after `afterWriteScans` full scans that all
   * started after the write). With pages_to_scan < pages this is the rule.
   */
  writtenMidScan: boolean;
  /** Samples taken between the write and the read-out. */
  series: KsmSample[];
}

export interface RealKsmResult extends KsmCounters {
  /** shared/sharing/ksm_zero_pages stable for `stableScans` full scans before the timeout. */
  converged: boolean;
  /** full_scans delta at the first sample that already had the final shared/sharing/zero values; null if not converged. */
  fullScansToConverge: number | null;
  /** ms from run=1 to that sample; null if not converged. */
  msToConverge: number | null;
  /** One sample per observed full scan, starting with fullScans = 0 just before run=1. */
  series: KsmSample[];
  /** Full scans that completed between two polls and therefore have no sample. */
  missedScans: number;
  /** Counters `afterWriteScans` full scans after `write K` (only if writesAfterMerge > 0 and converged). */
  afterWrites?: KsmAfterWrites;
  /** Raw counter values read after the knobs were applied, before the child started. */
  baseline: KsmCounters;
  /** /proc/<child>/ksm_stat at convergence (per-process view of the same merge). */
  childKsmStat: Record<string, number | string>;
  /** Every writable knob as it was during the run (raw strings). */
  knobs: Record<string, string>;
  /** Pages mapped by the child. */
  pages: number;
  /** Wall time of the whole run, spawn to exit (ms). */
  wallMs: number;
  /** Anything that may make the counters not purely ours (foreign mergeable processes, ...). */
  warnings: string[];
}

// ---------------------------------------------------------------------------
// sysfs helpers (synchronous on purpose: the same code runs in signal handlers)

const knobPath = (name: string): string => path.join(KSM_DIR, name);

function readRaw(name: string): string {
  return fs.readFileSync(knobPath(name), "utf8").trim();
}

/** Knob value as written back: advisor_mode "[none] scan-time" -> "none". */
function readKnob(name: string): string {
  const raw = readRaw(name);
  const sel = /\[([^\]]+)\]/.exec(raw);
  return sel ? sel[1]! : raw;
}

function readNum(name: string): number {
  return Number(readRaw(name));
}

function writeKnob(name: string, value: string | number): void {
  try {
    fs.writeFileSync(knobPath(name), String(value));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot write ${value} to ${knobPath(name)}: ${err.code ?? err.message}`);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Names of all knob files in /sys/kernel/mm/ksm that have a write bit. */
export function writableKnobNames(): string[] {
  return fs
    .readdirSync(KSM_DIR)
    .filter((n) => {
      try {
        return (fs.statSync(knobPath(n)).mode & 0o222) !== 0;
      } catch {
        return false;
      }
    })
    .sort();
}

/** Current value of every writable knob (advisor_mode as its selected word). */
export function readKsmKnobs(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of writableKnobNames()) out[n] = readKnob(n);
  return out;
}

/** Current raw values of the reported counters. */
export function readKsmCounters(): KsmCounters {
  const out = {} as KsmCounters;
  for (const n of KSM_COUNTERS) out[n] = fs.existsSync(knobPath(n)) ? readNum(n) : 0;
  return out;
}

// ---------------------------------------------------------------------------
// availability

let availCache: KsmAvailability | undefined;

export function ksmAvailable(): KsmAvailability {
  if (availCache) return availCache;
  availCache = probe();
  return availCache;
}

function probe(): KsmAvailability {
  if (process.env.VMEMSIM_SKIP_REAL_KSM) return { ok: false, reason: "VMEMSIM_SKIP_REAL_KSM is set" };
  if (process.platform !== "linux") return { ok: false, reason: `not Linux (${process.platform})` };
  const run = knobPath("run");
  if (!fs.existsSync(run)) return { ok: false, reason: `${run} is missing (kernel without CONFIG_KSM?)` };
  try {
    fs.accessSync(run, fs.constants.W_OK);
    // access() is not enough inside some containers: write the value back.
    fs.writeFileSync(run, readRaw("run"));
  } catch (e) {
    return { ok: false, reason: `${run} is not writable (${(e as NodeJS.ErrnoException).code ?? e}); run as root` };
  }
  const cc = spawnSync("cc", ["--version"], { stdio: "ignore" });
  if (cc.error || cc.status !== 0) return { ok: false, reason: "no C compiler: `cc` not found on PATH" };
  return { ok: true };
}

// ---------------------------------------------------------------------------
// save / apply / restore

interface Snapshot {
  saved: Record<string, string>;
  restored: boolean;
}

const NEEDS_EMPTY_STABLE_TREE = ["max_page_sharing", "merge_across_nodes"];

function applyKnobs(knobs: KsmKnobs, writable: readonly string[]): void {
  for (const [k, v] of Object.entries(knobs)) {
    if (v === undefined) continue;
    if (!writable.includes(k)) throw new Error(`unknown or read-only KSM knob: ${k}`);
  }
  // Unmerge everything first: max_page_sharing and merge_across_nodes can only
  // change while no page is shared, and nothing of others' should be counted.
  writeKnob("run", 2);
  const entries = Object.entries(knobs).filter(([k, v]) => v !== undefined && k !== "run") as [string, string | number][];
  const rank = (k: string): number => (k === "advisor_mode" ? 0 : NEEDS_EMPTY_STABLE_TREE.includes(k) ? 1 : 2);
  entries.sort((a, b) => rank(a[0]) - rank(b[0]));
  for (const [k, v] of entries) {
    if (readKnob(k) === String(v)) continue;
    writeWithRetry(k, v);
  }
  if (knobs.run !== undefined) writeKnob("run", knobs.run);
}

function writeWithRetry(k: string, v: string | number): void {
  for (let attempt = 0; ; attempt++) {
    try {
      writeKnob(k, v);
      return;
    } catch (e) {
      // EBUSY: a stable node still had a mapped page (racing exit); unmerge again.
      if (attempt >= 20 || !NEEDS_EMPTY_STABLE_TREE.includes(k)) throw e;
      writeKnob("run", 0);
      writeKnob("run", 2);
      sleepSync(25);
    }
  }
}

/** Restore every saved knob; returns the problems (empty when all is back). */
function restoreSnapshot(snap: Snapshot): string[] {
  if (snap.restored) return [];
  snap.restored = true;
  const errors: string[] = [];
  const attempt = (f: () => void): void => {
    try {
      f();
    } catch (e) {
      errors.push((e as Error).message);
    }
  };
  const { saved } = snap;
  // 1. stop and unmerge whatever we merged (also frees exited children's slots)
  attempt(() => writeKnob("run", 2));
  // 2. advisor off, or pages_to_scan is read-only (EINVAL)
  if ("advisor_mode" in saved) attempt(() => readKnob("advisor_mode") !== "none" && writeKnob("advisor_mode", "none"));
  // 3. plain knobs, then the advisor's numbers, then the advisor mode, then run
  const plain = Object.keys(saved).filter((k) => k !== "run" && !k.startsWith("advisor_"));
  plain.sort((a, b) => Number(NEEDS_EMPTY_STABLE_TREE.includes(b)) - Number(NEEDS_EMPTY_STABLE_TREE.includes(a)));
  for (const k of plain) attempt(() => readKnob(k) !== saved[k] && writeWithRetry(k, saved[k]!));
  for (const k of Object.keys(saved).filter((k) => k.startsWith("advisor_") && k !== "advisor_mode")) {
    attempt(() => readKnob(k) !== saved[k] && writeKnob(k, saved[k]!));
  }
  if (saved.advisor_mode !== undefined && saved.advisor_mode !== "none") {
    attempt(() => writeKnob("advisor_mode", saved.advisor_mode!));
  }
  attempt(() => writeKnob("run", saved.run ?? "0"));
  // 4. verify
  for (const [k, v] of Object.entries(saved)) {
    // Under the scan-time advisor pages_to_scan is the advisor's to set.
    if (k === "pages_to_scan" && saved.advisor_mode !== undefined && saved.advisor_mode !== "none") continue;
    attempt(() => {
      const now = readKnob(k);
      if (now !== v) throw new Error(`knob ${k} is ${now} after restore, expected ${v}`);
    });
  }
  return errors;
}

// Active state, for signal / exit handlers.
const activeSnapshots: Snapshot[] = [];
const activeChildren = new Set<ChildProcess>();
const scope = new AsyncLocalStorage<true>();
let queue: Promise<unknown> = Promise.resolve();
let lockFd: number | undefined;

export const KSM_LOCK_FILE = path.join(os.tmpdir(), "vmemsim-ksm-real.lock");

function emergencyRestore(): void {
  for (const c of activeChildren) {
    try {
      c.kill("SIGKILL");
    } catch {
      /* already gone */
    }
  }
  activeChildren.clear();
  // innermost first, so that the outermost (original) values win
  while (activeSnapshots.length > 0) restoreSnapshot(activeSnapshots.pop()!);
  releaseLock();
}

const onSignal = (sig: NodeJS.Signals): void => {
  emergencyRestore();
  removeHandlers();
  // Keep the default behaviour (terminate) unless someone else handles it.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
};
const onExit = (): void => emergencyRestore();
let handlersOn = false;

function installHandlers(): void {
  if (handlersOn) return;
  handlersOn = true;
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  process.on("exit", onExit);
}

function removeHandlers(): void {
  if (!handlersOn) return;
  handlersOn = false;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.off("SIGHUP", onSignal);
  process.off("exit", onExit);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function acquireLock(timeoutMs = 180_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      lockFd = fs.openSync(KSM_LOCK_FILE, "wx");
      fs.writeSync(lockFd, `${process.pid}\n`);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder = NaN;
    let ageMs = 0;
    try {
      ageMs = Date.now() - fs.statSync(KSM_LOCK_FILE).mtimeMs;
      holder = Number.parseInt(fs.readFileSync(KSM_LOCK_FILE, "utf8"), 10);
    } catch {
      continue; // vanished meanwhile
    }
    // No pid yet: being created right now (or its creator died at once).
    const stale = Number.isFinite(holder) ? !pidAlive(holder) : ageMs > 5000;
    if (stale) {
      recoverStaleLock();
      continue;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`KSM harness lock ${KSM_LOCK_FILE} held by pid ${holder}`);
    await sleep(100);
  }
}

/**
 * The holder died without restoring (SIGKILL, OOM, power...): its lock file
 * still holds the knob values it found, so put them back before going on.
 */
function recoverStaleLock(): void {
  let content = "";
  try {
    content = fs.readFileSync(KSM_LOCK_FILE, "utf8");
  } catch {
    return; // someone else recovered it
  }
  const json = content.split("\n")[1];
  if (json) {
    try {
      const errors = restoreSnapshot({ saved: JSON.parse(json) as Record<string, string>, restored: false });
      console.warn(
        `[real-ksm] restored the KSM knobs saved by dead process ${content.split("\n")[0]}` +
          (errors.length ? ` (problems: ${errors.join("; ")})` : ""),
      );
    } catch {
      /* unreadable snapshot: nothing we can do */
    }
  }
  try {
    if (fs.readFileSync(KSM_LOCK_FILE, "utf8") === content) fs.unlinkSync(KSM_LOCK_FILE);
  } catch {
    /* someone else took it */
  }
}

/** Record the outermost snapshot in the lock file, for recoverStaleLock(). */
function persistSnapshot(saved: Record<string, string>): void {
  if (lockFd === undefined) return;
  const text = `${process.pid}\n${JSON.stringify(saved)}\n`;
  fs.ftruncateSync(lockFd, 0);
  fs.writeSync(lockFd, text, 0);
}

function releaseLock(): void {
  if (lockFd === undefined) return;
  try {
    fs.closeSync(lockFd);
    fs.unlinkSync(KSM_LOCK_FILE);
  } catch {
    /* ignore */
  }
  lockFd = undefined;
}

/**
 * Save every writable knob in /sys/kernel/mm/ksm, write run=2 (stop + unmerge
 * everything, also resets full_scans to 0), apply `knobs` (run last, if given;
 * otherwise run stays 2 = stopped), run `fn`, and always restore all knobs,
 * run last, to the values found — also if fn throws, and on SIGINT / SIGTERM /
 * SIGHUP / process exit while active. Calls are serialised (in-process queue,
 * cross-process lock file); nested calls from inside `fn` are allowed. The
 * lock file also keeps the saved values, so if the holder is SIGKILLed the
 * next caller (any process) restores them before doing anything else.
 * If fn succeeded but the restore failed, the returned promise rejects.
 */
export async function withKsmKnobs<T>(knobs: KsmKnobs, fn: () => Promise<T>): Promise<T> {
  if (scope.getStore()) return runScoped(knobs, fn); // nested
  const prev = queue;
  let done!: () => void;
  queue = new Promise<void>((r) => (done = r));
  try {
    await prev.catch(() => undefined);
    await acquireLock();
    try {
      return await scope.run(true, () => runScoped(knobs, fn));
    } finally {
      releaseLock();
    }
  } finally {
    done();
  }
}

async function runScoped<T>(knobs: KsmKnobs, fn: () => Promise<T>): Promise<T> {
  const writable = writableKnobNames();
  const snap: Snapshot = { saved: {}, restored: false };
  for (const k of writable) snap.saved[k] = readKnob(k);
  if (activeSnapshots.length === 0) persistSnapshot(snap.saved);
  activeSnapshots.push(snap);
  installHandlers();
  let result: T;
  try {
    applyKnobs(knobs, writable);
    result = await fn();
  } catch (e) {
    finish(snap);
    throw e;
  }
  const errors = finish(snap);
  if (errors.length > 0) throw new Error(`KSM knobs not fully restored: ${errors.join("; ")}`);
  return result;
}

function finish(snap: Snapshot): string[] {
  const errors = restoreSnapshot(snap);
  const i = activeSnapshots.indexOf(snap);
  if (i >= 0) activeSnapshots.splice(i, 1);
  if (activeSnapshots.length === 0) removeHandlers();
  return errors;
}

// ---------------------------------------------------------------------------
// the C helper

const HERE = path.dirname(fileURLToPath(import.meta.url));
const C_SOURCE = path.join(HERE, "ksm-pages.c");

/** Compile ksm-pages.c (cached by source hash) into build/ksm-real/ (or the temp dir). */
export function buildKsmPages(): string {
  const src = fs.readFileSync(C_SOURCE);
  const hash = createHash("sha256").update(src).digest("hex").slice(0, 12);
  const dirs = [path.resolve(HERE, "../../build/ksm-real"), path.join(os.tmpdir(), "vmemsim-ksm-real")];
  let lastErr = "";
  for (const dir of dirs) {
    const bin = path.join(dir, `ksm-pages-${hash}`);
    if (fs.existsSync(bin)) return bin;
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch {
      continue;
    }
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync("cc", ["-O2", "-Wall", "-pthread", "-o", tmp, C_SOURCE], { encoding: "utf8" });
    if (r.status === 0) {
      fs.renameSync(tmp, bin); // atomic: concurrent builders race harmlessly
      return bin;
    }
    lastErr = r.error ? String(r.error) : r.stderr;
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* not created */
    }
  }
  throw new Error(`cannot build ${C_SOURCE}: ${lastErr}`);
}

class PagesChild {
  readonly proc: ChildProcess;
  private lines: string[] = [];
  private waiters: ((l: string | null) => void)[] = [];
  private closed = false;
  stderr = "";
  readonly exited: Promise<number | null>;

  constructor(bin: string, args: string[]) {
    this.proc = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    activeChildren.add(this.proc);
    this.proc.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.proc.stdin!.on("error", () => undefined); // EPIPE if it died
    const rl = createInterface({ input: this.proc.stdout! });
    rl.on("line", (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
    rl.on("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code) => {
        activeChildren.delete(this.proc);
        resolve(code);
      });
      this.proc.on("error", () => {
        activeChildren.delete(this.proc);
        resolve(null);
      });
    });
  }

  async readLine(timeoutMs = 10_000): Promise<string> {
    const l =
      this.lines.shift() ??
      (this.closed
        ? null
        : await new Promise<string | null>((resolve) => {
            const t = setTimeout(() => {
              const i = this.waiters.indexOf(done);
              if (i >= 0) this.waiters.splice(i, 1);
              resolve(null);
            }, timeoutMs);
            const done = (x: string | null): void => {
              clearTimeout(t);
              resolve(x);
            };
            this.waiters.push(done);
          }));
    if (l === null) throw new Error(`ksm-pages: no answer (stderr: ${this.stderr.trim() || "-"})`);
    return l;
  }

  async command(cmd: string): Promise<string> {
    this.proc.stdin!.write(`${cmd}\n`);
    const l = await this.readLine();
    if (!l.startsWith("ok")) throw new Error(`ksm-pages: "${cmd}" -> ${l}`);
    return l;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.stdin!.end("exit\n");
      const t = setTimeout(() => this.proc.kill("SIGKILL"), 3000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

function readKsmStat(pid: number): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/ksm_stat`, "utf8").split("\n")) {
      const m = /^(\w+):?\s+(\S+)/.exec(line);
      if (m) out[m[1]!] = /^-?\d+$/.test(m[2]!) ? Number(m[2]) : m[2]!;
    }
  } catch {
    /* not available */
  }
  return out;
}

/** Other processes that have KSM-mergeable memory (their pages count in the global counters too). */
export function otherMergeablePids(exclude: number[] = []): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || exclude.includes(Number(d))) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/ksm_stat`, "utf8");
      if (/ksm_mergeable:?\s+yes/.test(s) || /ksm_merge_any:?\s+yes/.test(s) || /ksm_rmap_items\s+[1-9]/.test(s)) {
        pids.push(Number(d));
      }
    } catch {
      /* gone or no permission */
    }
  }
  return pids;
}

// ---------------------------------------------------------------------------
// the run

function nonNegInt(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < 0) throw new Error(`pattern.${name} must be a non-negative integer, got ${v}`);
  return x;
}

/**
 * Run the real KSM on `pattern` with `knobs` applied (through withKsmKnobs;
 * `run` must not be given, the harness drives it) and report the counters at
 * convergence. Sequence: save knobs, run=2, apply knobs, read the baseline,
 * start ksm-pages (fills, MADV_MERGEABLE), start volatile rewriting, write
 * run=1, sample after every full scan until pages_shared, pages_sharing and
 * ksm_zero_pages stayed put for `stableScans` full scans (or timeout); then
 * optionally `write K` and wait `afterWriteScans` full scans; stop the child,
 * restore the knobs.
 */
export async function runRealKsm(pattern: KsmPattern, knobs: KsmKnobs = {}, opts: RealKsmOptions = {}): Promise<RealKsmResult> {
  const distinct = nonNegInt("distinct", pattern.distinct, 0);
  const copies = nonNegInt("copies", pattern.copies, 1);
  const zero = nonNegInt("zero", pattern.zero, 0);
  const unique = nonNegInt("unique", pattern.unique, 0);
  const volatileN = nonNegInt("volatile", pattern.volatile, 0);
  const writes = nonNegInt("writesAfterMerge", pattern.writesAfterMerge, 0);
  if (volatileN > unique) throw new Error(`pattern.volatile (${volatileN}) > pattern.unique (${unique})`);
  if (writes > distinct) throw new Error(`pattern.writesAfterMerge (${writes}) > pattern.distinct (${distinct})`);
  if (distinct * copies + zero + unique === 0) throw new Error("empty pattern");
  if (knobs.run !== undefined) throw new Error("runRealKsm drives `run` itself; do not pass it in knobs");
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const pollMs = opts.pollMs ?? 1;
  const stableScans = opts.stableScans ?? 2;
  const afterWriteScans = opts.afterWriteScans ?? 2;

  const avail = ksmAvailable();
  if (!avail.ok) throw new Error(`real KSM not available: ${avail.reason}`);
  const bin = buildKsmPages();

  return withKsmKnobs(knobs, async () => {
    const warnings: string[] = [];
    const baseline = readKsmCounters();
    for (const k of KSM_COUNTERS) {
      if (!KSM_CUMULATIVE.includes(k) && baseline[k] !== 0) warnings.push(`baseline ${k}=${baseline[k]} after run=2`);
    }
    const wall0 = Date.now();
    const args = ["--distinct", distinct, "--copies", copies, "--zero", zero, "--unique", unique, "--salt", randomInt(2 ** 47)];
    const child = new PagesChild(bin, args.map(String));
    try {
      const ready = await child.readLine();
      const m = /^ready (\d+) (\d+)$/.exec(ready);
      if (!m) throw new Error(`ksm-pages: ${ready} (stderr: ${child.stderr.trim()})`);
      const pages = Number(m[2]);
      const others = otherMergeablePids([child.proc.pid!, process.pid]);
      if (others.length > 0) {
        warnings.push(`other processes with mergeable memory: ${others.join(", ")} (their pages count in the global counters)`);
      }
      if (volatileN > 0) await child.command(`volatile ${volatileN} ${opts.volatilePeriodMs ?? 2}`);

      let t0 = 0;
      const sample = (): KsmSample => {
        // re-read until ksmd scanned nothing while we were reading: the counters are separate
        // files, and a read that spans part of a wake-up mixes two states
        for (let i = 0; ; i++) {
          const fs0 = readNum("full_scans");
          const ps0 = readNum("pages_scanned");
          const s: KsmSample = {
            fullScans: fs0 - baseline.full_scans,
            tMs: t0 === 0 ? 0 : Date.now() - t0,
            pages_shared: readNum("pages_shared"),
            pages_sharing: readNum("pages_sharing"),
            pages_unshared: readNum("pages_unshared"),
            pages_volatile: readNum("pages_volatile"),
            ksm_zero_pages: readNum("ksm_zero_pages"),
            pages_scanned: readNum("pages_scanned") - baseline.pages_scanned,
            pages_skipped: readNum("pages_skipped") - baseline.pages_skipped,
          };
          const quiet = readNum("full_scans") === fs0 && readNum("pages_scanned") === ps0;
          if (quiet || i >= 50) return quiet ? s : { ...s, torn: true };
        }
      };
      const counters = (): KsmCounters => {
        // as in sample(): re-read until ksmd scanned nothing during the read
        for (let i = 0; ; i++) {
          const ps0 = readNum("pages_scanned");
          const c = readKsmCounters();
          if (readNum("pages_scanned") !== ps0 && i < 50) continue;
          for (const k of KSM_CUMULATIVE) c[k] -= baseline[k];
          return c;
        }
      };

      let missedScans = 0;
      const series: KsmSample[] = [sample()];
      opts.onSample?.(series[0]!);
      const key = (s: KsmSample): string => `${s.pages_shared}/${s.pages_sharing}/${s.ksm_zero_pages}`;
      // Wait until full_scans passes `target` (or the deadline), sampling every scan.
      const follow = async (into: KsmSample[], until: (s: KsmSample[]) => boolean, deadline: number): Promise<boolean> => {
        let last = into[into.length - 1]!.fullScans;
        while (Date.now() < deadline) {
          await sleep(pollMs);
          const now = readNum("full_scans") - baseline.full_scans;
          if (now === last) continue;
          const s = sample();
          missedScans += Math.max(0, s.fullScans - last - 1);
          last = s.fullScans;
          into.push(s);
          opts.onSample?.(s);
          if (until(into)) return true;
        }
        return false;
      };
      let convergedAt: KsmSample | undefined;
      const isConverged = (ser: KsmSample[]): boolean => {
        const end = ser[ser.length - 1]!;
        let j = ser.length - 1;
        while (j > 0 && key(ser[j - 1]!) === key(end)) j--;
        if (end.fullScans - ser[j]!.fullScans >= stableScans) {
          convergedAt = ser[j];
          return true;
        }
        return false;
      };

      t0 = Date.now();
      writeKnob("run", 1);
      const knobValues = readKsmKnobs();
      const converged = await follow(series, isConverged, t0 + timeoutMs);
      const final = counters();
      const childKsmStat = readKsmStat(child.proc.pid!);
      const merging = childKsmStat.ksm_merging_pages;
      if (typeof merging === "number" && merging !== final.pages_shared + final.pages_sharing) {
        warnings.push(
          `global pages_shared+pages_sharing=${final.pages_shared + final.pages_sharing} but the child's ksm_merging_pages=${merging}: foreign pages were merged`,
        );
      }

      let afterWrites: KsmAfterWrites | undefined;
      if (writes > 0 && converged) {
        const before = series[series.length - 1]!;
        await child.command(`write ${writes}`);
        const ws = sample();
        // Was ksmd in the middle of a full scan when we wrote? Then that scan
        // does not count: wait for `afterWriteScans` scans started after the write.
        const midScan =
          ws.fullScans === before.fullScans &&
          ws.pages_scanned + ws.pages_skipped !== before.pages_scanned + before.pages_skipped;
        const target = ws.fullScans + afterWriteScans + (midScan || ws.fullScans !== before.fullScans ? 1 : 0);
        const wseries: KsmSample[] = [ws];
        const ok = await follow(wseries, (s) => s[s.length - 1]!.fullScans >= target, Date.now() + timeoutMs);
        if (!ok) warnings.push(`afterWrites: fewer than ${afterWriteScans} full scans within ${timeoutMs} ms`);
        afterWrites = { ...counters(), written: writes, writtenMidScan: midScan, series: wseries };
      }
      if (!converged) warnings.push(`not converged within ${timeoutMs} ms`);

      await child.stop();
      return {
        ...final,
        converged,
        fullScansToConverge: converged ? convergedAt!.fullScans : null,
        msToConverge: converged ? convergedAt!.tMs : null,
        series,
        missedScans,
        ...(afterWrites ? { afterWrites } : {}),
        baseline,
        childKsmStat,
        knobs: knobValues,
        pages,
        wallMs: Date.now() - wall0,
        warnings,
      };
    } finally {
      await child.stop();
    }
  });
}

// ---------------------------------------------------------------------------
// CLI: npx tsx bench/ksm-real/real-ksm.ts --distinct 1000 --copies 4 [--zero Z]
//      [--unique U] [--volatile K] [--writes K] [--knob name=value ...]

async function cli(argv: string[]): Promise<void> {
  const pattern: KsmPattern = {};
  const knobs: KsmKnobs = {};
  const keys: Record<string, keyof KsmPattern> = {
    "--distinct": "distinct",
    "--copies": "copies",
    "--zero": "zero",
    "--unique": "unique",
    "--volatile": "volatile",
    "--writes": "writesAfterMerge",
  };
  let series = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--series") series = true;
    else if (a === "--knob") {
      const [k, v] = argv[++i]!.split("=");
      knobs[k!] = /^\d+$/.test(v!) ? Number(v) : v;
    } else if (keys[a]) pattern[keys[a]!] = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  const avail = ksmAvailable();
  if (!avail.ok) {
    console.error(`real KSM not available: ${avail.reason}`);
    process.exitCode = 2;
    return;
  }
  const r = await runRealKsm(pattern, knobs);
  const out: Partial<RealKsmResult> = { ...r };
  if (!series) {
    delete out.series;
    if (out.afterWrites) out.afterWrites = { ...out.afterWrites, series: [] };
  }
  console.log(JSON.stringify(out, null, 2));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
