/** vmemsim's version (package.json "version"; test/cli.test.ts checks they agree). */
export const VERSION = "0.1.0";
