import { levenbergMarquardt } from 'ml-levenberg-marquardt';

/**
 * Small numeric helpers of the calibration fits: least squares with parameter covariance, the
 * Levenberg-Marquardt wrapper (ml-levenberg-marquardt does the optimisation; the covariance comes
 * from the Jacobian at its solution), binomial intervals and the two-sample KS statistic.
 */

/** A fitted parameter: estimate, standard error and 95% interval (normal approximation). */
export interface ParamEstimate {
  readonly value: number;
  readonly se: number;
  readonly ci95: readonly [number, number];
}

export interface GoodnessOfFit {
  /** Observations and free parameters. */
  readonly n: number;
  readonly p: number;
  /** Weighted residual sum of squares (chi-square when weights are 1/variance). */
  readonly chi2: number;
  readonly reducedChi2: number;
  /** Unweighted coefficient of determination. */
  readonly r2: number;
  /** Akaike information criterion from the weighted residuals (lower is better). */
  readonly aic: number;
}

export function estimate(value: number, se: number): ParamEstimate {
  return { value, se, ci95: [value - 1.96 * se, value + 1.96 * se] };
}

/** Inverse of a small symmetric positive-definite matrix (Gauss-Jordan with pivoting); undefined when singular. */
export function invert(m: readonly number[][]): number[][] | undefined {
  const n = m.length;
  const a = m.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  const scale = Math.max(...m.map((row, i) => Math.abs(row[i] as number)), 1e-300);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (Math.abs(a[pivot]![col]!) < 1e-13 * scale) return undefined;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const row = a[col]!;
    const d = row[col]!;
    for (let j = 0; j < 2 * n; j++) row[j] = row[j]! / d;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]!;
      if (f === 0) continue;
      const target = a[r]!;
      for (let j = 0; j < 2 * n; j++) target[j] = target[j]! - f * row[j]!;
    }
  }
  return a.map((row) => row.slice(n));
}

function goodness(y: ArrayLike<number>, fitted: ArrayLike<number>, w: ArrayLike<number>, p: number): GoodnessOfFit {
  const n = y.length;
  let chi2 = 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += y[i] as number;
  mean /= n;
  let ssTot = 0;
  let ssRes = 0;
  for (let i = 0; i < n; i++) {
    const r = (y[i] as number) - (fitted[i] as number);
    chi2 += (w[i] as number) * r * r;
    ssRes += r * r;
    ssTot += ((y[i] as number) - mean) ** 2;
  }
  const dof = Math.max(1, n - p);
  return { n, p, chi2, reducedChi2: chi2 / dof, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1, aic: n * Math.log(Math.max(chi2, 1e-300) / n) + 2 * p };
}

export interface LinearFit {
  readonly coefficients: number[];
  readonly se: number[];
  readonly covariance: number[][];
  readonly gof: GoodnessOfFit;
}

/**
 * Weighted linear least squares y ~ X b (X given column by column as functions of the row).
 * With `sigma: 'known'` (default; the weights are 1/variance) standard errors scale the covariance by
 * the reduced chi-square when it exceeds 1 (the weights understated the scatter), never below the
 * weights' own uncertainty. With `sigma: 'unknown'` (relative weights, e.g. all 1) the scatter is
 * estimated from the residuals: the covariance scales by the reduced chi-square either way.
 */
export function weightedLinear(
  rows: number,
  basis: ReadonlyArray<(i: number) => number>,
  y: ArrayLike<number>,
  w: ArrayLike<number>,
  options: { readonly sigma?: 'known' | 'unknown' } = {},
): LinearFit | undefined {
  const p = basis.length;
  const xtx = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const xty = new Array<number>(p).fill(0);
  const row = new Array<number>(p);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < p; j++) row[j] = (basis[j] as (i: number) => number)(i);
    const wi = w[i] as number;
    for (let j = 0; j < p; j++) {
      xty[j] = xty[j]! + wi * row[j]! * (y[i] as number);
      for (let k = 0; k < p; k++) xtx[j]![k] = xtx[j]![k]! + wi * row[j]! * row[k]!;
    }
  }
  const inv = invert(xtx);
  if (!inv) return undefined;
  const b = inv.map((r) => r.reduce((s, v, k) => s + v * xty[k]!, 0));
  const fitted = new Float64Array(rows);
  for (let i = 0; i < rows; i++) fitted[i] = basis.reduce((s, f, j) => s + f(i) * b[j]!, 0);
  const gof = goodness(y, fitted, w, p);
  const inflate = options.sigma === 'unknown' ? gof.reducedChi2 : Math.max(1, gof.reducedChi2);
  const covariance = inv.map((r) => r.map((v) => v * inflate));
  return { coefficients: b, se: covariance.map((r, j) => Math.sqrt(Math.max(0, r[j]!))), covariance, gof };
}

export interface NonlinearFit {
  readonly params: number[];
  readonly se: number[];
  readonly gof: GoodnessOfFit;
  readonly iterations: number;
  /** False when the Jacobian at the solution is singular: some parameter is not determined. */
  readonly determined: boolean;
}

/**
 * Weighted nonlinear least squares with ml-levenberg-marquardt. `model(params, i)` predicts
 * observation i (x is the observation index, so models can look up per-observation covariates).
 * Covariance from the central-difference Jacobian at the solution: s^2 (J'WJ)^-1.
 */
export function fitNonlinear(
  model: (params: readonly number[], i: number) => number,
  y: ArrayLike<number>,
  w: ArrayLike<number>,
  initial: readonly number[],
  bounds: { min?: readonly number[]; max?: readonly number[] } = {},
  maxIterations = 200,
): NonlinearFit {
  const n = y.length;
  const xs = Array.from({ length: n }, (_, i) => i);
  // Whitened problem (y and model scaled by sqrt(w), unit weights): the library's own weighting
  // enters its error and its step with different powers, so it is not used.
  const sw = Array.from({ length: n }, (_, i) => Math.sqrt(w[i] as number));
  const yw = Array.from({ length: n }, (_, i) => (y[i] as number) * (sw[i] as number));
  const result = levenbergMarquardt({ x: xs, y: yw }, (params: number[]) => (i: number) => model(params, i) * (sw[i] as number), {
    initialValues: [...initial],
    damping: 1e-2,
    maxIterations,
    errorTolerance: 1e-10,
    improvementThreshold: 1e-3,
    gradientDifference: initial.map((v) => Math.max(1e-6, Math.abs(v) * 1e-3)),
    centralDifference: true,
    ...(bounds.min ? { minValues: [...bounds.min] } : {}),
    ...(bounds.max ? { maxValues: [...bounds.max] } : {}),
  });
  const params = result.parameterValues;
  const p = params.length;
  const fitted = new Float64Array(n);
  for (let i = 0; i < n; i++) fitted[i] = model(params, i);
  const gof = goodness(y, fitted, w, p);
  const jtj = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  const jac = Array.from({ length: p }, () => new Float64Array(n));
  for (let j = 0; j < p; j++) {
    const h = Math.max(1e-8, Math.abs(params[j] as number) * 1e-5);
    const up = [...params];
    const down = [...params];
    up[j] = (up[j] as number) + h;
    down[j] = (down[j] as number) - h;
    for (let i = 0; i < n; i++) (jac[j] as Float64Array)[i] = (model(up, i) - model(down, i)) / (2 * h);
  }
  for (let j = 0; j < p; j++) {
    for (let k = j; k < p; k++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (w[i] as number) * (jac[j] as Float64Array)[i]! * (jac[k] as Float64Array)[i]!;
      jtj[j]![k] = s;
      jtj[k]![j] = s;
    }
  }
  const inv = invert(jtj);
  const inflate = Math.max(1, gof.reducedChi2);
  const se = inv ? inv.map((r, j) => Math.sqrt(Math.max(0, r[j]! * inflate))) : params.map(() => Number.POSITIVE_INFINITY);
  return { params, se, gof, iterations: result.iterations, determined: inv !== undefined };
}

/** Wilson score interval of a binomial proportion (95%). */
export function wilson(k: number, n: number): readonly [number, number] {
  if (n === 0) return [0, 1];
  const z = 1.96;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const c = p + (z * z) / (2 * n);
  const h = z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, (c - h) / d), Math.min(1, (c + h) / d)];
}

/** Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs. */
export function ksStatistic(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = Float64Array.from(a as ArrayLike<number>).sort();
  const y = Float64Array.from(b as ArrayLike<number>).sort();
  if (x.length === 0 || y.length === 0) return 1;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i] as number, y[j] as number);
    while (i < x.length && (x[i] as number) <= v) i++;
    while (j < y.length && (y[j] as number) <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** Mean and unbiased variance of the values at `idx`. */
export function meanVar(values: ArrayLike<number>, idx: ArrayLike<number>): { mean: number; variance: number; n: number } {
  const n = idx.length;
  let s = 0;
  for (let k = 0; k < n; k++) s += values[idx[k] as number] as number;
  const mean = n > 0 ? s / n : Number.NaN;
  let ss = 0;
  for (let k = 0; k < n; k++) ss += ((values[idx[k] as number] as number) - mean) ** 2;
  return { mean, variance: n > 1 ? ss / (n - 1) : Number.NaN, n };
}
