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
