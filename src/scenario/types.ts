// The normalized scenario: what the loader (load.ts) produces from YAML/JSON and what the
// simulation consumes. Sizes are bytes, times seconds, rates per second; every default is filled.
import type { HostSettings, KsmKnobs, VmSettings } from "./settings.js";

export type Policy = "esxi" | "ksm";
export type GuestOs = "linux" | "windows";

/** How a workload picks which of its active pages to touch. */
export type Pattern =
  | { kind: "uniform" }
  /** rank r (0 = hottest) touched with probability ∝ 1 / (r + 1)^s */
  | { kind: "zipf"; s: number }
  /** `hotShare` of the touches go to the first `hot` fraction of the active pages */
  | { kind: "hotcold"; hot: number; hotShare: number };

/**
 * What a written page holds, as fractions of the VM's pages (by guest-physical page number, so
 * clones of one image agree page by page). The rest (1 - zero - image - duplicate) is unique.
 */
export interface ContentModel {
  /** pages whose content is all zeros */
  zero: number;
  /** pages identical to the same page of the VM's image (shared with VMs of the same image) */
  image: number;
  /** pages identical to other pages of the same VM (intra-VM duplicates) */
  duplicate: number;
  /** how many pages hold each duplicated content (>= 2) */
  duplicateCopies: number;
  /**
   * reclamation (issue 5), optional: compressibility of the image's non-zero pages, fractions 0..1:
   * `le1k` compress to 1 KB or less, `le2k` to more than 1 KB and at most 2 KB; the rest does not
   * fit 2 KB. Absent: the host settings Vmemsim.Zip1KPct and Vmemsim.Zip2KPct.
   */
  compress?: { le1k: number; le2k: number };
}

export interface WorkloadPhase {
  /** seconds from the start of the run */
  at: number;
  /** working set, bytes (<= the VM's memory) */
  active: number;
  /** page touches per second */
  touchRate: number;
  pattern: Pattern;
  /** fraction of touches that write, 0..1 */
  writeRatio: number;
}

export interface GuestConfig {
  os: GuestOs;
  /** vmmemctl installed */
  balloonDriver: boolean;
  /** guest page file / swap partition, bytes */
  pageFile: number;
  /** seconds after power-on before the balloon driver runs */
  bootTime: number;
}

export type Shares = "low" | "normal" | "high" | number;

export interface VmConfig {
  /** unique; a group with `count: n` expands to `name-1` … `name-n` */
  name: string;
  /** group name the VM came from (== name when count was 1) */
  group: string;
  /** configured memory (MEMSZ), bytes, a multiple of 4 KiB */
  memory: number;
  /** sched.mem.min, bytes */
  reservation: number;
  /** sched.mem.max, bytes; null = unlimited */
  limit: number | null;
  shares: Shares;
  /** per-VM monitor overhead, bytes */
  overhead: number;
  guest: GuestConfig;
  /** VMs of the same image have identical `image` content pages */
  image: string;
  content: ContentModel;
  /** seconds; null = stays off until a powerOn event */
  powerOn: number | null;
  /** phases sorted by `at`, the first at 0 */
  workload: WorkloadPhase[];
  settings: VmSettings;
}

export interface HostConfig {
  memory: number;
  cpu: { cores: number; ghz: number };
  policy: Policy;
  /** machine memory kept by the hypervisor itself (vmk), bytes */
  hypervisorReserve: number;
  settings: HostSettings;
  ksm: KsmKnobs;
}

export type ScenarioEvent =
  | { at: number; kind: "powerOn"; vms: string[] }
  | { at: number; kind: "powerOff"; vms: string[] }
  | { at: number; kind: "setHost"; settings: Partial<HostSettings>; ksm: Partial<KsmKnobs> }
  | {
      at: number;
      kind: "setVm";
      vms: string[];
      reservation?: number;
      limit?: number | null;
      shares?: Shares;
      settings?: Partial<VmSettings>;
    }
  | { at: number; kind: "workload"; vms: string[]; phase: Omit<WorkloadPhase, "at"> };

export interface Scenario {
  name: string;
  seed: number;
  duration: number;
  tick: number;
  sampleEvery: number;
  host: HostConfig;
  vms: VmConfig[];
  /** sorted by `at` (stable) */
  events: ScenarioEvent[];
}
