// Compiling the engine in a browser (or a worker) from a URL or bytes. A URL served with
// Content-Type application/wasm compiles while it downloads (compileStreaming); any other type
// falls back to compiling the downloaded bytes, so a misconfigured server still works.
import type { WasmSource } from "./protocol.js";

export async function compileWasm(source: WasmSource, base?: string | URL): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source !== "string") return WebAssembly.compile(source);
  const url = new URL(source, base ?? (typeof location !== "undefined" ? location.href : undefined));
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot load the vmemsim engine from ${url}: HTTP ${res.status}`);
  const type = res.headers.get("content-type") ?? "";
  if (type.split(";")[0].trim() === "application/wasm" && typeof WebAssembly.compileStreaming === "function") {
    return WebAssembly.compileStreaming(res);
  }
  return WebAssembly.compile(await res.arrayBuffer());
}
