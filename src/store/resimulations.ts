import type { Db } from './db.js';

/**
 * Re-simulations of recorded runs with another noise profile (`cimbench compare`), stored beside
 * the run's own rows (which a completed run never changes): one resimulations row per (run,
 * profile, time basis, conductance source), its per-point accuracy and its discrepancy rows.
 * Recording the same (run, profile name and hash, time basis, conductance source) again replaces
 * the earlier re-simulation.
 */

export type ResimulationTimes = 'actual' | 'nominal';
/**
 * Where simulated conductances came from: the noise model's draws; the run's read-backs at every
 * point; or the first measured point's read-backs, carried to later points by the model.
 */
export type ResimulationConductances = 'model' | 'readback' | 'first-readback';
export type DiscrepancyScope = 'network' | 'layer' | 'array';

export interface ResimulationPoint {
  readonly point: number;
  readonly tS: number;
  readonly simulated: number;
  readonly simulatedStd: number;
  readonly perSeed: readonly number[];
  readonly measured: number | null;
  /** The run's own prediction (as recorded, at the nominal time). */
  readonly originalSimulated: number | null;
}

export interface ResimulationDiscrepancy {
  readonly point: number;
  readonly tS: number;
  readonly scope: DiscrepancyScope;
  /** Layer index (scope layer), else -1. */
  readonly layer: number;
  /** Array (scope array), else -1. */
  readonly array: number;
  readonly name: string;
  readonly metric: string;
  readonly simulated: number;
  readonly simulatedStd: number | null;
  readonly measured: number;
  /** measured - simulated, as in the run's own discrepancy table. */
  readonly difference: number;
  readonly originalSimulated: number | null;
  /** Two-sample KS statistic of simulated vs measured conductance errors (array conductance rows). */
  readonly ks: number | null;
}

export interface ResimulationInput {
  readonly runId: number;
  readonly noiseProfile: { readonly name: string; readonly sha256: string; readonly profile: unknown };
  readonly times: ResimulationTimes;
  readonly conductances: ResimulationConductances;
  readonly seeds: readonly number[];
  readonly images: number;
  readonly digitalAccuracy: number;
  readonly backend: string;
  readonly weightImageSha256: string;
  readonly hardwareSha256: string;
  readonly seconds: number;
  readonly points: readonly ResimulationPoint[];
  readonly discrepancies: readonly ResimulationDiscrepancy[];
}

export interface ResimulationRow {
  readonly id: number;
  readonly runId: number;
  readonly noiseProfile: string;
  readonly noiseSha256: string;
  readonly times: ResimulationTimes;
  readonly conductances: ResimulationConductances;
  readonly seeds: number[];
  readonly images: number;
  readonly digitalAccuracy: number;
  readonly backend: string;
  readonly createdAt: string;
  readonly seconds: number;
  readonly points: ResimulationPoint[];
  readonly discrepancies: ResimulationDiscrepancy[];
}

interface RawResimulation {
  id: number;
  run_id: number;
  noise_profile: string;
  noise_sha256: string;
  times: ResimulationTimes;
  conductances: ResimulationConductances;
  seeds_json: string;
  images: number;
  digital_accuracy: number;
  backend: string;
  created_at: string;
  seconds: number;
}

export class Resimulations {
  constructor(readonly db: Db) {}

  /** Writes one re-simulation (replacing an earlier one of the same run, profile, time basis and conductance source); returns its id. */
  record(r: ResimulationInput): number {
    const db = this.db;
    return db.transaction(() => {
      // ON DELETE CASCADE (foreign_keys is on) removes the old points and discrepancies.
      db.prepare('DELETE FROM resimulations WHERE run_id = ? AND noise_sha256 = ? AND noise_profile = ? AND times = ? AND conductances = ?').run(
        r.runId,
        r.noiseProfile.sha256,
        r.noiseProfile.name,
        r.times,
        r.conductances,
      );
      const id = Number(
        db
          .prepare(
            `INSERT INTO resimulations (run_id, noise_profile, noise_sha256, noise_json, times, conductances, seeds_json, images, digital_accuracy, backend,
               weight_image_sha256, hardware_sha256, created_at, seconds)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            r.runId,
            r.noiseProfile.name,
            r.noiseProfile.sha256,
            JSON.stringify(r.noiseProfile.profile),
            r.times,
            r.conductances,
            JSON.stringify(r.seeds),
            r.images,
            r.digitalAccuracy,
            r.backend,
            r.weightImageSha256,
            r.hardwareSha256,
            new Date().toISOString(),
            r.seconds,
          ).lastInsertRowid,
      );
      const p = db.prepare(
        'INSERT INTO resimulation_points (resimulation_id, point, t_s, simulated, simulated_std, per_seed_json, measured, original_simulated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      for (const x of r.points) p.run(id, x.point, x.tS, x.simulated, x.simulatedStd, JSON.stringify(x.perSeed), x.measured, x.originalSimulated);
      const d = db.prepare(
        `INSERT INTO resimulation_discrepancies (resimulation_id, point, t_s, scope, layer, array_no, name, metric, simulated, simulated_std, measured, difference, original_simulated, ks_statistic)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const x of r.discrepancies) d.run(id, x.point, x.tS, x.scope, x.layer, x.array, x.name, x.metric, x.simulated, x.simulatedStd, x.measured, x.difference, x.originalSimulated, x.ks);
      return id;
    })();
  }

  /** Re-simulations of a run, oldest first. */
  list(runId: number): ResimulationRow[] {
    const rows = this.db.prepare('SELECT * FROM resimulations WHERE run_id = ? ORDER BY id').all(runId) as RawResimulation[];
    return rows.map((r) => this.fromRaw(r));
  }

  get(id: number): ResimulationRow | undefined {
    const r = this.db.prepare('SELECT * FROM resimulations WHERE id = ?').get(id) as RawResimulation | undefined;
    return r ? this.fromRaw(r) : undefined;
  }

  private fromRaw(r: RawResimulation): ResimulationRow {
    const points = (
      this.db.prepare('SELECT * FROM resimulation_points WHERE resimulation_id = ? ORDER BY point').all(r.id) as Array<{
        point: number;
        t_s: number;
        simulated: number;
        simulated_std: number;
        per_seed_json: string;
        measured: number | null;
        original_simulated: number | null;
      }>
    ).map((p) => ({
      point: p.point,
      tS: p.t_s,
      simulated: p.simulated,
      simulatedStd: p.simulated_std,
      perSeed: JSON.parse(p.per_seed_json) as number[],
      measured: p.measured,
      originalSimulated: p.original_simulated,
    }));
    const discrepancies = (
      this.db.prepare('SELECT * FROM resimulation_discrepancies WHERE resimulation_id = ? ORDER BY point, scope, layer, array_no, metric').all(r.id) as Array<{
        point: number;
        t_s: number;
        scope: DiscrepancyScope;
        layer: number;
        array_no: number;
        name: string;
        metric: string;
        simulated: number;
        simulated_std: number | null;
        measured: number;
        difference: number;
        original_simulated: number | null;
        ks_statistic: number | null;
      }>
    ).map((d) => ({
      point: d.point,
      tS: d.t_s,
      scope: d.scope,
      layer: d.layer,
      array: d.array_no,
      name: d.name,
      metric: d.metric,
      simulated: d.simulated,
      simulatedStd: d.simulated_std,
      measured: d.measured,
      difference: d.difference,
      originalSimulated: d.original_simulated,
      ks: d.ks_statistic,
    }));
    return {
      id: r.id,
      runId: r.run_id,
      noiseProfile: r.noise_profile,
      noiseSha256: r.noise_sha256,
      times: r.times,
      conductances: r.conductances,
      seeds: JSON.parse(r.seeds_json) as number[],
      images: r.images,
      digitalAccuracy: r.digital_accuracy,
      backend: r.backend,
      createdAt: r.created_at,
      seconds: r.seconds,
      points,
      discrepancies,
    };
  }
}
