// summary.json: the final and mean counters of a run, per VM and for the host. Means are over the
// samples taken (every sampleEvery seconds), of the numeric columns.
import type { Sample, EventRecord } from "../sim/simulation.js";
import type { HostRow, VmRow } from "../sim/counters.js";

type Numeric = Record<string, number>;

function numeric(row: Record<string, number | string>): Numeric {
  const out: Numeric = {};
  for (const [k, v] of Object.entries(row)) if (typeof v === "number" && k !== "time") out[k] = v;
  return out;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface Summary {
  scenario: string;
  seed: number;
  simulatedSeconds: number;
  samples: number;
  host: { final: HostRow | null; mean: Numeric };
  vms: { name: string; final: VmRow; mean: Numeric }[];
  events: EventRecord[];
}

export class SummaryBuilder {
  private n = 0;
  private hostSum: Numeric = {};
  private vmSums = new Map<string, Numeric>();
  private last: Sample | null = null;
  private events: EventRecord[] = [];

  add(sample: Sample): void {
    this.n++;
    this.last = sample;
    this.events.push(...sample.events);
    accumulate(this.hostSum, numeric(sample.host));
    for (const vm of sample.vms) {
      const name = String(vm.vm);
      if (!this.vmSums.has(name)) this.vmSums.set(name, {});
      accumulate(this.vmSums.get(name)!, numeric(vm));
    }
  }

  build(scenario: string, seed: number, simulatedSeconds: number): Summary {
    const mean = (sum: Numeric) => Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, round(v / Math.max(1, this.n))]));
    return {
      scenario,
      seed,
      simulatedSeconds,
      samples: this.n,
      host: { final: this.last?.host ?? null, mean: mean(this.hostSum) },
      vms: (this.last?.vms ?? []).map((vm) => ({ name: String(vm.vm), final: vm, mean: mean(this.vmSums.get(String(vm.vm)) ?? {}) })),
      events: this.events,
    };
  }
}

function accumulate(sum: Numeric, row: Numeric): void {
  for (const [k, v] of Object.entries(row)) sum[k] = (sum[k] ?? 0) + v;
}
