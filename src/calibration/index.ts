/**
 * Calibrating the simulator's noise model from what a chip showed: datasets (from campaign runs in
 * the store or from the calibration plan on a live link), the fits, and the fitted profile.
 */
export { loadRunDataset, mergeDatasets } from './dataset.js';
export type { CalibrationDataset, DatasetSource, MvmPatterns, ReadbackSet, RepeatedReads } from './dataset.js';
export { runCalibrationPlan } from './plan.js';
export type { CalibrationPlanOptions } from './plan.js';
export { calibrate, summarise } from './calibrate.js';
export type { CalibrateOptions, CalibrationReport, CalibrationResult } from './calibrate.js';
export { classifyCells, fitPolynomial, fitReadNoise, fitRelaxationMean, fitSpread, fitStuck, polynomialAt } from './fits.js';
export type { Fitted, FormFit, PolynomialFit, ReadNoiseFit, StuckFit } from './fits.js';
export { fitMvm } from './fit-mvm.js';
export type { MvmFit } from './fit-mvm.js';
export { ksStatistic, wilson } from './stats.js';
export type { GoodnessOfFit, ParamEstimate } from './stats.js';
export { fitLevelBias } from './fits.js';
export { renderCalibrationReport } from './report.js';
export { reportPlots, writeReportPlots } from './png.js';
export type { PlotFiles } from './png.js';
export { barChart, histogram, linearTicks, logTicks, normalCurve, plot } from './svg.js';
export type { Bar, PlotOptions, Point, Series } from './svg.js';
