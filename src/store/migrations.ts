/**
 * Numbered schema steps: MIGRATIONS[i] takes a database from user_version i to i + 1. Never edit a
 * released step; append a new one. Old database files are kept as test fixtures for upgrades.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: search runs
  `
  CREATE TABLE search_runs (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    status_reason TEXT,
    space TEXT NOT NULL,
    method TEXT NOT NULL,
    preset TEXT NOT NULL,
    budget TEXT NOT NULL,
    seed INTEGER NOT NULL,
    backend TEXT NOT NULL,
    hardware_profile TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    out_dir TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    stage_seconds_json TEXT NOT NULL DEFAULT '{}',
    metrics_json TEXT
  );
  CREATE INDEX search_runs_status ON search_runs (status);
  `,
];
