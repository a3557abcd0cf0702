import { parseNoiseProfile, type DriftModel, type NoiseProfile } from '../device/index.js';
import type { CalibrationDataset } from './dataset.js';
import {
  classifyCells,
  fitPolynomial,
  fitReadNoise,
  fitRelaxationMean,
  fitSpread,
  fitKnownCells,
  fitStuck,
  fitLevelBias,
  fitUnpulsed,
  levelsOf,
  relaxationObservations,
  spreadGroups,
  type FormFit,
  type Fitted,
  type KnownCellsFit,
  type PolynomialFit,
  type ReadNoiseFit,
  type RelaxationMeanObservation,
  type SpreadFit,
  type SpreadGroup,
  type StuckFit,
  type UnpulsedFit,
} from './fits.js';
import { fitMvm, type MvmFit } from './fit-mvm.js';
import { estimate, type ParamEstimate } from './stats.js';

/**
 * From a dataset to a noise profile: runs every fit, picks the drift form by fit quality, and
 * writes the profile (valid against NoiseProfileSchema) with provenance. Parameters the data
 * cannot determine keep the base profile's value and say so in provenance and in `fit.refused`.
 */

export interface CalibrationReport {
  readonly cells: { readonly total: number; readonly healthy: number; readonly unpulsed: number; readonly attempted: number; readonly failedInWindow: number };
  readonly levelsUs: readonly number[];
  readonly read: Fitted<ReadNoiseFit>;
  readonly stuck: Fitted<StuckFit>;
  /** Where this chip's stuck cells are (for the simulator to put them there). */
  readonly knownCells: Fitted<KnownCellsFit>;
  readonly relaxation: Fitted<{ chosen: 'log' | 'power-law'; choiceReason: string; mean: { log: FormFit; powerLaw: FormFit | { refused: string } }; spread: SpreadFit }>;
  readonly programming: Fitted<{
    perLevel: ReadonlyArray<{ targetUs: number; sigma: ParamEstimate; mean?: ParamEstimate }>;
    polynomial: PolynomialFit;
    /** Why per-level means are missing (then the profile keeps an unbiased error). */
    biasRefused?: string;
    /** Cells write-verify left alone, or why there is no such table. */
    unpulsed: Fitted<UnpulsedFit>;
  }>;
  readonly mvm: Fitted<MvmFit>;
  readonly observations: { readonly mean: readonly RelaxationMeanObservation[]; readonly spread: readonly SpreadGroup[] };
}

export interface CalibrationResult {
  readonly profile: NoiseProfile;
  readonly report: CalibrationReport;
}

export interface CalibrateOptions {
  /** Values for what cannot be fitted (and the profile's description). */
  readonly base: NoiseProfile;
  readonly name: string;
}

const fmt = (e: ParamEstimate, digits = 4): string => `${e.value.toPrecision(digits)} (95% CI ${e.ci95[0].toPrecision(3)}..${e.ci95[1].toPrecision(3)})`;

export function calibrate(d: CalibrationDataset, options: CalibrateOptions): CalibrationResult {
  const classes = classifyCells(d);
  const read = fitReadNoise(d, classes);
  const stuck = fitStuck(d, classes);
  const knownCells: Fitted<KnownCellsFit> = d.source.chipId ? fitKnownCells(d, classes) : { status: 'refused', reason: 'no single chip id (a family profile has no chip to map)' };
  const { levelOf, levelsUs } = levelsOf(d, classes.healthy);
  const meanObs = relaxationObservations(d, classes.healthy);
  const mean = fitRelaxationMean(meanObs);
  const groups = spreadGroups(d, classes.healthy, levelOf, levelsUs.length);
  let relaxation: CalibrationReport['relaxation'];
  let programming: CalibrationReport['programming'];
  if (mean.status === 'refused') {
    relaxation = mean;
    programming = { status: 'refused', reason: `needs the relaxation fit: ${mean.reason}` };
  } else {
    const t0Of = (f: FormFit | { refused: string }): number => ('refused' in f ? Number.NaN : (f.params.t0S?.value ?? f.fixed.t0S?.value ?? 1));
    const spread = fitSpread(groups, levelsUs, read, t0Of(mean.log), t0Of(mean.powerLaw));
    if (spread.status === 'refused') {
      relaxation = spread;
      programming = { status: 'refused', reason: `needs the spread fit: ${spread.reason}` };
    } else {
      const aicLog = mean.log.gof.aic + spread.log.gof.aic;
      const pow = 'refused' in mean.powerLaw || 'refused' in spread.powerLaw ? undefined : mean.powerLaw.gof.aic + spread.powerLaw.gof.aic;
      const chosen = pow !== undefined && pow < aicLog ? 'power-law' : 'log';
      const choiceReason =
        pow === undefined
          ? 'power-law form could not be fitted'
          : `AIC (mean + spread fits): log ${aicLog.toFixed(1)}, power-law ${pow.toFixed(1)}; lower wins`;
      relaxation = { status: 'fitted', chosen, choiceReason, mean, spread };
      const perLevel =
        chosen === 'power-law' && !('refused' in spread.powerLaw)
          ? levelsUs.map((t, l) => ({ targetUs: t, sigma: (spread.powerLaw as FormFit).params[`sigma${l}`] as ParamEstimate }))
          : spread.sigmaByLevel;
      const poly = fitPolynomial(perLevel, d.gMaxUs);
      // Per-level bias, after the chosen form's mean relaxation at each group's age.
      const relaxationAt = (ageS: number, targetUs: number): number => {
        if (chosen === 'log') {
          const m = mean.log;
          return (m.params.meanUsPerLn as ParamEstimate).value * Math.log1p(ageS / t0Of(m));
        }
        const m = mean.powerLaw as FormFit;
        return targetUs * (Math.pow(1 + ageS / t0Of(m), -(m.params.nuMean as ParamEstimate).value) - 1);
      };
      const bias = fitLevelBias(groups, levelsUs.length, relaxationAt);
      const withBias = bias.status === 'fitted' ? perLevel.map((p, l) => ({ ...p, mean: bias.perLevel[l] as ParamEstimate })) : perLevel;
      const unpulsed = fitUnpulsed(d, levelsUs, (ageS) => relaxationAt(ageS, d.gMinUs));
      programming =
        poly.status === 'refused' ? poly : { status: 'fitted', perLevel: withBias, polynomial: poly, unpulsed, ...(bias.status === 'refused' ? { biasRefused: bias.reason } : {}) };
    }
  }
  const mvm: Fitted<MvmFit> = d.mvm && d.mvm.length > 0 ? fitMvm(d.mvm) : { status: 'refused', reason: 'no MVM calibration patterns in the data (campaign MVM probes are not recorded per vector; run the calibration plan with mvmVectors)' };
  const report: CalibrationReport = {
    cells: { total: d.targetUs.length, healthy: classes.healthy.length, unpulsed: classes.unpulsed, attempted: classes.attempted, failedInWindow: classes.failedInWindow },
    levelsUs,
    read,
    stuck,
    knownCells,
    relaxation,
    programming,
    mvm,
    observations: { mean: meanObs, spread: groups },
  };
  return { profile: buildProfile(d, report, options), report };
}

function buildProfile(d: CalibrationDataset, r: CalibrationReport, o: CalibrateOptions): NoiseProfile {
  const base = o.base;
  const from = `${d.source.description}; chip ${d.source.chipId ?? 'unknown'}, firmware ${d.source.firmwareName ?? ''} ${d.source.firmware ?? 'unknown'}`.trim();
  const kept = (section: string, reason: string): string => `not fitted (${reason}); kept from ${base.name} (${base.provenance[section] ?? 'no provenance'})`;
  const provenance: Record<string, string> = {};
  const refused: Record<string, string> = {};

  let programming = base.programming;
  if (r.programming.status === 'fitted') {
    const p = r.programming.polynomial;
    const levels = r.programming.perLevel;
    const biased = levels.every((l) => l.mean !== undefined);
    const unpulsed = r.programming.unpulsed;
    programming = {
      coefficientsUs: p.coefficients.map((c) => c.value),
      referenceUs: p.referenceUs,
      scale: 1,
      // Verified cells end within the verify tolerance: the error right after programming is bounded.
      ...(d.toleranceUs !== null && d.toleranceUs > 0 ? { acceptanceUs: d.toleranceUs } : {}),
      ...(biased ? { levels: { targetsUs: levels.map((l) => l.targetUs), meanUs: levels.map((l) => (l.mean as ParamEstimate).value), sigmaUs: levels.map((l) => Math.max(0, l.sigma.value)) } } : {}),
      ...(unpulsed.status === 'fitted'
        ? { unpulsed: { targetsUs: unpulsed.targetsUs, fraction: unpulsed.fraction, meanUs: unpulsed.meanUs, sigmaUs: unpulsed.sigmaUs.map((v) => Math.max(0, v)), ageS: unpulsed.ageS.value } }
        : {}),
    };
    provenance.programming = `fitted from ${from}: per-level sigma after write-verify (${levels.length} levels, read noise removed), polynomial of degree ${p.degree} in x = g / ${p.referenceUs} uS chosen by AICc; reduced chi2 ${p.gof.reducedChi2.toFixed(2)}; ${
      biased
        ? `per-level mean error (bias, ${levels.map((l) => (l.mean as ParamEstimate).value.toFixed(2)).join(', ')} uS) and sigma in programming.levels, which the simulator interpolates`
        : `no per-level bias (${r.programming.biasRefused ?? 'not fitted'}): unbiased error`
    }; ${
      unpulsed.status === 'fitted'
        ? `cells write-verify left alone (already within tolerance): ${unpulsed.cells}, fractions ${unpulsed.targetsUs.map((t, k) => `${(100 * (unpulsed.fraction[k] as number)).toFixed(1)}% at ${t.toFixed(2)} uS`).join(', ')}; their state ${
            'reason' in unpulsed.ageS ? `taken as ${unpulsed.ageS.value.toPrecision(3)} s old (${unpulsed.ageS.reason})` : `${fmt(unpulsed.ageS, 3)} s old at programming`
          } (programming.unpulsed)`
        : `every cell taken as freshly programmed (${unpulsed.reason})`
    }${d.toleranceUs !== null && d.toleranceUs > 0 ? `; errors right after programming bounded by the verify tolerance, +-${d.toleranceUs} uS (programming.acceptanceUs)` : ''}`;
  } else {
    refused.programming = r.programming.reason;
    provenance.programming = kept('programming', r.programming.reason);
  }

  let drift: DriftModel = base.drift;
  if (r.relaxation.status === 'fitted') {
    const { chosen, mean, spread } = r.relaxation;
    if (chosen === 'log') {
      const m = mean.log;
      const s = spread.log;
      drift = {
        form: 'log',
        // The fits' model: ln(1 + t/t0) and a spread onset 1 - exp(-t/t0).
        onset: 'smooth',
        t0S: m.params.t0S?.value ?? m.fixed.t0S?.value ?? 1,
        meanUsPerLn: (m.params.meanUsPerLn as ParamEstimate).value,
        spread0Us: Math.max(0, s.params.spread0Us?.value ?? 0),
        spreadUsPerLn: Math.max(0, (s.params.spreadUsPerLn as ParamEstimate).value),
      };
    } else {
      const m = mean.powerLaw as FormFit;
      const s = spread.powerLaw as FormFit;
      drift = { form: 'power-law', t0S: m.params.t0S?.value ?? m.fixed.t0S?.value ?? 1, nuMean: (m.params.nuMean as ParamEstimate).value, nuStd: Math.max(0, (s.params.nuStd as ParamEstimate).value) };
    }
    const fixedNotes = Object.entries({ ...(chosen === 'log' ? mean.log.fixed : (mean.powerLaw as FormFit).fixed), ...(chosen === 'log' ? spread.log.fixed : {}) }).map(([k, v]) => `${k} fixed at ${v.value}: ${v.reason}`);
    provenance.drift = `fitted from ${from}: ${chosen} form (${r.relaxation.choiceReason}), ${r.observations.mean.length} mean and ${r.observations.spread.length} spread observations${fixedNotes.length ? `; ${fixedNotes.join('; ')}` : ''}`;
  } else {
    refused.drift = r.relaxation.reason;
    provenance.drift = kept('drift', r.relaxation.reason);
  }

  let read = base.read;
  if (r.read.status === 'fitted') {
    read = { form: 'relative', relative: Math.max(0, r.read.relativeEquivalent) };
    provenance.read = `fitted from ${from}: single-read sigma = ${fmt(r.read.rel)} * G + ${fmt(r.read.absUs)} uS over ${r.read.cells} cells x ${r.read.repeats} reads; stored as the relative-only equivalent over the programmed targets (the profile has no absolute term)`;
  } else {
    refused.read = r.read.reason;
    provenance.read = kept('read', r.read.reason);
  }

  let stuck: NoiseProfile['stuck'] = { lowRate: base.stuck.lowRate, highRate: base.stuck.highRate };
  if (r.stuck.status === 'fitted') {
    const k = r.knownCells;
    const cells =
      k.status === 'fitted' && d.source.chipId
        ? { chipId: d.source.chipId, rows: k.rows, cols: k.cols, arrays: k.arrays.map((a) => ({ array: a.array, tested: Buffer.from(a.tested).toString('base64'), stuck: a.stuck })) }
        : undefined;
    stuck = { lowRate: r.stuck.lowRate.value, highRate: r.stuck.highRate.value, ...(cells ? { cells } : {}) };
    provenance.stuck = `fitted from ${from}: ${r.stuck.lowRate.count} stuck-low and ${r.stuck.highRate.count} stuck-high of ${r.stuck.attempted} cells (not verified, verify read outside the window); Wilson 95% intervals low ${r.stuck.lowRate.ci95.map((v) => v.toExponential(2)).join('..')}, high ${r.stuck.highRate.ci95.map((v) => v.toExponential(2)).join('..')}${
      cells && k.status === 'fitted' ? `; where chip ${cells.chipId}'s stuck cells are (${k.stuck} of ${k.tested} programmed cells on arrays ${k.arrays.map((a) => a.array).join(', ')}) is in stuck.cells, and the simulator puts them there on that chip` : ''
    }`;
  } else {
    refused.stuck = r.stuck.reason;
    provenance.stuck = kept('stuck', r.stuck.reason);
  }

  let adc = base.adc;
  let irDrop = base.irDrop;
  if (r.mvm.status === 'fitted') {
    const trims = r.mvm.trims;
    const arrays = [...new Set(trims.map((t) => t.array))].sort((a, b) => a - b);
    const width = Math.max(0, ...trims.map((t) => t.col + 1));
    const columns =
      d.source.chipId && trims.length > 0
        ? {
            chipId: d.source.chipId,
            arrays: arrays.map((array) => {
              const gain: Array<number | null> = new Array<number | null>(width).fill(null);
              const offsetLsb: Array<number | null> = new Array<number | null>(width).fill(null);
              for (const t of trims) {
                if (t.array !== array) continue;
                gain[t.col] = t.gain;
                offsetLsb[t.col] = t.offsetLsb;
              }
              return { array, gain, offsetLsb };
            }),
          }
        : undefined;
    adc = { noiseFullScale: r.mvm.noiseFullScale.value, gainStd: r.mvm.gainStd.value, offsetStdLsb: r.mvm.offsetStdLsb.value, ...(columns ? { columns } : {}) };
    irDrop = { factor: Math.min(1, Math.max(0, r.mvm.irDropFactor.value)) };
    provenance.adc = `fitted from ${from}: per-column gain and offset from ${r.mvm.vectors} MVM patterns on ${r.mvm.columns} columns (gain spread ${fmt(r.mvm.gainStd)}, offset spread ${fmt(r.mvm.offsetStdLsb)} LSB)${
      columns ? `; the measured trims of chip ${columns.chipId} (arrays ${arrays.join(', ')}) are in adc.columns and replace the draws on that chip` : ''
    }`;
    provenance.irDrop = `fitted from ${from}: shared quadratic compression of column currents, factor ${fmt(r.mvm.irDropFactor)} relative to rows * vRead * gMax`;
  } else {
    refused.adc = r.mvm.reason;
    refused.irDrop = r.mvm.reason;
    provenance.adc = kept('adc', r.mvm.reason);
    provenance.irDrop = kept('irDrop', r.mvm.reason);
  }

  return parseNoiseProfile(
    {
      name: o.name,
      description: `Fitted by cimbench calibrate from ${d.source.description} (chip ${d.source.chipId ?? 'unknown'}).`,
      programming,
      drift,
      read,
      stuck,
      adc,
      irDrop,
      provenance,
      fit: {
        runs: d.source.runs,
        chipId: d.source.chipId,
        firmware: d.source.firmware,
        firmwareName: d.source.firmwareName,
        dates: d.source.dates,
        fittedAt: new Date().toISOString(),
        base: base.name,
        refused,
        statistics: summarise(r),
      },
    },
    'fitted noise profile',
  );
}

/** The report without per-observation arrays: parameters, intervals, goodness of fit, refusals. */
export function summarise(r: CalibrationReport): Record<string, unknown> {
  return {
    cells: r.cells,
    levelsUs: r.levelsUs,
    read: r.read.status === 'fitted' ? { rel: r.read.rel, absUs: r.read.absUs, relativeEquivalent: r.read.relativeEquivalent, gof: r.read.gof, cells: r.read.cells, repeats: r.read.repeats } : r.read,
    stuck: r.stuck,
    knownCells: r.knownCells.status === 'fitted' ? { tested: r.knownCells.tested, stuck: r.knownCells.stuck, arrays: r.knownCells.arrays.map((a) => a.array) } : r.knownCells,
    relaxation: r.relaxation.status === 'fitted' ? { chosen: r.relaxation.chosen, choiceReason: r.relaxation.choiceReason, mean: r.relaxation.mean, spread: { log: r.relaxation.spread.log, powerLaw: 'refused' in r.relaxation.spread.powerLaw ? r.relaxation.spread.powerLaw : { nuStd: r.relaxation.spread.powerLaw.params.nuStd, gof: r.relaxation.spread.powerLaw.gof } } } : r.relaxation,
    programming: r.programming,
    mvm: r.mvm.status === 'fitted' ? { ...r.mvm, columnsGain: undefined, columnsOffsetLsb: undefined, trims: undefined } : r.mvm,
  };
}

export { estimate };
