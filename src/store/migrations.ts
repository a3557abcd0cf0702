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
  // 2: bench campaigns and runs. Completed runs are immutable (triggers below). Planned cells live
  // in their PROGRAM block (targets blob) until they have an outcome; then each is one row of
  // cells whose state is programmed, failed or interrupted.
  `
  CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    source TEXT,
    config_json TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    guid TEXT NOT NULL UNIQUE,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    parent_run_id INTEGER REFERENCES runs (id),
    mode TEXT NOT NULL CHECK (mode IN ('full', 'program', 'measure', 'drift')),
    status TEXT NOT NULL CHECK (status IN ('running', 'paused', 'interrupted', 'completed')),
    exit_status TEXT CHECK (exit_status IN ('success', 'abort', 'fail')),
    reason TEXT,
    error_json TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    config_json TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    network_name TEXT NOT NULL,
    network_dir TEXT NOT NULL,
    weight_image_sha256 TEXT NOT NULL,
    hardware_profile TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    hardware_json TEXT NOT NULL,
    noise_profile TEXT NOT NULL,
    noise_sha256 TEXT NOT NULL,
    noise_json TEXT NOT NULL,
    seeds_json TEXT NOT NULL,
    backend TEXT NOT NULL,
    link TEXT NOT NULL,
    firmware_name TEXT,
    firmware_version TEXT,
    chip_id TEXT,
    device_json TEXT,
    boot_ids_json TEXT NOT NULL DEFAULT '[]',
    arrays_used INTEGER NOT NULL,
    cells_planned INTEGER NOT NULL,
    cost_json TEXT NOT NULL,
    ref_wall_ms INTEGER,
    ref_clock_ms INTEGER,
    ref_boot_id INTEGER,
    ref_source TEXT,
    step_seconds_json TEXT NOT NULL DEFAULT '{}',
    CHECK ((status = 'completed') = (exit_status IS NOT NULL))
  );
  CREATE INDEX runs_status ON runs (status);
  CREATE TABLE run_steps (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    step_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    point INTEGER,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('started', 'ended', 'failed', 'aborted', 'interrupted')),
    started_at TEXT NOT NULL,
    ended_at TEXT,
    seconds REAL,
    detail_json TEXT,
    UNIQUE (run_id, step_key, attempt)
  );
  CREATE TABLE run_events (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    at TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('info', 'warning')),
    message TEXT NOT NULL,
    data_json TEXT
  );
  CREATE INDEX run_events_run ON run_events (run_id);
  CREATE TABLE program_tiles (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    tile INTEGER NOT NULL,
    matrix INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    name TEXT NOT NULL,
    array_no INTEGER NOT NULL,
    row_no INTEGER NOT NULL,
    col_no INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    slice INTEGER NOT NULL,
    polarity TEXT NOT NULL CHECK (polarity IN ('pos', 'neg')),
    PRIMARY KEY (run_id, tile)
  ) WITHOUT ROWID;
  CREATE TABLE program_blocks (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    block INTEGER NOT NULL,
    tile INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    row_no INTEGER NOT NULL,
    col_no INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned', 'sent', 'done', 'unknown', 'recovered', 'skipped')),
    sent_at TEXT,
    done_at TEXT,
    boot_id INTEGER,
    outcome TEXT,
    total_pulses INTEGER,
    note TEXT,
    -- rows * cols target conductances (uS), float32 little-endian, row-major
    targets BLOB NOT NULL,
    PRIMARY KEY (run_id, block)
  ) WITHOUT ROWID;
  CREATE TABLE cells (
    run_id INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    row_no INTEGER NOT NULL,
    col_no INTEGER NOT NULL,
    tile INTEGER NOT NULL,
    block INTEGER NOT NULL,
    target_us REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('programmed', 'failed', 'interrupted')),
    final_us REAL,
    pulses INTEGER,
    device_status INTEGER,
    PRIMARY KEY (run_id, array_no, row_no, col_no)
  ) WITHOUT ROWID;
  CREATE TABLE time_points (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    nominal_s REAL NOT NULL,
    actual_s REAL,
    clock TEXT NOT NULL CHECK (clock IN ('emulated', 'wall')),
    device_clock_ms INTEGER NOT NULL,
    boot_id INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, point)
  ) WITHOUT ROWID;
  CREATE TABLE readbacks (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    row_no INTEGER NOT NULL,
    col_no INTEGER NOT NULL,
    g_us REAL NOT NULL,
    PRIMARY KEY (run_id, point, array_no, row_no, col_no)
  ) WITHOUT ROWID;
  CREATE TABLE matrix_stats (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('simulated', 'measured')),
    matrix INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    name TEXT NOT NULL,
    cells REAL NOT NULL,
    stuck_fraction REAL NOT NULL,
    g_err_mean_us REAL NOT NULL,
    g_err_std_us REAL NOT NULL,
    adc_clip_fraction REAL,
    relative_output_error REAL,
    PRIMARY KEY (run_id, point, source, matrix)
  ) WITHOUT ROWID;
  CREATE TABLE mvm_stats (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    conversions INTEGER NOT NULL,
    clip_fraction REAL NOT NULL,
    mean_code REAL NOT NULL,
    rel_error_vs_target REAL NOT NULL,
    rel_error_vs_readback REAL NOT NULL,
    PRIMARY KEY (run_id, point, array_no)
  ) WITHOUT ROWID;
  CREATE TABLE accuracy (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('simulated', 'measured', 'digital')),
    t_s REAL,
    value REAL NOT NULL,
    std REAL,
    per_seed_json TEXT,
    images INTEGER NOT NULL,
    confusion_json TEXT,
    PRIMARY KEY (run_id, point, source)
  ) WITHOUT ROWID;
  CREATE TABLE discrepancies (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    layer INTEGER NOT NULL,
    layer_name TEXT NOT NULL,
    metric TEXT NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL,
    measured REAL NOT NULL,
    difference REAL NOT NULL,
    noise_profile TEXT NOT NULL,
    noise_sha256 TEXT NOT NULL,
    noise_params_json TEXT NOT NULL,
    weight_image_sha256 TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    firmware_version TEXT,
    PRIMARY KEY (run_id, point, layer, metric)
  ) WITHOUT ROWID;
  CREATE TRIGGER runs_completed_update BEFORE UPDATE ON runs WHEN OLD.status = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER runs_completed_delete BEFORE DELETE ON runs WHEN OLD.status = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  -- cells has no insert trigger and no foreign key: both cost a lookup per row on the hottest path
  -- (bench:store). A completed run cannot gain cells anyway: every planned cell already has its
  -- row and the primary key refuses a second; the recorder writes only cells of the run's blocks.
  CREATE TRIGGER cells_completed_update BEFORE UPDATE ON cells WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER cells_completed_delete BEFORE DELETE ON cells WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  ${['run_steps', 'run_events', 'program_tiles', 'program_blocks', 'time_points', 'readbacks', 'matrix_stats', 'mvm_stats', 'accuracy', 'discrepancies']
    .map(
      (t) => `
  CREATE TRIGGER ${t}_completed_insert BEFORE INSERT ON ${t} WHEN (SELECT status FROM runs WHERE id = NEW.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER ${t}_completed_update BEFORE UPDATE ON ${t} WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER ${t}_completed_delete BEFORE DELETE ON ${t} WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;`,
    )
    .join('\n')}
  `,
  // 3: per-array discrepancies (MVM probes: simulated prediction vs measured, per array and time point)
  `
  CREATE TABLE array_discrepancies (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    array_no INTEGER NOT NULL,
    metric TEXT NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL,
    measured REAL NOT NULL,
    difference REAL NOT NULL,
    noise_profile TEXT NOT NULL,
    noise_sha256 TEXT NOT NULL,
    noise_params_json TEXT NOT NULL,
    weight_image_sha256 TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    firmware_version TEXT,
    PRIMARY KEY (run_id, point, array_no, metric)
  ) WITHOUT ROWID;
  CREATE TRIGGER array_discrepancies_completed_insert BEFORE INSERT ON array_discrepancies WHEN (SELECT status FROM runs WHERE id = NEW.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER array_discrepancies_completed_update BEFORE UPDATE ON array_discrepancies WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  CREATE TRIGGER array_discrepancies_completed_delete BEFORE DELETE ON array_discrepancies WHEN (SELECT status FROM runs WHERE id = OLD.run_id) = 'completed'
  BEGIN SELECT RAISE(ABORT, 'run is completed: its records are immutable'); END;
  `,
  // 4: re-simulations of recorded runs with other noise profiles (cimbench compare). The run's own
  // rows stay as recorded (completed runs are immutable); each re-simulation sits beside them, one per
  // (run, profile hash, profile name, time basis), with its per-point accuracy and discrepancy rows.
  `
  CREATE TABLE resimulations (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    noise_profile TEXT NOT NULL,
    noise_sha256 TEXT NOT NULL,
    noise_json TEXT NOT NULL,
    times TEXT NOT NULL CHECK (times IN ('nominal', 'actual')),
    seeds_json TEXT NOT NULL,
    images INTEGER NOT NULL,
    digital_accuracy REAL NOT NULL,
    backend TEXT NOT NULL,
    weight_image_sha256 TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    UNIQUE (run_id, noise_sha256, noise_profile, times)
  );
  CREATE TABLE resimulation_points (
    resimulation_id INTEGER NOT NULL REFERENCES resimulations (id) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL NOT NULL,
    per_seed_json TEXT NOT NULL,
    measured REAL,
    original_simulated REAL,
    PRIMARY KEY (resimulation_id, point)
  ) WITHOUT ROWID;
  -- scope network: accuracy; layer: conductance error mean/std, stuck fraction (layer >= 0);
  -- array: conductance error mean/std with the two-sample KS statistic of the error distributions,
  -- MVM probe error and clip fraction (array_no >= 0).
  CREATE TABLE resimulation_discrepancies (
    resimulation_id INTEGER NOT NULL REFERENCES resimulations (id) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('network', 'layer', 'array')),
    layer INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL,
    measured REAL NOT NULL,
    difference REAL NOT NULL,
    original_simulated REAL,
    ks_statistic REAL,
    PRIMARY KEY (resimulation_id, point, scope, layer, array_no, metric)
  ) WITHOUT ROWID;
  CREATE INDEX resimulations_run ON resimulations (run_id);
  `,
  // 5: how long programming took on the device clock (the end of programming is time zero; cells
  // programmed first are older by up to this). Written with the time reference, while the run runs.
  `
  ALTER TABLE runs ADD COLUMN ref_programming_s REAL;
  `,
  // 6: where a re-simulation's conductances came from: the noise model's draws, or the run's read-backs.
  `
  ALTER TABLE resimulations ADD COLUMN conductances TEXT NOT NULL DEFAULT 'model' CHECK (conductances IN ('model', 'readback'));
  `,
  // 7: one re-simulation per (run, profile, time basis) and conductance source: 4's UNIQUE left the
  // source out, so a read-back re-simulation could not sit beside a model one. Adds the source
  // 'first-readback' (the first point's read-backs carried to later points by the model). SQLite
  // cannot change a table's constraints in place: the three tables are rebuilt, children first
  // dropped, so that ON DELETE CASCADE never fires, and the renames carry the references over.
  `
  CREATE TABLE resimulations_v7 (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    noise_profile TEXT NOT NULL,
    noise_sha256 TEXT NOT NULL,
    noise_json TEXT NOT NULL,
    times TEXT NOT NULL CHECK (times IN ('nominal', 'actual')),
    conductances TEXT NOT NULL DEFAULT 'model' CHECK (conductances IN ('model', 'readback', 'first-readback')),
    seeds_json TEXT NOT NULL,
    images INTEGER NOT NULL,
    digital_accuracy REAL NOT NULL,
    backend TEXT NOT NULL,
    weight_image_sha256 TEXT NOT NULL,
    hardware_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    UNIQUE (run_id, noise_sha256, noise_profile, times, conductances)
  );
  INSERT INTO resimulations_v7 (id, run_id, noise_profile, noise_sha256, noise_json, times, conductances, seeds_json, images, digital_accuracy, backend, weight_image_sha256, hardware_sha256, created_at, seconds)
    SELECT id, run_id, noise_profile, noise_sha256, noise_json, times, conductances, seeds_json, images, digital_accuracy, backend, weight_image_sha256, hardware_sha256, created_at, seconds FROM resimulations;
  CREATE TABLE resimulation_points_v7 (
    resimulation_id INTEGER NOT NULL REFERENCES resimulations_v7 (id) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL NOT NULL,
    per_seed_json TEXT NOT NULL,
    measured REAL,
    original_simulated REAL,
    PRIMARY KEY (resimulation_id, point)
  ) WITHOUT ROWID;
  INSERT INTO resimulation_points_v7 SELECT resimulation_id, point, t_s, simulated, simulated_std, per_seed_json, measured, original_simulated FROM resimulation_points;
  CREATE TABLE resimulation_discrepancies_v7 (
    resimulation_id INTEGER NOT NULL REFERENCES resimulations_v7 (id) ON DELETE CASCADE,
    point INTEGER NOT NULL,
    t_s REAL NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('network', 'layer', 'array')),
    layer INTEGER NOT NULL,
    array_no INTEGER NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    simulated REAL NOT NULL,
    simulated_std REAL,
    measured REAL NOT NULL,
    difference REAL NOT NULL,
    original_simulated REAL,
    ks_statistic REAL,
    PRIMARY KEY (resimulation_id, point, scope, layer, array_no, metric)
  ) WITHOUT ROWID;
  INSERT INTO resimulation_discrepancies_v7
    SELECT resimulation_id, point, t_s, scope, layer, array_no, name, metric, simulated, simulated_std, measured, difference, original_simulated, ks_statistic FROM resimulation_discrepancies;
  DROP TABLE resimulation_discrepancies;
  DROP TABLE resimulation_points;
  DROP TABLE resimulations;
  ALTER TABLE resimulations_v7 RENAME TO resimulations;
  ALTER TABLE resimulation_points_v7 RENAME TO resimulation_points;
  ALTER TABLE resimulation_discrepancies_v7 RENAME TO resimulation_discrepancies;
  CREATE INDEX resimulations_run ON resimulations (run_id);
  `,
];
