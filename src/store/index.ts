export { migrate, openDatabase, schemaVersion } from './db.js';
export type { Db } from './db.js';
export { MIGRATIONS } from './migrations.js';
export { RunStatusSchema, SearchRuns } from './search-runs.js';
export type { NewSearchRun, RunStatus, SearchRunRow } from './search-runs.js';
