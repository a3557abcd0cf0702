export { migrate, openDatabase, schemaVersion } from './db.js';
export type { Db } from './db.js';
export { MIGRATIONS } from './migrations.js';
export { RunStatusSchema, SearchRuns } from './search-runs.js';
export type { NewSearchRun, RunStatus, SearchRunRow } from './search-runs.js';
export { BenchRunStatusSchema, BenchRuns, RunRecorder } from './bench-runs.js';
export type { BenchRunRow, BenchRunStatus, CellCounts, NewBenchRun, RunSummary } from './bench-runs.js';
export { EXPORT_TABLES, exportRun } from './bench-export.js';
export type { ExportFormat, ExportResult } from './bench-export.js';
