// API resources (RFC 8707): `resource` on the authorization URL (several,
// §2.1), on exchangeCode, refresh and clientCredentials (one, §2.2); the
// access token's `aud` is the resource, and tokens.verify checks it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TruSec, TruSecError, generateCodeChallenge, generateCodeVerifier } from '@trusec/sdk';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { signIn } from './support/login.mjs';
import { REDIRECT_URI, client, resource, server, user } from './support/fixtures.mjs';

const srv = await server();
const verifier = new TruSec({ issuer: srv.issuer });

/** Signs `who` in with `params` (resource, scope, PKCE) and returns the callback URL. */
async function callback(trusec, who, params) {
  const url = trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, state: 'st-r', ...params });
  return signIn(url, { ...who, leaveAt: REDIRECT_URI });
}

const jwks = createRemoteJWKSet(new URL((await verifier.oauth.discover()).jwksUri));

/** A second opinion from an independent JWT library (jose): RFC 9068 `typ`, `iss`, `aud`, signature. */
async function joseAgrees(token, audience) {
  const { payload: p, protectedHeader } = await jwtVerify(token, jwks, { issuer: srv.issuer, audience, typ: 'at+jwt' });
  return { ...p, alg: protectedHeader.alg };
}

/** The JWT payload, unverified: to look at what the server put there. */
function payload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

describe('a sign-in for an API', () => {
  test('PKCE with resource: aud is the resource; verify with it as audience, not the issuer', async () => {
    const orders = await resource(srv, 'shop');
    const { clientId } = await client(srv, 'public', ['openid', 'offline_access', orders.read, orders.write]);
    const trusec = new TruSec({ issuer: srv.issuer, clientId });
    const codeVerifier = generateCodeVerifier();
    const codeChallenge = await generateCodeChallenge(codeVerifier);
    const params = { scope: ['openid', 'offline_access', orders.read], codeChallenge, resource: orders.identifier };
    const url = new URL(trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, state: 's', ...params }));
    assert.deepEqual(url.searchParams.getAll('resource'), [orders.identifier]);

    const { code } = trusec.oauth.parseCallback(await callback(trusec, await user(srv), params), { state: 'st-r' });
    const tokens = await trusec.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI, codeVerifier, resource: orders.identifier });
    assert.equal(payload(tokens.accessToken).aud, orders.identifier);
    assert.ok(tokens.refreshToken && tokens.idToken);

    const claims = await verifier.tokens.verify(tokens.accessToken, { audience: orders.identifier });
    assert.equal(claims.aud, orders.identifier);
    assert.equal(claims.scope, orders.read, 'only the resource\'s scopes');
    assert.equal(claims.clientId, clientId);
    await assert.rejects(verifier.tokens.verify(tokens.accessToken), { type: 'invalid_token', status: 401 });
    await assert.rejects(verifier.tokens.verify(tokens.accessToken, { audience: srv.issuer }), { type: 'invalid_token' });
    assert.equal((await joseAgrees(tokens.accessToken, orders.identifier)).alg, 'ES256');
    await assert.rejects(joseAgrees(tokens.accessToken, srv.issuer), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    // A token for the API is not one for TruSec's own userinfo.
    await assert.rejects(trusec.users.me({ accessToken: tokens.accessToken }), { status: 401 });
    // The ID token is still the client's (OIDC Core §2).
    assert.equal((await trusec.tokens.verifyIdToken(tokens.idToken)).aud, clientId);

    const renewed = await trusec.oauth.refresh({ refreshToken: tokens.refreshToken, resource: orders.identifier });
    assert.equal((await verifier.tokens.verify(renewed.accessToken, { audience: orders.identifier })).scope, orders.read);
  });

  test('several resources at authorization (§2.1), one per token request (§2.2)', async () => {
    const [books, music] = [await resource(srv, 'books'), await resource(srv, 'music')];
    const creds = await client(srv, 'confidential', ['openid', 'offline_access', books.read, music.read]);
    const trusec = new TruSec({ issuer: srv.issuer, ...creds });
    const params = { scope: ['openid', 'offline_access', books.read, music.read], resource: [books.identifier, music.identifier] };
    const url = new URL(trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, state: 's', ...params }));
    assert.deepEqual(url.searchParams.getAll('resource'), [books.identifier, music.identifier]);
    const who = await user(srv);

    // Without resource: the first one named at authorization.
    const first = trusec.oauth.parseCallback(await callback(trusec, who, params), { state: 'st-r' });
    const byDefault = await trusec.oauth.exchangeCode({ code: first.code, redirectUri: REDIRECT_URI });
    assert.equal((await verifier.tokens.verify(byDefault.accessToken, { audience: books.identifier })).scope, books.read);

    const { code } = trusec.oauth.parseCallback(await callback(trusec, who, params), { state: 'st-r' });
    const tokens = await trusec.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI, resource: music.identifier });
    assert.equal((await verifier.tokens.verify(tokens.accessToken, { audience: music.identifier })).scope, music.read);
    await assert.rejects(verifier.tokens.verify(tokens.accessToken, { audience: books.identifier }), { type: 'invalid_token' });

    // A refresh may ask for any resource of the grant, never another.
    const other = await resource(srv, 'films');
    await assert.rejects(
      trusec.oauth.refresh({ refreshToken: tokens.refreshToken, resource: other.identifier }),
      (e) => e instanceof TruSecError && e.type === 'invalid_target' && e.status === 400,
    );
    // The refused request spent nothing: the refresh token still works.
    const renewed = await trusec.oauth.refresh({ refreshToken: tokens.refreshToken, resource: books.identifier });
    assert.equal((await verifier.tokens.verify(renewed.accessToken, { audience: books.identifier })).aud, books.identifier);
    // One resource per token request: the SDK does not even send two.
    await assert.rejects(
      trusec.oauth.refresh({ refreshToken: renewed.refreshToken, resource: [books.identifier, music.identifier] }),
      { type: 'invalid_target', param: 'resource' },
    );
  });
});

describe('invalid_target', () => {
  test('an unknown resource at authorization comes back as invalid_target (RFC 8707 §2)', async () => {
    const creds = await client(srv, 'confidential', ['openid']);
    const trusec = new TruSec({ issuer: srv.issuer, ...creds });
    const params = { scope: ['openid'], resource: 'https://api.example.com/nobody-registered-this' };
    const back = await signIn(trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, state: 'st-u', ...params }), {
      email: 'unused',
      password: 'unused',
      leaveAt: REDIRECT_URI,
    });
    assert.throws(() => trusec.oauth.parseCallback(back, { state: 'st-u' }), (e) => e instanceof TruSecError && e.type === 'invalid_target');
  });

  test('a resource the code was not granted for, at the token endpoint', async () => {
    const [kept, stranger] = [await resource(srv, 'kept'), await resource(srv, 'stranger')];
    const creds = await client(srv, 'confidential', ['openid', kept.read, stranger.read]);
    const trusec = new TruSec({ issuer: srv.issuer, ...creds });
    const params = { scope: ['openid', kept.read], resource: kept.identifier };
    const { code } = trusec.oauth.parseCallback(await callback(trusec, await user(srv), params), { state: 'st-r' });
    await assert.rejects(trusec.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI, resource: stranger.identifier }), {
      type: 'invalid_target',
      status: 400,
    });
  });

  test('a malformed resource is refused before anything is sent', () => {
    const trusec = new TruSec({ issuer: srv.issuer, clientId: 'client_x', clientSecret: 'trusec_cs_x' });
    for (const bad of ['orders', '', 'https://api.example.com/x#frag', 42]) {
      assert.throws(
        () => trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: 'openid', state: 's', resource: bad }),
        { type: 'invalid_target', param: 'resource' },
      );
    }
  });
});

describe('client credentials', () => {
  test('a backend gets a token for the API, in the resource\'s algorithm', async () => {
    const reports = await resource(srv, 'reports', { signing_alg: 'RS256', access_token_lifetime_seconds: 120 });
    const creds = await client(srv, 'confidential', [reports.read, reports.write], { grant_types: ['client_credentials'] });
    const backend = new TruSec({ issuer: srv.issuer, ...creds });

    const tokens = await backend.oauth.clientCredentials({ scope: [reports.read], resource: reports.identifier });
    assert.equal(tokens.tokenType, 'Bearer');
    assert.equal(tokens.scope, reports.read);
    assert.ok(tokens.expiresIn > 0 && tokens.expiresIn <= 120, 'the resource\'s lifetime');
    assert.equal(tokens.refreshToken, undefined, 'RFC 6749 §4.4.3');
    assert.equal(tokens.idToken, undefined);
    const claims = await verifier.tokens.verify(tokens.accessToken, { audience: reports.identifier });
    assert.equal(claims.sub, creds.clientId, 'the client acts for itself');
    assert.equal((await joseAgrees(tokens.accessToken, reports.identifier)).alg, 'RS256');
    await assert.rejects(verifier.tokens.verify(tokens.accessToken), { type: 'invalid_token' });

    // Without scope: every scope of the resource the client may use.
    const all = await backend.oauth.clientCredentials({ resource: reports.identifier });
    assert.deepEqual(all.scope.split(' ').sort(), [reports.read, reports.write].sort());
    // Resource scopes without a resource, and no default_resource: which API?
    await assert.rejects(backend.oauth.clientCredentials({ scope: reports.read }), { type: 'invalid_target', status: 400 });
    await assert.rejects(backend.oauth.clientCredentials({ resource: 'https://api.example.com/unknown' }), { type: 'invalid_target' });
  });

  test('default_resource stands in for resource; a public client cannot use the grant', async () => {
    const metrics = await resource(srv, 'metrics', { signing_alg: 'EdDSA' });
    const creds = await client(srv, 'confidential', [metrics.read], {
      grant_types: ['client_credentials'],
      default_resource: metrics.identifier,
    });
    const backend = new TruSec({ issuer: srv.issuer, ...creds });
    const tokens = await backend.oauth.clientCredentials({ scope: metrics.read });
    assert.equal((await verifier.tokens.verify(tokens.accessToken, { audience: metrics.identifier })).scope, metrics.read);
    assert.equal((await joseAgrees(tokens.accessToken, metrics.identifier)).alg, 'EdDSA');

    const pub = new TruSec({ issuer: srv.issuer, clientId: creds.clientId });
    await assert.rejects(pub.oauth.clientCredentials({ resource: metrics.identifier }), { type: 'invalid_configuration' });
  });
});
