import { defineConfig } from "vitest/config";

// Tests that drive the machine's real Linux KSM share one kernel-wide ksmd and its counters:
// they run after everything else, one file at a time, so no other test competes for the CPU
// while the kernel's scans are being compared scan by scan.
const REAL_KSM = ["test/ksm-real.test.ts", "test/ksm-vs-real.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: REAL_KSM, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "real-ksm", include: REAL_KSM, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
