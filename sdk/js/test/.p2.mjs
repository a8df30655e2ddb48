import { TruSec } from '@trusec/sdk';
import { server } from '/work/wt-sdk/sdk/js/test/support/fixtures.mjs';
const srv = await server();
const t = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey });
const u = await t.users.create({ email: `x${Date.now()}@example.com` });
for (const body of [{ userId: u.id, expiresIn: 'forever' }, { userId: u.id, expiresIn: -5 }, { userId: 'user_nope' }, { userId: u.id, expiresIn: '400d' }]) {
  await t.sessions.create(body).then((s) => console.log('ok', s.expiresAt), (e) => console.log(e.status, e.type, e.param, e.message));
}
await t.apiKeys.create({ type: 'bogus', name: 'x' }).catch((e) => console.log(e.status, e.type, e.param, e.message));
await t.users.list({ limit: 1000 }).then(p => console.log('list', p.data.length), (e) => console.log(e.status, e.type, e.param, e.message));
await t.auditEvents.list({ since: 'yesterday' }).then(p => console.log('list', p.data.length), (e) => console.log(e.status, e.type, e.param, e.message));
await t.auditEvents.list({ type: 'nope.type' }).then(p => console.log('list', p.data.length), (e) => console.log(e.status, e.type, e.param, e.message));
