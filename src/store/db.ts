import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CimbenchError } from '../common/errors.js';
import { MIGRATIONS } from './migrations.js';

export type Db = Database.Database;

/**
 * Opens (creating if needed) a cimbench database and brings its schema up to date.
 * WAL so readers (the UI) never block the writer; synchronous=FULL because rows record
 * irreversible hardware actions and must survive a power cut once committed.
 */
export function openDatabase(path: string, options: { readonly?: boolean } = {}): Db {
  if (path !== ':memory:' && !options.readonly) mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (err) {
    throw new CimbenchError('STORE', `cannot open database (${(err as Error).message})`, { where: path, cause: err });
  }
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    migrate(db, path);
  } else if (schemaVersion(db) > MIGRATIONS.length) {
    throw newerSchemaError(db, path);
  }
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function newerSchemaError(db: Db, path: string): CimbenchError {
  return new CimbenchError(
    'STORE',
    `database schema version ${schemaVersion(db)} is newer than this cimbench knows (${MIGRATIONS.length}); upgrade cimbench`,
    { where: path },
  );
}

/** Applies the numbered migrations after PRAGMA user_version, each in its own transaction. */
export function migrate(db: Db, path = 'database'): void {
  const current = schemaVersion(db);
  if (current > MIGRATIONS.length) throw newerSchemaError(db, path);
  for (let version = current; version < MIGRATIONS.length; version++) {
    const step = MIGRATIONS[version] as string;
    db.transaction(() => {
      db.exec(step);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
