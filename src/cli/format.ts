import { CimbenchError, InputError } from '../common/errors.js';

/** Exit statuses: 2 for bad input (files, specs, options), 3 for a network that does not fit, 1 otherwise. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof InputError) return err.code === 'DOES_NOT_FIT' ? 3 : 2;
  return 1;
}

/** The one CLI formatter for errors: a single line unless --verbose asks for the stack. */
export function formatCliError(err: unknown, verbose: boolean): string {
  let text: string;
  if (err instanceof CimbenchError) {
    text = `cimbench: error [${err.code}] ${err.describe()}`;
  } else if (err instanceof Error) {
    text = `cimbench: error [INTERNAL] ${err.message}`;
  } else {
    text = `cimbench: error [INTERNAL] ${String(err)}`;
  }
  if (verbose && err instanceof Error && err.stack) text += `\n${err.stack}`;
  else if (!(err instanceof InputError)) text += '\n(run with --verbose for the stack trace)';
  return text;
}

/** The machine-readable shape of an error, shared by --json output and (later) HTTP bodies. */
export function errorToJson(err: unknown): { code: string; message: string; where?: string; details?: Record<string, unknown> } {
  if (err instanceof CimbenchError) {
    return {
      code: err.code,
      message: err.describe(),
      ...(err.where ? { where: err.where } : {}),
      ...(err.details ? { details: err.details } : {}),
    };
  }
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Fixed-width text table; numbers are right-aligned. */
export function renderTable(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows].map((r) => r.map((c) => String(c)));
  const widths = header.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  const looksNumeric = (c: string | number | undefined): boolean =>
    typeof c === 'number' || (typeof c === 'string' && /^(-|[-+]?[\d.]+(e[-+]?\d+)?%?)$/.test(c));
  const numeric = header.map((_, j) => rows.length > 0 && rows.every((r) => looksNumeric(r[j])));
  const line = (r: readonly string[]): string =>
    r.map((c, j) => (numeric[j] ? c.padStart(widths[j] ?? 0) : c.padEnd(widths[j] ?? 0))).join('  ').trimEnd();
  const out = [line(cells[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r));
  return out.join('\n');
}
