import { nearestTargetIndex } from '../device/index.js';
import type { CalibrationDataset, ReadbackSet } from './dataset.js';
import { estimate, fitNonlinear, meanVar, weightedLinear, wilson, type GoodnessOfFit, type ParamEstimate } from './stats.js';

/**
 * The calibration fits, pure functions over a CalibrationDataset. Every result either carries
 * estimates with standard errors, 95% intervals and goodness of fit, or is `refused` with the
 * reason the data cannot determine it.
 *
 * Model of a healthy cell i read at age t (time since its programming), read-back averaged over n:
 *   G_i(t) - target_i = e_i + a * L(t) + z_i * s(t) + N(0, r(G)^2 / n)
 * e_i ~ N(m_e, sigma_p(level)^2) is the programming error, z_i ~ N(0, 1) the device's relaxation
 * draw, r(G) = rel * G + abs the single-read noise. Relaxation forms (both fitted, one chosen):
 *   log:       L = ln(1 + t / t0), s = b0 * (1 - exp(-t / t0)) + b1 * L
 *              (the simulator's log form g + mean ln(t/t0) + N(0, spread0 + spreadPerLn ln(t/t0)) for t >> t0)
 *   power-law: mean g * ((1 + t/t0)^-nu - 1), s = g * nuStd * ln(1 + t/t0)
 */

export type Fitted<T> = ({ readonly status: 'fitted' } & T) | { readonly status: 'refused'; readonly reason: string };

const OK = 0;
const NOT_ATTEMPTED = 3;
const UNKNOWN = 255;

// ------------------------------------------------------------------ cell classes

export interface CellClasses {
  /** Healthy, programmed OK with at least one pulse: the cells the noise fits use. */
  readonly healthy: Uint32Array;
  /** Verified OK without a pulse: they kept an older state (and relaxation age), so the fits leave them out. */
  readonly unpulsed: number;
  readonly stuckLow: number;
  readonly stuckHigh: number;
  /** Indices of the stuck cells (low and high). */
  readonly stuckCells: Uint32Array;
  /** Cells with a programming outcome (attempted). */
  readonly attempted: number;
  /** Attempted, not OK, but not outside the window either (budget spent, relaxed out). */
  readonly failedInWindow: number;
  readonly marginUs: number;
}

/**
 * Stuck cells cannot be verified into the window, so they end not OK with a verify read outside
 * the window by more than the margin (the tolerance, else 5% of the window).
 */
export function classifyCells(d: CalibrationDataset): CellClasses {
  const n = d.targetUs.length;
  const margin = d.toleranceUs ?? 0.05 * (d.gMaxUs - d.gMinUs);
  const healthy: number[] = [];
  let low = 0;
  let high = 0;
  let attempted = 0;
  let failed = 0;
  let unpulsed = 0;
  const stuckCells: number[] = [];
  const first = d.readbacks[0];
  for (let i = 0; i < n; i++) {
    const st = d.status[i] as number;
    if (st === NOT_ATTEMPTED) continue;
    let v = d.finalUs[i] as number;
    if (Number.isNaN(v) && first) v = first.valuesUs[i] as number;
    if (st === UNKNOWN && Number.isNaN(v)) continue;
    attempted++;
    if (st === OK) {
      if (d.pulses[i] === 0) unpulsed++;
      else healthy.push(i);
      continue;
    }
    if (v < d.gMinUs - margin) {
      low++;
      stuckCells.push(i);
    } else if (v > d.gMaxUs + margin) {
      high++;
      stuckCells.push(i);
    } else failed++;
  }
  return { healthy: Uint32Array.from(healthy), unpulsed, stuckLow: low, stuckHigh: high, stuckCells: Uint32Array.from(stuckCells), attempted, failedInWindow: failed, marginUs: margin };
}

export interface StuckFit {
  readonly lowRate: ParamEstimate & { readonly count: number };
  readonly highRate: ParamEstimate & { readonly count: number };
  readonly attempted: number;
  readonly failedInWindow: number;
}

export function fitStuck(d: CalibrationDataset, classes = classifyCells(d)): Fitted<StuckFit> {
  const n = classes.attempted;
  if (n < 100) return { status: 'refused', reason: `only ${n} cells with a programming outcome (need at least 100)` };
  const rate = (k: number): ParamEstimate & { count: number } => {
    const p = k / n;
    const [lo, hi] = wilson(k, n);
    return { value: p, se: Math.sqrt(Math.max(p * (1 - p), 1 / n) / n), ci95: [lo, hi], count: k };
  };
  return { status: 'fitted', lowRate: rate(classes.stuckLow), highRate: rate(classes.stuckHigh), attempted: n, failedInWindow: classes.failedInWindow };
}

/** One array of a chip's known-cell map: the cells programmed (bitmap) and those found stuck. */
export interface KnownCellsArray {
  readonly array: number;
  /** rows x cols bits, row-major; 1 = some source programmed the cell. */
  readonly tested: Uint8Array;
  /** [row, col, measured uS] of the stuck ones. */
  readonly stuck: Array<[number, number, number]>;
}

export interface KnownCellsFit {
  readonly rows: number;
  readonly cols: number;
  readonly arrays: readonly KnownCellsArray[];
  readonly tested: number;
  readonly stuck: number;
}

/**
 * Where the stuck cells are: every placed cell with a programming outcome is tested; a cell found
 * stuck by any source is stuck (a stuck cell does not heal), at the mean of its read-backs (else its
 * last verify read). Refused without cell positions.
 */
export function fitKnownCells(d: CalibrationDataset, classes = classifyCells(d)): Fitted<KnownCellsFit> {
  const places = d.places;
  if (!places) return { status: 'refused', reason: 'the data carry no cell positions' };
  const { rows, cols } = places;
  const byArray = new Map<number, { tested: Uint8Array; stuck: Map<number, number> }>();
  const arrayOf = (a: number) => {
    let e = byArray.get(a);
    if (!e) {
      e = { tested: new Uint8Array(Math.ceil((rows * cols) / 8)), stuck: new Map() };
      byArray.set(a, e);
    }
    return e;
  };
  let tested = 0;
  for (let i = 0; i < d.targetUs.length; i++) {
    const st = d.status[i] as number;
    if (st === NOT_ATTEMPTED || (st === UNKNOWN && Number.isNaN(d.finalUs[i] as number))) continue;
    const e = arrayOf(places.array[i] as number);
    const k = (places.row[i] as number) * cols + (places.col[i] as number);
    if (((e.tested[k >> 3] as number) & (1 << (k & 7))) === 0) tested++;
    e.tested[k >> 3] = (e.tested[k >> 3] as number) | (1 << (k & 7));
  }
  for (const i of classes.stuckCells) {
    let sum = 0;
    let count = 0;
    for (const rb of d.readbacks) {
      const v = rb.valuesUs[i] as number;
      if (!Number.isNaN(v)) {
        sum += v;
        count++;
      }
    }
    const g = count > 0 ? sum / count : (d.finalUs[i] as number);
    if (!Number.isFinite(g)) continue;
    const e = arrayOf(places.array[i] as number);
    e.stuck.set((places.row[i] as number) * cols + (places.col[i] as number), Math.max(0, g));
  }
  const arrays = [...byArray]
    .sort((a, b) => a[0] - b[0])
    .map(([array, e]) => ({ array, tested: e.tested, stuck: [...e.stuck].sort((a, b) => a[0] - b[0]).map(([k, g]) => [Math.floor(k / cols), k % cols, g] as [number, number, number]) }));
  return { status: 'fitted', rows, cols, arrays, tested, stuck: arrays.reduce((s, a) => s + a.stuck.length, 0) };
}

// ------------------------------------------------------------------ read noise

export interface ReadNoiseFit {
  /** Single-read sigma = rel * G + abs. */
  readonly rel: ParamEstimate;
  readonly absUs: ParamEstimate;
  readonly gof: GoodnessOfFit;
  /** The relative-only equivalent over the healthy cells' targets (what the profile's `relative` form holds). */
  readonly relativeEquivalent: number;
  readonly cells: number;
  readonly repeats: number;
  /** Per conductance bin: mean G and measured single-read sigma (for plots). */
  readonly bins: ReadonlyArray<{ gUs: number; sigmaUs: number; seUs: number }>;
}

export function fitReadNoise(d: CalibrationDataset, classes = classifyCells(d)): Fitted<ReadNoiseFit> {
  const rr = d.repeatedReads;
  if (!rr || rr.repeats < 2) {
    return { status: 'refused', reason: 'no repeated reads in the data: campaign runs read each cell once per time point (run the calibration plan, which reads cells back to back)' };
  }
  const isHealthy = new Uint8Array(d.targetUs.length);
  for (const i of classes.healthy) isHealthy[i] = 1;
  const means: number[] = [];
  const vars: number[] = [];
  const R = rr.repeats;
  for (let k = 0; k < rr.cells.length; k++) {
    if (!isHealthy[rr.cells[k] as number]) continue;
    let s = 0;
    for (let j = 0; j < R; j++) s += rr.valuesUs[k * R + j] as number;
    const m = s / R;
    let ss = 0;
    for (let j = 0; j < R; j++) ss += ((rr.valuesUs[k * R + j] as number) - m) ** 2;
    means.push(m);
    vars.push(ss / (R - 1));
  }
  if (means.length < 50) return { status: 'refused', reason: `only ${means.length} healthy cells with repeated reads (need at least 50)` };
  const order = means.map((_, i) => i).sort((a, b) => (means[a] as number) - (means[b] as number));
  const binCount = Math.min(24, Math.floor(means.length / 20));
  const bins: Array<{ gUs: number; sigmaUs: number; seUs: number }> = [];
  for (let b = 0; b < binCount; b++) {
    const idx = order.slice(Math.floor((b * order.length) / binCount), Math.floor(((b + 1) * order.length) / binCount));
    const g = idx.reduce((s, i) => s + (means[i] as number), 0) / idx.length;
    const v = idx.reduce((s, i) => s + (vars[i] as number), 0) / idx.length;
    const dof = idx.length * (R - 1);
    const sigma = Math.sqrt(v);
    bins.push({ gUs: g, sigmaUs: sigma, seUs: sigma / Math.sqrt(2 * dof) });
  }
  const gs = bins.map((b) => b.gUs);
  const spanRel = (Math.max(...gs) - Math.min(...gs)) / Math.max(...gs);
  if (spanRel < 0.3) return { status: 'refused', reason: `repeated reads cover too narrow a conductance range (${Math.min(...gs).toFixed(2)}..${Math.max(...gs).toFixed(2)} uS) to separate relative from absolute read noise` };
  const fit = weightedLinear(
    bins.length,
    [(i) => (bins[i] as { gUs: number }).gUs, () => 1],
    bins.map((b) => b.sigmaUs),
    bins.map((b) => 1 / b.seUs ** 2),
  );
  if (!fit) return { status: 'refused', reason: 'read-noise regression is singular' };
  const rel = fit.coefficients[0] as number;
  const abs = fit.coefficients[1] as number;
  let num = 0;
  let den = 0;
  for (const i of classes.healthy) {
    const g = d.targetUs[i] as number;
    num += (rel * g + abs) ** 2;
    den += g * g;
  }
  return {
    status: 'fitted',
    rel: estimate(rel, fit.se[0] as number),
    absUs: estimate(abs, fit.se[1] as number),
    gof: fit.gof,
    relativeEquivalent: Math.sqrt(num / Math.max(den, 1e-30)),
    cells: means.length,
    repeats: R,
    bins,
  };
}

/** Single-read sigma at G from a read-noise fit (0 when refused: then the programming spread absorbs it). */
export function readSigmaAt(read: Fitted<ReadNoiseFit>, gUs: number): number {
  return read.status === 'fitted' ? Math.max(0, read.rel.value * gUs + read.absUs.value) : 0;
}

// ------------------------------------------------------------------ observation groups

/** Target levels: distinct targets (up to 32), else 16 equal-width bins. */
export function levelsOf(d: CalibrationDataset, healthy: Uint32Array): { levelOf: Int16Array; levelsUs: number[] } {
  const distinct = new Map<number, number>();
  for (const i of healthy) {
    const t = Math.round((d.targetUs[i] as number) * 1000) / 1000;
    distinct.set(t, (distinct.get(t) ?? 0) + 1);
    if (distinct.size > 32) break;
  }
  const levelOf = new Int16Array(d.targetUs.length).fill(-1);
  if (distinct.size <= 32) {
    const levelsUs = [...distinct.keys()].sort((a, b) => a - b);
    const index = new Map(levelsUs.map((t, k) => [t, k]));
    for (const i of healthy) levelOf[i] = index.get(Math.round((d.targetUs[i] as number) * 1000) / 1000) as number;
    return { levelOf, levelsUs };
  }
  const bins = 16;
  const w = (d.gMaxUs - d.gMinUs) / bins;
  const sums = new Float64Array(bins);
  const counts = new Float64Array(bins);
  for (const i of healthy) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((d.targetUs[i] as number) - d.gMinUs) / w)));
    levelOf[i] = b;
    sums[b] = (sums[b] as number) + (d.targetUs[i] as number);
    counts[b] = (counts[b] as number) + 1;
  }
  return { levelOf, levelsUs: Array.from(sums, (s, b) => (counts[b] ? s / (counts[b] as number) : d.gMinUs + (b + 0.5) * w)) };
}

/** Cells of one read-back set split into age bins (ln-age width 0.1, at least `minCells` each). */
function ageBins(set: ReadbackSet, cells: ArrayLike<number>, minCells: number): Array<{ ageS: number; cells: number[] }> {
  const usable: number[] = [];
  for (let k = 0; k < cells.length; k++) {
    const i = cells[k] as number;
    if (Number.isFinite(set.valuesUs[i]) && Number.isFinite(set.ageS[i]) && (set.ageS[i] as number) > 0) usable.push(i);
  }
  usable.sort((a, b) => (set.ageS[a] as number) - (set.ageS[b] as number));
  const out: Array<{ ageS: number; cells: number[] }> = [];
  let cur: number[] = [];
  let start = Number.NaN;
  for (const i of usable) {
    const la = Math.log(set.ageS[i] as number);
    if (cur.length >= minCells && la - start > 0.1) {
      out.push({ ageS: cur.reduce((s, c) => s + (set.ageS[c] as number), 0) / cur.length, cells: cur });
      cur = [];
    }
    if (cur.length === 0) start = la;
    cur.push(i);
  }
  if (cur.length > 0) {
    const last = out[out.length - 1];
    if (cur.length < minCells && last) last.cells.push(...cur);
    else out.push({ ageS: cur.reduce((s, c) => s + (set.ageS[c] as number), 0) / cur.length, cells: cur });
  }
  for (const b of out) b.ageS = b.cells.reduce((s, c) => s + (set.ageS[c] as number), 0) / b.cells.length;
  return out;
}

// ------------------------------------------------------------------ relaxation

export interface RelaxationMeanObservation {
  /** Which source dataset the cells came from (CalibrationDataset.part): each has its own programming offset. */
  readonly part: number;
  readonly ageS: number;
  readonly meanErrUs: number;
  readonly seUs: number;
  readonly meanTargetUs: number;
  readonly cells: number;
}

export interface FormFit {
  /** Parameters by name (t0S is fitted through ln t0). */
  readonly params: Record<string, ParamEstimate>;
  readonly gof: GoodnessOfFit;
  /** Parameters the data could not determine, with the value used instead. */
  readonly fixed: Record<string, { value: number; reason: string }>;
}

export interface RelaxationFit {
  readonly chosen: 'log' | 'power-law';
  readonly choiceReason: string;
  readonly log: FormFit;
  readonly powerLaw: FormFit | { readonly refused: string };
  readonly observations: readonly RelaxationMeanObservation[];
}

/** Cells grouped by the source they came from (CalibrationDataset.part), in first-seen order. */
function cellsBySource(d: CalibrationDataset, cells: Iterable<number>): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const i of cells) {
    const part = d.part?.[i] ?? 0;
    const list = out.get(part) ?? [];
    list.push(i);
    out.set(part, list);
  }
  return out;
}

export function relaxationObservations(d: CalibrationDataset, healthy: Uint32Array, minCells = 200): RelaxationMeanObservation[] {
  const err = new Float32Array(d.targetUs.length);
  const obs: RelaxationMeanObservation[] = [];
  // Per source: runs and plans program different level sets, so their mean programming error
  // (the offset) differs, and pooling them in one age bin would bend the fitted curve.
  const byPart = cellsBySource(d, healthy);
  for (const set of d.readbacks) {
    for (const i of healthy) err[i] = (set.valuesUs[i] as number) - (d.targetUs[i] as number);
    for (const [part, cells] of byPart) {
      for (const bin of ageBins(set, cells, minCells)) {
        const mv = meanVar(err, bin.cells);
        const mt = bin.cells.reduce((s, i) => s + (d.targetUs[i] as number), 0) / bin.cells.length;
        obs.push({ part, ageS: bin.ageS, meanErrUs: mv.mean, seUs: Math.sqrt(mv.variance / mv.n), meanTargetUs: mt, cells: mv.n });
      }
    }
  }
  return obs;
}

function namedParams(names: readonly string[], values: readonly number[], se: readonly number[]): Record<string, ParamEstimate> {
  const out: Record<string, ParamEstimate> = {};
  names.forEach((n, k) => (out[n] = estimate(values[k] as number, se[k] as number)));
  return out;
}

/** t0 as a parameter: estimated through ln t0; reported with a log-normal interval. */
function t0Estimate(lnT0: number, seLn: number): ParamEstimate {
  const v = Math.exp(lnT0);
  return { value: v, se: v * seLn, ci95: [Math.exp(lnT0 - 1.96 * seLn), Math.exp(lnT0 + 1.96 * seLn)] };
}

const FIXED_T0 = 1;

/** Parameter-name prefix of the programming offsets of sources after the first (offsetUs is the first's). */
export const PART_OFFSET = 'offsetUs.source';

/** A mean observation's programming offset in a fitted form: its source's own. */
export function offsetFor(f: FormFit, part: number): number {
  return (part === 0 ? f.params.offsetUs?.value : f.params[`${PART_OFFSET}${part}`]?.value ?? f.params.offsetUs?.value) ?? 0;
}

/** Mean relaxation in both forms; t0 is fixed at 1 s (and said so) when the ages cannot resolve it. */
export function fitRelaxationMean(obs: readonly RelaxationMeanObservation[]): Fitted<{ log: FormFit; powerLaw: FormFit | { refused: string } }> {
  const ages = obs.map((o) => o.ageS);
  const distinct = new Set(ages.map((a) => Math.round(Math.log(a) * 10))).size;
  if (obs.length < 3 || distinct < 3) return { status: 'refused', reason: `read-backs at only ${distinct} distinct ages (need at least 3 time points after programming)` };
  const spanDecades = Math.log10(Math.max(...ages) / Math.min(...ages));
  if (spanDecades < 1) return { status: 'refused', reason: `read-back ages span only ${spanDecades.toFixed(2)} decades (need at least 1)` };
  const y = obs.map((o) => o.meanErrUs);
  const w = obs.map((o) => 1 / Math.max(o.seUs, 1e-6) ** 2);
  const lnMin = Math.log(1e-3);
  const lnMax = Math.log(1e4);
  // Initial slope from the late half, where ln(1 + t/t0) ~ ln t.
  const late = obs.filter((o) => o.ageS >= Math.sqrt(Math.min(...ages) * Math.max(...ages)));
  const lf = weightedLinear(late.length, [(i) => Math.log((late[i] as RelaxationMeanObservation).ageS), () => 1], late.map((o) => o.meanErrUs), late.map(() => 1));
  const a0 = lf && late.length >= 2 ? (lf.coefficients[0] as number) : -0.05;
  const m0 = Math.min(...obs.map((o) => Math.abs(o.ageS))) < 1e-2 ? (obs[0] as RelaxationMeanObservation).meanErrUs : 0;
  const Tbar = obs.reduce((s, o) => s + o.meanTargetUs, 0) / obs.length;

  // Parameters: [offset of part 0, slope, ln t0, offsets of parts 1..P-1] (one programming offset per source).
  const parts = [...new Set(obs.map((o) => o.part))].sort((a, b) => a - b);
  const slot = new Map(parts.map((part, k) => [part, k]));
  const offsetOf = (p: readonly number[], o: RelaxationMeanObservation): number => {
    const k = slot.get(o.part) as number;
    return (k === 0 ? p[0] : p[2 + k]) as number;
  };
  const logModel = (p: readonly number[], i: number): number => {
    const o = obs[i] as RelaxationMeanObservation;
    return offsetOf(p, o) + (p[1] as number) * Math.log1p(o.ageS / Math.exp(p[2] as number));
  };
  const powModel = (p: readonly number[], i: number): number => {
    const o = obs[i] as RelaxationMeanObservation;
    return offsetOf(p, o) + o.meanTargetUs * (Math.pow(1 + o.ageS / Math.exp(p[2] as number), -(p[1] as number)) - 1);
  };
  const extra = parts.slice(1);
  const extraInit = extra.map((part) => {
    const first = obs.filter((o) => o.part === part).sort((a, b) => a.ageS - b.ageS)[0];
    return first && first.ageS < 1e-2 ? first.meanErrUs : 0;
  });
  const partOffsets = (values: readonly number[], se: readonly number[]): Record<string, ParamEstimate> => namedParams(extra.map((part) => `${PART_OFFSET}${part}`), values, se);
  const fitForm = (model: (p: readonly number[], i: number) => number, slope0: number, names: [string, string]): FormFit => {
    const free = fitNonlinear(model, y, w, [m0, slope0, 0, ...extraInit], { min: [-1e3, -10, lnMin, ...extra.map(() => -1e3)], max: [1e3, 10, lnMax, ...extra.map(() => 1e3)] });
    const seLn = free.se[2] as number;
    const lnT0 = free.params[2] as number;
    if (free.determined && seLn < 1.5 && lnT0 > lnMin + 0.5 && lnT0 < lnMax - 0.5) {
      return {
        params: { ...namedParams(names, free.params.slice(0, 2), free.se.slice(0, 2)), t0S: t0Estimate(lnT0, seLn), ...partOffsets(free.params.slice(3), free.se.slice(3)) },
        gof: free.gof,
        fixed: {},
      };
    }
    const fixedModel = (p: readonly number[], i: number): number => model([p[0] as number, p[1] as number, Math.log(FIXED_T0), ...p.slice(2)], i);
    const f = fitNonlinear(fixedModel, y, w, [m0, slope0, ...extraInit], { min: [-1e3, -10, ...extra.map(() => -1e3)], max: [1e3, 10, ...extra.map(() => 1e3)] });
    return {
      params: { ...namedParams(names, f.params.slice(0, 2), f.se.slice(0, 2)), ...partOffsets(f.params.slice(2), f.se.slice(2)) },
      gof: f.gof,
      fixed: { t0S: { value: FIXED_T0, reason: `the read-back ages (${Math.min(...ages).toPrecision(3)}..${Math.max(...ages).toPrecision(3)} s) do not resolve the onset time t0 (ln t0 = ${lnT0.toFixed(2)} +- ${Number.isFinite(seLn) ? seLn.toFixed(2) : 'inf'}); read back sooner after programming` } },
    };
  };
  const log = fitForm(logModel, a0, ['offsetUs', 'meanUsPerLn']);
  let powerLaw: FormFit | { refused: string };
  if (Tbar <= 0) powerLaw = { refused: 'mean target is not positive' };
  else powerLaw = fitForm(powModel, -a0 / Tbar, ['offsetUs', 'nuMean']);
  return { status: 'fitted', log, powerLaw };
}

// ------------------------------------------------------------------ spread + programming noise

export interface SpreadGroup {
  readonly level: number;
  readonly ageS: number;
  readonly variance: number;
  readonly cells: number;
  readonly meanGUs: number;
  readonly targetUs: number;
  readonly averages: number;
}

export function spreadGroups(d: CalibrationDataset, healthy: Uint32Array, levelOf: Int16Array, levels: number, minCells = 12): SpreadGroup[] {
  const err = new Float32Array(d.targetUs.length);
  const groups: SpreadGroup[] = [];
  for (const set of d.readbacks) {
    for (const i of healthy) err[i] = (set.valuesUs[i] as number) - (d.targetUs[i] as number);
    // By level and source: a level two sources share has a different bias in each, which is no spread.
    const byLevel = new Map<number, number[]>();
    for (const i of healthy) {
      const level = levelOf[i] as number;
      if (level < 0) continue;
      const key = level * 256 + (d.part?.[i] ?? 0);
      const list = byLevel.get(key) ?? [];
      list.push(i);
      byLevel.set(key, list);
    }
    byLevel.forEach((cells, key) => {
      const level = Math.floor(key / 256);
      for (const bin of ageBins(set, cells, Math.max(minCells, 40))) {
        const mv = meanVar(err, bin.cells);
        if (mv.n < minCells || !(mv.variance > 0)) continue;
        const t = bin.cells.reduce((s, i) => s + (d.targetUs[i] as number), 0) / bin.cells.length;
        groups.push({ level, ageS: bin.ageS, variance: mv.variance, cells: mv.n, meanGUs: t + mv.mean, targetUs: t, averages: set.averages });
      }
    });
  }
  return groups;
}

export interface SpreadFit {
  /** Programming sigma per level (uS). */
  readonly sigmaByLevel: ReadonlyArray<{ targetUs: number; sigma: ParamEstimate }>;
  readonly log: FormFit;
  readonly powerLaw: FormFit | { refused: string };
}

/**
 * Variance of (read-back - target) per level and age: sigma_p(level)^2 + s(t)^2 + r(G)^2 / n.
 * Read noise comes from the read-noise fit (fixed here); t0 from the mean fit of each form.
 */
export function fitSpread(groups: readonly SpreadGroup[], levelsUs: readonly number[], read: Fitted<ReadNoiseFit>, t0Log: number, t0Pow: number): Fitted<SpreadFit> {
  if (groups.length < levelsUs.length + 2) return { status: 'refused', reason: `only ${groups.length} (level, age) groups with enough cells for ${levelsUs.length} levels` };
  const L = levelsUs.length;
  const seen = new Set(groups.map((g) => g.level));
  if (seen.size < L) return { status: 'refused', reason: `${L - seen.size} target levels have no read-back groups` };
  const y = groups.map((g) => g.variance);
  const w = groups.map((g) => (g.cells - 1) / (2 * g.variance * g.variance));
  const readVar = groups.map((g) => readSigmaAt(read, g.meanGUs) ** 2 / g.averages);
  const init = levelsUs.map((_, l) => {
    let min = Number.POSITIVE_INFINITY;
    groups.forEach((g, k) => {
      if (g.level === l) min = Math.min(min, g.variance - (readVar[k] as number));
    });
    return Math.sqrt(Math.max(1e-4, min));
  });
  const logModel = (t0: number) => (p: readonly number[], i: number): number => {
    const g = groups[i] as SpreadGroup;
    const s = (p[L] as number) * -Math.expm1(-g.ageS / t0) + (p[L + 1] as number) * Math.log1p(g.ageS / t0);
    return (p[g.level] as number) ** 2 + s * s + (readVar[i] as number);
  };
  const powModel = (t0: number) => (p: readonly number[], i: number): number => {
    const g = groups[i] as SpreadGroup;
    const s = g.targetUs * (p[L] as number) * Math.log1p(g.ageS / t0);
    return (p[g.level] as number) ** 2 + s * s + (readVar[i] as number);
  };
  const sigmaNames = levelsUs.map((_, l) => `sigma${l}`);
  const lf = fitNonlinear(logModel(t0Log), y, w, [...init, 0.1, 0.05], { min: [...init.map(() => 0), 0, 0], max: [...init.map(() => 100), 100, 100] });
  const fixed: Record<string, { value: number; reason: string }> = {};
  let logFit: FormFit;
  let sigmas = lf.params.slice(0, L);
  let sigmaSe = lf.se.slice(0, L);
  const b0 = lf.params[L] as number;
  const b0se = lf.se[L] as number;
  if (!lf.determined || !(b0se < Math.max(0.5 * b0, 0.02))) {
    // The onset of the spread is confounded with programming noise: no read-backs young enough.
    const noOnset = (p: readonly number[], i: number): number => logModel(t0Log)([...p.slice(0, L), 0, p[L] as number], i);
    const f = fitNonlinear(noOnset, y, w, [...init, 0.05], { min: [...init.map(() => 0), 0], max: [...init.map(() => 100), 100] });
    sigmas = f.params.slice(0, L);
    sigmaSe = f.se.slice(0, L);
    fixed.spread0Us = { value: 0, reason: `the spread's onset (b0 = ${b0.toFixed(3)} +- ${Number.isFinite(b0se) ? b0se.toFixed(3) : 'inf'} uS) is not separable from programming noise without read-backs well before t0; programming sigma absorbs it` };
    logFit = { params: { spreadUsPerLn: estimate(f.params[L] as number, f.se[L] as number) }, gof: f.gof, fixed };
  } else {
    logFit = { params: { spread0Us: estimate(b0, b0se), spreadUsPerLn: estimate(lf.params[L + 1] as number, lf.se[L + 1] as number) }, gof: lf.gof, fixed };
  }
  let powerLaw: FormFit | { refused: string };
  if (!(t0Pow > 0)) powerLaw = { refused: 'no power-law mean fit' };
  else {
    const pf = fitNonlinear(powModel(t0Pow), y, w, [...init, 0.005], { min: [...init.map(() => 0), 0], max: [...init.map(() => 100), 10] });
    powerLaw = { params: { ...namedParams(sigmaNames, pf.params.slice(0, L), pf.se.slice(0, L)), nuStd: estimate(pf.params[L] as number, pf.se[L] as number) }, gof: pf.gof, fixed: {} };
  }
  return {
    status: 'fitted',
    sigmaByLevel: levelsUs.map((t, l) => ({ targetUs: t, sigma: estimate(sigmas[l] as number, sigmaSe[l] as number) })),
    log: logFit,
    powerLaw,
  };
}

export interface PolynomialFit {
  /** sigma(x) = sum c_i x^i, x = g / referenceUs. */
  readonly coefficients: ReadonlyArray<ParamEstimate>;
  readonly referenceUs: number;
  readonly degree: number;
  readonly gof: GoodnessOfFit;
  readonly aicByDegree: readonly number[];
}

/** Weighted polynomial in x = g / reference through the per-level sigmas; degree by AICc (up to 4). */
export function fitPolynomial(points: ReadonlyArray<{ targetUs: number; sigma: ParamEstimate }>, referenceUs: number): Fitted<PolynomialFit> {
  if (points.length < 2) return { status: 'refused', reason: `only ${points.length} target levels (a polynomial in conductance needs at least 2)` };
  const x = points.map((p) => p.targetUs / referenceUs);
  const y = points.map((p) => p.sigma.value);
  const w = points.map((p) => 1 / Math.max(p.sigma.se, 1e-6) ** 2);
  let best: { fit: NonNullable<ReturnType<typeof weightedLinear>>; degree: number; aicc: number } | undefined;
  const aics: number[] = [];
  for (let degree = 0; degree <= Math.min(4, points.length - 2); degree++) {
    const basis = Array.from({ length: degree + 1 }, (_, k) => (i: number) => (x[i] as number) ** k);
    const fit = weightedLinear(points.length, basis, y, w);
    if (!fit) break;
    const n = points.length;
    const k = degree + 1;
    // AICc on chi-square (the weights are inverse variances).
    const aicc = fit.gof.chi2 + 2 * k + (n - k - 1 > 0 ? (2 * k * (k + 1)) / (n - k - 1) : 1e9);
    aics.push(aicc);
    if (!best || aicc < best.aicc) best = { fit, degree, aicc };
  }
  if (!best) return { status: 'refused', reason: 'polynomial regression is singular' };
  return {
    status: 'fitted',
    coefficients: best.fit.coefficients.map((c, k) => estimate(c, best.fit.se[k] as number)),
    referenceUs,
    degree: best.degree,
    gof: best.fit.gof,
    aicByDegree: aics,
  };
}

export function polynomialAt(p: PolynomialFit, gUs: number): number {
  const x = Math.min(1, Math.max(0, gUs / p.referenceUs));
  return p.coefficients.reduce((s, c, k) => s + c.value * x ** k, 0);
}

// ------------------------------------------------------------------ programming bias per level

/** Mean relaxation of the chosen form at an age (what the per-level means are corrected by). */
export type RelaxationMeanAt = (ageS: number, targetUs: number) => number;

/**
 * Mean programming error (bias) per level: write-verify stops inside the tolerance on the side it
 * approached from and pulses clip at the window's ends, so levels near gMin read high and near gMax
 * low. Each (level, age) group's mean error minus the fitted mean relaxation at its age, averaged
 * with inverse-variance weights. The groups of a level are the same cells read at other ages, so the
 * standard error is the groups' typical one (not divided by their number), inflated by the scatter
 * between ages when that is larger.
 */
export function fitLevelBias(groups: readonly SpreadGroup[], levels: number, relaxationAt: RelaxationMeanAt): Fitted<{ perLevel: ParamEstimate[] }> {
  const perLevel: ParamEstimate[] = [];
  for (let l = 0; l < levels; l++) {
    const g = groups.filter((x) => x.level === l);
    if (g.length === 0) return { status: 'refused', reason: `target level ${l} has no read-back groups` };
    const y = g.map((x) => x.meanGUs - x.targetUs - relaxationAt(x.ageS, x.targetUs));
    const se2 = g.map((x) => x.variance / x.cells);
    const w = se2.map((v) => 1 / Math.max(v, 1e-12));
    const wsum = w.reduce((s, v) => s + v, 0);
    const mean = y.reduce((s, v, k) => s + v * (w[k] as number), 0) / wsum;
    const scatter = g.length > 1 ? y.reduce((s, v, k) => s + (w[k] as number) * (v - mean) ** 2, 0) / (g.length - 1) : 1;
    const typical = Math.sqrt(se2.reduce((s, v) => s + v, 0) / se2.length);
    perLevel.push(estimate(mean, typical * Math.sqrt(Math.max(1, scatter))));
  }
  return { status: 'fitted', perLevel };
}

// ------------------------------------------------------------------ cells write-verify left alone

export interface UnpulsedFit {
  readonly targetsUs: number[];
  readonly fraction: number[];
  readonly meanUs: number[];
  readonly sigmaUs: number[];
  readonly cells: number;
  /** Age of the state they kept, at programming: fitted from how little they relax, or fixed with the reason. */
  readonly ageS: ParamEstimate | { readonly value: number; readonly reason: string };
}

/**
 * Cells already within tolerance get no pulse and keep their earlier state (pulses 0, status OK):
 * per level, their fraction among the cells of that level, their error at the first read-back and,
 * from how their mean error moves over the read-backs against the fitted mean relaxation, how old
 * their state was at programming (grid search over ln age; 95% interval where chi2 rises by 3.84).
 */
export function fitUnpulsed(d: CalibrationDataset, levelsUs: readonly number[], relaxationAt: (ageS: number) => number, minCells = 20): Fitted<UnpulsedFit> {
  const first = d.readbacks[0];
  if (!first || levelsUs.length === 0) return { status: 'refused', reason: 'no read-backs' };
  // The same matching the simulator applies to the table it is fitted into.
  const levelOfTarget = (t: number): number => nearestTargetIndex(levelsUs, t);
  const total = new Array<number>(levelsUs.length).fill(0);
  const alone: number[][] = levelsUs.map(() => []);
  for (let i = 0; i < d.targetUs.length; i++) {
    if (d.status[i] !== 0 || d.pulses[i] === 65535) continue;
    const l = levelOfTarget(d.targetUs[i] as number);
    if (l < 0) continue;
    total[l] = (total[l] as number) + 1;
    if (d.pulses[i] === 0 && Number.isFinite(first.valuesUs[i])) (alone[l] as number[]).push(i);
  }
  const rows = levelsUs.map((t, l) => ({ t, l, cells: alone[l] as number[] })).filter((r) => r.cells.length >= minCells);
  if (rows.length === 0) return { status: 'refused', reason: `no level has ${minCells} or more cells that write-verify left alone` };
  const all = rows.flatMap((r) => r.cells);
  // The age is a property of a source's history (an as-formed chip, a preconditioned plan): fitted
  // on the source with the most cells left alone.
  const ageCells = [...cellsBySource(d, all).values()].reduce((a, b) => (b.length > a.length ? b : a));
  const err = (set: ReadbackSet, i: number): number => (set.valuesUs[i] as number) - (d.targetUs[i] as number);
  const stats = rows.map((r) => {
    const e = r.cells.map((i) => err(first, i));
    const m = e.reduce((s, v) => s + v, 0) / e.length;
    return { mean: m, sigma: Math.sqrt(e.reduce((s, v) => s + (v - m) ** 2, 0) / Math.max(1, e.length - 1)) };
  });
  // Mean error of the same cells at every read-back, against the age since programming.
  const track = d.readbacks
    .map((set) => {
      const cells = ageCells.filter((i) => Number.isFinite(set.valuesUs[i]) && Number.isFinite(set.ageS[i]));
      const e = cells.map((i) => err(set, i));
      const m = e.reduce((s, v) => s + v, 0) / Math.max(1, e.length);
      const v = e.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, e.length - 1);
      return { ageS: cells.reduce((s, i) => s + (set.ageS[i] as number), 0) / Math.max(1, cells.length), mean: m, se2: v / Math.max(1, e.length), n: cells.length };
    })
    .filter((x) => x.n >= minCells)
    .sort((a, b) => a.ageS - b.ageS);
  let ageS: UnpulsedFit['ageS'];
  const base = track[0];
  if (!base || track.length < 3) ageS = { value: 1e9, reason: `the cells left alone were read back at ${track.length} ages (need 3): taken as too old to relax` };
  else {
    const chi2 = (lnA: number): number => {
      const a = Math.exp(lnA);
      const r0 = relaxationAt(a + base.ageS);
      return track.slice(1).reduce((s, x) => s + (x.mean - base.mean - (relaxationAt(a + x.ageS) - r0)) ** 2 / (x.se2 + base.se2), 0);
    };
    const grid: Array<[number, number]> = [];
    for (let lnA = 0; lnA <= Math.log(1e9); lnA += 0.02) grid.push([lnA, chi2(lnA)]);
    const [bestLn, bestChi] = grid.reduce((b, g) => (g[1] < b[1] ? g : b));
    const inside = grid.filter((g) => g[1] <= bestChi + 3.84).map((g) => g[0]);
    const lo = Math.min(...inside);
    const hi = Math.max(...inside);
    if (hi >= Math.log(1e9) - 0.05 || lo <= 0.05) ageS = { value: Math.exp(bestLn), reason: `the relaxation of the cells left alone bounds their age only to ${Math.exp(lo).toPrecision(2)}..${Math.exp(hi).toPrecision(2)} s (95%): best ${Math.exp(bestLn).toPrecision(3)} s used` };
    else ageS = { value: Math.exp(bestLn), se: (Math.exp(hi) - Math.exp(lo)) / 3.92, ci95: [Math.exp(lo), Math.exp(hi)] };
  }
  return {
    status: 'fitted',
    targetsUs: rows.map((r) => r.t),
    fraction: rows.map((r) => r.cells.length / (total[r.l] as number)),
    meanUs: stats.map((s) => s.mean),
    sigmaUs: stats.map((s) => s.sigma),
    cells: all.length,
    ageS,
  };
}
