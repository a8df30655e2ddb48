// trusec.middleware.requireToken: as node:http / Express middleware and as
// a Fetch handler wrapper, answering as RFC 6750 §3 says.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, test } from 'node:test';
import { TruSec } from '@trusec/sdk';
import { client, resource, server } from './support/fixtures.mjs';
import { tokenSource } from './support/tokens.mjs';

const srv = await server();
const { mint } = await tokenSource(srv);
const { accessToken, idToken } = await mint();
const trusec = new TruSec({ issuer: srv.issuer });

/** A node:http app that runs the middleware, then answers with the claims (Express calls it the same way). */
async function nodeApp(guard) {
  const app = createServer((req, res) => {
    guard(req, res, (err) => {
      if (err) {
        res.statusCode = 500;
        res.end(String(err));
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ sub: req.auth.sub }));
    });
  });
  await new Promise((ok) => app.listen(0, '127.0.0.1', ok));
  after(() => new Promise((ok) => app.close(ok)));
  return `http://127.0.0.1:${app.address().port}`;
}

const bearer = (token) => ({ authorization: `Bearer ${token}` });

describe('requireToken (node:http / Express)', async () => {
  const open = await nodeApp(trusec.middleware.requireToken({ scopes: ['email'], realm: 'api' }));
  const strict = await nodeApp(trusec.middleware.requireToken({ scopes: ['email', 'write:users'] }));
  const otherAud = await nodeApp(trusec.middleware.requireToken({ audience: 'https://api.example.com' }));

  test('a good token with the scopes passes, with its claims on req.auth', async () => {
    const r = await fetch(open, { headers: bearer(accessToken) });
    assert.equal(r.status, 200);
    assert.match((await r.json()).sub, /^user_/);
  });

  test('no token: 401 and a challenge without an error code (§3.1)', async () => {
    const r = await fetch(open);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="api"');
    assert.equal((await r.json()).error, 'unauthenticated');
  });

  test('a bad token: 401 invalid_token', async () => {
    for (const token of [idToken, 'abc.def.ghi', `${accessToken.slice(0, -4)}AAAA`]) {
      const r = await fetch(open, { headers: bearer(token) });
      assert.equal(r.status, 401);
      assert.match(r.headers.get('www-authenticate'), /^Bearer realm="api", error="invalid_token", error_description="[^"]+"$/);
    }
    const wrongAud = await fetch(otherAud, { headers: bearer(accessToken) });
    assert.equal(wrongAud.status, 401);
    assert.match(wrongAud.headers.get('www-authenticate'), /error="invalid_token"/);
  });

  test('missing scope: 403 insufficient_scope naming the scopes', async () => {
    const r = await fetch(strict, { headers: bearer(accessToken) });
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope"/);
    assert.match(r.headers.get('www-authenticate'), /scope="email write:users"/);
    assert.equal((await r.json()).error, 'insufficient_scope');
  });

  test('a malformed header: 400 invalid_request; another scheme: 401', async () => {
    const r = await fetch(open, { headers: { authorization: 'Bearer a b' } });
    assert.equal(r.status, 400);
    assert.match(r.headers.get('www-authenticate'), /error="invalid_request"/);
    const basic = await fetch(open, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    assert.equal(basic.status, 401);
    assert.doesNotMatch(basic.headers.get('www-authenticate'), /error=/);
  });
});

describe('requireToken for an API resource (RFC 8707)', async () => {
  const orders = await resource(srv, 'mw-orders');
  const creds = await client(srv, 'confidential', [orders.read, orders.write], { grant_types: ['client_credentials'] });
  const backend = new TruSec({ issuer: srv.issuer, ...creds });
  const { accessToken: readOnly } = await backend.oauth.clientCredentials({ scope: orders.read, resource: orders.identifier });
  const api = await nodeApp(trusec.middleware.requireToken({ audience: orders.identifier, scopes: [orders.read] }));
  const writes = await nodeApp(trusec.middleware.requireToken({ audience: orders.identifier, scopes: [orders.write] }));
  const open = await nodeApp(trusec.middleware.requireToken());

  test('the resource\'s token passes where the resource is the audience', async () => {
    const r = await fetch(api, { headers: bearer(readOnly) });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).sub, creds.clientId);
  });

  test('a token for TruSec itself is not one for the API, nor the other way round', async () => {
    const own = await fetch(api, { headers: bearer(accessToken) });
    assert.equal(own.status, 401);
    assert.match(own.headers.get('www-authenticate'), /error="invalid_token"/);
    const back = await fetch(open, { headers: bearer(readOnly) });
    assert.equal(back.status, 401);
  });

  test('the resource\'s scopes are checked as any others', async () => {
    const r = await fetch(writes, { headers: bearer(readOnly) });
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), new RegExp(`scope="${orders.write}"`));
  });
});

describe('requireToken (Fetch)', () => {
  const handler = trusec.middleware
    .requireToken({ scopes: ['openid'] })
    .fetch((request, claims, env) => Response.json({ sub: claims.sub, env }));

  test('passes the claims and the extra arguments through', async () => {
    const r = await handler(new Request('http://x/', { headers: bearer(accessToken) }), 'edge');
    assert.equal(r.status, 200);
    assert.equal((await r.json()).env, 'edge');
  });

  test('refuses with the same statuses and challenges', async () => {
    const none = await handler(new Request('http://x/'));
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    const bad = await handler(new Request('http://x/', { headers: bearer(idToken) }));
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
  });

  test('an unreachable JWKS is a 503, not the caller\'s fault', async () => {
    const down = new TruSec({ issuer: 'http://127.0.0.1:9', timeoutMs: 2000 });
    const r = await down.middleware.requireToken().fetch(() => new Response('no'))(new Request('http://x/', { headers: bearer(accessToken) }));
    assert.equal(r.status, 503);
  });
});
