// The core and API must run in browsers: no node: imports (or Node-only packages) outside the CLI.
// The engine loader may read a file: URL through a dynamic import, used only under Node.
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

describe("browser safety", () => {
  it("nothing under src/ but src/cli imports node: modules or Node-only packages statically", () => {
    const offenders: string[] = [];
    for (const f of files("src").filter((f) => !f.startsWith(join("src", "cli")))) {
      const text = readFileSync(f, "utf8");
      for (const m of text.matchAll(/^\s*import\s[^;]*?from\s+["']([^"']+)["']/gm)) {
        if (m[1].startsWith("node:") || ["fs", "path", "os", "cli-progress", "child_process"].includes(m[1])) offenders.push(`${f}: ${m[1]}`);
      }
      if (/\brequire\(/.test(text)) offenders.push(`${f}: require()`);
      if (f !== join("src", "engine.ts") && /import\(\s*(\/\*.*?\*\/\s*)?["']node:/.test(text)) offenders.push(`${f}: dynamic node: import`);
    }
    expect(offenders).toEqual([]);
  });
});
