/**
 * Protecting an API with TruSec access tokens: `requireToken` checks the
 * `Authorization: Bearer` header (RFC 6750 §2.1) with `tokens.verify` and
 * the required scopes, and refuses as RFC 6750 §3 says: 401 with
 * `WWW-Authenticate: Bearer` (and `error="invalid_token"` for a bad token),
 * 403 `insufficient_scope` naming the scopes needed, 400 `invalid_request`
 * for a malformed header.
 */
import { TruSecError } from './errors.js';
import type { AccessTokenClaims, Tokens } from './tokens.js';

export interface RequireTokenOptions {
  /** The `aud` the token must carry (default: the issuer). */
  audience?: string;
  /** Every one of these scopes must have been granted. */
  scopes?: string[];
  /** The `realm` of the challenge (RFC 6750 §3). */
  realm?: string;
}

/** The parts of a Node/Express request and response the middleware touches. */
export interface NodeRequest {
  headers: Record<string, string | string[] | undefined>;
  auth?: AccessTokenClaims;
}
export interface NodeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}
export type Next = (error?: unknown) => void;

export interface RequireToken {
  /** Express / Connect / `node:http`: sets `req.auth` to the token's claims and calls `next()`. */
  (req: NodeRequest, res: NodeResponse, next: Next): Promise<void>;
  /** Fetch-style (`Request` → `Response`): calls `handler` with the claims, or answers the refusal. */
  fetch<A extends unknown[]>(
    handler: (request: Request, claims: AccessTokenClaims, ...rest: A) => Response | Promise<Response>,
  ): (request: Request, ...rest: A) => Promise<Response>;
  /** The decision alone: the claims, or the refusal to send. */
  check(authorization: string | null | undefined): Promise<Decision>;
}

export interface Refusal {
  status: 400 | 401 | 403;
  /** The `WWW-Authenticate` value. */
  challenge: string;
  body: { error: string; error_description: string } | { error: string; error_description: string; scope: string };
}

export type Decision = { ok: true; claims: AccessTokenClaims } | { ok: false; refusal: Refusal };

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** An auth-param value as a quoted-string of the characters RFC 6750 §3 allows. */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '')}"`;
}

export function requireToken(tokens: Tokens, options: RequireTokenOptions = {}): RequireToken {
  const needed = options.scopes ?? [];
  const realm = options.realm === undefined ? [] : [`realm=${quoted(options.realm)}`];

  const refuse = (status: 400 | 401 | 403, error: string | undefined, description: string): Refusal => {
    const params = [...realm];
    if (error !== undefined) params.push(`error=${quoted(error)}`, `error_description=${quoted(description)}`);
    if (status === 403) params.push(`scope=${quoted(needed.join(' '))}`);
    const challenge = params.length === 0 ? 'Bearer' : `Bearer ${params.join(', ')}`;
    const body = { error: error ?? 'unauthenticated', error_description: description };
    return { status, challenge, body: status === 403 ? { ...body, scope: needed.join(' ') } : body };
  };

  const check = async (authorization: string | null | undefined): Promise<Decision> => {
    if (authorization === undefined || authorization === null || authorization.trim() === '') {
      // RFC 6750 §3.1: a request without credentials gets no error code.
      return { ok: false, refusal: refuse(401, undefined, 'an access token is required') };
    }
    const [scheme, token, ...extra] = authorization.trim().split(/ +/);
    if (scheme?.toLowerCase() !== 'bearer') return { ok: false, refusal: refuse(401, undefined, 'use the Bearer scheme') };
    if (token === undefined || extra.length > 0 || !B64TOKEN.test(token)) {
      return { ok: false, refusal: refuse(400, 'invalid_request', 'the Authorization header is malformed') };
    }
    let claims: AccessTokenClaims;
    try {
      claims = await tokens.verify(token, options.audience === undefined ? {} : { audience: options.audience });
    } catch (e) {
      if (e instanceof TruSecError && e.type === 'invalid_token') return { ok: false, refusal: refuse(401, 'invalid_token', e.message) };
      throw e; // the JWKS could not be fetched: a server error, not the caller's fault
    }
    const granted = new Set(claims.scope.split(' ').filter((s) => s !== ''));
    if (!needed.every((s) => granted.has(s))) {
      return { ok: false, refusal: refuse(403, 'insufficient_scope', 'the token lacks a required scope') };
    }
    return { ok: true, claims };
  };

  const node = async (req: NodeRequest, res: NodeResponse, next: Next): Promise<void> => {
    let decision: Decision;
    try {
      const header = req.headers['authorization'];
      decision = await check(Array.isArray(header) ? header.join(', ') : header);
    } catch (e) {
      next(e);
      return;
    }
    if (decision.ok) {
      req.auth = decision.claims;
      next();
      return;
    }
    const { status, challenge, body } = decision.refusal;
    res.statusCode = status;
    res.setHeader('WWW-Authenticate', challenge);
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(JSON.stringify(body));
  };

  const fetchStyle = <A extends unknown[]>(
    handler: (request: Request, claims: AccessTokenClaims, ...rest: A) => Response | Promise<Response>,
  ) => async (request: Request, ...rest: A): Promise<Response> => {
    let decision: Decision;
    try {
      decision = await check(request.headers.get('authorization'));
    } catch {
      return Response.json(
        { error: 'temporarily_unavailable', error_description: 'the token cannot be checked right now' },
        { status: 503, headers: { 'cache-control': 'no-store' } },
      );
    }
    if (decision.ok) return handler(request, decision.claims, ...rest);
    const { status, challenge, body } = decision.refusal;
    return Response.json(body, { status, headers: { 'www-authenticate': challenge, 'cache-control': 'no-store' } });
  };

  return Object.assign(node, { fetch: fetchStyle, check });
}
