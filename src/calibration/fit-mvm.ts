import type { MvmPatterns } from './dataset.js';
import { estimate, weightedLinear, type ParamEstimate } from './stats.js';
import type { Fitted } from './fits.js';

/**
 * ADC gain/offset per column and the IR-drop factor from MVM calibration patterns: with one input
 * bit, column c of vector v should read I = vRead * sum_r x_r G_rc (G from the read-back just
 * before), and the ADC gives code = k_c * (I - f I^2 / Imax) + o_c + noise. A per-column fit in
 * (I, I^2, 1) gives f per column (pooled, weighted); with f fixed, (I', 1) gives k_c and o_c.
 * Spreads are corrected for the estimation error of each column's coefficients (unit weights: the
 * conversion noise is estimated from each column's residuals, not assumed to be 1 LSB).
 */
export interface MvmFit {
  readonly columns: number;
  readonly vectors: number;
  readonly irDropFactor: ParamEstimate;
  /** Relative spread of column gains (std / mean). */
  readonly gainStd: ParamEstimate;
  readonly offsetStdLsb: ParamEstimate;
  /** Residual noise per conversion as a fraction of full scale (includes the cells' read noise). */
  readonly noiseFullScale: ParamEstimate;
  readonly residualLsb: number;
  readonly meanGainCodesPerUa: number;
  readonly columnsGain: readonly number[];
  readonly columnsOffsetLsb: readonly number[];
  /** Per measured column of a known array: gain relative to the mean and offset (LSB). */
  readonly trims: ReadonlyArray<{ readonly array: number; readonly col: number; readonly gain: number; readonly offsetLsb: number }>;
}

export function fitMvm(patterns: readonly MvmPatterns[]): Fitted<MvmFit> {
  type Col = { I: number[]; code: number[]; imax: number; array: number | undefined; col: number };
  const cols: Col[] = [];
  let vectors = 0;
  let bits = 8;
  for (const p of patterns) {
    bits = p.adcBits;
    const top = 2 ** p.adcBits - 1;
    const V = p.inputs.length / p.rows;
    vectors += V;
    for (let c = 0; c < p.cols; c++) {
      const col: Col = { I: [], code: [], imax: p.fullCurrentUa, array: p.array, col: c };
      for (let v = 0; v < V; v++) {
        let g = 0;
        for (let r = 0; r < p.rows; r++) if (p.inputs[v * p.rows + r]) g += p.gUs[r * p.cols + c] as number;
        const code = p.codes[v * p.cols + c] as number;
        if (code <= 0 || code >= top) continue;
        col.I.push(g * p.vReadV);
        col.code.push(code);
      }
      if (col.I.length >= 6) cols.push(col);
    }
  }
  if (cols.length < 8) return { status: 'refused', reason: `only ${cols.length} columns with at least 6 unclipped MVM conversions` };
  const fs: number[] = [];
  const fw: number[] = [];
  for (const c of cols) {
    const n = c.I.length;
    const f = weightedLinear(n, [(i) => c.I[i] as number, (i) => (c.I[i] as number) ** 2, () => 1], c.code, new Array<number>(n).fill(1), { sigma: 'unknown' });
    if (!f || !((f.coefficients[0] as number) > 0)) continue;
    const k = f.coefficients[0] as number;
    const fc = (-(f.coefficients[1] as number) * c.imax) / k;
    const se = ((f.se[1] as number) * c.imax) / k;
    if (Number.isFinite(fc) && se > 0) {
      fs.push(fc);
      fw.push(1 / (se * se));
    }
  }
  if (fs.length < 8) return { status: 'refused', reason: 'MVM currents do not span enough of the range to resolve the IR-drop curvature' };
  const wsum = fw.reduce((s, v) => s + v, 0);
  const irDrop = fs.reduce((s, v, i) => s + v * (fw[i] as number), 0) / wsum;
  const irSe = Math.sqrt(1 / wsum) * Math.max(1, Math.sqrt(fs.reduce((s, v, i) => s + (fw[i] as number) * (v - irDrop) ** 2, 0) / Math.max(1, fs.length - 1)));
  const gains: number[] = [];
  const gainSe: number[] = [];
  const offsets: number[] = [];
  const offsetSe: number[] = [];
  const where: Array<{ array: number | undefined; col: number }> = [];
  let res = 0;
  let dof = 0;
  for (const c of cols) {
    const n = c.I.length;
    const Ip = c.I.map((I) => I * (1 - (irDrop * I) / c.imax));
    const f = weightedLinear(n, [(i) => Ip[i] as number, () => 1], c.code, new Array<number>(n).fill(1), { sigma: 'unknown' });
    if (!f) continue;
    gains.push(f.coefficients[0] as number);
    gainSe.push(f.se[0] as number);
    offsets.push(f.coefficients[1] as number);
    offsetSe.push(f.se[1] as number);
    where.push({ array: c.array, col: c.col });
    res += f.gof.chi2;
    dof += n - 2;
  }
  const spread = (v: number[], se: number[]): { value: number; se: number } => {
    const m = v.reduce((s, x) => s + x, 0) / v.length;
    const raw = v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1);
    const noise = se.reduce((s, x) => s + x * x, 0) / se.length;
    const sd = Math.sqrt(Math.max(0, raw - noise));
    return { value: sd, se: Math.sqrt(raw) / Math.sqrt(2 * (v.length - 1)) };
  };
  const meanGain = gains.reduce((s, x) => s + x, 0) / gains.length;
  const g = spread(gains, gainSe);
  const o = spread(offsets, offsetSe);
  const residualLsb = Math.sqrt(res / Math.max(1, dof));
  // Rounding to integer codes adds 1/12 LSB^2.
  const noiseLsb = Math.sqrt(Math.max(0, residualLsb ** 2 - 1 / 12));
  return {
    status: 'fitted',
    columns: gains.length,
    vectors,
    irDropFactor: estimate(irDrop, irSe),
    gainStd: estimate(g.value / meanGain, g.se / meanGain),
    offsetStdLsb: estimate(o.value, o.se),
    noiseFullScale: estimate(noiseLsb / 2 ** bits, noiseLsb / 2 ** bits / Math.sqrt(2 * Math.max(1, dof))),
    residualLsb,
    meanGainCodesPerUa: meanGain,
    columnsGain: gains.map((x) => x / meanGain),
    columnsOffsetLsb: offsets,
    trims: where.flatMap((w, k) => (w.array === undefined ? [] : [{ array: w.array, col: w.col, gain: (gains[k] as number) / meanGain, offsetLsb: offsets[k] as number }])),
  };
}
