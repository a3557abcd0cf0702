import { ApiErrorSchema, type ApiError } from '../../src/server/events.js';

/** The browser side of the JSON API: one fetch wrapper and the one UI error formatter. */

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(`${body.code}: ${body.message}`);
  }
}

const TOKEN_KEY = 'cimbench.token';

export function token(): string {
  return (document.getElementById('token') as HTMLInputElement | null)?.value.trim() || sessionStorage.getItem(TOKEN_KEY) || '';
}

export function rememberToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

async function parse<T>(res: Response): Promise<T> {
  const body: unknown = await res.json().catch(() => ({ code: 'INTERNAL', message: `HTTP ${res.status} without a JSON body` }));
  if (!res.ok) {
    const e = ApiErrorSchema.safeParse(body);
    throw new ApiFailure(res.status, e.success ? e.data : { code: 'INTERNAL', message: `HTTP ${res.status}` });
  }
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { headers: { accept: 'application/json' } }));
}

/** Control actions send the token; without one the server answers 401 and the banner says so. */
export async function post<T>(path: string, body: unknown): Promise<T> {
  const t = token();
  return parse<T>(
    await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(t ? { authorization: `Bearer ${t}` } : {}) },
      body: JSON.stringify(body),
    }),
  );
}

/** The UI's one error formatter: code and message in the banner. */
export function showError(err: unknown): void {
  const banner = document.getElementById('banner') as HTMLElement;
  banner.className = '';
  banner.hidden = false;
  banner.textContent = err instanceof ApiFailure ? `${err.body.code}: ${err.body.message}` : `INTERNAL: ${err instanceof Error ? err.message : String(err)}`;
  banner.dataset.code = err instanceof ApiFailure ? err.body.code : 'INTERNAL';
}

export function showOk(message: string): void {
  const banner = document.getElementById('banner') as HTMLElement;
  banner.className = 'ok';
  banner.hidden = false;
  banner.textContent = message;
  banner.dataset.code = 'OK';
}

export function clearBanner(): void {
  const banner = document.getElementById('banner') as HTMLElement;
  banner.hidden = true;
  banner.textContent = '';
  delete banner.dataset.code;
}
