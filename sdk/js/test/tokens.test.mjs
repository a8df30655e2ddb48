// tokens.verify: local RFC 9068 verification against the cached JWKS, with a
// refresh when a rotation brings a kid the cache has not seen.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TruSec, TruSecError } from '@trusec/sdk';
import { server } from './support/fixtures.mjs';
import { tokenSource } from './support/tokens.mjs';

const srv = await server();
const { trusec, who, mint, creds } = await tokenSource(srv);

/** A fetch that counts JWKS downloads. */
function countingJwks() {
  const counter = { jwks: 0 };
  counter.fetch = (url, init) => {
    if (String(url).endsWith('/.well-known/jwks.json')) counter.jwks++;
    return fetch(url, init);
  };
  return counter;
}

function kidOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')).kid;
}

function tamper(jwt, claims) {
  const [h, p, s] = jwt.split('.');
  const payload = { ...JSON.parse(Buffer.from(p, 'base64url')), ...claims };
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}

const invalidToken = (e) => e instanceof TruSecError && e.type === 'invalid_token' && e.status === 401;

describe('tokens.verify', () => {
  test('a fresh access token verifies and yields its claims', async () => {
    const { accessToken } = await mint();
    const claims = await trusec.tokens.verify(accessToken);
    assert.equal(claims.iss, srv.issuer);
    assert.equal(claims.sub, who.id);
    assert.equal(claims.aud, srv.issuer);
    assert.equal(claims.scope, 'openid email offline_access');
    assert.match(claims.clientId, /^client_/);
  });

  test('after a key rotation, an unknown kid refreshes the cached JWKS once', async () => {
    const counter = countingJwks();
    const verifier = new TruSec({ issuer: srv.issuer, fetch: counter.fetch, jwksCooldownSeconds: 0 });
    const before = await mint();
    await verifier.tokens.verify(before.accessToken);
    assert.equal(counter.jwks, 1);
    await verifier.tokens.verify(before.accessToken);
    assert.equal(counter.jwks, 1, 'cached');

    // The JWKS publishes current and next keys, so one rotation signs with a
    // key the cache already holds; the second brings a kid it has never seen.
    await trusec.signingKeys.rotate();
    const rotation = await trusec.signingKeys.rotate();
    assert.ok(rotation.rotated.length > 0);
    const after = await mint();
    assert.notEqual(kidOf(after.accessToken), kidOf(before.accessToken));
    const claims = await verifier.tokens.verify(after.accessToken);
    assert.equal(claims.sub, who.id);
    assert.equal(counter.jwks, 2, 'one refresh on the miss');
    // The retired key is still published, so tokens it signed still verify.
    await verifier.tokens.verify(before.accessToken);
    assert.equal(counter.jwks, 2);
  });

  test('a cache older than jwksMaxAgeSeconds is downloaded again', async (t) => {
    const counter = countingJwks();
    const verifier = new TruSec({ issuer: srv.issuer, fetch: counter.fetch, jwksMaxAgeSeconds: 60 });
    const { accessToken } = await mint();
    await verifier.tokens.verify(accessToken);
    const now = Date.now();
    t.mock.method(Date, 'now', () => now + 61_000);
    await verifier.tokens.verify(accessToken);
    assert.equal(counter.jwks, 2);
  });

  test('within the cooldown an unknown kid is refused without a new download', async () => {
    const counter = countingJwks();
    const verifier = new TruSec({ issuer: srv.issuer, fetch: counter.fetch });
    const token = (await mint()).accessToken;
    await verifier.tokens.verify(token);
    const [h, p, s] = token.split('.');
    const header = { ...JSON.parse(Buffer.from(h, 'base64url')), kid: 'sig_made_up' };
    const forged = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${p}.${s}`;
    await assert.rejects(verifier.tokens.verify(forged), invalidToken);
    await assert.rejects(verifier.tokens.verify(forged), invalidToken);
    assert.equal(counter.jwks, 1);
  });

  test('refuses tampered claims, another audience, another issuer, an ID token, garbage', async () => {
    const trusec = new TruSec({ issuer: srv.issuer });
    const tokens = await mint();
    await assert.rejects(trusec.tokens.verify(tamper(tokens.accessToken, { sub: 'user_someone_else' })), invalidToken);
    await assert.rejects(trusec.tokens.verify(tokens.accessToken, { audience: 'https://api.example.com' }), (e) =>
      invalidToken(e) && /audience/.test(e.message),
    );
    const otherEnv = new TruSec({ issuer: `${srv.issuer}/env/test` });
    await assert.rejects(otherEnv.tokens.verify(tokens.accessToken), invalidToken);
    await assert.rejects(trusec.tokens.verify(tokens.idToken), (e) => invalidToken(e) && /typ/.test(e.message));
    for (const junk of ['', 'a.b', 'a.b.c', 'x'.repeat(20_000), tokens.refreshToken]) {
      await assert.rejects(trusec.tokens.verify(junk), invalidToken);
    }
    const [h, p] = tokens.accessToken.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: kidOf(tokens.accessToken) })).toString('base64url')}.${p}.`;
    await assert.rejects(trusec.tokens.verify(none), invalidToken);
    await assert.rejects(trusec.tokens.verify(`${h}.${p}.AAAA`), invalidToken);
  });

  test('an expired token is refused (checked with the clock moved forward)', async (t) => {
    const trusec = new TruSec({ issuer: srv.issuer, jwksMaxAgeSeconds: 86_400 });
    const { accessToken } = await mint();
    const claims = await trusec.tokens.verify(accessToken);
    t.mock.method(Date, 'now', () => (claims.exp + 1) * 1000);
    await assert.rejects(trusec.tokens.verify(accessToken), (e) => invalidToken(e) && /expired/.test(e.message));
  });

  test('verifyIdToken: signature, iss, aud (the client), nonce; never an access token', async () => {
    const { idToken, accessToken } = await mint({ nonce: 'n-42' });
    const verifier = new TruSec({ issuer: srv.issuer, clientId: creds.clientId });
    const claims = await verifier.tokens.verifyIdToken(idToken, { nonce: 'n-42' });
    assert.equal(claims.sub, who.id);
    assert.equal(claims.aud, creds.clientId);
    assert.equal(claims.nonce, 'n-42');
    assert.equal(typeof claims.authTime, 'number');
    await assert.rejects(verifier.tokens.verifyIdToken(idToken, { nonce: 'other' }), (e) => invalidToken(e) && /nonce/.test(e.message));
    await assert.rejects(verifier.tokens.verifyIdToken(accessToken), invalidToken);
    const otherClient = new TruSec({ issuer: srv.issuer, clientId: 'client_someone_else' });
    await assert.rejects(otherClient.tokens.verifyIdToken(idToken), (e) => invalidToken(e) && /audience/.test(e.message));
    await assert.rejects(verifier.tokens.verifyIdToken(tamper(idToken, { nonce: 'n-43' }), { nonce: 'n-43' }), invalidToken);
  });
});
