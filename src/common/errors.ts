/**
 * The few typed errors cimbench throws. Every error carries a stable `code` that the CLI, HTTP and
 * UI formatters map to an exit status, a status code or a message; `context` grows as the error
 * travels up (see `withContext`), so the final message says where and what.
 */

export type InputErrorCode =
  | 'INVALID_INPUT' // a file or value does not match its schema
  | 'NOT_FOUND' // a named file, run, port or dataset does not exist
  | 'INVALID_SPEC' // a network spec that cannot be built (shapes, kernel larger than input, ...)
  | 'DOES_NOT_FIT'; // a network needs more arrays than the macro has

export type LinkErrorCode =
  | 'TIMEOUT'
  | 'CRC'
  | 'DISCONNECTED'
  | 'DEVICE_ERROR'
  | 'PROTOCOL'
  | 'PORT_NOT_FOUND'
  | 'PORT_PERMISSION'
  | 'PORT_LOCKED'
  | 'CANCELLED';

export type InternalErrorCode = 'INTERNAL' | 'ABORTED' | 'STORE';

export type ErrorCode = InputErrorCode | LinkErrorCode | InternalErrorCode;

export interface ErrorOptions {
  /** Where the problem is: file path, layer, field path (`layers[3].kernel`), port... */
  readonly where?: string;
  readonly cause?: unknown;
  /** Machine-readable extras for --json / HTTP bodies. */
  readonly details?: Record<string, unknown>;
}

export class CimbenchError extends Error {
  readonly code: ErrorCode;
  readonly where: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** Outer-to-inner list of what was being done when the error happened. */
  readonly context: string[] = [];

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.where = options.where;
    this.details = options.details;
  }

  /** Full human message: context, location, message. */
  describe(): string {
    const parts = [...this.context];
    parts.push(this.where ? `${this.where}: ${this.message}` : this.message);
    return parts.join(': ');
  }
}

/** Bad input from a user or a file: exits with status 2 and never needs a stack trace. */
export class InputError extends CimbenchError {
  constructor(code: InputErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
  }
}

/** Anything that went wrong between the host and a macro. */
export class LinkError extends CimbenchError {
  constructor(code: LinkErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
  }
}

/**
 * Adds what the caller was doing to an error on its way up. Non-cimbench errors are wrapped as
 * INTERNAL so every formatter sees the same shape.
 */
export function withContext(err: unknown, context: string): CimbenchError {
  const wrapped =
    err instanceof CimbenchError
      ? err
      : new CimbenchError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  wrapped.context.unshift(context);
  return wrapped;
}

export function isInputError(err: unknown): err is InputError {
  return err instanceof InputError;
}

/** An error as plain data, for crossing a worker thread (structured clone drops the class). */
export interface SerializedError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly where?: string;
  readonly details?: Record<string, unknown>;
  readonly context: string[];
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof CimbenchError) {
    return {
      name: err.name,
      code: err.code,
      message: err.message,
      ...(err.where !== undefined ? { where: err.where } : {}),
      // Details are JSON-shaped by convention; drop anything that does not clone.
      ...(err.details !== undefined ? { details: JSON.parse(JSON.stringify(err.details)) as Record<string, unknown> } : {}),
      context: [...err.context],
    };
  }
  return { name: err instanceof Error ? err.name : 'Error', code: 'INTERNAL', message: err instanceof Error ? err.message : String(err), context: [] };
}

const INPUT_CODES: ReadonlySet<string> = new Set<InputErrorCode>(['INVALID_INPUT', 'NOT_FOUND', 'INVALID_SPEC', 'DOES_NOT_FIT']);

/** A worker's error as the same kind of error on this side, so formatters give what an in-thread error gives. */
export function reviveError(e: SerializedError): CimbenchError {
  const options = { ...(e.where !== undefined ? { where: e.where } : {}), ...(e.details !== undefined ? { details: e.details } : {}) };
  const err = INPUT_CODES.has(e.code) ? new InputError(e.code as InputErrorCode, e.message, options) : new CimbenchError(e.code as ErrorCode, e.message, options);
  err.context.push(...e.context);
  return err;
}
