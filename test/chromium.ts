// Headless Debian Chromium for the report and browser tests, driven by playwright-core (which
// never downloads a browser). .ci/run installs /usr/bin/chromium with apt when it is missing; a
// developer machine without it skips these tests, CI (CI=true) fails them instead.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** run the browser tests: Chromium is there, or this is CI (where its absence must fail) */
export const HAVE_CHROMIUM = existsSync(CHROMIUM) || !!process.env.CI;

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with the flags that work here as root, in a new empty profile (user data dir). */
export async function launchChromium(viewport = { width: 1280, height: 900 }): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), "vmemsim-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects what a page reports as wrong: console errors, uncaught exceptions, failed requests. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("worker", (w) => w.on("console", (m) => m.type() === "error" && errors.push(`worker console: ${m.text()}`)));
  return errors;
}

/** Mean absolute difference of two brightness grids (0-255). */
export function gridDifference(a: number[], b: number[]): number {
  return a.reduce((sum, v, i) => sum + Math.abs(v - b[i]), 0) / a.length;
}

/**
 * Pixels of an element's screenshot (PNG) decoded in the page itself: how many differ from the
 * background colour, how many distinct colours there are, and a coarse brightness grid.
 */
export async function screenshotStats(page: Page, selector: string): Promise<{ width: number; height: number; nonBackground: number; colors: number; grid: number[] }> {
  const png = await page.locator(selector).first().screenshot();
  return page.evaluate(async (b64) => {
    // an <img> from a data: URL (the report's Content-Security-Policy allows img-src data:, no fetch)
    const bmp = new Image();
    bmp.src = `data:image/png;base64,${b64}`;
    await bmp.decode();
    const canvas = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = canvas.getContext("2d")!;
    ctx.drawImage(bmp, 0, 0);
    const px = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
    const bg = [px[0], px[1], px[2]];
    let nonBackground = 0;
    const colors = new Set<number>();
    for (let i = 0; i < px.length; i += 4) {
      if (Math.abs(px[i] - bg[0]) + Math.abs(px[i + 1] - bg[1]) + Math.abs(px[i + 2] - bg[2]) > 24) nonBackground++;
      colors.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    }
    // a coarse 32 x 8 grid of mean brightness, to tell whether two screenshots differ
    const grid: number[] = new Array(256).fill(0);
    for (let y = 0; y < bmp.height; y++) {
      for (let x = 0; x < bmp.width; x++) {
        const i = (y * bmp.width + x) * 4;
        grid[Math.floor((y * 8) / bmp.height) * 32 + Math.floor((x * 32) / bmp.width)] += (px[i] + px[i + 1] + px[i + 2]) / 3;
      }
    }
    const cell = (bmp.width / 32) * (bmp.height / 8);
    return { width: bmp.width, height: bmp.height, nonBackground, colors: colors.size, grid: grid.map((g) => g / cell) };
  }, png.toString("base64"));
}
