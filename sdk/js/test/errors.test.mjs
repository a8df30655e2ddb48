// Error mapping: the server's /v1 and OAuth errors, transport failures and
// malformed answers all become TruSecError with type, message, param,
// status (and retryAfter on 429).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, test } from 'node:test';
import { TruSec, TruSecError } from '@trusec/sdk';
import { REDIRECT_URI, client, email, server } from './support/fixtures.mjs';
import { startServer } from './support/server.mjs';

const srv = await server();
const trusec = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey });

function is(expected) {
  return (e) => {
    assert.ok(e instanceof TruSecError, `a TruSecError, not ${e}`);
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(e[k], v, `${k} of ${e.message}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0);
    return true;
  };
}

/** A stand-in for a broken server or proxy in front of TruSec: answers every request with `handler`. */
async function stub(handler, timeoutMs = 20_000) {
  const s = createServer(handler);
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  after(() => {
    s.closeAllConnections();
    return new Promise((ok) => s.close(ok));
  });
  return new TruSec({ issuer: `http://127.0.0.1:${s.address().port}`, apiKey: 'trusec_sk_stub', timeoutMs });
}

describe('server errors', () => {
  test('409 conflict names the field', async () => {
    const address = email('dup');
    await trusec.users.create({ email: address });
    await assert.rejects(trusec.users.create({ email: address }), is({ type: 'conflict', status: 409, param: 'email' }));
  });

  test('422 validation names the field', async () => {
    await assert.rejects(trusec.users.create({ email: 'not an address' }), is({ type: 'validation', status: 422, param: 'email' }));
  });

  test('400 invalid_request for a field the server does not know', async () => {
    await assert.rejects(trusec.users.create({ email: email(), favouriteColour: 'red' }), is({ type: 'invalid_request', status: 400 }));
  });

  test('401 unauthenticated for an unknown key', async () => {
    const stranger = new TruSec({ issuer: srv.issuer, apiKey: 'trusec_sk_0000000000000000000000000000000000000000000' });
    await assert.rejects(stranger.users.get('user_x'), is({ type: 'unauthenticated', status: 401, retryAfter: undefined }));
  });

  test('403 forbidden: a test key may not make a secret key', async () => {
    const { key } = await trusec.apiKeys.create({ type: 'test', name: 'sandbox' });
    const sandbox = new TruSec({ issuer: `${srv.issuer}/env/test`, apiKey: key });
    await assert.rejects(sandbox.apiKeys.create({ type: 'secret', name: 'escalate' }), is({ type: 'forbidden', status: 403 }));
  });

  test('404 not_found for an id of the right shape', async () => {
    await assert.rejects(trusec.users.get('user_01m8tn1gkddyv1r27e60pt4c35'), is({ type: 'not_found', status: 404, param: 'id' }));
  });

  test('an empty id is refused before sending', async () => {
    assert.throws(() => trusec.users.get(''), is({ type: 'invalid_request', param: 'id', status: undefined }));
  });
});

describe('transport and malformed answers', () => {
  test('connection_error when nothing listens', async () => {
    const gone = new TruSec({ issuer: 'http://127.0.0.1:9', apiKey: srv.secretKey });
    await assert.rejects(gone.users.list().catch((e) => Promise.reject(e)), is({ type: 'connection_error', status: undefined }));
  });

  test('timeout when the server never answers', async () => {
    const silent = await stub(() => {}, 300);
    await assert.rejects(silent.users.get('user_x'), is({ type: 'timeout' }));
  });

  test('invalid_response for a 200 that is not JSON, and for one larger than the bound', async () => {
    const html = await stub((_, res) => res.end('<html>hello</html>'));
    await assert.rejects(html.users.get('user_x'), is({ type: 'invalid_response', status: 200 }));
    const huge = await stub((_, res) => res.end(JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024) })));
    await assert.rejects(huge.users.get('user_x'), is({ type: 'invalid_response', status: 200 }));
  });

  test('a proxy\'s 502 page maps by status; a 503 body keeps its error_id', async () => {
    const proxy = await stub((_, res) => {
      res.statusCode = 502;
      res.end('<html>Bad Gateway</html>');
    });
    await assert.rejects(proxy.users.get('user_x'), is({ type: 'internal_error', status: 502 }));
    const down = await stub((_, res) => {
      res.statusCode = 503;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: { type: 'unavailable', message: 'try again', error_id: 'err_1' } }));
    });
    await assert.rejects(down.users.get('user_x'), is({ type: 'unavailable', status: 503, errorId: 'err_1' }));
  });

  test('Retry-After as an HTTP-date becomes seconds', async () => {
    const limited = await stub((_, res) => {
      res.statusCode = 429;
      res.setHeader('retry-after', new Date(Date.now() + 120_000).toUTCString());
      res.end(JSON.stringify({ error: { type: 'rate_limited', message: 'slow down' } }));
    });
    await assert.rejects(limited.users.get('user_x'), (e) => {
      assert.equal(e.type, 'rate_limited');
      assert.ok(e.retryAfter >= 100 && e.retryAfter <= 120, `retryAfter ${e.retryAfter}`);
      return true;
    });
  });
});

describe('429 from a real server', async () => {
  // Its own server, with a management budget small enough to run out.
  const limitedServer = await startServer({ TRUSEC_RATE_LIMIT_MANAGEMENT: '3/min', TRUSEC_RATE_LIMIT_TOKEN: '2/min' });
  after(() => limitedServer.stop());
  const limitedClient = client(limitedServer, 'confidential');

  test('rate_limited with retryAfter from Retry-After', async () => {
    await limitedClient;
    const sdk = new TruSec({ issuer: limitedServer.issuer, apiKey: limitedServer.secretKey });
    let refused;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      await sdk.users.get('user_01m8tn1gkddyv1r27e60pt4c35').catch((e) => {
        if (e.type === 'rate_limited') refused = e;
        else assert.equal(e.type, 'not_found');
      });
    }
    assert.ok(refused, 'the budget ran out');
    assert.equal(refused.status, 429);
    assert.ok(Number.isInteger(refused.retryAfter) && refused.retryAfter > 0 && refused.retryAfter <= 60, `retryAfter ${refused.retryAfter}`);
  });

  test('the token endpoint\'s 429 (RFC 6749 temporarily_unavailable) carries retryAfter too', async () => {
    const sdk = new TruSec({ issuer: limitedServer.issuer, ...(await limitedClient) });
    let refused;
    for (let i = 0; i < 20 && refused === undefined; i++) {
      await sdk.oauth.exchangeCode({ code: 'not-a-code', redirectUri: REDIRECT_URI }).catch((e) => {
        if (e.status === 429) refused = e;
        else assert.equal(e.type, 'invalid_grant');
      });
    }
    assert.ok(refused, 'the budget ran out');
    assert.equal(refused.type, 'temporarily_unavailable');
    assert.ok(Number.isInteger(refused.retryAfter) && refused.retryAfter > 0, `retryAfter ${refused.retryAfter}`);
  });
});
