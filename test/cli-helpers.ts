// Running the command line in-process for tests: its exit code and what it printed.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.js";

export async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "", stderr = "";
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), isTTY: false });
  return { code, stdout, stderr };
}

/** A fresh temporary folder named after the test file's subject. */
export function tmpDir(subject: string): string {
  return mkdtempSync(join(tmpdir(), `vmemsim-${subject}-`));
}
