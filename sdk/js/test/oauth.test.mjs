// The whole sign-in through the hosted pages, driven with fetch: PKCE
// (public client) and the confidential authorization-code flow, then
// exchangeCode, users.me, refresh and revoke.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TruSec, TruSecError, generateCodeChallenge, generateCodeVerifier } from '@trusec/sdk';
import { signIn } from './support/login.mjs';
import { REDIRECT_URI, client, server, user } from './support/fixtures.mjs';

const srv = await server();

async function login(trusec, who, params) {
  const url = trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, state: 'st-1', ...params });
  const back = new URL(await signIn(url, { ...who, leaveAt: REDIRECT_URI }));
  assert.equal(back.searchParams.get('state'), 'st-1');
  // RFC 9207: the response names its issuer.
  assert.equal(back.searchParams.get('iss'), srv.issuer);
  const code = back.searchParams.get('code');
  assert.ok(code, `a code came back: ${back}`);
  return code;
}

describe('PKCE with a public client', () => {
  test('authorize, sign in, exchange, users.me, refresh, revoke', async () => {
    const { clientId } = await client(srv, 'public');
    const ada = await user(srv);
    const trusec = new TruSec({ issuer: srv.issuer, clientId });
    const verifier = generateCodeVerifier();
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/);
    const codeChallenge = await generateCodeChallenge(verifier);

    const url = new URL(
      trusec.oauth.getAuthorizationUrl({
        redirectUri: REDIRECT_URI,
        scope: ['openid', 'email', 'offline_access'],
        state: 'st-1',
        codeChallenge,
        nonce: 'n-1',
      }),
    );
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('scope'), 'openid email offline_access');
    assert.equal(url.searchParams.get('response_type'), 'code');

    const code = await login(trusec, ada, { scope: ['openid', 'email', 'offline_access'], codeChallenge });
    // A wrong verifier is refused (RFC 7636 §4.6) and the error is mapped.
    await assert.rejects(
      trusec.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI, codeVerifier: generateCodeVerifier() }),
      (e) => e instanceof TruSecError && e.type === 'invalid_grant' && e.status === 400,
    );

    const code2 = await login(trusec, ada, { scope: ['openid', 'email', 'offline_access'], codeChallenge });
    const tokens = await trusec.oauth.exchangeCode({ code: code2, redirectUri: REDIRECT_URI, codeVerifier: verifier });
    assert.equal(tokens.tokenType, 'Bearer');
    assert.equal(tokens.scope, 'openid email offline_access');
    assert.ok(tokens.expiresIn > 0);
    assert.ok(tokens.refreshToken && tokens.idToken);

    const me = await trusec.users.me({ accessToken: tokens.accessToken });
    assert.deepEqual(me.id, ada.id);
    assert.equal(me.email, ada.email);
    assert.equal(me.metadata, undefined, 'metadata only with read:users');

    const refreshed = await trusec.oauth.refresh({ refreshToken: tokens.refreshToken });
    assert.notEqual(refreshed.refreshToken, tokens.refreshToken, 'rotated');
    // Reuse of the spent refresh token is refused (and revokes the family).
    await assert.rejects(trusec.oauth.refresh({ refreshToken: tokens.refreshToken }), { type: 'invalid_grant' });
  });
});

describe('authorization code with a confidential client', () => {
  test('client_secret_basic; read:users releases the whole user; revoke ends the token', async () => {
    const { clientId, clientSecret } = await client(srv, 'confidential');
    const boss = await user(srv, { admin: true });
    const trusec = new TruSec({ issuer: srv.issuer, clientId, clientSecret, apiKey: srv.secretKey });
    const code = await login(trusec, boss, { scope: ['openid', 'read:users', 'offline_access'] });
    const tokens = await trusec.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI });
    assert.equal(tokens.scope, 'openid read:users offline_access');

    const me = await trusec.users.me({ accessToken: tokens.accessToken });
    assert.equal(me.email, boss.email);
    assert.deepEqual(me.groups, ['trusec-admins']);
    assert.equal(me.hasPassword, true, 'camelCase fields');
    assert.deepEqual(me.metadata, {});

    const next = await trusec.oauth.refresh({ refreshToken: tokens.refreshToken });
    await trusec.oauth.revoke({ token: next.refreshToken, tokenTypeHint: 'refresh_token' });
    await assert.rejects(trusec.oauth.refresh({ refreshToken: next.refreshToken }), { type: 'invalid_grant', status: 400 });

    await trusec.oauth.revoke({ token: next.accessToken });
    await assert.rejects(trusec.users.me({ accessToken: next.accessToken }), { type: 'unauthenticated', status: 401 });
  });

  test('client_secret_post for a client registered with it', async () => {
    const creds = await client(srv, 'confidential', ['openid', 'offline_access'], { token_endpoint_auth_method: 'client_secret_post' });
    const who = await user(srv);
    const basic = new TruSec({ issuer: srv.issuer, ...creds });
    const post = new TruSec({ issuer: srv.issuer, ...creds, clientAuthMethod: 'client_secret_post' });
    const code = await login(post, who, { scope: ['openid', 'offline_access'] });
    await assert.rejects(basic.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI }), { type: 'invalid_client' });
    const code2 = await login(post, who, { scope: ['openid', 'offline_access'] });
    const tokens = await post.oauth.exchangeCode({ code: code2, redirectUri: REDIRECT_URI });
    await post.oauth.revoke({ token: tokens.refreshToken });
    await assert.rejects(post.oauth.refresh({ refreshToken: tokens.refreshToken }), { type: 'invalid_grant' });
  });

  test('a wrong client secret is invalid_client', async () => {
    const { clientId } = await client(srv, 'confidential');
    const trusec = new TruSec({ issuer: srv.issuer, clientId, clientSecret: 'trusec_cs_wrong' });
    await assert.rejects(trusec.oauth.exchangeCode({ code: 'x', redirectUri: REDIRECT_URI }), {
      type: 'invalid_client',
      status: 401,
    });
  });
});

describe('parseCallback', () => {
  test('a denied consent is access_denied', async () => {
    const { clientId, clientSecret } = await client(srv, 'confidential');
    const trusec = new TruSec({ issuer: srv.issuer, clientId, clientSecret });
    await trusec.oauth.discover();
    const url = trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: ['openid'], state: 'st-2' });
    const back = await signIn(url, { ...(await user(srv)), decision: 'deny', leaveAt: REDIRECT_URI });
    assert.throws(() => trusec.oauth.parseCallback(back, { state: 'st-2' }), { type: 'access_denied' });
  });

  test('state and iss must match (RFC 6749 §10.12, RFC 9207)', async () => {
    const trusec = new TruSec({ issuer: srv.issuer, clientId: 'client_x' });
    const ok = `${REDIRECT_URI}?code=c1&state=s&iss=${encodeURIComponent(srv.issuer)}`;
    assert.deepEqual(trusec.oauth.parseCallback(ok, { state: 's' }), { code: 'c1' });
    assert.throws(() => trusec.oauth.parseCallback(ok, { state: 'other' }), { type: 'invalid_request' });
    const mixUp = `${REDIRECT_URI}?code=c1&state=s&iss=${encodeURIComponent('https://evil.example')}`;
    assert.throws(() => trusec.oauth.parseCallback(mixUp, { state: 's' }), { type: 'invalid_request' });
    // Once discovery says the server sends iss, a response without it is refused.
    await trusec.oauth.discover();
    assert.throws(() => trusec.oauth.parseCallback(`${REDIRECT_URI}?code=c1&state=s`, { state: 's' }), /another issuer/);
    assert.throws(() => trusec.oauth.parseCallback(`${REDIRECT_URI}?state=s&iss=${encodeURIComponent(srv.issuer)}`, { state: 's' }), /no code/);
  });
});

describe('discovery', () => {
  test('is fetched once and then used for the authorization URL', async () => {
    let fetches = 0;
    const counting = (url, init) => {
      if (String(url).includes('/.well-known/openid-configuration')) fetches++;
      return fetch(url, init);
    };
    const trusec = new TruSec({ issuer: srv.issuer, clientId: 'client_x', fetch: counting });
    const [a, b] = await Promise.all([trusec.oauth.discover(), trusec.oauth.discover()]);
    await trusec.oauth.discover();
    assert.equal(fetches, 1);
    assert.equal(a, b);
    assert.equal(a.issuer, srv.issuer);
    const url = trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: 'openid', state: 's', codeChallenge: 'c'.repeat(43) });
    assert.ok(url.startsWith(a.authorizationEndpoint + '?'));
  });

  test('a document for another issuer is refused (OIDC Discovery §4.3)', async () => {
    const trusec = new TruSec({ issuer: `${srv.issuer}/env/test`, clientId: 'client_x', fetch: (u, i) => fetch(String(u).replace('/env/test', ''), i) });
    await assert.rejects(trusec.oauth.discover(), { type: 'discovery_error' });
  });

  test('a public client must use PKCE; only S256', () => {
    const trusec = new TruSec({ issuer: srv.issuer, clientId: 'client_x' });
    assert.throws(() => trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: 'openid', state: 's' }), {
      type: 'invalid_request',
      param: 'codeChallenge',
    });
    assert.throws(
      () => trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: 'openid', state: 's', codeChallenge: 'x', codeChallengeMethod: 'plain' }),
      { param: 'codeChallengeMethod' },
    );
  });

  test('the device flow is not offered (the server has none yet)', () => {
    const trusec = new TruSec({ issuer: srv.issuer, clientId: 'client_x' });
    assert.equal(trusec.oauth.deviceAuthorization, undefined);
    assert.equal(trusec.oauth.pollDeviceToken, undefined);
  });
});

test('PKCE challenge is the RFC 7636 Appendix B example', async () => {
  assert.equal(
    await generateCodeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  );
  await assert.rejects(generateCodeChallenge('short'), { type: 'invalid_request', param: 'codeVerifier' });
});
