/**
 * OAuth 2.0 / OIDC for apps: the authorization URL (RFC 6749 §4.1.1 with
 * RFC 7636 PKCE), the code exchange and refresh (RFC 6749 §4.1.3, §6), the
 * client credentials grant (§4.4), and revocation (RFC 7009), at the
 * endpoints the discovery document names. Each may name the API the tokens
 * are for with RFC 8707 `resource`.
 */
import { TruSecError, configError } from './errors.js';
import { type Context, type Discovery, required } from './context.js';
import { fromWire } from './wire.js';

export interface AuthorizationUrlParams {
  redirectUri: string;
  /** Scopes, e.g. `['openid', 'email', 'read:users']` (or one space-separated string). */
  scope: string[] | string;
  /** An unguessable value bound to the browser's session, checked on return (RFC 6749 §10.12). */
  state: string;
  /** `await generateCodeChallenge(verifier)`; required for public clients (no client secret). */
  codeChallenge?: string;
  codeChallengeMethod?: 'S256';
  nonce?: string;
  prompt?: 'none' | 'login' | 'consent' | (string & {});
  /** OIDC `max_age`: seconds since the last sign-in after which the user must sign in again. */
  maxAge?: number;
  /**
   * The APIs (registered resource identifiers) the sign-in is for (RFC 8707
   * §2.1): one `resource` parameter each. Each token request then names at
   * most one of them.
   */
  resource?: string | string[];
}

export interface ExchangeCodeParams {
  code: string;
  redirectUri: string;
  codeVerifier?: string;
  /** The one API of the authorization request this access token is for (RFC 8707 §2.2); by default the first named. */
  resource?: string;
}

export interface RefreshParams {
  refreshToken: string;
  scope?: string[] | string;
  /** An API of the original grant this access token is for (RFC 8707 §2.2). */
  resource?: string;
}

export interface ClientCredentialsParams {
  /** By default every scope of the resource the client may use. */
  scope?: string[] | string;
  /** The API the token is for (RFC 8707 §2.2); by default the client's `default_resource`. */
  resource?: string;
}

export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  /** The scopes granted, space-separated (RFC 6749 §5.1). */
  scope: string;
  tokenType: string;
}

export class OAuth {
  constructor(private readonly ctx: Context) {}

  /** The discovery document (fetched once, then cached). */
  discover(): Promise<Discovery> {
    return this.ctx.discovery();
  }

  /**
   * The URL to send the browser to. Synchronous: it uses the discovered
   * `authorization_endpoint` once `discover()` (or any other call) has
   * fetched it, and the contract's `{issuer}/oauth/authorize` before that.
   */
  getAuthorizationUrl(params: AuthorizationUrlParams): string {
    const clientId = this.ctx.requireClientId();
    required(params?.redirectUri, 'redirectUri');
    required(params.state, 'state');
    const scope = scopeString(params.scope);
    required(scope, 'scope');
    const method = params.codeChallengeMethod ?? (params.codeChallenge === undefined ? undefined : 'S256');
    if (method !== undefined && method !== 'S256') {
      throw new TruSecError({ type: 'invalid_request', param: 'codeChallengeMethod', message: 'TruSec accepts S256 only' });
    }
    if (params.codeChallenge === undefined && this.ctx.clientSecret === undefined) {
      throw new TruSecError({
        type: 'invalid_request',
        param: 'codeChallenge',
        message: 'a public client (no client secret) must use PKCE (RFC 7636): pass codeChallenge',
      });
    }
    const endpoint = this.ctx.discovered?.authorizationEndpoint ?? `${this.ctx.issuer}/oauth/authorize`;
    const url = new URL(endpoint);
    const q = url.searchParams;
    q.set('response_type', 'code');
    q.set('client_id', clientId);
    q.set('redirect_uri', params.redirectUri);
    q.set('scope', scope);
    q.set('state', params.state);
    if (params.codeChallenge !== undefined) {
      q.set('code_challenge', params.codeChallenge);
      q.set('code_challenge_method', 'S256');
    }
    if (params.nonce !== undefined) q.set('nonce', params.nonce);
    if (params.prompt !== undefined) q.set('prompt', params.prompt);
    if (params.maxAge !== undefined) q.set('max_age', String(params.maxAge));
    const resources = params.resource === undefined ? [] : Array.isArray(params.resource) ? params.resource : [params.resource];
    for (const r of resources) q.append('resource', resourceIndicator(r));
    return url.toString();
  }

  /**
   * Reads the authorization response the browser brought back to the
   * redirect URI: checks `state` (RFC 6749 §10.12) and `iss` (RFC 9207 §2.4,
   * against mix-up attacks), turns an error response (§4.1.2.1, e.g. the
   * user denied consent: `access_denied`) into a `TruSecError`, and returns
   * the code.
   */
  parseCallback(callbackUrl: string | URL, expected: { state: string }): { code: string } {
    required(expected?.state, 'state');
    const params = new URL(callbackUrl).searchParams;
    const refuse = (message: string): TruSecError => new TruSecError({ type: 'invalid_request', message });
    if (params.get('state') !== expected.state) throw refuse('the state does not match the one sent: not this browser\'s sign-in');
    const iss = params.get('iss');
    const announced = this.ctx.discovered?.['authorizationResponseIssParameterSupported'] === true;
    if (iss === null ? announced : iss !== this.ctx.issuer) throw refuse('the response comes from another issuer');
    const error = params.get('error');
    if (error !== null) {
      throw new TruSecError({ type: error, message: params.get('error_description') ?? error });
    }
    const code = params.get('code');
    if (code === null || code === '') throw refuse('the response carries no code');
    return { code };
  }

  /** Trades the authorization code for tokens (RFC 6749 §4.1.3; RFC 7636 §4.5). */
  async exchangeCode(params: ExchangeCodeParams): Promise<TokenSet> {
    required(params?.code, 'code');
    required(params.redirectUri, 'redirectUri');
    const form: Record<string, string> = {
      grant_type: 'authorization_code',
      code: params.code,
      redirect_uri: params.redirectUri,
    };
    if (params.codeVerifier !== undefined) form['code_verifier'] = params.codeVerifier;
    if (params.resource !== undefined) form['resource'] = oneResource(params.resource);
    return tokenSet(await this.post('tokenEndpoint', form));
  }

  /** A new token set for a refresh token (RFC 6749 §6); the old refresh token is spent. */
  async refresh(params: RefreshParams): Promise<TokenSet> {
    required(params?.refreshToken, 'refreshToken');
    const form: Record<string, string> = { grant_type: 'refresh_token', refresh_token: params.refreshToken };
    if (params.scope !== undefined) form['scope'] = scopeString(params.scope);
    if (params.resource !== undefined) form['resource'] = oneResource(params.resource);
    return tokenSet(await this.post('tokenEndpoint', form));
  }

  /**
   * An access token for the client itself, no user (RFC 6749 §4.4): a
   * backend calling an API. Needs a confidential client (a client secret)
   * registered with the `client_credentials` grant. No refresh or ID token
   * (§4.4.3): ask again when it expires.
   */
  async clientCredentials(params: ClientCredentialsParams = {}): Promise<TokenSet> {
    if (this.ctx.clientSecret === undefined) {
      throw configError('clientCredentials needs a confidential client: pass clientSecret (RFC 6749 §4.4)');
    }
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    if (params.scope !== undefined) form['scope'] = scopeString(params.scope);
    if (params.resource !== undefined) form['resource'] = oneResource(params.resource);
    return tokenSet(await this.post('tokenEndpoint', form));
  }

  /** Revokes an access or refresh token (RFC 7009 §2.1). */
  async revoke(params: { token: string; tokenTypeHint?: 'access_token' | 'refresh_token' }): Promise<void> {
    required(params?.token, 'token');
    const form: Record<string, string> = { token: params.token };
    if (params.tokenTypeHint !== undefined) form['token_type_hint'] = params.tokenTypeHint;
    await this.post('revocationEndpoint', form);
  }

  /** A form POST to an endpoint of the discovery document, with the client's authentication. */
  private async post(endpoint: 'tokenEndpoint' | 'revocationEndpoint', form: Record<string, string>): Promise<unknown> {
    const clientId = this.ctx.requireClientId();
    const discovery = await this.ctx.discovery();
    const url = discovery[endpoint];
    if (typeof url !== 'string') {
      throw new TruSecError({ type: 'discovery_error', message: `the discovery document names no ${endpoint}` });
    }
    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
    };
    const body = new URLSearchParams(form);
    const secret = this.ctx.clientSecret;
    if (secret === undefined) {
      body.set('client_id', clientId); // a public client identifies itself (RFC 6749 §3.2.1)
    } else {
      switch (this.ctx.clientAuthMethod) {
        case 'client_secret_basic':
          // RFC 6749 §2.3.1: HTTP Basic, each part form-encoded first.
          headers['authorization'] = `Basic ${btoa(`${formEncode(clientId)}:${formEncode(secret)}`)}`;
          break;
        case 'client_secret_post':
          body.set('client_id', clientId);
          body.set('client_secret', secret);
          break;
      }
    }
    const answer = await this.ctx.http.send(url, { method: 'POST', headers, body: body.toString() });
    return answer.body;
  }
}

function scopeString(scope: string[] | string): string {
  return Array.isArray(scope) ? scope.join(' ') : scope;
}

/**
 * RFC 8707 §2: a resource is an absolute URI without a fragment. Refused
 * here as the server would (`invalid_target`), before a browser is sent
 * away with it; whether it is registered is the server's to say.
 */
function resourceIndicator(value: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (value as string).includes('#')) {
    throw new TruSecError({
      type: 'invalid_target',
      param: 'resource',
      message: 'resource must be an absolute URI without a fragment (RFC 8707 §2)',
    });
  }
  return value as string;
}

/** A token request names one resource: every TruSec access token has exactly one audience (RFC 8707 §2.2). */
function oneResource(value: unknown): string {
  if (Array.isArray(value)) {
    throw new TruSecError({
      type: 'invalid_target',
      param: 'resource',
      message: 'name one resource per token request: each access token has one audience (RFC 8707 §2.2)',
    });
  }
  return resourceIndicator(value);
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/** RFC 6749 §5.1: `access_token` and `token_type` are required; everything else is checked as it comes. */
function tokenSet(body: unknown): TokenSet {
  const t = fromWire<Partial<TokenSet>>(body);
  if (typeof t?.accessToken !== 'string' || typeof t.tokenType !== 'string' || t.tokenType.toLowerCase() !== 'bearer') {
    throw new TruSecError({ type: 'invalid_response', message: 'the token endpoint did not return a bearer access token' });
  }
  const out: TokenSet = {
    accessToken: t.accessToken,
    expiresIn: typeof t.expiresIn === 'number' ? t.expiresIn : 0,
    scope: typeof t.scope === 'string' ? t.scope : '',
    tokenType: t.tokenType,
  };
  if (typeof t.refreshToken === 'string') out.refreshToken = t.refreshToken;
  if (typeof t.idToken === 'string') out.idToken = t.idToken;
  return out;
}
