import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { z } from 'zod';
import { CimbenchError } from '../common/errors.js';
import { formatPath, formatZodIssues } from '../common/validate.js';
import type { ApiError } from './events.js';

/**
 * HTTP plumbing of the bench server: request schemas, the one HTTP error formatter, and the
 * control token. Every query, parameter and body is parsed with a schema from this file.
 */

export const RunIdParamsSchema = z.strictObject({ id: z.coerce.number().int().min(1) });
export const RunListQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });
export const CellsQuerySchema = z.strictObject({
  array: z.coerce.number().int().min(0).max(4095),
  /** Largest heatmap side in bins; the array is averaged into at most bins x bins. */
  bins: z.coerce.number().int().min(4).max(256).default(64),
});
export const DiscrepancyQuerySchema = z.strictObject({
  metric: z.enum(['accuracy', 'conductance_error_mean_us', 'conductance_error_std_us', 'stuck_fraction']).optional(),
  layer: z.coerce.number().int().min(-1).optional(),
  point: z.coerce.number().int().min(0).optional(),
});
export const StartCampaignBodySchema = z.strictObject({
  /** A campaign file inside the server's campaign folder (a name such as demo.json, no ..). */
  file: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\w][\w.-]*\.json$/, 'a campaign file name in the campaign folder, such as demo.json (letters, digits, . _ -)'),
  mode: z.enum(['full', 'program']).default('full'),
});
export const ControlBodySchema = z.strictObject({ reason: z.string().max(200).optional() });
export const EmptyQuerySchema = z.strictObject({});

/** Codes of HTTP-only failures; the rest come from CimbenchError. */
export type HttpOnlyCode = 'UNAUTHORIZED' | 'FORBIDDEN' | 'CONFLICT' | 'PAYLOAD_TOO_LARGE' | 'NOT_FOUND' | 'INVALID_INPUT' | 'UI_NOT_BUILT';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: HttpOnlyCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** safeParse of one part of a request; a 400 naming the part and the field otherwise. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'path'): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const first = r.error.issues[0];
  const field = first ? formatPath(first.path) : '';
  throw new HttpError(400, 'INVALID_INPUT', `${part}: ${formatZodIssues(r.error.issues)}`, field ? `${part}.${field}` : part);
}

const STATUS_OF: Readonly<Record<string, number>> = {
  INVALID_INPUT: 400,
  INVALID_SPEC: 400,
  DOES_NOT_FIT: 422,
  NOT_FOUND: 404,
  ABORTED: 409,
};

/** The one HTTP error formatter: status code and the {code, message} body. */
export function httpErrorOf(err: unknown): { status: number; body: ApiError } {
  if (err instanceof HttpError) return { status: err.status, body: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
  if (err instanceof CimbenchError) {
    const field = typeof err.details?.field === 'string' && err.details.field ? err.details.field : undefined;
    return { status: STATUS_OF[err.code] ?? 500, body: { code: err.code, message: err.describe(), ...(field ? { field } : {}) } };
  }
  // body-parser's errors carry a status and a type.
  const e = err as { status?: unknown; type?: unknown; message?: unknown };
  if (e && e.type === 'entity.too.large') return { status: 413, body: { code: 'PAYLOAD_TOO_LARGE', message: 'request body is larger than the limit' } };
  if (e && e.type === 'entity.parse.failed') return { status: 400, body: { code: 'INVALID_INPUT', message: 'body: not valid JSON' } };
  if (e && typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return { status: e.status, body: { code: 'INVALID_INPUT', message: typeof e.message === 'string' ? e.message : 'bad request' } };
  }
  return { status: 500, body: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } };
}

export function errorMiddleware(log?: (line: string) => void) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    const { status, body } = httpErrorOf(err);
    if (status >= 500) log?.(`bench server: ${body.code} ${body.message}`);
    res.status(status).json(body);
  };
}

/** A fresh control token (printed by `cimbench serve`). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Constant-time comparison: both sides are hashed first so lengths never leak. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token from `Authorization: Bearer <token>` or `X-Cimbench-Token`. */
export function tokenOf(req: Request): string | undefined {
  const auth = req.get('authorization');
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  return req.get('x-cimbench-token') ?? undefined;
}

export function requireToken(expected: string) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const given = tokenOf(req);
    if (given === undefined) return next(new HttpError(401, 'UNAUTHORIZED', 'control actions need the token printed by `cimbench serve` (Authorization: Bearer <token>)'));
    if (!tokenMatches(given, expected)) return next(new HttpError(403, 'FORBIDDEN', 'wrong control token'));
    next();
  };
}

/** Hostnames that mean this machine (DNS rebinding: a page from elsewhere cannot use them as Host). */
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.split(':')[0];
}

/** Origin allowed: none (a non-browser client), or the same host and port this request was sent to, or listed. */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (allowed.includes(origin)) return true;
  if (!host) return false;
  return origin === `http://${host}`;
}

export { LOOPBACK };
