// Checking a knob change from a page before it reaches the simulation: names against the settings
// tables, values against their ranges, VM names against the scenario. Returns the scenario event
// to apply, or throws a RangeError that says what is allowed.
import { HOST_SETTINGS, KSM_KNOBS, VM_SETTINGS, type SettingDef } from "../scenario/settings.js";
import type { Scenario, ScenarioEvent } from "../scenario/types.js";
import type { Knob } from "./protocol.js";

function checkSettings(table: Record<string, SettingDef>, values: Record<string, number> | undefined, what: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(values ?? {})) {
    const def = table[name];
    if (!def) throw new RangeError(`unknown ${what} "${name}": allowed are ${Object.keys(table).join(", ")}`);
    if (typeof v !== "number" || !Number.isFinite(v) || v < def.min || v > def.max) {
      throw new RangeError(`${name} must be a number from ${def.min} to ${def.max} (got ${JSON.stringify(v)})`);
    }
    out[name] = v;
  }
  return out;
}

export function knobEvent(knob: Knob, scenario: Scenario, time: number): ScenarioEvent {
  if (knob.kind === "setHost") {
    const settings = checkSettings(HOST_SETTINGS, knob.settings, "host setting");
    const ksm = checkSettings(KSM_KNOBS, knob.ksm, "KSM knob");
    if (!Object.keys(settings).length && !Object.keys(ksm).length) throw new RangeError("setHost changes nothing: name at least one setting");
    return { at: time, kind: "setHost", settings, ksm };
  }
  if (knob.kind === "setVm") {
    if (!Array.isArray(knob.vms) || knob.vms.length === 0) throw new RangeError("setVm needs the names of the VMs to change");
    const vms = knob.vms.map((name) => {
      const vm = scenario.vms.find((v) => v.name === name);
      if (!vm) throw new RangeError(`no VM named "${name}" in scenario ${scenario.name}`);
      return vm;
    });
    const ev: ScenarioEvent = { at: time, kind: "setVm", vms: vms.map((v) => v.name) };
    if (knob.reservation !== undefined) {
      const max = Math.min(...vms.map((v) => v.memory));
      if (!Number.isFinite(knob.reservation) || knob.reservation < 0 || knob.reservation > max) {
        throw new RangeError(`reservation must be from 0 to the VM's memory (${max} bytes) (got ${knob.reservation})`);
      }
      ev.reservation = Math.ceil(knob.reservation / 4096) * 4096;
    }
    if (knob.limit !== undefined) {
      if (knob.limit !== null && (!Number.isFinite(knob.limit) || knob.limit < 0)) throw new RangeError(`limit must be bytes >= 0 or null for unlimited (got ${knob.limit})`);
      ev.limit = knob.limit === null ? null : Math.ceil(knob.limit / 4096) * 4096;
    }
    if (knob.shares !== undefined) {
      const ok = knob.shares === "low" || knob.shares === "normal" || knob.shares === "high" || (typeof knob.shares === "number" && Number.isInteger(knob.shares) && knob.shares > 0);
      if (!ok) throw new RangeError(`shares must be low, normal, high or a positive integer (got ${JSON.stringify(knob.shares)})`);
      ev.shares = knob.shares;
    }
    if (knob.settings) ev.settings = checkSettings(VM_SETTINGS, knob.settings, "VM setting");
    if (ev.reservation === undefined && ev.limit === undefined && ev.shares === undefined && !ev.settings) throw new RangeError("setVm changes nothing");
    return ev;
  }
  throw new RangeError(`unknown knob kind ${JSON.stringify((knob as { kind: unknown }).kind)}: allowed are setHost, setVm`);
}
