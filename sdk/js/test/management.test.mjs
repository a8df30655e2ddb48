// The /v1 resources through the SDK: users, sessions, API keys, API
// resources (RFC 8707), audit events; camelCase ↔ snake_case; pagination (a page, and every page).
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { TruSec } from '@trusec/sdk';
import { client, email, server } from './support/fixtures.mjs';

const srv = await server();
const trusec = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey });

test('printing the client never shows its secrets', () => {
  const withSecret = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey, clientId: 'client_1', clientSecret: 'trusec_cs_hidden' });
  const shown = inspect(withSecret, { depth: null, showHidden: true }) + JSON.stringify(withSecret);
  assert.ok(!shown.includes(srv.secretKey) && !shown.includes('trusec_cs_hidden'), shown);
});

describe('users', () => {
  test('create, get, update, delete; metadata keys are the caller\'s own', async () => {
    const address = email('grace');
    const created = await trusec.users.create({
      email: address,
      password: 'correct horse battery staple',
      givenName: 'Grace',
      familyName: 'Hopper',
      groups: ['navy'],
      metadata: { plan_id: 7, nestedKey: { snake_case: true } },
    });
    assert.match(created.id, /^user_/);
    assert.equal(created.givenName, 'Grace');
    assert.equal(created.familyName, 'Hopper');
    assert.equal(created.hasPassword, true);
    assert.deepEqual(created.metadata, { plan_id: 7, nestedKey: { snake_case: true } });
    assert.ok(!('password' in created) && !('passwordHash' in created));

    assert.deepEqual(await trusec.users.get(created.id), created);
    const updated = await trusec.users.update(created.id, { name: 'Grace Hopper', familyName: null });
    assert.equal(updated.name, 'Grace Hopper');
    assert.equal(updated.familyName, null);
    assert.deepEqual(await trusec.users.delete(created.id), { id: created.id, deleted: true });
    await assert.rejects(trusec.users.get(created.id), { type: 'not_found', status: 404, param: 'id' });
  });

  test('list: one page awaited, every page iterated', async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await trusec.users.create({ email: email('page') })).id);
    const first = await trusec.users.list({ limit: 2 });
    assert.equal(first.data.length, 2);
    assert.equal(first.hasMore, true);
    assert.equal(typeof first.nextCursor, 'string');
    const second = await trusec.users.list({ limit: 2, after: first.nextCursor });
    assert.ok(!second.data.some((u) => first.data.some((f) => f.id === u.id)));
    const all = [];
    for await (const u of trusec.users.list({ limit: 2 })) all.push(u.id);
    assert.equal(new Set(all).size, all.length, 'no user twice');
    for (const id of made) assert.ok(all.includes(id));
  });
});

describe('sessions', () => {
  test('create, verify, revoke', async () => {
    const u = await trusec.users.create({ email: email('sess') });
    const session = await trusec.sessions.create({ userId: u.id, expiresIn: '24h', metadata: { device_name: 'cli' } });
    assert.match(session.id, /^sess_/);
    assert.equal(session.userId, u.id);
    assert.ok(session.token.length >= 43);
    assert.deepEqual(session.metadata, { device_name: 'cli' });
    const hours = (Date.parse(session.expiresAt) - Date.now()) / 3_600_000;
    assert.ok(hours > 23.9 && hours <= 24, `expires in 24h, not ${hours}`);

    const ok = await trusec.sessions.verify({ token: session.token });
    assert.equal(ok.valid, true);
    assert.equal(ok.user.id, u.id);
    assert.equal(ok.session.id, session.id);
    assert.equal(ok.session.revokedAt, null);

    const listed = await trusec.sessions.list({ userId: u.id });
    assert.deepEqual(listed.data.map((s) => s.id), [session.id]);

    const revoked = await trusec.sessions.revoke({ token: session.token });
    assert.equal(revoked.revoked, true);
    assert.deepEqual(await trusec.sessions.verify({ token: session.token }), { valid: false, reason: 'revoked' });
    assert.deepEqual(await trusec.sessions.verify({ token: 'nope' }), { valid: false, reason: 'not_found' });
  });

  test('revokeAll ends every session of a user', async () => {
    const u = await trusec.users.create({ email: email('all') });
    const a = await trusec.sessions.create({ userId: u.id });
    await trusec.sessions.create({ userId: u.id });
    assert.deepEqual(await trusec.sessions.revokeAll({ userId: u.id }), { revoked: 2 });
    assert.equal((await trusec.sessions.verify({ token: a.token })).valid, false);
  });

  test('a bad duration is a validation error naming the field', async () => {
    const u = await trusec.users.create({ email: email('dur') });
    await assert.rejects(trusec.sessions.create({ userId: u.id, expiresIn: 'forever' }), {
      type: 'validation',
      status: 422,
      param: 'expiresIn',
    });
    // Neither a duration text nor a number of seconds: refused in the request's terms.
    await assert.rejects(trusec.sessions.create({ userId: u.id, expiresIn: -5 }), (e) => {
      assert.equal(e.type, 'invalid_request');
      assert.equal(e.status, 400);
      assert.equal(e.param, 'expiresIn');
      assert.doesNotMatch(e.message, /DurationInput|untagged/);
      return true;
    });
    await assert.rejects(trusec.sessions.create({ userId: 'user_01m8tn1gkddyv1r27e60pt4c35' }), {
      type: 'not_found',
      status: 404,
      param: 'userId',
    });
  });
});

describe('API keys', () => {
  test('create, list, rotate, revoke', async () => {
    const created = await trusec.apiKeys.create({ type: 'secret', name: 'ci', expiresIn: '30d' });
    assert.match(created.key, /^trusec_sk_/);
    assert.equal(created.lastFour, created.key.slice(-4));
    const withNew = new TruSec({ issuer: srv.issuer, apiKey: created.key });
    await withNew.users.list({ limit: 1 });

    const all = [];
    for await (const k of trusec.apiKeys.list({ limit: 100 })) all.push(k);
    const listed = all.find((k) => k.id === created.id);
    assert.ok(listed, 'the new key is listed');
    assert.equal(listed.key, undefined, 'never the secret');

    const rotated = await trusec.apiKeys.rotate(created.id, { gracePeriod: '1h' });
    assert.match(rotated.key, /^trusec_sk_/);
    assert.equal(rotated.previous.id, created.id);
    assert.equal(rotated.previous.rotatedTo, rotated.id);
    await withNew.users.list({ limit: 1 }); // the old key still works in its grace period

    const revoked = await trusec.apiKeys.revoke(rotated.id);
    assert.ok(revoked.revokedAt);
    await assert.rejects(new TruSec({ issuer: srv.issuer, apiKey: rotated.key }).users.list().catch((e) => Promise.reject(e)), {
      type: 'unauthenticated',
      status: 401,
    });
  });

  test('a test key sees only the test environment, whose /v1 stays at the root', async () => {
    const { key } = await trusec.apiKeys.create({ type: 'test', name: 'sandbox' });
    const sandbox = new TruSec({ issuer: `${srv.issuer}/env/test`, apiKey: key });
    const u = await sandbox.users.create({ email: email('sandbox') });
    assert.equal(u.environment, 'env_test');
    await assert.rejects(trusec.users.get(u.id), { type: 'not_found' });
    const d = await sandbox.oauth.discover();
    assert.equal(d.issuer, `${srv.issuer}/env/test`);
  });
});

describe('API resources', () => {
  test('create, get, list, update, delete; the identifier is unique and never the issuer', async () => {
    const identifier = `https://api.example.com/inventory-${randomUUID()}`;
    const created = await trusec.resources.create({
      identifier,
      name: 'Inventory',
      scopes: [{ name: 'inventory:read', description: 'See the stock' }],
      accessTokenLifetimeSeconds: 300,
      signingAlg: 'EdDSA',
    });
    assert.match(created.id, /^res_/);
    assert.equal(created.identifier, identifier);
    assert.equal(created.accessTokenLifetimeSeconds, 300, 'camelCase fields');
    assert.equal(created.signingAlg, 'EdDSA');
    assert.deepEqual(created.scopes, [{ name: 'inventory:read', description: 'See the stock' }]);
    assert.deepEqual(await trusec.resources.get(created.id), created);

    const seen = [];
    for await (const r of trusec.resources.list({ limit: 1 })) seen.push(r.id);
    assert.ok(seen.includes(created.id));

    const updated = await trusec.resources.update(created.id, {
      name: 'Stock',
      scopes: [
        { name: 'inventory:read', description: 'See the stock' },
        { name: 'inventory:write', description: 'Change the stock' },
      ],
    });
    assert.equal(updated.name, 'Stock');
    assert.equal(updated.scopes.length, 2);
    assert.equal(updated.identifier, identifier);

    await assert.rejects(trusec.resources.create({ identifier, name: 'Again' }), { type: 'conflict', status: 409, param: 'identifier' });
    await assert.rejects(trusec.resources.create({ identifier: srv.issuer, name: 'Me' }), { type: 'validation', status: 422, param: 'identifier' });
    await assert.rejects(
      trusec.resources.create({ identifier: `${identifier}-2`, name: 'Own scope', scopes: [{ name: 'read:users', description: 'x' }] }),
      { type: 'validation', param: 'scopes' },
    );

    // A client may be allowed its scopes and name it as default_resource; a deleted one is gone for tokens too.
    const creds = await client(srv, 'confidential', ['inventory:read'], { grant_types: ['client_credentials'], default_resource: identifier });
    const backend = new TruSec({ issuer: srv.issuer, ...creds });
    const { accessToken } = await backend.oauth.clientCredentials();
    assert.equal((await backend.tokens.verify(accessToken, { audience: identifier })).scope, 'inventory:read');
    assert.deepEqual(await trusec.resources.delete(created.id), { id: created.id, deleted: true });
    await assert.rejects(trusec.resources.get(created.id), { type: 'not_found', status: 404 });
    await assert.rejects(backend.oauth.clientCredentials({ resource: identifier }), { type: 'invalid_target', status: 400 });
  });
});

describe('audit events', () => {
  test('filters by type, user and time; iterates across pages', async () => {
    const since = new Date(Date.now() - 1000);
    const u = await trusec.users.create({ email: email('audit') });
    await trusec.users.update(u.id, { name: 'Audited' });
    await trusec.sessions.create({ userId: u.id, metadata: {} });
    const created = await trusec.auditEvents.list({ type: 'user.created', userId: u.id, since });
    assert.equal(created.data.length, 1);
    const [event] = created.data;
    assert.equal(event.type, 'user.created');
    assert.equal(event.userId, u.id);
    assert.equal(event.outcome, 'success');
    assert.equal(event.data.email, u.email);
    assert.match(event.prevHash, /^[0-9a-f]{64}$/);

    const types = [];
    for await (const e of trusec.auditEvents.list({ userId: u.id, limit: 1 })) types.push(e.type);
    assert.deepEqual(types.sort(), ['session.created', 'user.created', 'user.updated']);
  });
});
