/**
 * Small pure SVG plot primitives for the calibration report: scatter points with error bars, fitted
 * curves, histograms and bars on linear or log axes. Every function returns a self-contained
 * `<svg>` string (no scripts, no external references). Data points are `<circle class="data">`,
 * histogram bins and bars `<rect class="data">`, fitted curves `<path class="fit">`, each carrying
 * its series name in `data-series`, so the output can be checked by parsing it.
 */

export interface Point {
  readonly x: number;
  readonly y: number;
  /** Half-height of an error bar (same units as y). */
  readonly err?: number;
}

export interface PointSeries {
  readonly kind: 'points';
  readonly name: string;
  readonly color: string;
  readonly points: readonly Point[];
}

export interface CurveSeries {
  readonly kind: 'curve';
  readonly name: string;
  readonly color: string;
  readonly points: readonly Point[];
  readonly dashed?: boolean;
}

export interface HistogramSeries {
  readonly kind: 'histogram';
  readonly name: string;
  readonly color: string;
  /** Bin edges (n + 1) and heights (n). */
  readonly edges: readonly number[];
  readonly heights: readonly number[];
}

export type Series = PointSeries | CurveSeries | HistogramSeries;

export interface PlotOptions {
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  readonly width?: number;
  readonly height?: number;
}

/** The root element: namespaced and with its font, so each plot also stands alone (.svg file, PNG rendering). */
function svgOpen(id: string, title: string, W: number, H: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(id)}" class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" role="img" aria-label="${escapeXml(title)}">`;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short, stable number formatting for coordinates and tick labels. */
export function num(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return '0';
  const r = Number(v.toPrecision(digits));
  return Object.is(r, -0) ? '0' : String(r);
}

/** About `count` round tick values covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.abs(v) < 1e-9 * step ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** Powers of ten covering [lo, hi] (lo > 0). */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

function extent(values: number[]): [number, number] {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

/** An x-y plot of the series (points with error bars, curves, histograms) with axes, ticks and a legend. */
export function plot(o: PlotOptions): string {
  const W = o.width ?? 560;
  const H = o.height ?? 320;
  const m = { left: 64, right: 16, top: 32, bottom: 48 };
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of o.series) {
    if (s.kind === 'histogram') {
      xs.push(...s.edges);
      ys.push(0, ...s.heights);
    } else {
      for (const p of s.points) {
        if (o.xLog && !(p.x > 0)) continue;
        xs.push(p.x);
        ys.push(p.y - (p.err ?? 0), p.y + (p.err ?? 0));
      }
    }
  }
  const tx = (x: number): number => (o.xLog ? Math.log10(Math.max(x, 1e-300)) : x);
  const [x0, x1] = extent(xs.map(tx));
  const [yLo, yHi] = extent(ys);
  const yPad = (yHi - yLo) * 0.05;
  const y0 = yLo - yPad;
  const y1 = yHi + yPad;
  const px = (x: number): number => m.left + ((tx(x) - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y: number): number => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const parts: string[] = [];
  parts.push(svgOpen(o.id, o.title, W, H));
  parts.push(`<title>${escapeXml(o.title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  // Axes and ticks.
  const bottom = H - m.bottom;
  parts.push(`<g class="axes" stroke="#444" fill="none"><line x1="${m.left}" y1="${bottom}" x2="${W - m.right}" y2="${bottom}"/><line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${bottom}"/></g>`);
  const xTicks = o.xLog ? logTicks(10 ** x0, 10 ** x1).filter((v) => Math.log10(v) >= x0 - 1e-9 && Math.log10(v) <= x1 + 1e-9) : linearTicks(x0, x1);
  const tickParts: string[] = [];
  for (const v of xTicks) {
    const x = px(v);
    tickParts.push(`<line x1="${num(x)}" y1="${bottom}" x2="${num(x)}" y2="${bottom + 4}" stroke="#444"/><text x="${num(x)}" y="${bottom + 16}" text-anchor="middle">${escapeXml(o.xLog ? `1e${Math.round(Math.log10(v))}` : num(v, 3))}</text>`);
  }
  for (const v of linearTicks(y0, y1)) {
    const y = py(v);
    tickParts.push(`<line x1="${m.left - 4}" y1="${num(y)}" x2="${m.left}" y2="${num(y)}" stroke="#444"/><text x="${m.left - 6}" y="${num(y + 3)}" text-anchor="end">${escapeXml(num(v, 3))}</text>`);
  }
  parts.push(`<g class="ticks" font-size="10" fill="#222">${tickParts.join('')}</g>`);
  parts.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 10}" text-anchor="middle" font-size="11">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(m.top + bottom) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(m.top + bottom) / 2})">${escapeXml(o.yLabel)}</text>`);
  // Series.
  for (const s of o.series) {
    const name = escapeXml(s.name);
    if (s.kind === 'histogram') {
      const rects = s.heights.map((h, i) => {
        const a = px(s.edges[i] as number);
        const b = px(s.edges[i + 1] as number);
        return `<rect class="data" data-series="${name}" x="${num(Math.min(a, b))}" y="${num(py(h))}" width="${num(Math.max(0.5, Math.abs(b - a)))}" height="${num(Math.max(0, py(0) - py(h)))}" fill="${s.color}" fill-opacity="0.45"/>`;
      });
      parts.push(`<g class="series">${rects.join('')}</g>`);
    } else if (s.kind === 'curve') {
      const pts = s.points.filter((p) => (!o.xLog || p.x > 0) && Number.isFinite(p.y));
      if (pts.length > 1) {
        const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${num(px(p.x))},${num(py(p.y))}`).join(' ');
        parts.push(`<path class="fit" data-series="${name}" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      }
    } else {
      const marks = s.points
        .filter((p) => (!o.xLog || p.x > 0) && Number.isFinite(p.y))
        .map((p) => {
          const cx = num(px(p.x));
          const bar = p.err ? `<line x1="${cx}" y1="${num(py(p.y - p.err))}" x2="${cx}" y2="${num(py(p.y + p.err))}" stroke="${s.color}"/>` : '';
          return `${bar}<circle class="data" data-series="${name}" data-x="${num(p.x, 6)}" data-y="${num(p.y, 6)}" cx="${cx}" cy="${num(py(p.y))}" r="3" fill="${s.color}"/>`;
        });
      parts.push(`<g class="series">${marks.join('')}</g>`);
    }
  }
  // Legend.
  // Right-aligned to the longest name (about 0.6 em per character at 10 px).
  const x = W - m.right - 26 - Math.max(0, ...o.series.map((s) => s.name.length)) * 6;
  const legend = o.series.map((s, i) => {
    const y = m.top + 4 + i * 14;
    const mark =
      s.kind === 'curve'
        ? `<line x1="${x}" y1="${y}" x2="${x + 16}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`
        : `<rect x="${x + 4}" y="${y - 4}" width="8" height="8" fill="${s.color}"/>`;
    return `${mark}<text x="${x + 22}" y="${y + 3}">${escapeXml(s.name)}</text>`;
  });
  parts.push(`<g class="legend" font-size="10" fill="#222">${legend.join('')}</g>`);
  parts.push('</svg>');
  return parts.join('');
}

/** Equal-width histogram of values over [lo, hi], heights as probability density. */
export function histogram(values: ArrayLike<number>, lo: number, hi: number, bins: number): { edges: number[]; heights: number[] } {
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) continue;
    n++;
    if (v < lo || v > hi) continue;
    const b = Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins));
    counts[b] = (counts[b] as number) + 1;
  }
  const w = (hi - lo) / bins;
  return { edges, heights: counts.map((c) => (n > 0 ? c / (n * w) : 0)) };
}

/** The normal density on a grid over [lo, hi]. */
export function normalCurve(mean: number, sigma: number, lo: number, hi: number, steps = 80): Point[] {
  const s = Math.max(sigma, 1e-9);
  return Array.from({ length: steps + 1 }, (_, i) => {
    const x = lo + ((hi - lo) * i) / steps;
    return { x, y: Math.exp(-0.5 * ((x - mean) / s) ** 2) / (s * Math.sqrt(2 * Math.PI)) };
  });
}

/** x values spaced evenly in log10 between lo and hi (lo > 0). */
export function logGrid(lo: number, hi: number, steps = 60): number[] {
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return Array.from({ length: steps + 1 }, (_, i) => 10 ** (a + ((b - a) * i) / steps));
}

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Interval drawn as an error bar. */
  readonly lo?: number;
  readonly hi?: number;
  readonly color: string;
}

/** Vertical bars with optional intervals, one per category. */
export function barChart(o: { readonly id: string; readonly title: string; readonly yLabel: string; readonly bars: readonly Bar[]; readonly width?: number; readonly height?: number }): string {
  const W = o.width ?? 360;
  const H = o.height ?? 260;
  const m = { left: 72, right: 16, top: 32, bottom: 40 };
  const top = Math.max(...o.bars.map((b) => Math.max(b.value, b.hi ?? b.value)), 1e-12) * 1.1;
  const py = (y: number): number => H - m.bottom - (y / top) * (H - m.top - m.bottom);
  const slot = (W - m.left - m.right) / Math.max(1, o.bars.length);
  const parts: string[] = [];
  parts.push(svgOpen(o.id, o.title, W, H));
  parts.push(`<title>${escapeXml(o.title)}</title><rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  const bottom = H - m.bottom;
  parts.push(`<g class="axes" stroke="#444" fill="none"><line x1="${m.left}" y1="${bottom}" x2="${W - m.right}" y2="${bottom}"/><line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${bottom}"/></g>`);
  const ticks = linearTicks(0, top).map((v) => `<line x1="${m.left - 4}" y1="${num(py(v))}" x2="${m.left}" y2="${num(py(v))}" stroke="#444"/><text x="${m.left - 6}" y="${num(py(v) + 3)}" text-anchor="end">${escapeXml(num(v, 3))}</text>`);
  parts.push(`<g class="ticks" font-size="10" fill="#222">${ticks.join('')}</g>`);
  parts.push(`<text x="14" y="${(m.top + bottom) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(m.top + bottom) / 2})">${escapeXml(o.yLabel)}</text>`);
  o.bars.forEach((b, i) => {
    const x = m.left + i * slot + slot * 0.25;
    const w = slot * 0.5;
    parts.push(`<rect class="data" data-series="${escapeXml(b.label)}" data-y="${num(b.value, 6)}" x="${num(x)}" y="${num(py(b.value))}" width="${num(w)}" height="${num(Math.max(0, bottom - py(b.value)))}" fill="${b.color}"/>`);
    if (b.lo !== undefined && b.hi !== undefined) {
      const cx = num(x + w / 2);
      parts.push(`<line x1="${cx}" y1="${num(py(b.lo))}" x2="${cx}" y2="${num(py(b.hi))}" stroke="#000"/>`);
    }
    parts.push(`<text x="${num(x + w / 2)}" y="${bottom + 14}" text-anchor="middle" font-size="10">${escapeXml(b.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
