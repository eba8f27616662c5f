// The memory scheduler (src/policy/scheduler.ts): idle-taxed cost, min-funding revocation, the
// reclaim split per state, and targets in simulations, including W02 Fig. 7 (spec
// esxi-memory.md §2, published-results.md item 5).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  minFunding, pagesAtCost, rho, splitReclaim, taxedCost, type Client,
} from "../src/policy/scheduler.js";
import { allowed, DEFAULT_THRESHOLDS, goalPct } from "../src/policy/states.js";
import { createSimulation, type Simulation } from "../src/sim/simulation.js";
import { MiB, scenario, vm } from "./helpers.js";

const PAGE = 4096;
const MBP = 256; // pages per MB

describe("idle-taxed cost and rho", () => {
  it("is W02's rho = S / (P (f + k (1 - f))) for the flat tax", () => {
    for (const [P, A, tau] of [[1000, 250, 0.75], [1000, 1000, 0.75], [1000, 0, 0.5], [500, 100, 0]]) {
      const f = A / P;
      const k = 1 / (1 - tau);
      expect(rho(7, P, A, tau, 0)).toBeCloseTo(7 / (P * (f + k * (1 - f))), 12);
    }
  });

  it("pagesAtCost inverts taxedCost, flat and progressive", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.constantFrom(0, 1),
        (pages, active, tau, type) => {
          const c = taxedCost(pages, active, tau, type);
          expect(pagesAtCost(c, active, tau, type)).toBeCloseTo(pages, 4);
        },
      ),
    );
  });

  it("progressive: idle pages cost more as the idle:active ratio rises, never more than flat", () => {
    const A = 1000;
    const tau = 0.75;
    let prev = 1;
    for (let idle = 0; idle < 6000; idle += 250) {
      const marginal = taxedCost(A + idle + 1, A, tau, 1) - taxedCost(A + idle, A, tau, 1);
      expect(marginal).toBeGreaterThanOrEqual(prev - 1e-9);
      prev = marginal;
      expect(taxedCost(A + idle, A, tau, 1)).toBeLessThanOrEqual(taxedCost(A + idle, A, tau, 0) + 1e-9);
    }
    expect(prev).toBeCloseTo(4, 9); // beyond idle:active = 3 the full rate, k = 1 / (1 - 0.75)
    // a wholly idle VM pays the flat rate
    expect(taxedCost(5000, 0, tau, 1)).toBeCloseTo(taxedCost(5000, 0, tau, 0), 9);
  });
});

describe("min-funding revocation", () => {
  const client = fc.record({
    shares: fc.integer({ min: 1, max: 100_000 }),
    active: fc.integer({ min: 0, max: 100_000 }),
    lo: fc.integer({ min: 0, max: 20_000 }),
    span: fc.integer({ min: 0, max: 100_000 }),
  });

  it("shares the total exactly within the bounds, at one rho for the clients between them", () => {
    fc.assert(
      fc.property(
        fc.array(client, { minLength: 1, maxLength: 8 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 0.99, noNaN: true }),
        fc.constantFrom(0, 1),
        (cs, frac, tau, type) => {
          const clients: Client[] = cs.map((c) => ({ shares: c.shares, active: c.active, lo: c.lo, hi: c.lo + c.span }));
          const sumLo = clients.reduce((s, c) => s + c.lo, 0);
          const sumHi = clients.reduce((s, c) => s + c.hi, 0);
          const total = sumLo + frac * (sumHi - sumLo);
          const T = minFunding(clients, total, tau, type);
          expect(T.reduce((s, x) => s + x, 0)).toBeCloseTo(total, 3);
          const rhos: number[] = [];
          T.forEach((t, i) => {
            const c = clients[i];
            expect(t).toBeGreaterThanOrEqual(c.lo - 1e-9);
            expect(t).toBeLessThanOrEqual(c.hi + 1e-9);
            if (t > c.lo + 1e-6 && t < c.hi - 1e-6) rhos.push(rho(c.shares, t, c.active, tau, type));
          });
          for (const r of rhos) expect(r / rhos[0]).toBeCloseTo(1, 5);
        },
      ),
    );
  });

  it("splits by shares when the tax is 0, and moves idle memory to the active client when it is not", () => {
    const both = (tau: number, active1: number) =>
      minFunding(
        [
          { shares: 100, active: active1, lo: 0, hi: 1e6 },
          { shares: 100, active: 1e6, lo: 0, hi: 1e6 },
        ],
        1000,
        tau,
        0,
      );
    expect(both(0, 10)).toEqual([500, 500].map((x) => expect.closeTo(x, 6)));
    const [t1, t2] = both(0.75, 10);
    // equal rho: 10 + 4 (t1 - 10) = t2, t1 + t2 = 1000
    expect(t1).toBeCloseTo((1000 + 3 * 10) / 5, 6);
    expect(t2).toBeCloseTo(1000 - (1000 + 30) / 5, 6);
    expect(minFunding([{ shares: 200, active: 0, lo: 0, hi: 1e6 }, { shares: 100, active: 0, lo: 0, hi: 1e6 }], 900, 0, 0)).toEqual([
      expect.closeTo(600, 6),
      expect.closeTo(300, 6),
    ]);
  });

  it("honours reservations (lo) and limits (hi) first", () => {
    const T = minFunding(
      [
        { shares: 1, active: 0, lo: 300, hi: 1000 },
        { shares: 1000, active: 1000, lo: 0, hi: 400 },
        { shares: 1000, active: 1000, lo: 0, hi: 1000 },
      ],
      1000,
      0.75,
      0,
    );
    expect(T[0]).toBeCloseTo(300, 6);
    expect(T[1]).toBeCloseTo(350, 6);
    expect(T[2]).toBeCloseTo(350, 6);
    expect(minFunding([{ shares: 1, active: 0, lo: 300, hi: 1000 }, { shares: 1, active: 0, lo: 300, hi: 1000 }], 500, 0, 0)).toEqual([300, 300]);
  });

  it("progressive tax leaves a partly active VM more than the flat tax does", () => {
    const cs: Client[] = [
      { shares: 100, active: 400, lo: 0, hi: 1e6 }, // idle:active 1.5 at 1000 pages
      { shares: 100, active: 0, lo: 0, hi: 1e6 }, // wholly idle
    ];
    const flat = minFunding(cs, 2000, 0.75, 0);
    const prog = minFunding(cs, 2000, 0.75, 1);
    expect(prog[0]).toBeGreaterThan(flat[0] + 50);
  });
});

describe("reclaim split (MCTLTGT / SWTGT) per state", () => {
  const base = { claimed: 1000, sztgt: 600, hi: 1000, ballooned: 0, out: 0, driver: true, mctlmax: 650 };
  const split = (state: Parameters<typeof allowed>[0], over: Partial<typeof base> = {}) => splitReclaim(allowed(state), { ...base, ...over });

  it("soft: the balloon takes the reclaim, up to MCTLMAX; nothing swaps", () => {
    expect(split("soft")).toEqual({ mctltgt: 400, swtgt: 0 });
    expect(split("soft", { mctlmax: 100 })).toEqual({ mctltgt: 100, swtgt: 0 });
  });
  it("hard / low: compression + swap take what the balloon does not already hold", () => {
    expect(split("hard")).toEqual({ mctltgt: 0, swtgt: 400 });
    expect(split("hard", { ballooned: 150 })).toEqual({ mctltgt: 150, swtgt: 250 });
    expect(split("low", { ballooned: 150, driver: false })).toEqual({ mctltgt: 0, swtgt: 400 });
  });
  it("high / clear: nothing new is reclaimed; balloons deflate toward a smaller reclaim", () => {
    expect(split("clear")).toEqual({ mctltgt: 0, swtgt: 0 });
    expect(split("clear", { ballooned: 150, out: 50 })).toEqual({ mctltgt: 150, swtgt: 50 });
    expect(split("high", { ballooned: 500 })).toEqual({ mctltgt: 400, swtgt: 0 });
    expect(split("high", { sztgt: 1000, ballooned: 300 })).toEqual({ mctltgt: 0, swtgt: 0 });
  });
  it("a VM above its limit is reclaimed from in any state: balloon first, then swap", () => {
    expect(split("high", { hi: 800, sztgt: 800 })).toEqual({ mctltgt: 200, swtgt: 0 });
    expect(split("high", { hi: 800, sztgt: 800, mctlmax: 50 })).toEqual({ mctltgt: 50, swtgt: 150 });
    expect(split("clear", { hi: 800, sztgt: 800, driver: false })).toEqual({ mctltgt: 0, swtgt: 200 });
  });
});

/** Run a simulation to `until` seconds in whole ticks. */
function runTo(sim: Simulation, until: number): void {
  sim.step(until - sim.time);
}

describe("targets in a simulation", () => {
  it("W02 Fig. 7: equal targets at tax 0; at 75 % the idle VM's falls to the min-funding equilibrium", async () => {
    // examples/w02-fig7-idle-tax.yaml, shortened: 320 MiB for two 256 MiB VMs, unique content
    const unique = { zero: 0, image: 0, duplicate: 0, duplicateCopies: 2 };
    const sim = await createSimulation(
      scenario({
        hostMemory: 448 * MiB,
        settings: { "Mem.IdleTaxType": 0, "Mem.IdleTax": 0, "Mem.SamplePeriod": 30, "Mem.AllocGuestLargePage": 0 },
        duration: 1500,
        vms: [
          vm("vm1-idle", {
            overhead: 32 * MiB,
            content: unique,
            workload: [
              { at: 0, active: 256 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 1 },
              { at: 90, active: 4 * MiB, touchRate: 20, pattern: { kind: "uniform" }, writeRatio: 0.1 },
            ],
          }),
          vm("vm2-dbench", {
            overhead: 32 * MiB,
            content: unique,
            powerOn: 120,
            workload: [{ at: 0, active: 256 * MiB, touchRate: 20000, pattern: { kind: "hotcold", hot: 0.5, hotShare: 0.9 }, writeRatio: 0.5 }],
          }),
        ],
        events: [{ at: 900, kind: "setHost", settings: { "Mem.IdleTax": 75 }, ksm: {} }],
      }),
    );
    const [v1, v2] = sim.vms;
    runTo(sim, 890);
    const tax0 = [v1.targets.sztgt, v2.targets.sztgt];
    expect(Math.abs(tax0[0] - tax0[1]) / tax0[1]).toBeLessThan(0.05);
    runTo(sim, 1500);
    const [t1, t2] = [v1.targets.sztgt, v2.targets.sztgt];
    const [in1, in2] = sim.scheduler.vms.map((p) => p.balance!);
    // the equilibrium from the formula: equal rho = S / (A + k (T - A)), T1 + T2 = B, 0 <= T <= 256 MiB
    const k = 1 / (1 - 0.75);
    const B = t1 + t2;
    let e1 = (B - (1 - 1 / k) * (in2.active - in1.active)) / 2; // both hold idle pages
    if (B - e1 < in2.active) e1 = (B + (k - 1) * in1.active) / (k + 1); // VM2 all active
    e1 = Math.max(e1, B - 256 * MBP);
    const e2 = B - e1;
    expect(Math.abs(t1 - e1) / e1).toBeLessThan(0.05);
    expect(Math.abs(t2 - e2) / e2).toBeLessThan(0.05);
    expect(t1).toBeLessThan(0.9 * tax0[0]); // VM1's target falls ...
    expect(t2).toBeGreaterThan(1.1 * tax0[1]); // ... and VM2's rises
    expect(in1.active).toBeLessThan(0.05 * 256 * MBP); // VM1 is idle, VM2 is not
    expect(in2.active).toBeGreaterThan(Math.max(0.2 * 256 * MBP, 10 * in1.active));
    console.log(
      `W02 Fig. 7: tax 0 → SZTGT ${(tax0[0] / MBP).toFixed(1)} / ${(tax0[1] / MBP).toFixed(1)} MB; ` +
        `tax 75 % → ${(t1 / MBP).toFixed(1)} / ${(t2 / MBP).toFixed(1)} MB, formula ${(e1 / MBP).toFixed(1)} / ${(e2 / MBP).toFixed(1)} MB ` +
        `(active ${(in1.active / MBP).toFixed(1)} / ${(in2.active / MBP).toFixed(1)} MB)`,
    );
  });

  it("targets share mapped + free − the state's goal, and the rows show them", async () => {
    const sim = await createSimulation(
      scenario({
        hostMemory: 512 * MiB,
        settings: { "Mem.AllocGuestLargePage": 0, "Mem.BalancePeriod": 1 },
        vms: [
          vm("a", { workload: [{ at: 0, active: 256 * MiB, touchRate: 5000, pattern: { kind: "uniform" }, writeRatio: 0.5 }] }),
          vm("b", { workload: [{ at: 0, active: 200 * MiB, touchRate: 5000, pattern: { kind: "uniform" }, writeRatio: 0.5 }] }),
        ],
      }),
    );
    for (let i = 0; i < 120; i++) {
      sim.step(1);
      const last = sim.scheduler.last!;
      expect(last.time).toBe(sim.time);
      expect(last.goal).toBeCloseTo((goalPct(last.state, DEFAULT_THRESHOLDS) / 100) * sim.scheduler.minFreePages(), 6);
      expect(last.budget).toBeCloseTo(last.mapped + last.free - last.goal, 6);
      const inputs = sim.scheduler.vms.map((p) => p.balance!);
      const sum = sim.vms.reduce((s, v) => s + v.targets.sztgt, 0);
      const demand = inputs.reduce((s, x) => s + x.demand, 0);
      // the whole budget is shared unless every VM is held at a bound
      if (demand >= last.budget) expect(Math.abs(sum - last.budget)).toBeLessThanOrEqual(1);
      else expect(sum).toBeGreaterThanOrEqual(demand - 1);
    }
    expect(sim.log.some((r) => r.kind === "state")).toBe(true); // it was overcommitted at some point
    const row = sim.sample();
    const ovhd = 8; // MB, helpers' default overhead
    expect(row.vms[0].SZTGT).toBeCloseTo(sim.vms[0].targets.sztgt / MBP + ovhd, 1);
    expect(row.vms[0].ENTL).toBeCloseTo(sim.scheduler.vms[0].entitlement / MBP + ovhd, 1);
    expect(row.vms[1].MCTLTGT).toBeCloseTo(sim.vms[1].targets.mctltgt / MBP, 1);
    expect(row.vms[1].SWTGT).toBeCloseTo(sim.vms[1].targets.swtgt / MBP, 1);
    expect(row.host["MEMCTL.target"]).toBeCloseTo((sim.vms[0].targets.mctltgt + sim.vms[1].targets.mctltgt) / MBP, 1);
    expect(row.host["SWAP.rclmtgt"]).toBeCloseTo((sim.vms[0].targets.swtgt + sim.vms[1].targets.swtgt) / MBP, 1);
  });

  it("shares divide an overcommitted host 2 : 1 at tax 0", async () => {
    const hungry = (name: string, shares: number) =>
      vm(name, { shares, workload: [{ at: 0, active: 256 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }] });
    const sim = await createSimulation(
      scenario({ hostMemory: 384 * MiB, settings: { "Mem.IdleTax": 0 }, vms: [hungry("a", 2000), hungry("b", 1000)] }),
    );
    runTo(sim, 60);
    expect(sim.vms[0].targets.sztgt / sim.vms[1].targets.sztgt).toBeCloseTo(2, 2);
  });

  it("never targets below a reservation; a VM above its limit is reclaimed from even in high", async () => {
    const sim = await createSimulation(
      scenario({
        hostMemory: 448 * MiB,
        settings: { "Mem.IdleTax": 75, "Mem.SamplePeriod": 10 },
        vms: [
          vm("reserved", { reservation: 120 * MiB, shares: 100, workload: [{ at: 0, active: 150 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }, { at: 30, active: 1 * MiB, touchRate: 10, pattern: { kind: "uniform" }, writeRatio: 0 }] }),
          vm("hog", { workload: [{ at: 0, active: 256 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }] }),
        ],
      }),
    );
    let atReservation = 0;
    for (let i = 0; i < 600; i++) {
      sim.step(1);
      expect(sim.vms[0].targets.sztgt).toBeGreaterThanOrEqual(120 * MBP);
      if (sim.vms[0].targets.sztgt === 120 * MBP) atReservation++;
    }
    expect(atReservation).toBeGreaterThan(100); // few shares, idle and taxed: held at its reservation
    expect(sim.scheduler.vms[0].balance!.active).toBeLessThan(10 * MBP);

    const lim = await createSimulation(
      scenario({
        vms: [
          vm("capped", {
            limit: 100 * MiB,
            guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
            workload: [{ at: 0, active: 200 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }],
          }),
          vm("ballooned", {
            limit: 100 * MiB,
            workload: [{ at: 0, active: 200 * MiB, touchRate: 20000, pattern: { kind: "uniform" }, writeRatio: 0.5 }],
          }),
        ],
      }),
    );
    runTo(lim, 60);
    expect(lim.state).toBe("high");
    const [capped, ballooned] = lim.vms;
    for (const v of lim.vms) expect(v.targets.sztgt).toBe(100 * MBP);
    const over = (v: typeof capped) => 256 * MBP - lim.engine.vmCounter(v.index, lim.engine.k.C_UNBACKED) - 100 * MBP;
    expect(over(capped)).toBeGreaterThan(90 * MBP);
    expect(capped.targets).toMatchObject({ mctltgt: 0, swtgt: over(capped) }); // no driver: swap
    expect(ballooned.targets).toMatchObject({ mctltgt: over(ballooned), swtgt: 0 });
    expect(ballooned.targets.mctlmax).toBe(Math.floor(256 * MBP * 0.65));
  });

  it("rebalances every Mem.BalancePeriod and on each state change", async () => {
    const sim = await createSimulation(
      scenario({
        hostMemory: 1024 * MiB,
        settings: { "Mem.AllocGuestLargePage": 0, "Mem.BalancePeriod": 15 },
        duration: 600,
        vms: [vm("a", { memory: 1536 * MiB, workload: [{ at: 0, active: 1536 * MiB, touchRate: 2000, pattern: { kind: "uniform" }, writeRatio: 0.2 }] })],
      }),
    );
    const times: number[] = [];
    let seen = 0;
    while (sim.time < 600) {
      sim.step(1);
      if (sim.scheduler.balances !== seen) {
        seen = sim.scheduler.balances;
        times.push(sim.time);
      }
    }
    const changes = sim.log.filter((r) => r.kind === "state").map((r) => r.time);
    expect(changes.length).toBeGreaterThanOrEqual(1);
    for (const t of changes) expect(times).toContain(t);
    // between events, balances are 15 s apart
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    expect(gaps.every((g) => g <= 15)).toBe(true);
    expect(times.length).toBeGreaterThanOrEqual(600 / 15);
    expect(times.length).toBeLessThanOrEqual(600 / 15 + 1 + changes.length);
  });

  it("sched.mem.maxmemctl overrides Mem.CtlMaxPercent for MCTLMAX", async () => {
    const sim = await createSimulation(
      scenario({
        settings: { "Mem.CtlMaxPercent": 50 },
        vms: [vm("a"), vm("b", { settings: { "sched.mem.maxmemctl": 64 * MiB, "sched.mem.pshare.enable": 1, "sched.mem.pshare.salt": -1 } })],
      }),
    );
    runTo(sim, 2);
    expect(sim.vms[0].targets.mctlmax).toBe(128 * MBP);
    expect(sim.vms[1].targets.mctlmax).toBe(64 * MBP);
    expect(sim.sample().vms[1].MCTLMAX).toBe(64);
  });

  it("applies state thresholds changed mid-run", async () => {
    // 4 GiB host: about 3.9 GiB free = some 1600 % of minFree (245.76 MB)
    const sim = await createSimulation(scenario({ events: [{ at: 5, kind: "setHost", settings: { "Vmemsim.StateHighPct": 5000 }, ksm: {} }] }));
    runTo(sim, 4);
    expect(sim.state).toBe("high");
    runTo(sim, 7);
    expect(sim.state).toBe("clear");
    expect(sim.log.filter((r) => r.kind === "state").map((r) => r.message.split(" (")[0])).toEqual(["high → clear"]);
  });

  it("refuses inconsistent state thresholds", async () => {
    await expect(createSimulation(scenario({ settings: { "Vmemsim.StateSoftPct": 150 } }))).rejects.toThrow(/must fall strictly/);
    const sim = await createSimulation(
      scenario({ events: [{ at: 5, kind: "setHost", settings: { "Vmemsim.StateHardPct": 80 }, ksm: {} }] }),
    );
    runTo(sim, 10);
    const r = sim.log.find((x) => x.kind === "state" && !x.ok);
    expect(r?.message).toMatch(/not changed/);
    expect(sim.scenario.host.settings["Vmemsim.StateHardPct"]).toBe(32);
  });
});

void PAGE;
