// An output folder written atomically: every file goes to a temporary name beside its final one
// and is renamed into place only when the run has finished; an aborted run leaves nothing behind.
import { mkdirSync, openSync, writeSync, closeSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

export class OutDir {
  private files = new Map<string, { fd: number; tmp: string }>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Append text to `name` (created on first use). */
  write(name: string, text: string): void {
    let f = this.files.get(name);
    if (!f) {
      const tmp = join(this.dir, `.${name}.${process.pid}.tmp`);
      f = { fd: openSync(tmp, "w"), tmp };
      this.files.set(name, f);
    }
    writeSync(f.fd, text);
  }

  /** Rename every file into place. */
  commit(): string[] {
    const done: string[] = [];
    for (const [name, f] of this.files) {
      closeSync(f.fd);
      renameSync(f.tmp, join(this.dir, name));
      done.push(join(this.dir, name));
    }
    this.files.clear();
    return done;
  }

  /** Remove the temporary files: nothing half-written stays. */
  abort(): void {
    for (const f of this.files.values()) {
      try {
        closeSync(f.fd);
      } catch {
        /* already closed */
      }
      rmSync(f.tmp, { force: true });
    }
    this.files.clear();
  }
}
