import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { InputError } from './errors.js';

/** `layers[3].kernel` style path from a zod issue path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** Issues shown in one message; the rest are counted (and listed in `details.issues`). */
const SHOWN_ISSUES = 3;

/** zod's message, with a missing field said plainly. */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `missing (expected ${issue.expected})`;
  return issue.message;
}

/** The first few zod issues on one line, each naming its field, and how many more there are. */
export function formatZodIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string {
  const shown = issues.slice(0, SHOWN_ISSUES).map((issue) => {
    const field = formatPath(issue.path);
    return field ? `${field}: ${issueMessage(issue)}` : issueMessage(issue);
  });
  const more = issues.length - shown.length;
  return more > 0 ? `${shown.join('; ')} (and ${more} more problem${more === 1 ? '' : 's'}; --json lists them all)` : shown.join('; ');
}

/**
 * safeParse at a boundary: returns the parsed value or throws an InputError that names the source
 * (`what`, usually a file path) and the first offending field.
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  throw new InputError('INVALID_INPUT', formatZodIssues(result.error.issues), {
    where: what,
    details: {
      field: first ? formatPath(first.path) : '',
      issues: result.error.issues.map((i) => ({ field: formatPath(i.path), message: issueMessage(i) })),
    },
  });
}

/** Reads and parses a JSON file, with errors that name the file. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError('NOT_FOUND', 'file does not exist', { where: path });
    throw new InputError('INVALID_INPUT', `cannot read file (${code ?? String(err)})`, { where: path });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InputError('INVALID_INPUT', `not valid JSON (${(err as Error).message})`, { where: path });
  }
}

/** readJsonFile + parseWith. */
export function loadJsonFile<S extends z.ZodType>(schema: S, path: string): z.output<S> {
  return parseWith(schema, readJsonFile(path), path);
}
