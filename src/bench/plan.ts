import type { Campaign } from './campaign.js';

/**
 * Plans are plain data: the list of steps one run executes, in order. A plan can be built, listed
 * and compared without hardware; the engine (engine.ts) is the only thing that executes one.
 *
 *   connect      open the link, HELLO, check the device against the campaign (no pulses)
 *   map          compile the network onto arrays; journal every planned cell
 *   recover      (resume only) read back blocks whose PROGRAM was sent but never answered
 *   predict      noise-aware simulated accuracy and per-matrix statistics at every time point
 *   program      write-verify block by block: intent committed, command sent, result committed
 *   settle@i     advance the device clock (or wait) to time point i after programming
 *   readback@i   read every programmed cell back; per-matrix errors; per-array MVM probes
 *   measure@i    on-chip accuracy of the test set with INFER
 *   compare      discrepancy table: simulated vs measured per time point and layer
 */

export type StepKind = 'connect' | 'map' | 'recover' | 'predict' | 'program' | 'settle' | 'readback' | 'measure' | 'compare';

export interface Step {
  readonly kind: StepKind;
  /** Time point index for settle / readback / measure. */
  readonly point?: number;
}

export interface TimePoint {
  readonly index: number;
  /** Seconds after the end of programming. */
  readonly nominalS: number;
}

/**
 * full: the whole campaign. program: map, program, first read-back. measure: read back and
 * measure the chip as it is (programmed earlier). drift: the later time points on a chip
 * programmed earlier.
 */
export type PlanMode = 'full' | 'program' | 'measure' | 'drift';

export interface Plan {
  readonly mode: PlanMode;
  readonly points: readonly TimePoint[];
  readonly steps: readonly Step[];
}

/** Stable key of a step in a plan ("readback@2"); resume matches steps by it. */
export function stepKey(step: Step): string {
  return step.point === undefined ? step.kind : `${step.kind}@${step.point}`;
}

/** Steps that hold no results of their own and run again on every (re)start. */
export const ALWAYS_RUN: ReadonlySet<StepKind> = new Set(['connect', 'map', 'recover']);

export function timePoints(c: Campaign, mode: PlanMode): TimePoint[] {
  const all = [c.drift.initial, ...c.drift.points].map((nominalS, index) => ({ index, nominalS }));
  if (mode === 'program' || mode === 'measure') return all.slice(0, 1);
  if (mode === 'drift') return all.slice(1);
  return all;
}

export function buildPlan(c: Campaign, mode: PlanMode = 'full', options: { resume?: boolean } = {}): Plan {
  const points = timePoints(c, mode);
  const steps: Step[] = [{ kind: 'connect' }, { kind: 'map' }];
  if (options.resume) steps.push({ kind: 'recover' });
  if (mode !== 'program') steps.push({ kind: 'predict' });
  if (mode === 'full' || mode === 'program') steps.push({ kind: 'program' });
  for (const p of points) {
    steps.push({ kind: 'settle', point: p.index }, { kind: 'readback', point: p.index });
    if (mode !== 'program') steps.push({ kind: 'measure', point: p.index });
  }
  if (mode !== 'program') steps.push({ kind: 'compare' });
  return { mode, points, steps };
}
