// Admission control (src/policy/admission.ts): a VM powers on only if its reservation + overhead fit
// in unreserved memory and its swap file (configured − reservation) can be created; otherwise the
// power-on fails with a message and the run goes on (spec esxi-memory.md §2, §7).
import { describe, expect, it } from "vitest";
import { unreservedPages } from "../src/policy/admission.js";
import { createSimulation } from "../src/sim/simulation.js";
import { GiB, MiB, scenario, vm } from "./helpers.js";

const idle = [{ at: 0, active: 4096, touchRate: 10, pattern: { kind: "uniform" as const }, writeRatio: 0 }];

describe("admission control", () => {
  it("refuses a reservation + overhead beyond unreserved memory, with a message, and the run goes on", async () => {
    // 1 GiB host, 64 MiB vmk: 960 MiB to reserve from
    const sim = await createSimulation(
      scenario({
        hostMemory: GiB,
        vms: [
          vm("a", { reservation: 600 * MiB, workload: idle }),
          vm("b", { reservation: 344 * MiB, workload: idle }), // 600 + 8 + 344 + 8 = 960: fits exactly
          vm("c", { reservation: 0, overhead: 4096, workload: idle }), // one page more: refused
          vm("d", { memory: 64 * MiB, reservation: 0, powerOn: null, workload: idle }),
        ],
        events: [
          { at: 10, kind: "powerOff", vms: ["b"] },
          { at: 20, kind: "powerOn", vms: ["c", "d"] },
        ],
      }),
      { check: true },
    );
    sim.step(5);
    expect(sim.vms.map((v) => v.powered)).toEqual([true, true, false, false]);
    expect(unreservedPages(sim)).toBe(0);
    const refused = sim.log.filter((r) => !r.ok);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ kind: "powerOn", vm: "c", time: 0 });
    expect(refused[0].message).toBe(
      "power-on of c refused by admission control: its reservation (0 MB) + overhead (4 KB) = 4 KB exceed unreserved memory (0 MB)",
    );
    // the run went on: a and b run their workloads
    expect(sim.engine.vmCounter(0, sim.engine.k.C_TOUCHES)).toBeGreaterThan(0);
    // b's power-off gives its reservation back: c and d fit now
    sim.step(20);
    expect(sim.vms.map((v) => v.powered)).toEqual([true, false, true, true]);
    expect(unreservedPages(sim)).toBe((960 - 608 - 8) * 256 - 1);
  });

  it("messages name the sizes", async () => {
    const sim = await createSimulation(
      scenario({ hostMemory: GiB, vms: [vm("big", { memory: 2 * GiB, reservation: 1 * GiB, overhead: 20 * MiB, workload: idle })] }),
    );
    sim.step(1);
    expect(sim.vms[0].powered).toBe(false);
    expect(sim.log[0].message).toBe(
      "power-on of big refused by admission control: its reservation (1024 MB) + overhead (20 MB) = 1044 MB exceed unreserved memory (960 MB)",
    );
    expect(sim.sample().vms[0].on).toBe(0);
  });

  it("refuses a power-on whose swap file does not fit in the swap datastore", async () => {
    const sim = await createSimulation(
      scenario({
        settings: { "Vmemsim.SwapDatastoreMB": 600 },
        vms: [
          vm("a", { workload: idle }), // 256 MB swap file
          vm("b", { workload: idle }), // 256: 512 of 600
          vm("c", { workload: idle }), // 256 more: refused
          vm("d", { reservation: 200 * MiB, workload: idle }), // 56 MB: fits
        ],
      }),
    );
    sim.step(1);
    expect(sim.vms.map((v) => v.powered)).toEqual([true, true, false, true]);
    const r = sim.log.find((x) => !x.ok)!;
    expect(r.vm).toBe("c");
    expect(r.message).toBe(
      "power-on of c refused: its swap file (256 MB = configured − reservation) cannot be created: 88 MB of the 600 MB swap datastore are free",
    );
  });

  it("admits everything that fits when nothing is reserved (the default)", async () => {
    const sim = await createSimulation(scenario({ hostMemory: GiB, vms: [0, 1, 2, 3, 4, 5].map((i) => vm(`v${i}`, { workload: idle })) }));
    sim.step(1);
    expect(sim.vms.every((v) => v.powered)).toBe(true);
  });
});
