// A pool of at most `jobs` concurrent tasks, each started by `start` (the CLI starts a worker thread
// per sweep point: one simulation per worker, each its own WASM instance). Tasks start in order;
// `onDone` hears each result as it comes. Aborting stops starting new tasks and aborts the running
// ones through their signal. Browser-safe (a browser could start Web Workers the same way).

export interface PoolOptions<T, R> {
  jobs: number;
  start: (item: T, signal: AbortSignal) => Promise<R>;
  onStart?: (item: T) => void;
  onDone?: (item: T, result: R) => void;
  signal?: AbortSignal;
}

/** Run every item; resolves with the results in item order (undefined for items never started). */
export async function runPool<T, R>(items: readonly T[], opts: PoolOptions<T, R>): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length).fill(undefined);
  const inner = new AbortController();
  const abort = () => inner.abort();
  opts.signal?.addEventListener("abort", abort, { once: true });
  if (opts.signal?.aborted) inner.abort();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (!inner.signal.aborted && next < items.length) {
      const i = next++;
      opts.onStart?.(items[i]);
      const r = await opts.start(items[i], inner.signal);
      results[i] = r;
      if (!inner.signal.aborted) opts.onDone?.(items[i], r);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.jobs, items.length)) }, lane));
  } finally {
    opts.signal?.removeEventListener("abort", abort);
  }
  return results;
}
