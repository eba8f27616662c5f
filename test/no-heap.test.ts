// The engine lays out linear memory itself from __heap_base (assembly/memory.ts); the stub
// runtime's allocator starts there too, so any `new` in assembly/ would write over the host
// record. The release build must contain no allocation at all.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";

describe("engine build", () => {
  it("never calls the runtime allocator", () => {
    const wat = readFileSync("build/vmemsim.wat", "utf8");
    expect(wat.length).toBeGreaterThan(1000);
    expect(wat.match(/call \$~lib\/rt\/[a-z]+\/__(new|alloc|renew|realloc)\b/g) ?? []).toEqual([]);
  });
});
