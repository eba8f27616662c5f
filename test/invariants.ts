// Counter consistency, checked on every sample of a run (test/properties.test.ts,
// scripts/fuzz-scenarios.ts, test/reliability.test.ts). The engine's own conservation checks
// (`--check`: checkVm, checkHost after every tick) cover the page tables; these cover what the
// outputs say: the identities between esxtop counters (docs/outputs.md), the engine's counter
// records against each other, and cumulative counters that never go down.
//
// Each check applies when the counters it reads exist: a column reads 0 until its mechanism lands
// (then the identity holds trivially), and an engine counter is checked only when
// assembly/memory.ts exports it. Cumulative engine counters are found by their comment in
// assembly/memory.ts ("// cumulative" block, or "(cumulative" on the line), so counters added
// there are covered without touching this file.
import { readFileSync } from "node:fs";
import { createSimulation, type Sample, type Simulation } from "../src/sim/simulation.js";
import { parseScenarioText } from "../src/scenario/load.js";
import { toYaml, type ScenarioInput } from "./arbitraries.js";

/** A counter identity that does not hold: a bug in vmemsim. */
export class CounterError extends Error {
  constructor(message: string, readonly time: number) {
    super(`counters inconsistent at t=${time}s: ${message}`);
    this.name = "CounterError";
  }
}

/** Names of the cumulative counters of `prefix` ("C_" per VM, "H_" host) in assembly/memory.ts. */
export function cumulativeCounters(prefix: "C_" | "H_"): string[] {
  const src = readFileSync(new URL("../assembly/memory.ts", import.meta.url), "utf8");
  const out: string[] = [];
  let block = false;
  for (const raw of src.split("\n")) {
    const line = raw.trim();
    const m = /^export const ([CH]_\w+): i32 = \d+;\s*(?:\/\/\s*(.*))?$/.exec(line);
    if (!m) {
      if (line.startsWith("//")) block = /^\/\/\s*cumulative\s*$/i.test(line);
      continue;
    }
    const [, name, comment = ""] = m;
    if (!name.startsWith(prefix) || /COUNTERS$/.test(name)) continue;
    if (/\(cumulative\b/i.test(comment) || (block && !/gauge/i.test(comment))) out.push(name);
  }
  return out;
}

const VM_CUMULATIVE = cumulativeCounters("C_");
const HOST_CUMULATIVE = cumulativeCounters("H_");
const STATES = ["C_UNBACKED", "C_PRIVATE", "C_SHARED", "C_BALLOONED", "C_COMPRESSED", "C_SWAPPED"];
const GUEST = ["C_GUEST_FREE", "C_GUEST_CACHE", "C_GUEST_ANON"];
const PERCENT = ["%ACTV", "%ACTVS", "%ACTVF", "%ACTVN", "LAT%", "THRU%", "STALL%"];
const MB = 256; // pages per MB
/** Columns that may be negative by definition: AMAX (-1 = unlimited), KSM's general_profit (Linux: saved − rmap metadata, negative while KSM costs more than it saves). */
const SIGNED = new Set(["AMAX", "KSM.general_profit"]);

/** Rounding slack for `n` values rounded to 0.01 MB each (and a hair for float noise). */
const slack = (n: number) => 0.005 * n + 1e-6;

/**
 * Checks one simulation's samples, in order. Keeps what it needs between samples: cumulative
 * counters seen last, the smallest reservation each VM has had (its swap file is at least
 * configured − that), the largest compression cap the settings have allowed.
 */
export class CounterChecker {
  private lastVm: number[][] = [];
  private lastHost: number[] = [];
  private lastRow: { FIRST: number; STALLS: number }[] = [];
  private lastTime = -Infinity;
  private minReservation: number[];
  private maxZipPct: number;
  readonly checked = { samples: 0, identities: 0 };

  constructor(private readonly sim: Simulation) {
    this.minReservation = sim.vms.map((v) => v.reservation);
    this.maxZipPct = sim.scenario.host.settings["Mem.MemZipMaxPct"] ?? 100;
  }

  /** Check a sample just taken from the simulation (sim.sample() or run's onSample). */
  check(s: Sample): void {
    const sim = this.sim;
    const e = sim.engine;
    const k = e.k;
    const t = s.time;
    let n = 0;
    const fail = (msg: string): never => {
      throw new CounterError(msg, t);
    };
    const has = (...names: string[]) => names.every((x) => k[x] !== undefined);
    const ok = (cond: boolean, msg: () => string) => {
      n++;
      if (!cond) fail(msg());
    };
    const num = (row: Record<string, number | string>, col: string): number => {
      const v = row[col];
      if (typeof v !== "number" || !Number.isFinite(v)) fail(`${col} is ${JSON.stringify(v)}, not a finite number`);
      return v as number;
    };
    this.maxZipPct = Math.max(this.maxZipPct, sim.scenario.host.settings["Mem.MemZipMaxPct"] ?? 0);
    ok(t > this.lastTime && t === sim.time, () => `sample at t=${t} after one at t=${this.lastTime} (simulation at ${sim.time})`);
    this.lastTime = t;

    // ---- per VM ------------------------------------------------------------------------------
    ok(s.vms.length === sim.vms.length, () => `${s.vms.length} VM rows for ${sim.vms.length} VMs`);
    const sums = { SHRD: 0, SWCUR: 0, ZIP: 0, MCTLSZ: 0, MCTLTGT: 0, MCTLMAX: 0, SWTGT: 0, CACHESZ: 0, on: 0 };
    let privateSum = 0, overheadSum = 0, sharedSum = 0, zipCacheSum = 0, ssdSum = 0, sharedXSum = 0;
    s.vms.forEach((row, i) => {
      const vm = sim.vms[i];
      const name = vm.config.name;
      const at = `VM ${name}`;
      ok(row.vm === name, () => `row ${i} is ${row.vm}, expected ${name}`);
      this.minReservation[i] = Math.min(this.minReservation[i], vm.reservation);
      for (const [col, v] of Object.entries(row)) {
        if (col === "vm") continue;
        const x = num(row, col);
        ok(col === "AMAX" ? x >= -1 : x >= 0, () => `${at}: ${col} = ${x} is negative`);
      }
      const c = e.vmCounters(i);
      const pages = e.vmParam(i, k.P_PAGES);
      const get = (col: string) => num(row, col);
      const [MEMSZ, GRANT, CNSM, SHRD, ZERO, SHRDSVD] = ["MEMSZ", "GRANT", "CNSM", "SHRD", "ZERO", "SHRDSVD"].map(get);
      const [MCTLSZ, MCTLTGT, MCTLMAX, SWCUR, ZIP, CACHESZ, CACHEUSD] = ["MCTLSZ", "MCTLTGT", "MCTLMAX", "SWCUR", "ZIP", "CACHESZ", "CACHEUSD"].map(get);
      const on = get("on");

      ok(pages * 4096 === vm.config.memory && Math.abs(MEMSZ - pages / MB) <= slack(1), () => `${at}: MEMSZ ${MEMSZ} ≠ ${pages} pages`);
      ok(on === (vm.powered ? 1 : 0) && on === (e.vmParam(i, k.P_POWERED) ? 1 : 0), () => `${at}: on = ${on}, powered ${vm.powered}, engine ${e.vmParam(i, k.P_POWERED)}`);
      // GRANT = private + shared guest pages; consumed = granted − saved (+ the compression cache)
      ok(Math.abs(GRANT - (c[k.C_PRIVATE] + c[k.C_SHARED]) / MB) <= slack(1), () => `${at}: GRANT ${GRANT} ≠ (private ${c[k.C_PRIVATE]} + shared ${c[k.C_SHARED]} pages) / 256`);
      ok(Math.abs(CNSM - (GRANT - SHRDSVD + CACHESZ)) <= slack(4), () => `${at}: CNSM ${CNSM} ≠ GRANT ${GRANT} − SHRDSVD ${SHRDSVD} + CACHESZ ${CACHESZ}`);
      ok(SHRD <= GRANT + slack(2) && ZERO <= SHRD + slack(2) && SHRDSVD <= SHRD + slack(2), () => `${at}: not ZERO ${ZERO} <= SHRD ${SHRD} <= GRANT ${GRANT}, SHRDSVD ${SHRDSVD} <= SHRD`);
      // balloon, compression cache, swap within their limits
      ok(MCTLSZ <= MCTLMAX + slack(2), () => `${at}: balloon MCTLSZ ${MCTLSZ} > MCTLMAX ${MCTLMAX}`);
      ok(MCTLTGT <= MCTLMAX + slack(2), () => `${at}: balloon target MCTLTGT ${MCTLTGT} > MCTLMAX ${MCTLMAX}`);
      ok(CACHEUSD <= CACHESZ + slack(2), () => `${at}: compression cache used ${CACHEUSD} > its size ${CACHESZ}`);
      const zipCap = (pages * this.maxZipPct) / 100 / MB;
      ok(CACHESZ <= zipCap + 1 / MB + slack(2), () => `${at}: compression cache ${CACHESZ} MB > Mem.MemZipMaxPct ${this.maxZipPct} % of ${MEMSZ} MB`);
      const swapFile = has("P_SWAP_PAGES") && vm.powered ? e.vmParam(i, k.P_SWAP_PAGES) : pages - this.minReservation[i] / 4096;
      ok(c[k.C_SWAPPED] <= swapFile, () => `${at}: ${c[k.C_SWAPPED]} pages swapped, more than the swap file (${swapFile} pages)`);
      ok(Math.abs(SWCUR - c[k.C_SWAPPED] / MB) <= slack(1), () => `${at}: SWCUR ${SWCUR} ≠ ${c[k.C_SWAPPED]} swapped pages`);
      // pages are in exactly one state, and the guest sees each page one way
      const stateSum = STATES.filter((x) => has(x)).reduce((a, x) => a + c[k[x]], 0);
      ok(stateSum === pages, () => `${at}: page states sum to ${stateSum}, not ${pages} (${STATES.map((x) => `${x}=${c[k[x]]}`).join(" ")})`);
      if (has(...GUEST)) {
        const g = GUEST.reduce((a, x) => a + c[k[x]], 0);
        ok(g === pages, () => `${at}: guest page classes sum to ${g}, not ${pages}`);
      }
      ok(GRANT + MCTLSZ + ZIP + SWCUR <= MEMSZ + slack(5), () => `${at}: GRANT ${GRANT} + MCTLSZ ${MCTLSZ} + ZIP ${ZIP} + SWCUR ${SWCUR} > MEMSZ ${MEMSZ}`);
      ok(c[k.C_LARGE_REGIONS] * 512 <= c[k.C_PRIVATE], () => `${at}: ${c[k.C_LARGE_REGIONS]} large pages but only ${c[k.C_PRIVATE]} private pages`);
      if (has("C_ZIP_KB", "C_ZIP_CACHE")) {
        ok(c[k.C_ZIP_CACHE] === Math.ceil(c[k.C_ZIP_KB] / 4), () => `${at}: compression cache holds ${c[k.C_ZIP_CACHE]} pages for ${c[k.C_ZIP_KB]} KB in use (ceil(KB / 4) expected)`);
      }
      // (the other cap, Mem.MemZipMaxAllocPct of allocated memory, bounds the cache's growth only:
      // when allocated memory falls, the cache shrinks as its slots empty; assembly/compress.ts)
      if (has("C_SHARED_ZERO")) ok(c[k.C_SHARED_ZERO] <= c[k.C_SHARED], () => `${at}: ${c[k.C_SHARED_ZERO]} zero pages shared of ${c[k.C_SHARED]}`);
      if (has("C_SHARED_X")) ok(c[k.C_SHARED_X] <= c[k.C_SHARED], () => `${at}: ${c[k.C_SHARED_X]} cross-VM shared of ${c[k.C_SHARED]}`);
      if (has("C_SSD_PAGES")) ok(c[k.C_SSD_PAGES] <= c[k.C_SWAPPED], () => `${at}: ${c[k.C_SSD_PAGES]} pages in the SSD cache of ${c[k.C_SWAPPED]} swapped`);
      if (has("C_GOUT_ANON", "P_GPF_PAGES") && vm.powered) {
        ok(c[k.C_GOUT_ANON] <= e.vmParam(i, k.P_GPF_PAGES), () => `${at}: ${c[k.C_GOUT_ANON]} pages in a guest page file of ${e.vmParam(i, k.P_GPF_PAGES)}`);
      }
      // every touch made is a read, a write, or a stall (no machine page to be had)
      ok(c[k.C_READS] + c[k.C_WRITES] + c[k.C_ALLOC_STALLS] === c[k.C_TOUCHES], () => `${at}: reads ${c[k.C_READS]} + writes ${c[k.C_WRITES]} + stalls ${c[k.C_ALLOC_STALLS]} ≠ touches ${c[k.C_TOUCHES]}`);
      if (has("C_DEMAND")) ok(c[k.C_TOUCHES] <= c[k.C_DEMAND], () => `${at}: ${c[k.C_TOUCHES]} touches done of ${c[k.C_DEMAND]} asked for`);
      // a VM that is off holds nothing
      if (!vm.powered) {
        ok(GRANT === 0 && MCTLSZ === 0 && ZIP === 0 && SWCUR === 0 && CACHESZ === 0 && num(row, "OVHD") === 0, () => `${at} is off but holds GRANT ${GRANT} MCTLSZ ${MCTLSZ} ZIP ${ZIP} SWCUR ${SWCUR} CACHESZ ${CACHESZ} OVHD ${row.OVHD}`);
        ok(c[k.C_UNBACKED] === pages, () => `${at} is off but ${pages - c[k.C_UNBACKED]} pages are not unbacked`);
      }
      // percentages, reservation and limit
      for (const col of PERCENT) if (col in row) ok(get(col) <= 100 + 1e-9, () => `${at}: ${col} = ${get(col)} > 100`);
      const AMIN = get("AMIN"), AMAX = get("AMAX");
      ok(AMIN <= MEMSZ + slack(2) && (AMAX === -1 || (AMIN <= AMAX + slack(2) && AMAX <= MEMSZ + slack(2))), () => `${at}: AMIN ${AMIN}, AMAX ${AMAX}, MEMSZ ${MEMSZ}`);
      ok(get("TCHD") <= MEMSZ + slack(2) && get("TCHD.true") <= MEMSZ + slack(2), () => `${at}: TCHD ${row.TCHD} / TCHD.true ${row["TCHD.true"]} > MEMSZ ${MEMSZ}`);
      // cumulative counters never go down (power cycles included)
      const prev = this.lastVm[i];
      if (prev) {
        for (const name of VM_CUMULATIVE) {
          const j = k[name];
          ok(c[j] >= prev[j], () => `${at}: cumulative ${name} went down from ${prev[j]} to ${c[j]}`);
        }
        const pr = this.lastRow[i];
        ok(get("FIRST") >= pr.FIRST && get("STALLS") >= pr.STALLS, () => `${at}: FIRST/STALLS went down`);
      }
      this.lastVm[i] = Array.from(c);
      this.lastRow[i] = { FIRST: get("FIRST"), STALLS: get("STALLS") };

      sums.SHRD += SHRD;
      sums.SWCUR += SWCUR;
      sums.ZIP += ZIP;
      sums.MCTLSZ += MCTLSZ;
      sums.MCTLTGT += MCTLTGT;
      sums.SWTGT += get("SWTGT");
      sums.CACHESZ += CACHESZ;
      if (get("MCTL?") === 1) sums.MCTLMAX += MCTLMAX;
      sums.on += on;
      privateSum += c[k.C_PRIVATE];
      sharedSum += c[k.C_SHARED];
      overheadSum += e.vmParam(i, k.P_OVERHEAD);
      if (has("C_ZIP_CACHE")) zipCacheSum += c[k.C_ZIP_CACHE];
      if (has("C_SSD_PAGES")) ssdSum += c[k.C_SSD_PAGES];
      if (has("C_SHARED_X")) sharedXSum += c[k.C_SHARED_X];
    });

    // ---- host --------------------------------------------------------------------------------
    const h = s.host;
    const hv = (col: string) => num(h, col);
    // host totals of a mechanism are checked once it has landed (before, its host column reads 0)
    const sharing = has("C_SHARED_ZERO");
    const reclamation = has("C_ZIP_CACHE", "C_MCTL_IN");
    const nv = s.vms.length + 1;
    for (const [col, v] of Object.entries(h)) {
      if (col === "VMKMEM.state") {
        ok(["high", "clear", "soft", "hard", "low"].includes(String(v)), () => `VMKMEM.state is ${v}`);
        continue;
      }
      ok(SIGNED.has(col) || hv(col) >= 0, () => `host ${col} = ${v} is negative`);
    }
    ok(Math.abs(hv("PMEM.total") - (hv("PMEM.vmk") + hv("PMEM.other") + hv("PMEM.free"))) <= slack(4), () => `PMEM.total ${h["PMEM.total"]} ≠ vmk ${h["PMEM.vmk"]} + other ${h["PMEM.other"]} + free ${h["PMEM.free"]}`);
    ok(Math.abs(hv("PSHARE.saving") - (hv("PSHARE.shared") - hv("PSHARE.common"))) <= slack(3), () => `PSHARE.saving ${h["PSHARE.saving"]} ≠ shared ${h["PSHARE.shared"]} − common ${h["PSHARE.common"]}`);
    ok(hv("PSHARE.common") <= hv("PSHARE.shared") + slack(2), () => `PSHARE.common ${h["PSHARE.common"]} > shared ${h["PSHARE.shared"]}`);
    if (sharing) ok(Math.abs(hv("PSHARE.shared") - sums.SHRD) <= slack(nv), () => `PSHARE.shared ${h["PSHARE.shared"]} ≠ Σ SHRD ${sums.SHRD}`);
    if (reclamation) ok(Math.abs(hv("SWAP.curr") - sums.SWCUR) <= slack(nv), () => `SWAP.curr ${h["SWAP.curr"]} ≠ Σ SWCUR ${sums.SWCUR}`);
    ok(Math.abs(hv("SWAP.rclmtgt") - sums.SWTGT) <= slack(nv), () => `SWAP.rclmtgt ${h["SWAP.rclmtgt"]} ≠ Σ SWTGT ${sums.SWTGT}`);
    if (reclamation) ok(Math.abs(hv("ZIP.zipped") - sums.ZIP) <= slack(nv), () => `ZIP.zipped ${h["ZIP.zipped"]} ≠ Σ ZIP ${sums.ZIP}`);
    ok(hv("ZIP.saved") <= hv("ZIP.zipped") + slack(2), () => `ZIP.saved ${h["ZIP.saved"]} > ZIP.zipped ${h["ZIP.zipped"]}`);
    if (reclamation) ok(Math.abs(hv("ZIP.saved") - (sums.ZIP - sums.CACHESZ)) <= slack(2 * nv), () => `ZIP.saved ${h["ZIP.saved"]} ≠ Σ ZIP ${sums.ZIP} − Σ CACHESZ ${sums.CACHESZ}`);
    if (reclamation) ok(Math.abs(hv("MEMCTL.curr") - sums.MCTLSZ) <= slack(nv), () => `MEMCTL.curr ${h["MEMCTL.curr"]} ≠ Σ MCTLSZ ${sums.MCTLSZ}`);
    ok(Math.abs(hv("MEMCTL.target") - sums.MCTLTGT) <= slack(nv), () => `MEMCTL.target ${h["MEMCTL.target"]} ≠ Σ MCTLTGT ${sums.MCTLTGT}`);
    if (reclamation) ok(Math.abs(hv("MEMCTL.max") - sums.MCTLMAX) <= slack(nv), () => `MEMCTL.max ${h["MEMCTL.max"]} ≠ Σ MCTLMAX of running drivers ${sums.MCTLMAX}`);
    ok(hv("VMS.on") === sums.on, () => `VMS.on ${h["VMS.on"]} ≠ ${sums.on} VMs on`);

    // ---- engine records against each other ----------------------------------------------------
    const hc = e.hostCounters();
    ok(hc[k.H_PRIVATE] === privateSum, () => `host private pages ${hc[k.H_PRIVATE]} ≠ Σ VM private ${privateSum}`);
    ok(hc[k.H_OVHD] === overheadSum, () => `host overhead ${hc[k.H_OVHD]} ≠ Σ VM overhead ${overheadSum}`);
    ok(hc[k.H_COMMON] <= sharedSum, () => `${hc[k.H_COMMON]} machine pages back shared content, more than the ${sharedSum} guest pages shared`);
    ok(hc[k.H_FREE_LARGE] >= 0 && hc[k.H_FREE_SMALL] >= 0, () => `free memory negative: ${hc[k.H_FREE_LARGE]} frames, ${hc[k.H_FREE_SMALL]} pages`);
    if (has("H_ZIP_CACHE", "C_ZIP_CACHE")) ok(hc[k.H_ZIP_CACHE] === zipCacheSum, () => `host compression caches ${hc[k.H_ZIP_CACHE]} ≠ Σ VM ${zipCacheSum}`);
    if (has("H_SSD_USED", "C_SSD_PAGES")) ok(hc[k.H_SSD_USED] === ssdSum, () => `SSD cache used ${hc[k.H_SSD_USED]} ≠ Σ VM ${ssdSum}`);
    if (has("H_SSD_USED", "H_SSD_SLOTS")) ok(hc[k.H_SSD_USED] <= hc[k.H_SSD_SLOTS], () => `SSD cache ${hc[k.H_SSD_USED]} > its ${hc[k.H_SSD_SLOTS]} slots`);
    if (has("H_SHARED_X", "C_SHARED_X")) ok(hc[k.H_SHARED_X] === sharedXSum, () => `host cross-VM shared ${hc[k.H_SHARED_X]} ≠ Σ VM ${sharedXSum}`);
    // the SSD host cache holds what its setting says (a setting the engine cannot hold is refused, not wrapped)
    if (has("H_SSD_SLOTS") && "Vmemsim.SwapCacheMB" in sim.scenario.host.settings) {
      const want = (sim.scenario.host.settings as Record<string, number>)["Vmemsim.SwapCacheMB"] * 256;
      ok(hc[k.H_SSD_SLOTS] === want, () => `SSD host cache has ${hc[k.H_SSD_SLOTS]} slots, Vmemsim.SwapCacheMB says ${want} pages`);
    }
    if (has("H_COMMON_X")) ok(hc[k.H_COMMON_X] <= hc[k.H_COMMON], () => `cross-VM frames ${hc[k.H_COMMON_X]} > all frames ${hc[k.H_COMMON]}`);
    if (this.lastHost.length) {
      for (const name of HOST_CUMULATIVE) {
        const j = k[name];
        ok(hc[j] >= this.lastHost[j], () => `cumulative host ${name} went down from ${this.lastHost[j]} to ${hc[j]}`);
      }
    }
    this.lastHost = Array.from(hc);
    this.checked.samples++;
    this.checked.identities += n;
  }
}

/** The cumulative counters the checker watches (for reports). */
export const WATCHED_CUMULATIVE = { vm: VM_CUMULATIVE, host: HOST_CUMULATIVE };

/** What one checked run went through (for the fuzz script's coverage table). */
export interface RunReport {
  /** set when the scenario was refused before its first tick (the engine cannot hold its tables) */
  refused?: string;
  ticks: number;
  samples: number;
  identities: number;
  /** events applied or refused, by kind and outcome ("powerOn:refused", …) */
  events: Record<string, number>;
  /** the most each mechanism held at any sample, MB (all VMs) */
  peak: { shared: number; ballooned: number; zipped: number; swapped: number; stalls: number; lowState: boolean };
}

/**
 * Run a generated scenario the way a user would (its YAML through the loader), with the engine's
 * conservation checks after every tick (`--check`) and CounterChecker on every sample and at the
 * end. Throws on the first problem.
 */
export async function runChecked(input: ScenarioInput): Promise<RunReport> {
  const text = toYaml(input);
  let scenario;
  try {
    scenario = parseScenarioText(text, "generated.yaml");
  } catch (err) {
    throw new Error(`the loader refused a generated scenario (generator and loader disagree): ${(err as Error).message}`);
  }
  let sim: Simulation;
  try {
    sim = await createSimulation(scenario, { check: true });
  } catch (err) {
    // like the CLI (exit 2): a scenario whose tables do not fit in the engine's 4 GiB is refused
    // before it runs; any other failure to set up is a bug
    if (err instanceof RangeError && /cannot hold/.test(err.message)) {
      return { refused: err.message, ticks: 0, samples: 0, identities: 0, events: {}, peak: { shared: 0, ballooned: 0, zipped: 0, swapped: 0, stalls: 0, lowState: false } };
    }
    throw err;
  }
  const checker = new CounterChecker(sim);
  const peak = { shared: 0, ballooned: 0, zipped: 0, swapped: 0, stalls: 0, lowState: false };
  const watch = (s: Sample) => {
    checker.check(s);
    peak.shared = Math.max(peak.shared, Number(s.host["PSHARE.shared"]));
    peak.ballooned = Math.max(peak.ballooned, Number(s.host["MEMCTL.curr"]));
    peak.zipped = Math.max(peak.zipped, Number(s.host["ZIP.zipped"]));
    peak.swapped = Math.max(peak.swapped, Number(s.host["SWAP.curr"]));
    peak.stalls = Math.max(peak.stalls, s.vms.reduce((a, v) => a + Number(v.STALLS), 0));
    peak.lowState ||= s.host["VMKMEM.state"] === "low";
  };
  let last = -1;
  await sim.run({
    onSample: (s) => {
      last = s.time;
      watch(s);
    },
  });
  if (last !== sim.time) watch(sim.sample());
  const events: Record<string, number> = {};
  for (const r of sim.log) {
    const key = `${r.kind}:${r.ok ? "ok" : "refused"}`;
    events[key] = (events[key] ?? 0) + 1;
  }
  return { ticks: sim.ticks, samples: checker.checked.samples, identities: checker.checked.identities, events, peak };
}
