import type { NoiseProfile } from '../device/index.js';
import type { CalibrationReport, CalibrationResult } from './calibrate.js';
import type { CalibrationDataset } from './dataset.js';
import { classifyCells, offsetFor, readSigmaAt, type FormFit } from './fits.js';
import type { GoodnessOfFit, ParamEstimate } from './stats.js';
import { barChart, escapeXml, histogram, logGrid, normalCurve, num, plot, type Point, type Series } from './svg.js';

/**
 * The calibration report: one self-contained HTML file (inline SVG, no scripts, no network) with
 * measured vs fitted programming-error distributions per level, per-level sigma and bias, drift
 * curves (measured mean error and spread against the fitted log and power-law forms), read noise,
 * stuck rates, ADC gain/offset spreads, and every fitted parameter with its interval and goodness
 * of fit. Pure: dataset and fit in, HTML out (`cimbench calibrate --report <dir>` writes it).
 */

const MEASURED = '#1f77b4';
const LOG = '#d62728';
const POWER = '#2ca02c';
const FIT = '#ff7f0e';

type Relaxation = Extract<CalibrationReport['relaxation'], { status: 'fitted' }>;

const t0Of = (f: FormFit): number => f.params.t0S?.value ?? f.fixed.t0S?.value ?? 1;

/** Mean relaxation of a fitted form at an age, with the form's programming offset (what the observations are). */
function meanCurve(f: FormFit, form: 'log' | 'power-law', ageS: number, targetUs: number): number {
  const offset = f.params.offsetUs?.value ?? 0;
  if (form === 'log') return offset + (f.params.meanUsPerLn?.value ?? 0) * Math.log1p(ageS / t0Of(f));
  return offset + targetUs * (Math.pow(1 + ageS / t0Of(f), -(f.params.nuMean?.value ?? 0)) - 1);
}

/** Spread s(t) of the relaxation of the chosen form (log: b0 (1 - e^-t/t0) + b1 ln(1 + t/t0)). */
function spreadAt(r: Relaxation, form: 'log' | 'power-law', ageS: number, targetUs: number): number {
  if (form === 'log') {
    const t0 = t0Of(r.mean.log);
    const s = r.spread.log;
    return (s.params.spread0Us?.value ?? s.fixed.spread0Us?.value ?? 0) * -Math.expm1(-ageS / t0) + (s.params.spreadUsPerLn?.value ?? 0) * Math.log1p(ageS / t0);
  }
  if ('refused' in r.mean.powerLaw || 'refused' in r.spread.powerLaw) return Number.NaN;
  return targetUs * (r.spread.powerLaw.params.nuStd?.value ?? 0) * Math.log1p(ageS / t0Of(r.mean.powerLaw));
}

function section(title: string, body: string): string {
  return `<section><h2>${escapeXml(title)}</h2>${body}</section>`;
}

function refused(what: string, reason: string): string {
  return `<p class="refused">${escapeXml(what)} not fitted: ${escapeXml(reason)}</p>`;
}

/** Per level: histogram of (earliest read-back - target) against the fitted normal at that age. */
function programmingHistograms(d: CalibrationDataset, r: CalibrationReport, healthy: Uint32Array): string {
  if (r.programming.status !== 'fitted' || r.relaxation.status !== 'fitted') return '';
  const set = d.readbacks[0];
  if (!set) return '';
  const relax = r.relaxation;
  const form = relax.chosen;
  const chosenMean = form === 'log' ? relax.mean.log : (relax.mean.powerLaw as FormFit);
  const plots: string[] = [];
  const levels = r.programming.perLevel;
  levels.forEach((lv, l) => {
    const errs: number[] = [];
    let ageSum = 0;
    const lo = l > 0 ? ((levels[l - 1] as { targetUs: number }).targetUs + lv.targetUs) / 2 : Number.NEGATIVE_INFINITY;
    const hi = l < levels.length - 1 ? ((levels[l + 1] as { targetUs: number }).targetUs + lv.targetUs) / 2 : Number.POSITIVE_INFINITY;
    for (const i of healthy) {
      const t = d.targetUs[i] as number;
      const v = set.valuesUs[i] as number;
      if (t < lo || t >= hi || !Number.isFinite(v)) continue;
      errs.push(v - t);
      ageSum += set.ageS[i] as number;
    }
    if (errs.length < 10) return;
    const age = ageSum / errs.length;
    // Fitted: programming bias + mean relaxation at this age; sigma from programming, relaxation spread and read noise.
    const bias = lv.mean?.value ?? (chosenMean.params.offsetUs?.value ?? 0);
    const mean = bias + meanCurve(chosenMean, form, age, lv.targetUs) - (chosenMean.params.offsetUs?.value ?? 0);
    const sigma = Math.sqrt(lv.sigma.value ** 2 + spreadAt(relax, form, age, lv.targetUs) ** 2 + readSigmaAt(r.read, lv.targetUs) ** 2 / set.averages);
    const span = Math.max(4 * sigma, ...errs.map((e) => Math.abs(e - mean)).sort((a, b) => a - b).slice(Math.floor(errs.length * 0.99)));
    const h = histogram(errs, mean - span, mean + span, 30);
    const series: Series[] = [
      { kind: 'histogram', name: `measured (${errs.length} cells)`, color: MEASURED, edges: h.edges, heights: h.heights },
      { kind: 'curve', name: `fitted N(${num(mean, 3)}, ${num(sigma, 3)})`, color: FIT, points: normalCurve(mean, sigma, mean - span, mean + span) },
    ];
    plots.push(
      plot({
        id: `programming-level-${l}`,
        title: `level ${l}: target ${num(lv.targetUs, 4)} uS, age ${num(age, 3)} s`,
        xLabel: 'read-back - target (uS)',
        yLabel: 'density (1/uS)',
        series,
        width: 360,
        height: 240,
      }),
    );
  });
  return `<div class="grid">${plots.join('')}</div>`;
}

function programmingSection(d: CalibrationDataset, r: CalibrationReport, healthy: Uint32Array): string {
  if (r.programming.status !== 'fitted') return section('Programming error after write-verify', refused('programming noise', r.programming.reason));
  const p = r.programming;
  const sigmaPoints: Point[] = p.perLevel.map((l) => ({ x: l.targetUs, y: l.sigma.value, err: 1.96 * l.sigma.se }));
  const poly = p.polynomial;
  const grid = Array.from({ length: 81 }, (_, i) => d.gMinUs + ((d.gMaxUs - d.gMinUs) * i) / 80);
  const polyCurve = grid.map((g) => {
    const x = Math.min(1, Math.max(0, g / poly.referenceUs));
    return { x: g, y: poly.coefficients.reduce((s, c, k) => s + c.value * x ** k, 0) };
  });
  const sigmaPlot = plot({
    id: 'programming-sigma',
    title: 'programming sigma per target level',
    xLabel: 'target conductance (uS)',
    yLabel: 'sigma (uS)',
    series: [
      { kind: 'points', name: 'per-level fit (95% CI)', color: MEASURED, points: sigmaPoints },
      { kind: 'curve', name: `polynomial, degree ${poly.degree}`, color: FIT, points: polyCurve },
    ],
  });
  const biased = p.perLevel.every((l) => l.mean !== undefined);
  const biasPlot = biased
    ? plot({
        id: 'programming-bias',
        title: 'programming bias (mean error) per target level',
        xLabel: 'target conductance (uS)',
        yLabel: 'mean error (uS)',
        series: [
          { kind: 'points', name: 'per-level fit (95% CI)', color: MEASURED, points: p.perLevel.map((l) => ({ x: l.targetUs, y: (l.mean as ParamEstimate).value, err: 1.96 * (l.mean as ParamEstimate).se })) },
          { kind: 'curve', name: 'interpolated (simulator)', color: FIT, points: p.perLevel.map((l) => ({ x: l.targetUs, y: (l.mean as ParamEstimate).value })) },
        ],
      })
    : refused('per-level bias', p.biasRefused ?? 'no per-level means');
  return section(
    'Programming error after write-verify',
    `<p>Measured: the earliest read-back of each healthy, pulsed cell minus its target. Fitted: per-level bias plus the chosen relaxation form's mean at that age, sigma combining programming noise, relaxation spread and read noise.</p>${programmingHistograms(d, r, healthy)}<div class="grid">${sigmaPlot}${biasPlot}</div>`,
  );
}

function driftSection(r: CalibrationReport): string {
  if (r.relaxation.status !== 'fitted') return section('Relaxation (drift)', refused('relaxation', r.relaxation.reason));
  const relax = r.relaxation;
  const obs = r.observations.mean;
  const ages = obs.map((o) => o.ageS).filter((a) => a > 0);
  const grid = logGrid(Math.min(...ages) / 1.5, Math.max(...ages) * 1.5);
  const tBar = obs.reduce((s, o) => s + o.meanTargetUs, 0) / Math.max(1, obs.length);
  const series: Series[] = [
    {
      kind: 'points',
      // Sources after the first are moved by the difference of their fitted programming offsets, so all line up with the curves.
      name: `measured mean error (+- 1.96 se)${obs.some((o) => o.part !== 0) ? ', aligned to source 1' : ''}`,
      color: MEASURED,
      points: obs.map((o) => {
        const chosen = relax.chosen === 'log' || 'refused' in relax.mean.powerLaw ? relax.mean.log : relax.mean.powerLaw;
        return { x: o.ageS, y: o.meanErrUs - offsetFor(chosen, o.part) + offsetFor(chosen, 0), err: 1.96 * o.seUs };
      }),
    },
    { kind: 'curve', name: `log form${relax.chosen === 'log' ? ' (chosen)' : ''}`, color: LOG, points: grid.map((t) => ({ x: t, y: meanCurve(relax.mean.log, 'log', t, tBar) })) },
  ];
  if (!('refused' in relax.mean.powerLaw)) {
    const pl = relax.mean.powerLaw;
    series.push({ kind: 'curve', name: `power-law form${relax.chosen === 'power-law' ? ' (chosen)' : ''}`, color: POWER, dashed: true, points: grid.map((t) => ({ x: t, y: meanCurve(pl, 'power-law', t, tBar) })) });
  }
  const meanPlot = plot({ id: 'drift-mean', title: 'mean conductance error vs age', xLabel: 'age since programming (s, log)', yLabel: 'mean error (uS)', xLog: true, series });
  // Spread: a low, a middle and a high level, measured std of the error against both forms' model.
  const levels = r.programming.status === 'fitted' ? r.programming.perLevel : [];
  const picks = [...new Set([1, Math.floor(levels.length / 2), levels.length - 2].filter((l) => l >= 0 && l < levels.length))];
  const colors = ['#1f77b4', '#9467bd', '#8c564b'];
  const spreadSeries: Series[] = [];
  picks.forEach((l, k) => {
    const lv = levels[l];
    if (!lv) return;
    const groups = r.observations.spread.filter((g) => g.level === l && g.ageS > 0);
    if (groups.length === 0) return;
    const read = (g: number): number => readSigmaAt(r.read, g) ** 2 / (groups[0]?.averages ?? 1);
    spreadSeries.push({ kind: 'points', name: `level ${l} measured std`, color: colors[k % colors.length] as string, points: groups.map((g) => ({ x: g.ageS, y: Math.sqrt(g.variance) })) });
    spreadSeries.push({ kind: 'curve', name: `level ${l} log form`, color: colors[k % colors.length] as string, points: grid.map((t) => ({ x: t, y: Math.sqrt(lv.sigma.value ** 2 + spreadAt(relax, 'log', t, lv.targetUs) ** 2 + read(lv.targetUs)) })) });
    const pw = spreadAt(relax, 'power-law', 1, lv.targetUs);
    if (Number.isFinite(pw)) {
      spreadSeries.push({ kind: 'curve', name: `level ${l} power-law`, color: colors[k % colors.length] as string, dashed: true, points: grid.map((t) => ({ x: t, y: Math.sqrt(lv.sigma.value ** 2 + spreadAt(relax, 'power-law', t, lv.targetUs) ** 2 + read(lv.targetUs)) })) });
    }
  });
  const spreadPlot = spreadSeries.length > 0 ? plot({ id: 'drift-spread', title: 'spread of the conductance error vs age', xLabel: 'age since programming (s, log)', yLabel: 'std of error (uS)', xLog: true, series: spreadSeries }) : '';
  return section('Relaxation (drift)', `<p>Chosen form: <b>${escapeXml(relax.chosen)}</b> (${escapeXml(relax.choiceReason)}).</p><div class="grid">${meanPlot}${spreadPlot}</div>`);
}

function readSection(r: CalibrationReport): string {
  if (r.read.status !== 'fitted') return section('Read noise', refused('read noise', r.read.reason));
  const f = r.read;
  const gs = f.bins.map((b) => b.gUs);
  const lo = Math.min(...gs);
  const hi = Math.max(...gs);
  const line = Array.from({ length: 21 }, (_, i) => {
    const g = lo + ((hi - lo) * i) / 20;
    return { x: g, y: f.rel.value * g + f.absUs.value };
  });
  const p = plot({
    id: 'read-noise',
    title: 'single-read noise vs conductance',
    xLabel: 'conductance (uS)',
    yLabel: 'read sigma (uS)',
    series: [
      { kind: 'points', name: `measured (${f.cells} cells x ${f.repeats} reads)`, color: MEASURED, points: f.bins.map((b) => ({ x: b.gUs, y: b.sigmaUs, err: 1.96 * b.seUs })) },
      { kind: 'curve', name: `fit ${num(f.rel.value, 3)} G + ${num(f.absUs.value, 3)} uS`, color: FIT, points: line },
    ],
  });
  return section('Read noise', `<p>Profile (relative form): ${num(f.relativeEquivalent, 4)} x G, the RMS-equivalent over the programmed targets.</p>${p}`);
}

function stuckSection(r: CalibrationReport): string {
  if (r.stuck.status !== 'fitted') return section('Stuck cells', refused('stuck rates', r.stuck.reason));
  const s = r.stuck;
  const bars = barChart({
    id: 'stuck-rates',
    title: `stuck cells of ${s.attempted} attempted (Wilson 95%)`,
    yLabel: 'fraction of cells',
    bars: [
      { label: `stuck low (${s.lowRate.count})`, value: s.lowRate.value, lo: s.lowRate.ci95[0], hi: s.lowRate.ci95[1], color: MEASURED },
      { label: `stuck high (${s.highRate.count})`, value: s.highRate.value, lo: s.highRate.ci95[0], hi: s.highRate.ci95[1], color: LOG },
    ],
  });
  const k = r.knownCells;
  const where =
    k.status === 'fitted'
      ? `<p>Where they are (stuck.cells, used when simulating this chip): ${k.stuck} stuck of ${k.tested} programmed cells.</p><table><tr><th>array</th><th>row</th><th>col</th><th>measured uS</th></tr>${k.arrays
          .flatMap((a) => a.stuck.map(([row, col, g]) => `<tr><td>${a.array}</td><td>${row}</td><td>${col}</td><td>${num(g, 3)}</td></tr>`))
          .join('')}</table>`
      : `<p>No map of where they are: ${escapeXml(k.reason)}.</p>`;
  return section('Stuck cells', `${bars}${where}`);
}

function adcSection(r: CalibrationReport, profile: NoiseProfile, adcBits: number): string {
  if (r.mvm.status !== 'fitted') return section('ADC gain/offset and IR drop', refused('ADC and IR drop', r.mvm.reason));
  const m = r.mvm;
  const gains = m.trims.length > 0 ? m.trims.map((t) => t.gain) : [...m.columnsGain];
  const offsets = m.trims.length > 0 ? m.trims.map((t) => t.offsetLsb) : [...m.columnsOffsetLsb];
  const gs = Math.max(4 * m.gainStd.value, 1e-4);
  const os = Math.max(4 * m.offsetStdLsb.value, 1e-3);
  const meanOffset = offsets.reduce((s, v) => s + v, 0) / Math.max(1, offsets.length);
  const hg = histogram(gains, 1 - gs, 1 + gs, 24);
  const ho = histogram(offsets, meanOffset - os, meanOffset + os, 24);
  const gainPlot = plot({
    id: 'adc-gain',
    title: `ADC column gain (relative), ${gains.length} columns`,
    xLabel: 'gain / mean gain',
    yLabel: 'density',
    series: [
      { kind: 'histogram', name: 'measured columns', color: MEASURED, edges: hg.edges, heights: hg.heights },
      { kind: 'curve', name: `fitted spread ${num(m.gainStd.value, 3)}`, color: FIT, points: normalCurve(1, m.gainStd.value, 1 - gs, 1 + gs) },
    ],
  });
  const offsetPlot = plot({
    id: 'adc-offset',
    title: `ADC column offset, ${offsets.length} columns`,
    xLabel: 'offset (LSB)',
    yLabel: 'density',
    series: [
      { kind: 'histogram', name: 'measured columns', color: MEASURED, edges: ho.edges, heights: ho.heights },
      { kind: 'curve', name: `fitted spread ${num(m.offsetStdLsb.value, 3)} LSB`, color: FIT, points: normalCurve(meanOffset, m.offsetStdLsb.value, meanOffset - os, meanOffset + os) },
    ],
  });
  const trims = profile.adc.columns ? `<p>The measured trims of chip ${escapeXml(profile.adc.columns.chipId)} are stored in the profile (adc.columns) and used when simulating that chip.</p>` : '';
  return section(
    'ADC gain/offset and IR drop',
    `<p>${m.vectors} MVM patterns; conversion noise ${num(m.noiseFullScale.value * 2 ** adcBits, 3)} LSB at ${adcBits} bits (residual ${num(m.residualLsb, 3)} LSB); IR-drop factor ${num(m.irDropFactor.value, 4)} (95% CI ${num(m.irDropFactor.ci95[0], 3)}..${num(m.irDropFactor.ci95[1], 3)}).</p>${trims}<div class="grid">${gainPlot}${offsetPlot}</div>`,
  );
}

function gofCells(g: GoodnessOfFit | undefined): string {
  if (!g) return '<td></td><td></td><td></td><td></td>';
  return `<td>${g.n}</td><td>${num(g.reducedChi2, 3)}</td><td>${num(g.r2, 4)}</td><td>${num(g.aic, 4)}</td>`;
}

/** Every fitted parameter: value, se, 95% CI, the fit's goodness of fit; refusals with reasons. */
function statisticsTable(r: CalibrationReport): string {
  const rows: Array<{ fit: string; name: string; e: ParamEstimate; gof?: GoodnessOfFit }> = [];
  const add = (fit: string, params: Record<string, ParamEstimate | undefined>, gof?: GoodnessOfFit): void => {
    for (const [name, e] of Object.entries(params)) if (e) rows.push({ fit, name, e, ...(gof ? { gof } : {}) });
  };
  const notes: string[] = [];
  if (r.read.status === 'fitted') add('read noise', { rel: r.read.rel, absUs: r.read.absUs }, r.read.gof);
  else notes.push(`read noise: ${r.read.reason}`);
  if (r.stuck.status === 'fitted') add('stuck', { lowRate: r.stuck.lowRate, highRate: r.stuck.highRate });
  else notes.push(`stuck: ${r.stuck.reason}`);
  if (r.relaxation.status === 'fitted') {
    const x = r.relaxation;
    add('relaxation mean, log', x.mean.log.params, x.mean.log.gof);
    if (!('refused' in x.mean.powerLaw)) add('relaxation mean, power-law', x.mean.powerLaw.params, x.mean.powerLaw.gof);
    add('relaxation spread, log', x.spread.log.params, x.spread.log.gof);
    if (!('refused' in x.spread.powerLaw)) add('relaxation spread, power-law', { nuStd: x.spread.powerLaw.params.nuStd }, x.spread.powerLaw.gof);
    for (const [k, v] of Object.entries({ ...x.mean.log.fixed, ...x.spread.log.fixed })) notes.push(`${k} fixed at ${v.value}: ${v.reason}`);
  } else notes.push(`relaxation: ${r.relaxation.reason}`);
  if (r.programming.status === 'fitted') {
    const p = r.programming;
    p.perLevel.forEach((l, i) => {
      rows.push({ fit: 'programming sigma', name: `level ${i} (${num(l.targetUs, 4)} uS)`, e: l.sigma });
      if (l.mean) rows.push({ fit: 'programming bias', name: `level ${i} (${num(l.targetUs, 4)} uS)`, e: l.mean });
    });
    p.polynomial.coefficients.forEach((c, k) => rows.push({ fit: 'programming polynomial', name: `c${k}`, e: c, gof: p.polynomial.gof }));
  } else notes.push(`programming: ${r.programming.reason}`);
  if (r.mvm.status === 'fitted') add('ADC / IR drop', { gainStd: r.mvm.gainStd, offsetStdLsb: r.mvm.offsetStdLsb, noiseFullScale: r.mvm.noiseFullScale, irDropFactor: r.mvm.irDropFactor });
  else notes.push(`ADC / IR drop: ${r.mvm.reason}`);
  const body = rows
    .map((x) => `<tr><td>${escapeXml(x.fit)}</td><td>${escapeXml(x.name)}</td><td>${num(x.e.value, 5)}</td><td>${num(x.e.se, 3)}</td><td>${num(x.e.ci95[0], 4)} .. ${num(x.e.ci95[1], 4)}</td>${gofCells(x.gof)}</tr>`)
    .join('');
  return section(
    'Fit statistics',
    `<table id="fit-statistics"><thead><tr><th>fit</th><th>parameter</th><th>value</th><th>se</th><th>95% CI</th><th>n</th><th>reduced chi2</th><th>R2</th><th>AIC</th></tr></thead><tbody>${body}</tbody></table>${
      notes.length ? `<ul class="notes">${notes.map((n) => `<li>${escapeXml(n)}</li>`).join('')}</ul>` : ''
    }`,
  );
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
.grid{display:flex;flex-wrap:wrap;gap:8px}.plot{border:1px solid #ddd}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,td:nth-child(2),th{text-align:left}.refused{color:#a00}.notes{font-size:12px}`;

export function renderCalibrationReport(d: CalibrationDataset, result: CalibrationResult): string {
  const r = result.report;
  const profile = result.profile;
  const healthy = classifyCells(d).healthy;
  const head = `<h1>Calibration report: ${escapeXml(profile.name)}</h1>
<p>${escapeXml(d.source.description)}; chip ${escapeXml(d.source.chipId ?? 'unknown')}, firmware ${escapeXml(`${d.source.firmwareName ?? ''} ${d.source.firmware ?? 'unknown'}`.trim())}; dates ${escapeXml(d.source.dates.join(', '))}.</p>
<p>${r.cells.total} cells: ${r.cells.healthy} healthy and pulsed (the fits use these), ${r.cells.unpulsed} already in the window (not pulsed), ${r.cells.failedInWindow} failed inside the window; window ${num(d.gMinUs)}..${num(d.gMaxUs)} uS; ${d.readbacks.length} read-backs.</p>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Calibration report: ${escapeXml(profile.name)}</title><style>${STYLE}</style></head>
<body>${head}${programmingSection(d, r, healthy)}${driftSection(r)}${readSection(r)}${stuckSection(r)}${adcSection(r, profile, d.mvm?.[0]?.adcBits ?? 8)}${statisticsTable(r)}
</body></html>
`;
}
