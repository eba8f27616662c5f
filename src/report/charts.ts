// The charts of the HTML report and the browser demo, drawn with uPlot. Everything lives inside
// ONE self-contained function, `chartsRuntime`, because the report inlines its source text into the
// HTML file (`chartsRuntime.toString()`, see html.ts): so no imports, no module-level helpers, no
// references to anything outside the function body. The demo imports and calls it directly.
// Why uPlot: docs/reports.md.
import type uPlot from "uplot";

/** Series by column name, one value per sample (null or "" where there is none). */
export type Columns = Record<string, ArrayLike<number | string | null>>;

/** What the charts read: sample times, host columns, each VM's columns (host.csv / vms.csv). */
export interface ChartSource {
  time: ArrayLike<number>;
  host: Columns;
  vms: { name: string; cols: Columns }[];
}

export type ChartKind = "host-memory" | "host-reclaim" | "vm-memory" | "vm-targets" | "vm-active" | "vm-latency";

export interface VmemsimChart {
  readonly kind: ChartKind;
  readonly vm: number;
  readonly plot: uPlot;
  /** redraw with the source's current data (after samples were appended) */
  update(src: ChartSource): void;
}

export type ChartsRuntime = ReturnType<typeof chartsRuntime>;

type Num = number | null;

export interface SeriesSpec {
  label: string;
  color: string;
  /** part of the stack (filled, drawn on top of the previous stacked series) */
  stack?: boolean;
  /** stacked but not filled (an outline: "free") */
  hollow?: boolean;
  dash?: number[];
  scale?: string;
  values: (src: ChartSource, vm: number) => Num[];
}

export interface ChartSpec {
  title: string;
  unit: string;
  series: SeriesSpec[];
  /** a second y axis for series with scale "r" */
  right?: string;
  band?: boolean;
}

export function chartsRuntime() {
  type U = uPlot;
  type UPlotCtor = typeof uPlot;

  /** free-memory states, best first, and the colours of the band behind the host chart */
  const STATES = ["high", "clear", "soft", "hard", "low"];
  const STATE_COLORS: Record<string, string> = {
    high: "#e3f2e1",
    clear: "#eef3cf",
    soft: "#fbe6c2",
    hard: "#f8cfcf",
    low: "#e6c8ef",
  };

  const num = (v: unknown): Num => (typeof v === "number" && Number.isFinite(v) ? v : null);

  function col(cols: Columns | undefined, name: string, n: number): Num[] {
    const a = cols?.[name];
    const out: Num[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = a && i < a.length ? num(a[i]) : null;
    return out;
  }

  /** Σ over powered-on VMs of a column, per sample (0 where no VM reports it). */
  function sumVms(src: ChartSource, name: string, n: number): Num[] {
    const out: Num[] = new Array(n).fill(0);
    for (const vm of src.vms) {
      const v = col(vm.cols, name, n);
      const on = col(vm.cols, "on", n);
      for (let i = 0; i < n; i++) if (on[i] !== 0 && v[i] !== null) out[i] = (out[i] as number) + (v[i] as number);
    }
    return out;
  }

  function zip(a: Num[], b: Num[], f: (x: number, y: number) => number): Num[] {
    return a.map((x, i) => (x === null || b[i] === null ? null : f(x, b[i] as number)));
  }

  const len = (src: ChartSource) => src.time.length;
  const vmCol = (name: string) => (src: ChartSource, vm: number) => col(src.vms[vm]?.cols, name, len(src));
  const hostCol = (name: string) => (src: ChartSource) => col(src.host, name, len(src));

  const SPECS: Record<ChartKind, ChartSpec> = {
    "host-memory": {
      title: "Host machine memory by use",
      unit: "MB",
      band: true,
      series: [
        { label: "vmk", color: "#8c8c8c", stack: true, values: hostCol("PMEM.vmk") },
        { label: "overhead", color: "#b07aa1", stack: true, values: (s) => sumVms(s, "OVHD", len(s)) },
        {
          label: "VM private",
          color: "#4e79a7",
          stack: true,
          values: (s) => {
            const n = len(s);
            const other = col(s.host, "PMEM.other", n);
            const used = zip(zip(sumVms(s, "OVHD", n), sumVms(s, "CACHESZ", n), (a, b) => a + b), col(s.host, "PSHARE.common", n), (a, b) => a + b);
            return zip(other, used.map((u) => u ?? 0), (o, u) => Math.max(0, Math.round((o - u) * 100) / 100));
          },
        },
        { label: "shared common", color: "#59a14f", stack: true, values: hostCol("PSHARE.common") },
        { label: "compression cache", color: "#e8b923", stack: true, values: (s) => sumVms(s, "CACHESZ", len(s)) },
        { label: "free", color: "#555555", stack: true, hollow: true, dash: [4, 3], values: hostCol("PMEM.free") },
      ],
    },
    "host-reclaim": {
      title: "Host reclamation: targets (dashed) and actual",
      unit: "MB",
      series: [
        { label: "balloon", color: "#f28e2b", values: hostCol("MEMCTL.curr") },
        { label: "balloon target", color: "#f28e2b", dash: [6, 4], values: hostCol("MEMCTL.target") },
        { label: "swapped", color: "#e15759", values: hostCol("SWAP.curr") },
        { label: "swap target", color: "#e15759", dash: [6, 4], values: hostCol("SWAP.rclmtgt") },
        { label: "compressed", color: "#e8b923", values: hostCol("ZIP.zipped") },
        { label: "sharing saves", color: "#59a14f", values: hostCol("PSHARE.saving") },
      ],
    },
    "vm-memory": {
      title: "Guest memory by where it is",
      unit: "MB",
      series: [
        {
          label: "granted private",
          color: "#4e79a7",
          stack: true,
          values: (s, vm) => zip(vmCol("GRANT")(s, vm), vmCol("SHRD")(s, vm), (g, sh) => Math.max(0, Math.round((g - sh) * 100) / 100)),
        },
        { label: "shared", color: "#59a14f", stack: true, values: vmCol("SHRD") },
        { label: "ballooned", color: "#f28e2b", stack: true, values: vmCol("MCTLSZ") },
        { label: "compressed", color: "#e8b923", stack: true, values: vmCol("ZIP") },
        { label: "swapped", color: "#e15759", stack: true, values: vmCol("SWCUR") },
        { label: "configured", color: "#333333", dash: [4, 3], values: vmCol("MEMSZ") },
      ],
    },
    "vm-targets": {
      title: "Targets (dashed) and actual",
      unit: "MB",
      series: [
        { label: "consumed", color: "#4e79a7", values: vmCol("CNSM") },
        { label: "target size", color: "#4e79a7", dash: [6, 4], values: vmCol("SZTGT") },
        { label: "balloon", color: "#f28e2b", values: vmCol("MCTLSZ") },
        { label: "balloon target", color: "#f28e2b", dash: [6, 4], values: vmCol("MCTLTGT") },
        { label: "swapped", color: "#e15759", values: vmCol("SWCUR") },
        { label: "swap target", color: "#e15759", dash: [6, 4], values: vmCol("SWTGT") },
      ],
    },
    "vm-active": {
      title: "Active memory: estimate and truth",
      unit: "MB",
      series: [
        { label: "TCHD estimate", color: "#76b7b2", values: vmCol("TCHD") },
        { label: "true active", color: "#333333", dash: [5, 3], values: vmCol("TCHD.true") },
      ],
    },
    "vm-latency": {
      title: "Memory latency and throughput",
      unit: "%",
      right: "touches/s",
      series: [
        { label: "LAT%", color: "#e15759", values: vmCol("LAT%") },
        { label: "touches/s", color: "#4e79a7", scale: "r", values: vmCol("TOUCH/s") },
      ],
    },
  };

  function fmtTime(t: number): string {
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    const s = Math.floor(t % 60);
    return s ? `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}` : `${h}:${String(m).padStart(2, "0")}`;
  }

  function fmtNum(v: number | null | undefined): string {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
    if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  }

  /** Legend values: exact to 0.01. */
  function fmtValue(v: number | null | undefined): string {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    return String(Math.round(v * 100) / 100);
  }

  /** The plotted arrays (cumulative for stacked series) and the raw ones the legend shows. */
  function build(spec: ChartSpec, src: ChartSource, vm: number) {
    const n = len(src);
    const raw = spec.series.map((s) => s.values(src, vm));
    const acc: number[] = new Array(n).fill(0);
    const plotted = raw.map((r, si) => {
      if (!spec.series[si].stack) return r;
      return r.map((v, i) => (acc[i] = Math.round((acc[i] + (v ?? 0)) * 100) / 100));
    });
    const x = Array.from(src.time as ArrayLike<number>);
    return { raw, data: [x, ...plotted] as unknown as uPlot.AlignedData };
  }

  /** State segments [x0, x1, state]: each sample's state holds from the previous sample to it. */
  function bandSegments(src: ChartSource): [number, number, string][] {
    const st = src.host["VMKMEM.state"];
    const t = src.time;
    const out: [number, number, string][] = [];
    if (!st) return out;
    for (let i = 0; i < t.length; i++) {
      const s = String(st[i]);
      const x0 = i === 0 ? t[0] : t[i - 1];
      const last = out[out.length - 1];
      if (last && last[2] === s) last[1] = t[i];
      else out.push([x0, t[i], s]);
    }
    return out;
  }

  /** A uPlot chart of one kind into `el`; for VM kinds, `vm` is the VM's index in src.vms. */
  const last = (a: ArrayLike<number>) => (a.length ? a[a.length - 1] : 0);

  function create(U: UPlotCtor, el: HTMLElement, kind: ChartKind, src: ChartSource, vm = 0, width = 560, height = 220): VmemsimChart {
    const spec = SPECS[kind];
    let built = build(spec, src, vm);
    let segments = spec.band ? bandSegments(src) : [];
    const stacked = spec.series.map((s, i) => (s.stack ? i + 1 : 0)).filter((i) => i > 0);
    const bands = stacked.slice(1).map((si, k) => ({ series: [si, stacked[k]] as [number, number] }));
    const series: uPlot.Series[] = [
      // the legend shows the values under the cursor, else the last sample's
      { label: "time", value: (_u: U, v: number) => fmtTime(v ?? last(src.time)) },
      ...spec.series.map((s, si) => ({
        label: s.label,
        stroke: s.color,
        width: s.stack ? 1 : 1.6,
        dash: s.dash,
        scale: s.scale ?? "y",
        fill: s.stack && !s.hollow ? s.color + "d0" : undefined,
        points: { show: false },
        value: (_u: U, _v: number, _s: number, idx: number | null) => fmtValue(built.raw[si][idx ?? built.raw[si].length - 1]),
      })),
    ];
    const axes: uPlot.Axis[] = [
      {
        values: (_u: U, vals: number[]) => vals.map(fmtTime),
        incrs: [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400, 172800, 604800],
        size: 34,
      },
      { label: spec.unit, size: 62, labelSize: 16, values: (_u: U, vals: number[]) => vals.map(fmtNum) },
    ];
    if (spec.right) {
      axes.push({ scale: "r", side: 1, label: spec.right, size: 62, labelSize: 16, grid: { show: false }, values: (_u: U, vals: number[]) => vals.map(fmtNum) });
    }
    const opts: uPlot.Options = {
      width,
      height,
      title: spec.title,
      scales: {
        x: { time: false },
        y: { range: (_u: U, _min: number, max: number) => [0, max > 0 ? max * 1.05 : 1] },
        ...(spec.right ? { r: { range: (_u: U, _min: number, max: number): uPlot.Range.MinMax => [0, max > 0 ? max * 1.1 : 1] } } : {}),
      },
      series,
      axes,
      bands,
      legend: { live: true },
      cursor: { points: { show: false } },
      hooks: spec.band
        ? {
            drawClear: [
              (u: U) => {
                const ctx = u.ctx;
                const { top, height: h, left, width: w } = u.bbox;
                ctx.save();
                for (const [x0, x1, s] of segments) {
                  const a = Math.max(left, u.valToPos(x0, "x", true));
                  const b = Math.min(left + w, u.valToPos(x1, "x", true));
                  if (b <= a) continue;
                  ctx.fillStyle = STATE_COLORS[s] ?? "#eeeeee";
                  ctx.fillRect(a, top, Math.max(1, b - a), h);
                }
                ctx.restore();
              },
            ],
          }
        : {},
    };
    const plot = new U(opts, built.data, el);
    if (spec.band) el.appendChild(stateLegend(el.ownerDocument));
    return {
      kind,
      vm,
      plot,
      update(next: ChartSource) {
        src = next;
        built = build(spec, next, vm);
        segments = spec.band ? bandSegments(next) : [];
        plot.setData(built.data);
      },
    };
  }

  /** The key of the state band: one swatch per free-memory state. */
  function stateLegend(doc: Document): HTMLElement {
    const div = doc.createElement("div");
    div.className = "state-legend";
    const title = doc.createElement("span");
    title.textContent = "free-memory state (band behind):";
    div.appendChild(title);
    for (const s of STATES) {
      const item = doc.createElement("span");
      item.className = "state-item";
      const sw = doc.createElement("i");
      sw.style.background = STATE_COLORS[s];
      item.appendChild(sw);
      item.appendChild(doc.createTextNode(s));
      div.appendChild(item);
    }
    return div;
  }

  /** The report's charts: host charts into #host-charts, one card per VM into #vm-charts. */
  function renderReport(U: UPlotCtor, src: ChartSource, doc: Document, maxVms: number): VmemsimChart[] {
    const charts: VmemsimChart[] = [];
    const host = doc.getElementById("host-charts");
    if (host) {
      for (const kind of ["host-memory", "host-reclaim"] as ChartKind[]) {
        const box = doc.createElement("div");
        box.className = "chart";
        box.dataset.kind = kind;
        host.appendChild(box);
        charts.push(create(U, box, kind, src, 0, kind === "host-memory" ? 1100 : 1100, kind === "host-memory" ? 340 : 240));
      }
    }
    const vms = doc.getElementById("vm-charts");
    if (vms) {
      src.vms.slice(0, maxVms).forEach((vm, i) => {
        const card = doc.createElement("section");
        card.className = "vm-card";
        const h = doc.createElement("h3");
        h.textContent = vm.name;
        card.appendChild(h);
        const grid = doc.createElement("div");
        grid.className = "vm-grid";
        card.appendChild(grid);
        vms.appendChild(card);
        for (const kind of ["vm-memory", "vm-targets", "vm-active", "vm-latency"] as ChartKind[]) {
          const box = doc.createElement("div");
          box.className = "chart";
          box.dataset.kind = kind;
          box.dataset.vm = vm.name;
          grid.appendChild(box);
          charts.push(create(U, box, kind, src, i, 540, 200));
        }
      });
    }
    return charts;
  }

  return { STATES, STATE_COLORS, SPECS, create, renderReport, stateLegend, fmtTime, fmtNum };
}
