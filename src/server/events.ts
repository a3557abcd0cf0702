// The namespace import lets esbuild drop what bench-ui does not use: `import { z }` pulls in all
// of zod, its ~40 locales included (the UI bundle shrank from 727 to 366 KB).
import * as z from 'zod';

/**
 * The socket.io events of the bench server, declared once: the server builds them, the UI
 * safeParses them. Imports nothing but zod so bench-ui can bundle it.
 *
 * Server -> client: 'live' (one LiveEvent) and 'replay' (the recent LiveEvents, on connect and on
 * request). Client -> server: 'replay' with ReplayRequest. A client event that does not parse is
 * answered with a 'live' event of kind 'error' and otherwise ignored.
 */

const base = {
  /** Increases by one per event of this server (a client can ask for what it missed); -1 for a reply to one client only. */
  seq: z.int().min(-1),
  /** Wall clock, ms since epoch. */
  at: z.number(),
  /** The bench run (campaign events) or the search run (search events); null when not known. */
  runId: z.int().nullable(),
};

export const LiveEventSchema = z.discriminatedUnion('kind', [
  z.strictObject({ ...base, kind: z.literal('run-start'), campaign: z.string(), mode: z.string(), steps: z.array(z.string()) }),
  z.strictObject({ ...base, kind: z.literal('state'), from: z.string(), to: z.string(), reason: z.string().optional() }),
  z.strictObject({
    ...base,
    kind: z.literal('step'),
    phase: z.enum(['start', 'end']),
    key: z.string(),
    status: z.enum(['started', 'ended', 'failed', 'aborted']),
    seconds: z.number().optional(),
  }),
  z.strictObject({ ...base, kind: z.literal('progress'), key: z.string(), label: z.string(), done: z.number(), total: z.number() }),
  /** Programming progress of one array: cells with an outcome, of the array's planned cells. */
  z.strictObject({ ...base, kind: z.literal('array-progress'), array: z.int(), done: z.int(), total: z.int(), failed: z.int(), pulses: z.int() }),
  z.strictObject({ ...base, kind: z.literal('prediction'), digitalAccuracy: z.number(), points: z.array(z.strictObject({ point: z.int(), tS: z.number(), mean: z.number(), std: z.number() })) }),
  z.strictObject({ ...base, kind: z.literal('accuracy'), point: z.int(), value: z.number(), images: z.int() }),
  z.strictObject({ ...base, kind: z.literal('event'), level: z.enum(['info', 'warning']), message: z.string() }),
  z.strictObject({ ...base, kind: z.literal('run-stop'), exitStatus: z.enum(['success', 'abort', 'fail']), reason: z.string().nullable() }),
  z.strictObject({ ...base, kind: z.literal('search-stage'), phase: z.enum(['start', 'end']), stage: z.string(), total: z.number().optional(), unit: z.string().optional(), seconds: z.number().optional() }),
  z.strictObject({ ...base, kind: z.literal('search-progress'), stage: z.string(), done: z.number(), detail: z.string().optional() }),
  z.strictObject({ ...base, kind: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type LiveEvent = z.output<typeof LiveEventSchema>;
export type LiveEventKind = LiveEvent['kind'];

export const ReplayRequestSchema = z.strictObject({ since: z.int().min(-1).default(-1) });
export type ReplayRequest = z.output<typeof ReplayRequestSchema>;

/** The body of every HTTP error and of UI error banners. */
export const ApiErrorSchema = z.object({ code: z.string(), message: z.string(), field: z.string().optional() });
export type ApiError = z.output<typeof ApiErrorSchema>;
