// Small scenarios built directly as normalized objects, for engine and simulation tests that must
// not depend on the YAML loader.
import { defaults, HOST_SETTINGS, KSM_KNOBS, VM_SETTINGS } from "../src/scenario/settings.js";
import type { Scenario, VmConfig } from "../src/scenario/types.js";

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

export function vm(name: string, over: Partial<VmConfig> = {}): VmConfig {
  const memory = over.memory ?? 256 * MiB;
  return {
    name,
    group: name,
    memory,
    reservation: 0,
    limit: null,
    shares: "normal",
    overhead: 8 * MiB,
    guest: { os: "linux", balloonDriver: true, pageFile: memory, bootTime: 0 },
    image: name,
    content: { zero: 0.1, image: 0.3, duplicate: 0.05, duplicateCopies: 4 },
    powerOn: 0,
    workload: [{ at: 0, active: memory / 2, touchRate: 10000, pattern: { kind: "uniform" }, writeRatio: 0.3 }],
    settings: defaults(VM_SETTINGS),
    ...over,
  };
}

export function scenario(over: Partial<Scenario> & { hostMemory?: number; settings?: Partial<Scenario["host"]["settings"]> } = {}): Scenario {
  const { hostMemory, settings, ...rest } = over;
  return {
    name: "test",
    seed: 7,
    duration: 60,
    tick: 1,
    sampleEvery: 10,
    host: {
      memory: hostMemory ?? 4 * GiB,
      cpu: { cores: 8, ghz: 2.5 },
      policy: "esxi",
      hypervisorReserve: 64 * MiB,
      settings: { ...defaults(HOST_SETTINGS), ...settings },
      ksm: defaults(KSM_KNOBS),
    },
    vms: [vm("a")],
    events: [],
    ...rest,
  };
}

/**
 * The KSM selftest oracle (tools/testing/selftests/mm/ksm_tests.c, assert_ksm_pages_count()):
 * pages_shared and pages_sharing for n identical pages with max_page_sharing m.
 */
export function ksmOracle(n: number, m: number): { shared: number; sharing: number } {
  if (n % m === 0 || n % m === 1) {
    const shared = Math.floor(n / m);
    return { shared, sharing: shared * (m - 1) };
  }
  const shared = Math.floor(n / m) + 1;
  return { shared, sharing: n - shared };
}
