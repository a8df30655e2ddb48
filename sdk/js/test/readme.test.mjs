// Runs every code example of README.md as written, against the live server:
// the blocks are extracted from the README here, so it cannot drift.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TruSec } from '@trusec/sdk';
import { signIn } from './support/login.mjs';
import { REDIRECT_URI, client, email, resource, server, user } from './support/fixtures.mjs';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const out = new URL('./.readme/', import.meta.url);
const blocks = new Map();
for (const m of readme.matchAll(/^```(\S*)([^\n]*)\n([\s\S]*?)^```$/gm)) {
  const [, lang, info, code] = m;
  if (!['js', 'mjs', 'ts', 'javascript', 'typescript'].includes(lang)) continue;
  const file = /\bfile=(\S+)/.exec(info)?.[1];
  assert.ok(file, `every code example in README.md is run by this test; give it file=NAME.mjs:\n${code}`);
  blocks.set(file, code);
}

const srv = await server();
const examples = {};

before(async () => {
  assert.deepEqual(
    [...blocks.keys()].sort(),
    ['auth-code.mjs', 'errors.mjs', 'manage.mjs', 'own-api.mjs', 'pkce.mjs', 'protect.mjs', 'refresh.mjs', 'sessions.mjs'],
    'each example has its test below',
  );
  const admin = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey });
  const orders = await resource(srv, 'orders');
  // The examples' confidential client may also get tokens for the orders API (own-api.mjs).
  const confidential = await client(
    srv,
    'confidential',
    ['openid', 'email', 'profile', 'offline_access', 'read:users', orders.read],
    { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
  );
  const pub = await client(srv, 'public');
  Object.assign(process.env, {
    TRUSEC_ISSUER: srv.issuer,
    TRUSEC_SECRET_KEY: srv.secretKey,
    TRUSEC_CLIENT_ID: confidential.clientId,
    TRUSEC_CLIENT_SECRET: confidential.clientSecret,
    TRUSEC_PUBLIC_CLIENT_ID: pub.clientId,
    ORDERS_API: orders.identifier,
    TRUSEC_PUBLIC_KEY: (await admin.apiKeys.create({ type: 'public', name: 'readme' })).key,
  });
  // Inside the package, so `@trusec/sdk` resolves to this build (self-reference).
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const [file, code] of blocks) {
    writeFileSync(new URL(file, out), code);
    examples[file] = await import(fileURLToPath(new URL(file, out)));
  }
});
after(() => rmSync(out, { recursive: true, force: true }));

test('auth-code.mjs and refresh.mjs: sign in, users.me, refresh, sign out', async () => {
  const { startLogin, finishLogin } = examples['auth-code.mjs'];
  const who = await user(srv);
  const session = {};
  const url = startLogin(session);
  const callback = await signIn(url, { ...who, leaveAt: REDIRECT_URI });
  const { tokens, user: me } = await finishLogin(session, callback);
  assert.equal(me.email, who.email);
  assert.equal(me.name, 'Ada Lovelace');
  await assert.rejects(finishLogin({ state: 'other' }, callback), { type: 'invalid_request' });

  const { renew, signOut } = examples['refresh.mjs'];
  const renewed = await renew(tokens);
  assert.ok(renewed.accessToken);
  await signOut(renewed);
  await assert.rejects(renew(renewed), { type: 'invalid_grant' });
});

test('pkce.mjs: a public client signs in with PKCE', async () => {
  const { startLogin, finishLogin } = examples['pkce.mjs'];
  const who = await user(srv);
  const store = new Map();
  const storage = { setItem: (k, v) => store.set(k, v), getItem: (k) => store.get(k), removeItem: (k) => store.delete(k) };
  const url = await startLogin(storage);
  assert.equal(new URL(url).searchParams.get('code_challenge_method'), 'S256');
  const tokens = await finishLogin(storage, await signIn(url, { ...who, leaveAt: REDIRECT_URI }));
  assert.equal(tokens.tokenType, 'Bearer');
  assert.equal(tokens.scope, 'openid email');
  assert.equal(store.size, 0);
});

test('sessions.mjs: create, verify, revoke', () => {
  const { user: u, session, check, after: afterRevoke } = examples['sessions.mjs'];
  assert.equal(session.userId, u.id);
  assert.deepEqual(session.metadata, { device: 'laptop' });
  assert.equal(check.valid, true);
  assert.equal(check.user.id, u.id);
  assert.deepEqual(afterRevoke, { valid: false, reason: 'revoked' });
});

test('manage.mjs: users, API keys, the audit log, a mapped error', () => {
  const { user: u, page, ci, rotated, types, gone } = examples['manage.mjs'];
  assert.deepEqual(u.metadata, { plan: 'pro' });
  assert.ok(page.data.length > 0 && page.data.length <= 10);
  assert.equal(rotated.previous.id, ci.id);
  assert.ok(types.includes('user.created') && types.includes('user.updated'), types.join());
  assert.equal(gone.type, 'not_found');
  assert.equal(gone.status, 404);
  assert.equal(gone.param, 'id');
});

test('protect.mjs: the node:http middleware, the Fetch handler, verify by hand', async () => {
  const { server: app, handler, whoIs } = examples['protect.mjs'];
  const who = await user(srv);
  const creds = { issuer: srv.issuer, clientId: process.env.TRUSEC_CLIENT_ID, clientSecret: process.env.TRUSEC_CLIENT_SECRET };
  const sdk = new TruSec(creds);
  const url = sdk.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope: ['openid', 'email'], state: 's' });
  const code = new URL(await signIn(url, { ...who, leaveAt: REDIRECT_URI })).searchParams.get('code');
  const { accessToken } = await sdk.oauth.exchangeCode({ code, redirectUri: REDIRECT_URI });

  await new Promise((ok) => app.listen(0, '127.0.0.1', ok));
  try {
    const base = `http://127.0.0.1:${app.address().port}`;
    const ok = await fetch(base, { headers: { authorization: `Bearer ${accessToken}` } });
    assert.deepEqual(await ok.json(), { hello: who.id });
    const refused = await fetch(base);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer');
  } finally {
    await new Promise((ok) => app.close(ok));
  }
  const r = await handler(new Request('http://api/', { headers: { authorization: `Bearer ${accessToken}` } }));
  assert.deepEqual(await r.json(), { hello: who.id });
  assert.equal(await whoIs(accessToken), who.id);
});

test('own-api.mjs: tokens for the orders API, from a sign-in and from client credentials', async () => {
  const { ordersApi, startLogin, finishLogin, listOrders } = examples['own-api.mjs'];
  const api = process.env.ORDERS_API;
  const asBackend = await listOrders();
  assert.equal(asBackend.status, 200);
  assert.deepEqual(await asBackend.json(), { orders: [], for: process.env.TRUSEC_CLIENT_ID });

  const who = await user(srv);
  const session = {};
  const url = startLogin(session);
  assert.deepEqual(new URL(url).searchParams.getAll('resource'), [api]);
  const tokens = await finishLogin(session, await signIn(url, { ...who, leaveAt: REDIRECT_URI }));
  const call = (token) => ordersApi(new Request(`${api}/`, { headers: { authorization: `Bearer ${token}` } }));
  const asUser = await call(tokens.accessToken);
  assert.equal(asUser.status, 200);
  assert.equal((await asUser.json()).for, who.id);

  // A token of TruSec's own (aud = the issuer) is refused by the API.
  const ownApp = examples['auth-code.mjs'];
  const { tokens: own } = await ownApp.finishLogin(session, await signIn(ownApp.startLogin(session), { ...who, leaveAt: REDIRECT_URI }));
  const refused = await call(own.accessToken);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate'), /error="invalid_token"/);
});

test('errors.mjs: conflict, validation, success', async () => {
  const { createUser } = examples['errors.mjs'];
  const address = email('err');
  assert.match((await createUser(address)).id, /^user_/);
  assert.deepEqual(await createUser(address), { taken: 'email' });
  assert.equal((await createUser('nope')).invalid, 'email');
});
