// The Web Worker entry: runs simulations off the page's thread (protocol.ts, serve.ts). Start it
// as a module worker, e.g. with a bundler:
//   new Worker(new URL("vmemsim/worker", import.meta.url), { type: "module" })
// and talk to it with SimulationWorker (client.ts).
import { serveSimulation, type Port } from "./serve.js";

declare const self: Port & { location: { href: string } };

serveSimulation(self, self.location.href);
