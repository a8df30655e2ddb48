/**
 * The SDK's one HTTP path: every request is bounded in time (`timeoutMs`)
 * and every answer in size (`maxResponseBytes`) before it is parsed, and
 * every failure becomes a `TruSecError`.
 */
import { TruSecError } from './errors.js';
import { paramFromWire } from './wire.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpOptions {
  fetch: FetchLike;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body; `undefined` for an empty one. */
  body: unknown;
}

export class Http {
  constructor(private readonly options: HttpOptions) {}

  /** Sends the request; resolves with a 2xx answer, throws `TruSecError` otherwise. */
  async send(url: string, init: RequestInit): Promise<HttpAnswer> {
    let response: Response;
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      response = await this.options.fetch(url, { ...init, signal, redirect: 'error' });
    } catch (cause) {
      throw transportError(cause, this.options.timeoutMs);
    }
    let text: string;
    try {
      text = await readBounded(response, this.options.maxResponseBytes);
    } catch (cause) {
      if (cause instanceof TruSecError) throw cause;
      throw transportError(cause, this.options.timeoutMs);
    }
    const body = parseJson(text, response);
    if (response.ok) return { status: response.status, headers: response.headers, body };
    throw errorFromAnswer(response.status, response.headers, body);
  }
}

function transportError(cause: unknown, timeoutMs: number): TruSecError {
  const name = cause instanceof Error ? cause.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new TruSecError({ type: 'timeout', message: `no answer within ${timeoutMs} ms`, cause });
  }
  return new TruSecError({ type: 'connection_error', message: 'could not reach the TruSec server', cause });
}

/** Reads at most `max` bytes of the body; a longer one is refused, not truncated. */
async function readBounded(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > max) {
    await response.body?.cancel();
    throw tooLarge(response.status, max);
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge(response.status, max);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(all);
}

function tooLarge(status: number, max: number): TruSecError {
  return new TruSecError({ type: 'invalid_response', status, message: `the answer is larger than ${max} bytes` });
}

function parseJson(text: string, response: Response): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    if (!response.ok) return undefined; // a proxy's HTML error page: the status says enough
    throw new TruSecError({
      type: 'invalid_response',
      status: response.status,
      message: 'the server answered with something other than JSON',
      cause,
    });
  }
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) is either a number of seconds or an
 * HTTP-date; both become whole seconds from now.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Maps a non-2xx answer: the `/v1` body `{"error": {type, message, param}}`,
 * an RFC 6749 §5.2 body `{"error": code, "error_description"}`, or anything
 * else (a proxy's page) by status alone.
 */
export function errorFromAnswer(status: number, headers: Headers, body: unknown): TruSecError {
  const retryAfter = status === 429 ? parseRetryAfter(headers.get('retry-after')) : undefined;
  const error = (body as { error?: unknown } | undefined)?.error;
  if (error !== null && typeof error === 'object') {
    const e = error as Record<string, unknown>;
    const param = str(e['param']);
    return new TruSecError({
      type: str(e['type']) ?? fallbackType(status),
      message: str(e['message']) ?? `HTTP ${status}`,
      param: param === undefined ? undefined : paramFromWire(param),
      errorId: str(e['error_id']),
      status,
      retryAfter,
    });
  }
  if (typeof error === 'string') {
    const b = body as Record<string, unknown>;
    return new TruSecError({
      type: error,
      message: str(b['error_description']) ?? error,
      status,
      retryAfter,
      errorId: str(b['error_id']),
    });
  }
  return new TruSecError({ type: fallbackType(status), message: `HTTP ${status}`, status, retryAfter });
}

function fallbackType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 409:
      return 'conflict';
    case 422:
      return 'validation';
    case 429:
      return 'rate_limited';
    case 503:
      return 'unavailable';
    default:
      return status >= 500 ? 'internal_error' : 'invalid_response';
  }
}
