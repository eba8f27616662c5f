// Host advanced settings (ESXi names) and per-VM settings that vmemsim accepts, with defaults and
// ranges. Spec: ../shared/spec/esxi-memory.md §8. Every setting a scenario may name lives here; the
// schema, the loader, the docs table and the engine all read this one table.

export interface SettingDef {
  /** default value */
  default: number;
  min: number;
  max: number;
  /** unit shown in docs and messages */
  unit: string;
  /** one line for docs/scenarios.md */
  doc: string;
  /** true where vmemsim accepts the setting but no mechanism reads it yet */
  pending?: boolean;
}

/** ESXi host advanced settings (spec §8), plus vmemsim's own thresholds under the `Vmemsim.` prefix. */
export const HOST_SETTINGS = {
  "Mem.CtlMaxPercent": { default: 65, min: 0, max: 99, unit: "%", doc: "balloon limit, % of configured memory" },
  "Mem.IdleTax": { default: 75, min: 0, max: 99, unit: "%", doc: "idle memory tax rate" },
  "Mem.IdleTaxType": { default: 0, min: 0, max: 1, unit: "", doc: "0 flat (W02, vmemsim's default), 1 progressive (ESXi's default; vmemsim's reading in docs/scheduler.md)" },
  "Mem.SamplePeriod": { default: 60, min: 1, max: 3600, unit: "s", doc: "active-memory sampling period" },
  "Mem.BalancePeriod": { default: 15, min: 1, max: 3600, unit: "s", doc: "target recomputation period" },
  "Mem.ShareScanTime": { default: 60, min: 10, max: 600, unit: "min", doc: "time to scan one VM's memory once" },
  "Mem.ShareScanGHz": { default: 4, min: 0, max: 32, unit: "MB/s per GHz", doc: "scan rate cap per GHz of host CPU; 0 disables TPS" },
  "Mem.ShareRateMax": { default: 1024, min: 0, max: 32768, unit: "pages/s", doc: "scan rate cap per VM" },
  "Mem.ShareForceSalting": { default: 2, min: 0, max: 2, unit: "", doc: "0 share across VMs, 1 by sched.mem.pshare.salt, 2 only within a VM" },
  "Mem.AllocGuestLargePage": { default: 1, min: 0, max: 1, unit: "", doc: "back guest memory with 2 MiB large pages" },
  "Mem.MemZipEnable": { default: 1, min: 0, max: 1, unit: "", doc: "memory compression on" },
  "Mem.MemZipMaxPct": { default: 10, min: 5, max: 100, unit: "%", doc: "compression cache, % of configured memory" },
  "Mem.MemZipMaxAllocPct": { default: 50, min: 5, max: 100, unit: "%", doc: "compression cache, % of allocated memory" },
  "Mem.MemMinFreePct": { default: 0, min: 0, max: 50, unit: "%", doc: "minFree as % of memory; 0 = sliding scale" },
  "Mem.SampleActivePctMin": { default: 1, min: 0, max: 10, unit: "%", doc: "floor of the active-memory estimate" },
  "LPage.MaxSharedPages": { default: 510, min: 0, max: 512, unit: "pages", doc: "a large region with more shared subpages is not re-formed" },
  // scheduler (issue 4): free-memory state thresholds (spec §3, EPPING), sampling, swap datastore
  "Vmemsim.StateHighPct": { default: 400, min: 2, max: 10000, unit: "% of minFree", doc: "free memory at or above which the host is in the high state" },
  "Vmemsim.StateClearPct": { default: 100, min: 2, max: 10000, unit: "% of minFree", doc: "lower bound of the clear state" },
  "Vmemsim.StateSoftPct": { default: 64, min: 1, max: 10000, unit: "% of minFree", doc: "lower bound of the soft state" },
  "Vmemsim.StateHardPct": { default: 32, min: 1, max: 10000, unit: "% of minFree", doc: "lower bound of the hard state (below: low)" },
  "Vmemsim.StateBlockPct": { default: 16, min: 0, max: 10000, unit: "% of minFree", doc: "in low, below this VMs above their target are blocked from allocating" },
  "Vmemsim.StateMarginPct": { default: 10, min: 0, max: 1000, unit: "% of minFree", doc: "hysteresis: a state is left upward at its upper bound plus this" },
  "Vmemsim.StateHoldSec": { default: 5, min: 0, max: 3600, unit: "s", doc: "hysteresis: ... and only after free memory stayed there this long" },
  "Vmemsim.SampleSize": { default: 100, min: 1, max: 65536, unit: "pages", doc: "pages sampled per VM per Mem.SamplePeriod (W02: n = 100)" },
  "Vmemsim.SampleSlowGainPct": { default: 10, min: 1, max: 100, unit: "%", doc: "weight of a new period in the slow moving average of active memory" },
  "Vmemsim.SampleFastGainPct": { default: 60, min: 1, max: 100, unit: "%", doc: "weight of a new period in the fast moving average of active memory" },
  "Vmemsim.SwapDatastoreMB": { default: 0, min: 0, max: 2 ** 40, unit: "MB", doc: "space for VM swap files (configured − reservation each); a power-on whose file does not fit fails; 0 = unlimited" },
  // reclamation (issue 5): fault latencies (docs/reclamation.md), swap and balloon rates, compressibility
  "Vmemsim.LatSwapHdd": { default: 5000, min: 0, max: 10_000_000, unit: "us", doc: "host swap-in of one page from the VM's swap file (disk)" },
  "Vmemsim.LatSwapSsd": { default: 100, min: 0, max: 10_000_000, unit: "us", doc: "host swap-in of one page from the SSD host cache (Vmemsim.SwapCacheMB)" },
  "Vmemsim.LatUnzip": { default: 20, min: 0, max: 10_000_000, unit: "us", doc: "decompression of one page from the compression cache" },
  "Vmemsim.LatCow": { default: 2, min: 0, max: 10_000_000, unit: "us", doc: "copy-on-write break (copy of one 4 KiB page)" },
  "Vmemsim.LatGuestDisk": { default: 5000, min: 0, max: 10_000_000, unit: "us", doc: "guest read of one page from its own page file, or of page cache it dropped" },
  "Vmemsim.LatAllocWait": { default: 5000, min: 0, max: 10_000_000, unit: "us", doc: "a touch that needs a machine page when none is free (or the VM is blocked) waits this long, about one swap write" },
  "Vmemsim.SwapOutRate": { default: 25600, min: 0, max: 2 ** 31 - 1, unit: "pages/s", doc: "host swap-out (and compression) per VM, at most (25600 = 100 MB/s)" },
  "Vmemsim.BalloonRateNoSleep": { default: 16384, min: 0, max: 2 ** 31 - 1, unit: "pages/s", doc: "balloon inflation from the guest's free pages (vmw_balloon: non-sleeping allocations)" },
  "Vmemsim.BalloonRateMin": { default: 512, min: 0, max: 2 ** 31 - 1, unit: "pages/s", doc: "balloon inflation when the guest must reclaim: starts here, halves on failure down to here (vmw_balloon)" },
  "Vmemsim.BalloonRateMax": { default: 2048, min: 0, max: 2 ** 31 - 1, unit: "pages/s", doc: "... and grows by 16 pages/s per full-rate poll up to here (vmw_balloon)" },
  "Vmemsim.BalloonRateDeflate": { default: 16384, min: 0, max: 2 ** 31 - 1, unit: "pages/s", doc: "balloon deflation (vmw_balloon)" },
  "Vmemsim.Zip1KPct": { default: 25, min: 0, max: 100, unit: "%", doc: "default compressibility: % of non-zero pages that compress to 1 KB or less" },
  "Vmemsim.Zip2KPct": { default: 35, min: 0, max: 100, unit: "%", doc: "... % that compress to more than 1 KB and at most 2 KB (the rest is swapped, not compressed)" },
  "Vmemsim.SwapCacheMB": { default: 0, min: 0, max: 65536, unit: "MB", doc: "SSD host cache for swap (\"swap to host cache\"), shared by all VMs; 0 = none (12 bytes of engine memory per 4 KiB)" },
} satisfies Record<string, SettingDef>;

export type HostSettingName = keyof typeof HOST_SETTINGS;
export type HostSettings = Record<HostSettingName, number>;

/** Per-VM settings (ESXi .vmx names) besides reservation/limit/shares, which have their own fields. */
export const VM_SETTINGS = {
  "sched.mem.maxmemctl": { default: -1, min: -1, max: 2 ** 50, unit: "bytes", doc: "balloon limit for this VM; -1 = Mem.CtlMaxPercent of configured" },
  "sched.mem.pshare.enable": { default: 1, min: 0, max: 1, unit: "", doc: "page sharing for this VM" },
  "sched.mem.pshare.salt": { default: -1, min: -1, max: 2 ** 31 - 1, unit: "", doc: "sharing salt; -1 = unset" },
} satisfies Record<string, SettingDef>;

export type VmSettingName = keyof typeof VM_SETTINGS;
export type VmSettings = Record<VmSettingName, number>;

/** Linux KSM knobs for `policy: ksm`, named as in /sys/kernel/mm/ksm (spec linux-ksm.md). */
export const KSM_KNOBS = {
  pages_to_scan: { default: 100, min: 0, max: 2 ** 31 - 1, unit: "pages", doc: "pages scanned per ksmd wake-up" },
  sleep_millisecs: { default: 20, min: 0, max: 2 ** 31 - 1, unit: "ms", doc: "ksmd sleep between wake-ups" },
  max_page_sharing: { default: 256, min: 2, max: 2 ** 31 - 1, unit: "", doc: "sharers per KSM page before a duplicate is made" },
  use_zero_pages: { default: 0, min: 0, max: 1, unit: "", doc: "merge empty pages with the zero page (ksm_zero_pages)" },
  smart_scan: { default: 1, min: 0, max: 1, unit: "", doc: "skip pages that repeatedly fail to merge" },
  merge_across_nodes: { default: 1, min: 0, max: 1, unit: "", doc: "accepted; one NUMA node is modelled" },
  run: { default: 1, min: 0, max: 2, unit: "", doc: "1 run ksmd, 0 stop, 2 stop and unmerge everything" },
} satisfies Record<string, SettingDef>;

export type KsmKnobName = keyof typeof KSM_KNOBS;
export type KsmKnobs = Record<KsmKnobName, number>;

export function defaults<K extends string>(table: Record<K, SettingDef>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of Object.keys(table) as K[]) out[k] = table[k].default;
  return out;
}
