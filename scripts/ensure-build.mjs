// `npm start` builds first when the build is missing or older than its sources.
import { existsSync, statSync, readdirSync } from "node:fs";
import { execSync } from "node:child_process";
import { join } from "node:path";

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const outputs = ["build/vmemsim.wasm", "dist/cli/main.js"];
const built = outputs.every((f) => existsSync(f)) ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : 0;
if (built < Math.max(newest("assembly"), newest("src"))) {
  execSync("npm run build", { stdio: ["ignore", "inherit", "inherit"] });
}
