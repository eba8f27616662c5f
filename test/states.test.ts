// Free-memory states (src/policy/states.ts): minFree, thresholds with hysteresis, what each state
// allows, and the state machine driven by a simulation (spec esxi-memory.md §3).
import { describe, expect, it } from "vitest";
import {
  advanceState, allowed, DEFAULT_THRESHOLDS, goalPct, minFree, nextBlocking, nextState, rawState, STATES, thresholdProblem,
  type MemState, type StateTrack,
} from "../src/policy/states.js";
import { createSimulation } from "../src/sim/simulation.js";
import { GiB, MiB, scenario, vm } from "./helpers.js";

const MB = MiB;
const th = DEFAULT_THRESHOLDS;

describe("minFree", () => {
  it("follows the sliding scale: 28 GB gives 901.12 MB, 128 GB about 1920 MB", () => {
    expect(minFree(28 * GiB, 0) / MB).toBeCloseTo(901.12, 6);
    expect(minFree(128 * GiB, 0) / MB).toBeCloseTo(1925.12, 6); // 901.12 + 1 % of 100 GB: "about 1920"
    expect(minFree(4 * GiB, 0) / MB).toBeCloseTo(0.06 * 4096, 6);
    expect(minFree(12 * GiB, 0) / MB).toBeCloseTo(0.06 * 4096 + 0.04 * 8192, 6);
  });
  it("is Mem.MemMinFreePct % of memory when that is set", () => {
    expect(minFree(128 * GiB, 6) / MB).toBeCloseTo(0.06 * 128 * 1024, 6);
  });
});

describe("state machine", () => {
  it("maps free memory to states by the lower bounds 400 / 100 / 64 / 32", () => {
    expect([500, 400, 399, 100, 99, 64, 63, 32, 31, 0].map((p) => rawState(p, th))).toEqual([
      "high", "high", "clear", "clear", "soft", "soft", "hard", "hard", "low", "low",
    ]);
  });

  it("walks down at once and up only past each upper bound plus the margin", () => {
    let s: MemState = "high";
    const seen: MemState[] = [];
    for (const p of [450, 390, 99, 63, 31, 10]) seen.push((s = nextState(s, p, th)));
    expect(seen).toEqual(["high", "clear", "soft", "hard", "low", "low"]);
    // 35 % is in hard's band but below 32 + 10: stays low; 42 leaves it
    expect(nextState("low", 35, th)).toBe("low");
    expect(nextState("low", 42, th)).toBe("hard");
    expect(nextState("hard", 70, th)).toBe("hard");
    expect(nextState("hard", 74, th)).toBe("soft");
    expect(nextState("soft", 105, th)).toBe("soft");
    expect(nextState("soft", 110, th)).toBe("clear");
    expect(nextState("clear", 405, th)).toBe("clear");
    expect(nextState("clear", 410, th)).toBe("high");
    // a jump clears several bounds at once
    expect(nextState("low", 500, th)).toBe("high");
    expect(nextState("low", 80, th)).toBe("soft");
  });

  it("does not flap when free memory jitters around a threshold", () => {
    let s: MemState = "clear";
    let changes = 0;
    // free memory drifting around 100 % of minFree, ±6 %
    for (let i = 0; i < 1000; i++) {
      const p = 100 + 6 * Math.sin(i * 0.7) + 2 * Math.sin(i * 2.3);
      const n = nextState(s, p, th);
      if (n !== s) changes++;
      s = n;
    }
    expect(changes).toBe(1); // clear → soft once, never back: 108 < 110
    expect(s).toBe("soft");
  });

  it("blocks inside low below 16 %, until 16 + margin or leaving low", () => {
    expect(nextBlocking(false, "low", 17, th)).toBe(false);
    expect(nextBlocking(false, "low", 15, th)).toBe(true);
    expect(nextBlocking(true, "low", 20, th)).toBe(true);
    expect(nextBlocking(true, "low", 26, th)).toBe(false);
    expect(nextBlocking(true, "hard", 5, th)).toBe(false);
  });

  it("aims targets one margin past the level that leaves the state", () => {
    expect(STATES.map((s) => goalPct(s, th))).toEqual([120, 120, 120, 84, 52]);
  });

  it("moves up only after the better state stayed available for the hold time", () => {
    let t: StateTrack = { state: "low", upSince: null };
    const seen: MemState[] = [];
    // free memory jumps above the exit level for 3 s, drops back, then stays
    const pcts = [10, 50, 50, 50, 30, 50, 50, 50, 50, 50, 50, 50];
    pcts.forEach((p, i) => {
      t = advanceState(t, i, p, th, 5);
      seen.push(t.state);
    });
    expect(seen).toEqual(["low", "low", "low", "low", "low", "low", "low", "low", "low", "low", "hard", "hard"]);
    // worse states at once, and they cancel a pending move up
    expect(advanceState({ state: "hard", upSince: 3 }, 4, 10, th, 5)).toEqual({ state: "low", upSince: null });
    expect(advanceState({ state: "hard", upSince: null }, 4, 500, th, 0)).toEqual({ state: "high", upSince: null });
  });

  it("refuses thresholds that do not fall strictly", () => {
    expect(thresholdProblem(th)).toBeNull();
    expect(thresholdProblem({ ...th, soft: 100 })).toMatch(/Vmemsim.StateSoftPct 100 >= Vmemsim.StateClearPct 100/);
  });
});

describe("what each state allows", () => {
  it("matches the spec's table", () => {
    const row = (s: MemState, blocking = false) => {
      const a = allowed(s, blocking);
      return [a.breakLargePages, a.activeTps, a.balloon, a.compressSwap, a.block].map(Number).join("");
    };
    expect(row("high")).toBe("00000");
    expect(row("clear")).toBe("11000");
    expect(row("soft")).toBe("11100");
    expect(row("hard")).toBe("11010");
    expect(row("low")).toBe("10010");
    expect(row("low", true)).toBe("10011");
    expect(row("hard", true)).toBe("11010"); // blocking only in low
  });
});

describe("states in a simulation", () => {
  // VMs that nothing can reclaim from (reserved in full: their targets are their whole memory) and
  // whose pages nothing can share (unique content, all writes), so free memory moves with the guests
  const unique = { zero: 0, image: 0, duplicate: 0, duplicateCopies: 2 };
  const reserved = (name: string, memory: number, active: number, touchRate: number) =>
    vm(name, {
      memory,
      reservation: memory,
      content: unique,
      guest: { os: "linux", balloonDriver: false, pageFile: 0, bootTime: 0 },
      workload: [{ at: 0, active, touchRate, pattern: { kind: "uniform" }, writeRatio: 1 }],
    });

  it("shrinking free memory walks high → clear → soft → hard → low, once each", async () => {
    // 1 GiB host (minFree 61.44 MB): four 232 MiB VMs reserve all 960 MiB and fill it
    const sim = await createSimulation(
      scenario({
        hostMemory: GiB,
        settings: { "Mem.AllocGuestLargePage": 0 },
        vms: [0, 1, 2, 3].map((i) => reserved(`r${i}`, 232 * MiB, 232 * MiB, 1000)),
      }),
      { check: true },
    );
    const seen: string[] = [];
    while (sim.time < 400) {
      sim.step(1);
      if (seen.at(-1) !== sim.state) seen.push(sim.state);
    }
    const states = sim.log.filter((r) => r.kind === "state").map((r) => r.message.split(" (")[0]);
    expect(states).toEqual(["high → clear", "clear → soft", "soft → hard", "hard → low"]);
    expect(seen).toEqual(["high", "clear", "soft", "hard", "low"]);
    expect(sim.sample().host["VMKMEM.state"]).toBe("low");
    expect(sim.scheduler.blocking).toBe(true); // free memory is below 16 % of minFree ...
    expect(sim.vms.every((v) => sim.engine.vmParam(v.index, sim.engine.k.P_BLOCKED) === 0)).toBe(true); // ... but no VM is above its target
  });

  it("blocks VMs above their target from allocating, below 16 % of minFree", async () => {
    const sim = await createSimulation(
      scenario({
        hostMemory: 256 * MiB,
        settings: { "Mem.AllocGuestLargePage": 0 },
        vms: [vm("big", { memory: 512 * MiB, content: unique, workload: [{ at: 0, active: 512 * MiB, touchRate: 200000, pattern: { kind: "uniform" }, writeRatio: 1 }] })],
      }),
      { check: true },
    );
    const k = sim.engine.k;
    let ticksBlocked = 0;
    for (let i = 0; i < 30; i++) {
      sim.step(1);
      const p = sim.scheduler.vms[0];
      expect(sim.engine.vmParam(0, k.P_BLOCKED)).toBe(p.blocked ? 1 : 0);
      if (p.blocked) {
        ticksBlocked++;
        expect(sim.scheduler.blocking).toBe(true);
        expect(sim.scheduler.allowed().block).toBe(true);
      }
    }
    expect(ticksBlocked).toBeGreaterThan(0);
    expect(sim.engine.vmCounter(0, k.C_BLOCKED)).toBeGreaterThan(0);
    expect(sim.engine.vmCounter(0, k.C_ALLOC_STALLS)).toBeGreaterThanOrEqual(sim.engine.vmCounter(0, k.C_BLOCKED));
  });

  it("moves with minFree and keeps its state inside the hysteresis band", async () => {
    // a reserved working set that fits: free memory settles at about 102 MiB, then minFree moves
    const sim = await createSimulation(
      scenario({
        hostMemory: GiB,
        settings: { "Mem.AllocGuestLargePage": 0, "Mem.MemMinFreePct": 1 },
        vms: [reserved("a", 900 * MiB, 850 * MiB, 20000)],
      }),
    );
    sim.step(300);
    const free = sim.scheduler.freePages() * 4096;
    sim.step(10);
    expect(sim.scheduler.freePages() * 4096).toBe(free); // settled
    expect(free / MiB).toBeCloseTo(102, 0);
    expect(sim.state).toBe("high");
    const settings = sim.scenario.host.settings;
    const walk: [number, MemState][] = [
      [250, "clear"], [70, "soft"], [40, "hard"], [22, "low"],
      [35, "low"], // in hard's band, below 32 + 10
      [45, "hard"],
      [70, "hard"], // in soft's band, below 64 + 10
      [80, "soft"], [105, "soft"], [200, "clear"], [405, "clear"], [500, "high"],
    ];
    for (const [pct, want] of walk) {
      // minFree such that free memory is `pct` % of it; 8 s > the 5 s hold
      settings["Mem.MemMinFreePct"] = (free / (pct / 100) / GiB) * 100;
      sim.step(8);
      expect(sim.state, `at ${pct} %`).toBe(want);
    }
    const states = sim.log.filter((r) => r.kind === "state").map((r) => r.message.split(" (")[0]);
    expect(states).toEqual(["high → clear", "clear → soft", "soft → hard", "hard → low", "low → hard", "hard → soft", "soft → clear", "clear → high"]);
  });
});

function sample(sim: Awaited<ReturnType<typeof createSimulation>>) {
  return sim.sample().host;
}
