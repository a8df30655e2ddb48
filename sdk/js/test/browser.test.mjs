// In a browser (a global `window` with a `document`), the SDK refuses
// secret keys and client secrets outright, and a public key only builds
// authorization URLs and does PKCE: management calls fail before any
// request is sent. (Each test file runs in its own process, so faking the
// globals here touches no other test.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TruSec, generateCodeChallenge, generateCodeVerifier } from '@trusec/sdk';

globalThis.window = globalThis;
globalThis.document = {};

const issuer = 'https://auth.example.com';
let sent = 0;
const fetch = () => {
  sent++;
  throw new Error('nothing may be sent');
};

test('a secret or test key is refused in a browser', () => {
  for (const apiKey of ['trusec_sk_abc', 'trusec_test_abc']) {
    assert.throws(() => new TruSec({ apiKey, issuer, fetch }), { name: 'TruSecError', type: 'invalid_configuration' });
  }
});

test('a client secret is refused in a browser', () => {
  assert.throws(() => new TruSec({ issuer, clientId: 'client_1', clientSecret: 'trusec_cs_abc', fetch }), {
    type: 'invalid_configuration',
  });
});

test('a public key builds authorization URLs with PKCE', async () => {
  const trusec = new TruSec({ apiKey: 'trusec_pk_abc', issuer, clientId: 'client_1', fetch });
  const verifier = generateCodeVerifier();
  const url = new URL(
    trusec.oauth.getAuthorizationUrl({
      redirectUri: 'https://app.example.com/callback',
      scope: ['openid', 'email'],
      state: 'st',
      codeChallenge: await generateCodeChallenge(verifier),
      prompt: 'login',
    }),
  );
  assert.equal(url.origin + url.pathname, `${issuer}/oauth/authorize`);
  assert.equal(url.searchParams.get('client_id'), 'client_1');
  assert.equal(url.searchParams.get('prompt'), 'login');
  assert.equal(url.searchParams.get('code_challenge'), await generateCodeChallenge(verifier));
});

test('a public key never reaches the management API', async () => {
  const trusec = new TruSec({ apiKey: 'trusec_pk_abc', issuer, fetch });
  await assert.rejects(trusec.users.create({ email: 'a@example.com' }), { type: 'forbidden' });
  await assert.rejects(trusec.sessions.verify({ token: 't' }), { type: 'forbidden' });
  await assert.rejects(trusec.apiKeys.create({ type: 'public', name: 'x' }), { type: 'forbidden' });
  assert.equal(sent, 0);
});

test('a key that is not a TruSec key is refused anywhere', () => {
  assert.throws(() => new TruSec({ apiKey: 'sk_live_123', issuer }), { type: 'invalid_configuration' });
  assert.throws(() => new TruSec({ issuer: 'not a url' }), { type: 'invalid_configuration' });
  assert.throws(() => new TruSec({ issuer: 'ftp://auth.example.com' }), { type: 'invalid_configuration' });
});
