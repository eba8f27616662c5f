// Vite config of the browser demo only (`npm run demo`, `npm run build:demo` → dist/demo/).
// Kept here, not at the repository root, so that vitest (vitest.config.ts) never picks it up.
import { defineConfig } from "vite";
import { fileURLToPath } from "node:url";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here("."),
  // relative asset URLs: the static build works from any folder of any web server
  base: "./",
  publicDir: false,
  clearScreen: false,
  worker: { format: "es" },
  build: {
    outDir: here("../dist/demo"),
    emptyOutDir: true,
    target: "es2022",
    // never inline the engine as a data: URL (Vite inlines assets under 4 KiB by default)
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2048,
  },
  server: { port: 5173, fs: { allow: [here("..")] } },
  preview: { port: 4173 },
});
