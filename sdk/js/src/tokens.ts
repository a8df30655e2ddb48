/**
 * Local verification of TruSec access tokens (RFC 9068 JWTs) against the
 * environment's JWKS, fetched from the discovery document's `jwks_uri` and
 * cached for `jwksMaxAgeSeconds`; an unknown `kid` refreshes the cache (a
 * rotation published a new key), at most once per `jwksCooldownSeconds` so
 * that tokens with made-up kids cannot make the SDK hammer the server.
 */
import { decode } from './base64url.js';
import type { Context } from './context.js';
import { TruSecError } from './errors.js';
import { fromWire } from './wire.js';

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  clientId: string;
  /** The granted scopes, space-separated. */
  scope: string;
  [claim: string]: unknown;
}

export interface IdTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  authTime?: number;
  nonce?: string;
  azp?: string;
  sid?: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
  [claim: string]: unknown;
}

export interface VerifyOptions {
  /** The `aud` the token must carry; by default the issuer (the `aud` of every TruSec access token without `resource`). */
  audience?: string;
}

/** The algorithms TruSec signs with (its discovery document), and how Web Crypto checks each. */
const ALGORITHMS = {
  RS256: {
    kty: 'RSA',
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    verify: { name: 'RSASSA-PKCS1-v1_5' },
    members: ['n', 'e'],
  },
  ES256: {
    kty: 'EC',
    crv: 'P-256',
    import: { name: 'ECDSA', namedCurve: 'P-256' },
    verify: { name: 'ECDSA', hash: 'SHA-256' },
    members: ['crv', 'x', 'y'],
  },
  EdDSA: {
    kty: 'OKP',
    crv: 'Ed25519',
    import: { name: 'Ed25519' },
    verify: { name: 'Ed25519' },
    members: ['crv', 'x'],
  },
} as const;

type Alg = keyof typeof ALGORITHMS;

function isAlg(alg: unknown): alg is Alg {
  return typeof alg === 'string' && Object.hasOwn(ALGORITHMS, alg);
}

/** Big enough for any token TruSec mints, small enough that parsing a hostile one costs nothing. */
const MAX_TOKEN_LENGTH = 16 * 1024;

interface Jwk {
  kty?: unknown;
  kid?: unknown;
  alg?: unknown;
  use?: unknown;
  crv?: unknown;
  [member: string]: unknown;
}

function invalid(message: string): TruSecError {
  return new TruSecError({ type: 'invalid_token', status: 401, message });
}

function json(segment: string | undefined, what: string): Record<string, unknown> {
  const bytes = segment === undefined ? undefined : decode(segment);
  if (bytes === undefined) throw invalid(`the token's ${what} is not base64url`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw invalid(`the token's ${what} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`the token's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export class Tokens {
  #keys = new Map<string, { alg: Alg; key: Promise<CryptoKey> }>();
  #fetchedAt = -Infinity;
  #refreshing: Promise<void> | undefined;

  constructor(private readonly ctx: Context) {}

  /**
   * Verifies an access token locally: signature (by `kid`), `typ`, `iss`,
   * `aud`, `exp`, `nbf`. Resolves with its claims; throws `TruSecError`
   * `invalid_token` (status 401) when it does not verify.
   */
  async verify(token: string, options: VerifyOptions = {}): Promise<AccessTokenClaims> {
    const payload = await this.signedPayload(token, 'access');
    const audience = options.audience ?? this.ctx.issuer;
    this.checkTimes(payload, audience);
    for (const claim of ['sub', 'client_id', 'jti'] as const) {
      if (typeof payload[claim] !== 'string') throw invalid(`the token has no ${claim}`);
    }
    if (payload['scope'] !== undefined && typeof payload['scope'] !== 'string') throw invalid('the token\'s scope is not a string');
    const claims = fromWire<AccessTokenClaims>(payload);
    claims.scope ??= '';
    return claims;
  }

  /**
   * Verifies an ID token from `exchangeCode`/`refresh` (OIDC Core §3.1.3.7):
   * signature, `iss`, `aud` (this client; `azp` when there are several),
   * `exp`, and `nonce` when one was sent in the authorization request.
   */
  async verifyIdToken(idToken: string, options: { nonce?: string } = {}): Promise<IdTokenClaims> {
    const clientId = this.ctx.requireClientId();
    const payload = await this.signedPayload(idToken, 'id');
    this.checkTimes(payload, clientId);
    const aud = payload['aud'];
    if (Array.isArray(aud) && aud.length > 1 && payload['azp'] !== clientId) throw invalid('the ID token\'s azp is not this client');
    if (typeof payload['sub'] !== 'string') throw invalid('the ID token has no sub');
    if (options.nonce !== undefined && payload['nonce'] !== options.nonce) throw invalid('the ID token\'s nonce does not match');
    return fromWire<IdTokenClaims>(payload);
  }

  /**
   * The payload of a JWS whose header and signature check out: a known
   * `alg` (never `none`), no `crit`, a `kid` of the issuer's JWKS, and the
   * `typ` of its kind — RFC 9068 §4: `at+jwt` for access tokens, so that an
   * ID token is never taken for one (and the other way round).
   */
  private async signedPayload(token: string, kind: 'access' | 'id'): Promise<Record<string, unknown>> {
    if (typeof token !== 'string' || token.length === 0) throw invalid('no token');
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('the token is too long');
    const parts = token.split('.');
    if (parts.length !== 3) throw invalid('the token is not a JWS compact serialization');
    const [h, p, s] = parts as [string, string, string];
    const header = json(h, 'header');
    const alg = header['alg'];
    if (!isAlg(alg)) throw invalid(`the token's alg is not one TruSec signs with`);
    const typ = typeof header['typ'] === 'string' ? header['typ'].toLowerCase() : '';
    const isAccess = typ === 'at+jwt' || typ === 'application/at+jwt';
    if (kind === 'access' && !isAccess) throw invalid('the token is not an access token (typ at+jwt)');
    if (kind === 'id' && isAccess) throw invalid('an access token is not an ID token');
    // RFC 7515 §4.1.11: extensions we do not understand make the token invalid.
    if (header['crit'] !== undefined) throw invalid('the token has critical header parameters');
    const kid = header['kid'];
    if (typeof kid !== 'string' || kid === '') throw invalid('the token has no kid');
    const signature = decode(s);
    if (signature === undefined) throw invalid('the token\'s signature is not base64url');

    const key = await this.key(kid, alg);
    const ok = await crypto.subtle.verify(ALGORITHMS[alg].verify, key, signature, new TextEncoder().encode(`${h}.${p}`));
    if (!ok) throw invalid('the token\'s signature does not verify');
    return json(p, 'payload');
  }

  /** `iss`, `aud`, `exp`, `nbf` and `iat`, with the configured clock tolerance. */
  private checkTimes(payload: Record<string, unknown>, audience: string): void {
    const now = Math.floor(Date.now() / 1000);
    const skew = this.ctx.clockToleranceSeconds;
    if (payload['iss'] !== this.ctx.issuer) throw invalid('the token was issued by another issuer');
    const aud = payload['aud'];
    const auds = Array.isArray(aud) ? aud : [aud];
    if (!auds.includes(audience)) throw invalid('the token is not meant for this audience');
    const exp = payload['exp'];
    if (typeof exp !== 'number') throw invalid('the token has no exp');
    if (now >= exp + skew) throw invalid('the token has expired');
    const nbf = payload['nbf'];
    if (nbf !== undefined && (typeof nbf !== 'number' || now + skew < nbf)) throw invalid('the token is not valid yet');
    if (typeof payload['iat'] !== 'number') throw invalid('the token has no iat');
  }

  private async key(kid: string, alg: Alg): Promise<CryptoKey> {
    let entry = this.#keys.get(kid);
    const age = Date.now() - this.#fetchedAt;
    // A key the issuer stopped publishing (retired, or withdrawn after a
    // compromise) stops verifying within jwksMaxAgeSeconds.
    if (age >= this.ctx.jwksMaxAgeMs || (entry === undefined && age >= this.ctx.jwksCooldownMs)) {
      await this.refresh();
      entry = this.#keys.get(kid);
    }
    if (entry === undefined) throw invalid('the token\'s kid is not in the issuer\'s JWKS');
    if (entry.alg !== alg) throw invalid('the token\'s alg does not match its key');
    try {
      return await entry.key;
    } catch (cause) {
      throw new TruSecError({ type: 'invalid_response', message: `the JWKS key ${kid} cannot be used`, cause });
    }
  }

  /** Fetches the JWKS once for every caller waiting on it. */
  private refresh(): Promise<void> {
    this.#refreshing ??= this.load().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  private async load(): Promise<void> {
    const { jwksUri } = await this.ctx.discovery();
    const { body } = await this.ctx.http.send(jwksUri, { method: 'GET', headers: { accept: 'application/json' } });
    const keys = (body as { keys?: unknown } | undefined)?.keys;
    if (!Array.isArray(keys)) throw new TruSecError({ type: 'invalid_response', message: 'the JWKS has no keys array' });
    const next = new Map<string, { alg: Alg; key: Promise<CryptoKey> }>();
    for (const jwk of keys as Jwk[]) {
      const usable = usableKey(jwk);
      if (usable === undefined) continue;
      const previous = this.#keys.get(usable.kid);
      const key = previous?.alg === usable.alg ? previous.key : importKey(jwk, usable.alg);
      key.catch(() => undefined); // reported when a token names it
      next.set(usable.kid, { alg: usable.alg, key });
    }
    this.#keys = next;
    this.#fetchedAt = Date.now();
  }
}

/** A JWK we can verify with: a signing key (`use` absent or `sig`, RFC 7517 §4.2) of a known algorithm. */
function usableKey(jwk: Jwk): { kid: string; alg: Alg } | undefined {
  if (jwk === null || typeof jwk !== 'object' || typeof jwk.kid !== 'string') return undefined;
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  const candidates = (Object.keys(ALGORITHMS) as Alg[]).filter((a) => {
    const spec = ALGORITHMS[a];
    return spec.kty === jwk.kty && (!('crv' in spec) || spec.crv === jwk.crv);
  });
  const alg = jwk.alg === undefined ? candidates[0] : candidates.find((a) => a === jwk.alg);
  return alg === undefined ? undefined : { kid: jwk.kid, alg };
}

function importKey(jwk: Jwk, alg: Alg): Promise<CryptoKey> {
  const spec = ALGORITHMS[alg];
  // Only the public members: a JWK's key_ops/ext must not widen or block the import.
  const pub: JsonWebKey = { kty: spec.kty };
  for (const m of spec.members) (pub as Record<string, unknown>)[m] = jwk[m];
  return crypto.subtle.importKey('jwk', pub, spec.import, false, ['verify']);
}
