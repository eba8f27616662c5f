// Comparing the WASM engine with the reference model: counters, the parameters the engine itself
// writes, zipf tables and whole page tables. Used by test/differential.test.ts.
import type { Simulation } from "../../src/sim/simulation.js";
import type { Model } from "./model.js";

/** Parameters the engine writes (addresses such as P_PAGE_BASE differ between the two by design). */
const ENGINE_PARAMS = [
  "P_PAGES", "P_POWERED", "P_OVERHEAD", "P_SWEEP", "P_TOUCH_SPAN", "P_SAMPLE_N", "P_BLOCKED", "P_SHARE_STEP", "P_SHARE_PPN",
  "P_SHARE_DONE", "P_ZIP_SLOTS", "P_ZIP_HEAD",
];

function nameOf(k: Simulation["engine"]["k"], prefix: string, index: number): string {
  return Object.keys(k).find((n) => n.startsWith(prefix) && k[n] === index) ?? `${prefix}#${index}`;
}

/**
 * The first difference between the two engines' records, as a message naming the counter; null when
 * the host counters, every VM's counters and the engine-written parameters are equal.
 */
export function recordDifference(wasm: Simulation, ref: Simulation): string | null {
  const k = wasm.engine.k;
  const hw = wasm.engine.hostCounters();
  const hr = ref.engine.hostCounters();
  for (let i = 0; i < hw.length; i++) {
    if (!Object.is(hw[i], hr[i])) return `host counter ${nameOf(k, "H_", i)}: wasm ${hw[i]}, reference ${hr[i]}`;
  }
  const ksmW = wasm.engine.raw as unknown as { ksmStat(i: number): number };
  const ksmR = ref.engine.raw as unknown as { ksmStat(i: number): number };
  for (let i = 0; i < (k.KSM_STATS ?? 0); i++) {
    if (!Object.is(ksmW.ksmStat(i), ksmR.ksmStat(i))) return `KSM counter ${nameOf(k, "KSM_", i)}: wasm ${ksmW.ksmStat(i)}, reference ${ksmR.ksmStat(i)}`;
  }
  for (const vm of wasm.vms) {
    const cw = wasm.engine.vmCounters(vm.index);
    const cr = ref.engine.vmCounters(vm.index);
    for (let i = 0; i < cw.length; i++) {
      if (!Object.is(cw[i], cr[i])) return `${vm.config.name} counter ${nameOf(k, "C_", i)}: wasm ${cw[i]}, reference ${cr[i]}`;
    }
    for (const p of ENGINE_PARAMS) {
      if (k[p] === undefined) continue;
      const a = wasm.engine.vmParam(vm.index, k[p]);
      const b = ref.engine.vmParam(vm.index, k[p]);
      if (a !== b) return `${vm.config.name} param ${p}: wasm ${a}, reference ${b}`;
    }
  }
  return null;
}

/** The first page whose 8-byte entry differs, or a region or zipf-table entry; null when all equal. */
export function tableDifference(wasm: Simulation, ref: Simulation & { reference: Model }): string | null {
  const e = wasm.engine;
  const k = e.k;
  const buffer = e.raw.memory.buffer;
  for (const vm of wasm.vms) {
    const model = ref.reference.vms[vm.index];
    const pages = e.vmParam(vm.index, k.P_PAGES);
    const table = new Uint32Array(buffer, e.vmParam(vm.index, k.P_PAGE_BASE), pages * 2);
    for (let ppn = 0; ppn < pages; ppn++) {
      const [meta, key] = model.pages[ppn].encode();
      if (table[2 * ppn] !== meta || table[2 * ppn + 1] !== key) {
        return `${vm.config.name} page ${ppn}: wasm meta ${hex(table[2 * ppn])} key ${hex(table[2 * ppn + 1])}, reference meta ${hex(meta)} key ${hex(key)}`;
      }
    }
    const regions = new Uint8Array(buffer, e.vmParam(vm.index, k.P_REGION_BASE), model.regions.length);
    for (let r = 0; r < model.regions.length; r++) {
      const want = { none: 0, large: 1, small: 2 }[model.regions[r]];
      if (regions[r] !== want) return `${vm.config.name} region ${r}: wasm ${regions[r]}, reference ${model.regions[r]}`;
    }
    if (e.vmParam(vm.index, k.P_PATTERN) === k.PATTERN_ZIPF) {
      const q = new Uint32Array(buffer, e.vmParam(vm.index, k.P_QTABLE_BASE), model.qtable.length);
      for (let i = 0; i < q.length; i++) {
        if (q[i] !== model.qtable[i]) return `${vm.config.name} zipf table entry ${i}: wasm ${q[i]}, reference ${model.qtable[i]}`;
      }
    }
  }
  return null;
}

function hex(x: number): string {
  return `0x${(x >>> 0).toString(16)}`;
}
