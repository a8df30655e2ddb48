/**
 * What every resource of the SDK shares: the options, the HTTP path, the
 * discovery document (fetched once, then cached), and the management-API
 * call with its key rules.
 */
import { TruSecError, configError } from './errors.js';
import { Http, type FetchLike } from './http.js';
import { camelToSnake, fromWire, toWire } from './wire.js';

export interface TruSecOptions {
  /** `trusec_sk_…` or `trusec_test_…` on a server; `trusec_pk_…` (or none) in a browser. */
  apiKey?: string | undefined;
  /** The environment's issuer, e.g. `https://auth.example.com` or `https://auth.example.com/env/test`. */
  issuer: string;
  /** The OAuth client id (`client_…`), for sign-in. */
  clientId?: string | undefined;
  /** The confidential client's secret; never in a browser. */
  clientSecret?: string | undefined;
  /** How a confidential client authenticates at the token and revocation endpoints (default `client_secret_basic`; the client's registered `token_endpoint_auth_method`). */
  clientAuthMethod?: 'client_secret_basic' | 'client_secret_post' | undefined;
  /** Where `/v1` lives; by default the issuer's origin and path without `/env/NAME` (contract: `/v1` stays at the root). */
  apiUrl?: string | undefined;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike | undefined;
  /** Time limit of each request, in milliseconds (default 30 000). */
  timeoutMs?: number | undefined;
  /** Largest answer accepted, in bytes (default 4 MiB). */
  maxResponseBytes?: number | undefined;
  /** After a JWKS refresh, an unknown `kid` refreshes it again only after this many seconds (default 30). */
  jwksCooldownSeconds?: number | undefined;
  /** The JWKS is downloaded again when it is older than this many seconds (default 600). */
  jwksMaxAgeSeconds?: number | undefined;
  /** Clock skew tolerated on `exp`/`nbf`/`iat`, in seconds (default 0). */
  clockToleranceSeconds?: number | undefined;
}

/** The parts of the discovery document (RFC 8414 / OIDC Discovery 1.0) the SDK uses. */
export interface Discovery {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  revocationEndpoint?: string;
  introspectionEndpoint?: string;
  userinfoEndpoint?: string;
  jwksUri: string;
  endSessionEndpoint?: string;
  scopesSupported?: string[];
  codeChallengeMethodsSupported?: string[];
  [key: string]: unknown;
}

export type KeyKind = 'secret' | 'public' | 'test';

export function keyKind(key: string): KeyKind | undefined {
  if (key.startsWith('trusec_sk_')) return 'secret';
  if (key.startsWith('trusec_pk_')) return 'public';
  if (key.startsWith('trusec_test_')) return 'test';
  return undefined;
}

/** A page's script (it has a `document`); Node, Deno, workers and edge runtimes have none. */
export function inBrowser(): boolean {
  const g = globalThis as { window?: unknown; document?: unknown };
  return typeof g.window === 'object' && g.window !== null && typeof g.document === 'object' && g.document !== null;
}

function parseIssuer(issuer: unknown): string {
  if (typeof issuer !== 'string' || issuer === '') throw configError('issuer is required (the environment\'s base URL)');
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw configError(`issuer is not a URL: ${issuer}`);
  }
  // RFC 8414 §2: an https URL with no query or fragment (http is for local development).
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '') {
    throw configError('issuer must be an http(s) URL without query or fragment');
  }
  return issuer.replace(/\/+$/, '');
}

type Query = Record<string, string | number | boolean | Date | undefined>;

export interface ApiCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query | undefined;
  body?: unknown;
  /** An OAuth access token to send instead of the API key (`/v1/users/me`). */
  accessToken?: string | undefined;
}

export class Context {
  readonly issuer: string;
  readonly apiUrl: string;
  // Secrets live in private fields, so console.log(trusec) or a crash
  // report's inspection of the object never prints them.
  readonly #apiKey: string | undefined;
  readonly clientId: string | undefined;
  readonly #clientSecret: string | undefined;
  readonly clientAuthMethod: 'client_secret_basic' | 'client_secret_post';
  readonly http: Http;
  readonly jwksCooldownMs: number;
  readonly jwksMaxAgeMs: number;
  readonly clockToleranceSeconds: number;
  #discovery: Promise<Discovery> | undefined;
  /** The discovery document once it arrived, for the synchronous authorization URL. */
  discovered: Discovery | undefined;

  constructor(options: TruSecOptions) {
    if (options === null || typeof options !== 'object') throw configError('new TruSec({ issuer, ... }) takes an options object');
    this.issuer = parseIssuer(options.issuer);
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.clientId = options.clientId === '' ? undefined : options.clientId;
    this.#clientSecret = options.clientSecret === '' ? undefined : options.clientSecret;
    const method = options.clientAuthMethod ?? 'client_secret_basic';
    if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
      throw configError('clientAuthMethod is client_secret_basic or client_secret_post');
    }
    this.clientAuthMethod = method;
    if (this.apiKey !== undefined && keyKind(this.apiKey) === undefined) {
      throw configError('apiKey must be a TruSec key (trusec_sk_…, trusec_pk_…, or trusec_test_…)');
    }
    if (inBrowser()) {
      const kind = this.apiKey === undefined ? undefined : keyKind(this.apiKey);
      if (kind === 'secret' || kind === 'test' || this.clientSecret !== undefined) {
        // Anything sent from a page is readable by whoever loads it.
        throw configError(
          'a secret API key or client secret must never be used in a browser; use a public key (trusec_pk_…) and PKCE',
        );
      }
    }
    this.apiUrl = (options.apiUrl ?? defaultApiUrl(this.issuer)).replace(/\/+$/, '');
    const fetchImpl = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
    if (fetchImpl === undefined) throw configError('no fetch available: pass options.fetch');
    this.http = new Http({
      fetch: fetchImpl,
      timeoutMs: positive(options.timeoutMs, 30_000, 'timeoutMs'),
      maxResponseBytes: positive(options.maxResponseBytes, 4 * 1024 * 1024, 'maxResponseBytes'),
    });
    this.jwksCooldownMs = nonNegative(options.jwksCooldownSeconds, 30, 'jwksCooldownSeconds') * 1000;
    this.jwksMaxAgeMs = positive(options.jwksMaxAgeSeconds, 600, 'jwksMaxAgeSeconds') * 1000;
    this.clockToleranceSeconds = nonNegative(options.clockToleranceSeconds, 0, 'clockToleranceSeconds');
  }

  get apiKey(): string | undefined {
    return this.#apiKey;
  }

  get clientSecret(): string | undefined {
    return this.#clientSecret;
  }

  requireClientId(): string {
    if (this.clientId === undefined) throw configError('clientId is required for OAuth sign-in');
    return this.clientId;
  }

  /** The discovery document, fetched once; a failed fetch is retried by the next call. */
  discovery(): Promise<Discovery> {
    this.#discovery ??= this.fetchDiscovery().then(
      (d) => {
        this.discovered = d;
        return d;
      },
      (e: unknown) => {
        this.#discovery = undefined;
        throw e;
      },
    );
    return this.#discovery;
  }

  private async fetchDiscovery(): Promise<Discovery> {
    const { body } = await this.http.send(`${this.issuer}/.well-known/openid-configuration`, {
      method: 'GET',
      headers: { accept: 'application/json' },
    });
    const d = fromWire<Partial<Discovery>>(body);
    // OIDC Discovery 1.0 §4.3: the document's issuer MUST be exactly the one asked for.
    if (d?.issuer !== this.issuer) {
      throw new TruSecError({
        type: 'discovery_error',
        message: `the discovery document names issuer ${String(d?.issuer)}, not ${this.issuer}`,
      });
    }
    for (const field of ['authorizationEndpoint', 'tokenEndpoint', 'jwksUri'] as const) {
      if (typeof d[field] !== 'string') {
        throw new TruSecError({ type: 'discovery_error', message: `the discovery document has no ${camelToSnake(field)}` });
      }
    }
    return d as Discovery;
  }

  /** A `/v1` call, authenticated with the secret or test key (or the given access token). */
  async api<T>(call: ApiCall): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    headers['authorization'] = `Bearer ${call.accessToken ?? this.managementKey()}`;
    let body: string | undefined;
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(toWire(call.body));
    }
    const url = new URL(`${this.apiUrl}${call.path}`);
    const query = toWire(call.query ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
    const answer = await this.http.send(url.toString(), { method: call.method, headers, body });
    return fromWire<T>(answer.body);
  }

  private managementKey(): string {
    if (this.apiKey === undefined) throw configError('the management API needs apiKey (trusec_sk_… or trusec_test_…)');
    if (keyKind(this.apiKey) === 'public') {
      // Contract: a public key reaches only public endpoints, never management.
      throw new TruSecError({
        type: 'forbidden',
        message: 'a public key (trusec_pk_…) cannot call the management API; it only builds authorization URLs and does PKCE',
      });
    }
    return this.apiKey;
  }
}

/** Contract: every environment but live is served at `{TRUSEC_ISSUER}/env/NAME`, while `/v1` stays at the root. */
function defaultApiUrl(issuer: string): string {
  return issuer.replace(/\/env\/[^/]+$/, '');
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw configError(`${name} must be a positive number`);
  return v;
}

function nonNegative(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0) throw configError(`${name} must be zero or more`);
  return v;
}

/** A required text argument, checked before anything is sent. */
export function required(value: unknown, param: string): asserts value is string {
  if (typeof value !== 'string' || value === '') {
    throw new TruSecError({ type: 'invalid_request', param, message: `${param} is required` });
  }
}

/** An object id for a `/v1` path. */
export function pathId(id: unknown, param = 'id'): string {
  required(id, param);
  return encodeURIComponent(id);
}
