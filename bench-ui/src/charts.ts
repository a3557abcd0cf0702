import { Chart, registerables, type ChartConfiguration, type ChartDataset, type ChartType } from 'chart.js';
import { MatrixController, MatrixElement } from 'chartjs-chart-matrix';
import type { Heatmap, Histograms, RunDetail } from '../../src/server/views.js';
import type { SignificanceMatrix } from '../../src/search/significance.js';
import { el } from './dom.js';

/**
 * Every plot of the bench UI, on Chart.js (heatmaps with chartjs-chart-matrix). Animations are off:
 * a bench screen redraws on live data and must paint a 130,000-cell run at once. Each canvas
 * carries data-chart (what it shows) and data-points (how many data points it drew) so a test can
 * check that a plot has data.
 */
Chart.register(...registerables, MatrixController, MatrixElement);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

/** A tick label without Intl.NumberFormat (Chart.js's default, whose first use costs ~30 ms of a page's first paint). */
export function tickLabel(value: number): string {
  if (value === 0) return '0';
  const a = Math.abs(value);
  if (a >= 1e5 || a < 1e-3) return value.toExponential(1).replace('.0e', 'e');
  return String(Number(value.toPrecision(4)));
}
Chart.defaults.scales.linear.ticks.callback = (value) => tickLabel(Number(value));
// Log axes: label 1, 2 and 5 of each decade, as Chart.js's own formatter does.
Chart.defaults.scales.logarithmic.ticks.callback = (value) => {
  const v = Number(value);
  if (!(v > 0)) return '';
  const mantissa = Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9));
  return mantissa === 1 || mantissa === 2 || mantissa === 5 ? tickLabel(v) : '';
};

const live = new Map<string, Chart>();

/** A chart in a fixed-height box; replaces the chart of the same name. */
function mount<T extends ChartType>(name: string, config: ChartConfiguration<T>, points: number): HTMLElement {
  live.get(name)?.destroy();
  const canvas = el('canvas', { 'data-chart': name, 'data-points': points });
  const box = el('div', { class: 'chart' }, canvas);
  // Chart.js measures its parent: attach first, then draw in the next frame.
  requestAnimationFrame(() => {
    if (!canvas.isConnected) return;
    live.set(name, new Chart(canvas, config) as unknown as Chart);
    canvas.dataset.drawn = '1';
  });
  return box;
}

export function destroyCharts(): void {
  for (const c of live.values()) c.destroy();
  live.clear();
}

export function chartByName(name: string): Chart | undefined {
  return live.get(name);
}

/** Blue (low) to red (high). */
function color(t: number): string {
  const x = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0));
  return `hsl(${Math.round(230 - 230 * x)}, 75%, ${Math.round(55 - 10 * x)}%)`;
}

/** Heatmap colour steps: each is one dataset with one fixed colour. */
const HEAT_STEPS = 32;

/**
 * A bins x bins heatmap on chartjs-chart-matrix. Every element option is fixed, not scriptable or
 * per element: the cells are grouped into HEAT_STEPS datasets of one colour each, and the cell size
 * is set once the layout is known (afterLayout runs before the datasets update), so Chart.js
 * resolves options once per dataset instead of once per element (8,192 elements for two 64x64
 * heatmaps took ~150 ms of the run page's first paint with scriptable options).
 */
export function heatmap(name: string, h: Heatmap, values: readonly number[], label: string): HTMLElement {
  const nRows = Math.ceil(h.rows / h.binRows);
  const nCols = Math.ceil(h.cols / h.binCols);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  const steps: Array<Array<{ x: number; y: number; v: number }>> = Array.from({ length: HEAT_STEPS }, () => []);
  values.forEach((v, i) => {
    const step = Math.min(HEAT_STEPS - 1, Math.max(0, Math.floor(((v - lo) / span) * HEAT_STEPS)));
    (steps[step] as Array<{ x: number; y: number; v: number }>).push({ x: h.c[i] as number, y: h.r[i] as number, v });
  });
  const datasets = steps
    .map((data, step) => ({ label, data, backgroundColor: color((step + 0.5) / HEAT_STEPS), borderWidth: 0, width: 0, height: 0 }))
    .filter((d) => d.data.length > 0);
  const cellSize = {
    id: 'cimbench-cell-size',
    afterLayout: (chart: Chart) => {
      const area = chart.chartArea;
      for (const d of chart.data.datasets as unknown as Array<{ width: number; height: number }>) {
        d.width = area.width / nCols;
        d.height = area.height / nRows;
      }
    },
  };
  return mount(
    name,
    {
      type: 'matrix',
      data: { datasets },
      plugins: [cellSize],
      options: {
        parsing: false,
        plugins: {
          legend: { display: false },
          title: { display: true, text: `${label}: ${lo === Infinity ? '-' : `${lo.toFixed(2)} (blue) to ${hi.toFixed(2)} (red)`}` },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const p = ctx.raw as { x: number; y: number; v: number };
                return `rows ${p.y * h.binRows}-${(p.y + 1) * h.binRows - 1}, cols ${p.x * h.binCols}-${(p.x + 1) * h.binCols - 1}: ${p.v.toFixed(3)}`;
              },
            },
          },
        },
        scales: {
          x: { type: 'linear', min: -0.5, max: nCols - 0.5, offset: false, title: { display: true, text: `column / ${h.binCols}` }, ticks: { stepSize: Math.max(1, Math.round(nCols / 8)) } },
          y: { type: 'linear', min: -0.5, max: nRows - 0.5, reverse: true, offset: false, title: { display: true, text: `row / ${h.binRows}` }, ticks: { stepSize: Math.max(1, Math.round(nRows / 8)) } },
        },
      },
    } as ChartConfiguration,
    values.length,
  );
}

export function histograms(name: string, hist: Histograms): HTMLElement {
  const centers = hist.edgesUs.slice(0, -1).map((e, i) => (e + (hist.edgesUs[i + 1] as number)) / 2);
  const datasets: ChartDataset<'line'>[] = hist.levels.map((l, i) => ({
    label: `target ${l.targetUs.toFixed(2)} uS (${l.cells} cells)`,
    data: l.counts.map((n, j) => ({ x: centers[j] as number, y: n })),
    borderColor: color(i / Math.max(1, hist.levels.length - 1)),
    backgroundColor: 'transparent',
    pointRadius: 0,
    borderWidth: 1.5,
    stepped: 'middle',
  }));
  return mount(
    name,
    {
      type: 'line',
      data: { datasets },
      options: {
        parsing: false,
        plugins: { legend: { position: 'right', labels: { boxWidth: 10, font: { size: 10 } } } },
        scales: { x: { type: 'linear', title: { display: true, text: 'programmed conductance (uS)' } }, y: { title: { display: true, text: 'cells' } } },
      },
    },
    hist.levels.reduce((a, l) => a + l.counts.filter((n) => n > 0).length, 0),
  );
}

/** Simulated mean +- std as a band, measured values as points, against time since programming. */
export function drift(name: string, series: ReadonlyArray<{ tS: number; simMean: number | null; simStd: number | null; measured: number | null }>, yLabel: string, scale = 1): HTMLElement {
  const sim = series.filter((p) => p.simMean !== null);
  const meas = series.filter((p) => p.measured !== null);
  const t = (s: number): number => Math.max(s, 1e-3);
  const datasets: ChartDataset<'line'>[] = [
    { label: 'simulated +1 std', data: sim.map((p) => ({ x: t(p.tS), y: scale * ((p.simMean as number) + (p.simStd ?? 0)) })), borderWidth: 0, pointRadius: 0, backgroundColor: 'rgba(59,130,246,0.2)', fill: '+1' },
    { label: 'simulated -1 std', data: sim.map((p) => ({ x: t(p.tS), y: scale * ((p.simMean as number) - (p.simStd ?? 0)) })), borderWidth: 0, pointRadius: 0, fill: false },
    { label: 'simulated mean', data: sim.map((p) => ({ x: t(p.tS), y: scale * (p.simMean as number) })), borderColor: 'rgb(59,130,246)', pointRadius: 2, fill: false },
    { label: 'measured', data: meas.map((p) => ({ x: t(p.tS), y: scale * (p.measured as number) })), borderColor: 'rgb(220,38,38)', backgroundColor: 'rgb(220,38,38)', showLine: false, pointRadius: 5, pointStyle: 'rectRot' },
  ];
  return mount(
    name,
    {
      type: 'line',
      data: { datasets },
      options: {
        parsing: false,
        plugins: { legend: { labels: { filter: (item) => !item.text.includes('-1 std') } } },
        scales: { x: { type: 'logarithmic', title: { display: true, text: 'time since programming (s)' } }, y: { title: { display: true, text: yLabel } } },
      },
    },
    sim.length + meas.length,
  );
}

export function driftCharts(d: RunDetail['drift']): HTMLElement[] {
  return [
    drift('drift-accuracy', d.accuracy.map((p) => ({ tS: p.tS, simMean: p.simulatedMean, simStd: p.simulatedStd, measured: p.measured })), 'accuracy (%)', 100),
    drift(
      'drift-conductance',
      d.conductance.map((p) => ({ tS: p.tS, simMean: p.simulatedMeanUs, simStd: p.simulatedStdUs, measured: p.measuredMeanUs })),
      'conductance - target (uS), band: simulated mean +- std',
    ),
  ];
}

export function pareto(name: string, front: ReadonlyArray<{ edpMsMj: number; accuracy: number; choices: string[] }>, chosen: { edpMsMj: number; accuracy: number } | null): HTMLElement {
  const sorted = [...front].sort((a, b) => a.edpMsMj - b.edpMsMj);
  const datasets: ChartDataset<'line'>[] = [
    { label: 'Pareto front (supernet validation accuracy)', data: sorted.map((m) => ({ x: m.edpMsMj, y: 100 * m.accuracy })), borderColor: 'rgb(59,130,246)', pointRadius: 4, stepped: 'before' },
  ];
  if (chosen) datasets.push({ label: 'chosen network (test accuracy)', data: [{ x: chosen.edpMsMj, y: 100 * chosen.accuracy }], borderColor: 'rgb(220,38,38)', backgroundColor: 'rgb(220,38,38)', pointRadius: 7, pointStyle: 'star', showLine: false });
  return mount(
    name,
    {
      type: 'line',
      data: { datasets },
      options: {
        parsing: false,
        plugins: { tooltip: { callbacks: { afterLabel: (ctx) => (ctx.datasetIndex === 0 ? (sorted[ctx.dataIndex]?.choices.join(' | ') ?? '') : '') } } },
        scales: { x: { type: 'logarithmic', title: { display: true, text: 'EDP (ms*mJ per image)' } }, y: { title: { display: true, text: 'accuracy (%)' } } },
      },
    },
    sorted.length + (chosen ? 1 : 0),
  );
}

export function significance(name: string, m: SignificanceMatrix): HTMLElement {
  const width = Math.max(...m.layers.map((l) => l.values.length), 1);
  const data = m.layers.flatMap((l, y) => l.values.map((v, x) => ({ x, y, v, label: l.options[x] ? (l.options[x].op === 'identity' ? 'identity' : `${l.options[x].op}${l.options[x].kernel}/${l.options[x].out}`) : String(x) })));
  const hi = Math.max(...data.map((d) => d.v), 1e-12);
  return mount(
    name,
    {
      type: 'matrix',
      data: {
        datasets: [
          {
            label: `${m.kind} significance`,
            data,
            backgroundColor: (ctx: { raw: unknown }) => color(((ctx.raw as { v: number } | undefined)?.v ?? 0) / hi),
            width: ({ chart }) => (chart.chartArea?.width ?? 0) / width - 1,
            height: ({ chart }) => (chart.chartArea?.height ?? 0) / m.layers.length - 1,
          },
        ],
      },
      options: {
        plugins: {
          legend: { display: false },
          title: { display: true, text: `${m.kind} significance (layer x candidate operator)` },
          tooltip: { callbacks: { label: (ctx) => { const p = ctx.raw as { y: number; label: string; v: number }; return `layer ${p.y} ${p.label}: ${p.v.toFixed(4)}`; } } },
        },
        scales: {
          x: { type: 'linear', min: -0.5, max: width - 0.5, offset: false, title: { display: true, text: 'candidate operator' }, ticks: { stepSize: 1 } },
          y: { type: 'linear', min: -0.5, max: m.layers.length - 0.5, reverse: true, offset: false, title: { display: true, text: 'layer' }, ticks: { stepSize: 1 } },
        },
      },
    } as ChartConfiguration,
    data.length,
  );
}

/** Simulated accuracy band per time point and measured points, as they arrive during a run. */
export function liveAccuracy(name: string): { element: HTMLElement; update(series: ReadonlyArray<{ tS: number; simMean: number | null; simStd: number | null; measured: number | null }>): void } {
  const element = drift(name, [], 'accuracy (%)', 100);
  return {
    element,
    update: (series) => {
      const c = live.get(name);
      if (!c) return;
      const t = (s: number): number => Math.max(s, 1e-3);
      const sim = series.filter((p) => p.simMean !== null);
      const meas = series.filter((p) => p.measured !== null);
      const ds = c.data.datasets;
      (ds[0] as ChartDataset<'line'>).data = sim.map((p) => ({ x: t(p.tS), y: 100 * ((p.simMean as number) + (p.simStd ?? 0)) }));
      (ds[1] as ChartDataset<'line'>).data = sim.map((p) => ({ x: t(p.tS), y: 100 * ((p.simMean as number) - (p.simStd ?? 0)) }));
      (ds[2] as ChartDataset<'line'>).data = sim.map((p) => ({ x: t(p.tS), y: 100 * (p.simMean as number) }));
      (ds[3] as ChartDataset<'line'>).data = meas.map((p) => ({ x: t(p.tS), y: 100 * (p.measured as number) }));
      c.update('none');
      c.canvas.dataset.points = String(sim.length + meas.length);
    },
  };
}

export function bars(name: string, labels: string[], values: number[], label: string): HTMLElement {
  return mount(
    name,
    { type: 'bar', data: { labels, datasets: [{ label, data: values, backgroundColor: values.map((v) => (v >= 0 ? 'rgba(220,38,38,0.7)' : 'rgba(59,130,246,0.7)')) }] }, options: { indexAxis: 'y', plugins: { legend: { display: false } } } },
    values.length,
  );
}
