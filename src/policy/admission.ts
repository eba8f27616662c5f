// Admission control at power-on. Spec: esxi-memory.md §2 (a VM does not power on unless its
// reservation plus overhead fit) and §7 (each VM gets a swap file of configured − reservation at
// power-on); docs/scheduler.md.
//
// Unreserved memory is what the VMkernel manages for VMs (total − the hypervisor's own reserve)
// less the reservations and overheads of the VMs already on. A power-on is refused, with a message
// in the event log, when the VM's reservation + overhead exceed it, or when its swap file does not
// fit in the swap datastore (`Vmemsim.SwapDatastoreMB`, 0 = unlimited). The run continues either way.
import type { Simulation, VmState } from "../sim/simulation.js";

const PAGE = 4096;
const MB = 2 ** 20;

export interface Admission {
  ok: boolean;
  message: string;
}

/** Reservation + overhead of a VM in pages (what it holds against unreserved memory). */
export function reservedPages(vm: VmState): number {
  return Math.ceil(vm.reservation / PAGE) + Math.ceil(vm.config.overhead / PAGE);
}

/** Swap file of a VM in bytes: configured − reservation. */
export function swapFileBytes(vm: VmState): number {
  return Math.max(0, vm.config.memory - vm.reservation);
}

/** Unreserved memory now, pages: managed memory less the reservations and overheads of VMs on. */
export function unreservedPages(sim: Simulation): number {
  const e = sim.engine;
  const managed = e.hostCounter(e.k.H_TOTAL) - e.hostCounter(e.k.H_VMK);
  let reserved = 0;
  for (const v of sim.vms) if (v.powered) reserved += reservedPages(v);
  return managed - reserved;
}

/** May `vm` power on now? */
export function admit(sim: Simulation, vm: VmState): Admission {
  const name = vm.config.name;
  const need = reservedPages(vm);
  const left = unreservedPages(sim);
  if (need > left) {
    return {
      ok: false,
      message:
        `power-on of ${name} refused by admission control: its reservation (${size(Math.ceil(vm.reservation / PAGE) * PAGE)}) + ` +
        `overhead (${size(Math.ceil(vm.config.overhead / PAGE) * PAGE)}) = ${size(need * PAGE)} exceed unreserved memory (${size(Math.max(0, left) * PAGE)})`,
    };
  }
  const space = sim.scenario.host.settings["Vmemsim.SwapDatastoreMB"] * MB;
  if (space > 0) {
    let used = 0;
    for (const v of sim.vms) if (v.powered) used += swapFileBytes(v);
    const file = swapFileBytes(vm);
    if (used + file > space) {
      return {
        ok: false,
        message:
          `power-on of ${name} refused: its swap file (${size(file)} = configured − reservation) cannot be created: ` +
          `${size(Math.max(0, space - used))} of the ${size(space)} swap datastore are free`,
      };
    }
  }
  return { ok: true, message: "" };
}

/** A size in MB (2 decimals); below 1 MB in KB so a few pages never read as 0 MB. */
function size(bytes: number): string {
  if (bytes > 0 && bytes < MB) return `${Math.round((bytes / 1024) * 100) / 100} KB`;
  return `${Math.round((bytes / MB) * 100) / 100} MB`;
}
