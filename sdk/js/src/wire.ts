/**
 * The one place where JavaScript's camelCase meets the wire's snake_case.
 * Values under the keys in `OPAQUE` are the caller's own data (user and
 * session `metadata`, an audit event's `data`, a JWKS) and are passed
 * through untouched, so `{ metadata: { plan_id: 1 } }` round-trips as is.
 */
const OPAQUE = new Set(['metadata', 'data', 'jwks']);

export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A request field the server names in an error (`param`), as the caller
 * wrote it: `expires_in` → `expiresIn`. Only the top-level name is renamed;
 * a path into opaque data (`metadata.plan_id`) keeps the rest as sent.
 */
export function paramFromWire(param: string): string {
  const at = param.search(/[.[]/);
  return at === -1 ? snakeToCamel(param) : snakeToCamel(param.slice(0, at)) + param.slice(at);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function convert(value: unknown, rename: (key: string) => string, page: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => convert(v, rename, false));
  if (value instanceof Date) return value.toISOString();
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    // A list page's `data` is the list itself, not opaque data.
    const opaque = OPAQUE.has(key) && !(page && key === 'data' && Array.isArray(v));
    out[rename(key)] = opaque ? v : convert(v, rename, false);
  }
  return out;
}

/** A request body or query, camelCase keys → snake_case; undefined fields dropped. */
export function toWire(value: unknown): unknown {
  return convert(value, camelToSnake, false);
}

/** A response body, snake_case keys → camelCase. */
export function fromWire<T>(value: unknown): T {
  return convert(value, snakeToCamel, true) as T;
}
