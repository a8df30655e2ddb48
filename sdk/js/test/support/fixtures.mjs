// The shared server (started once by test/run.mjs, or by the first file run
// on its own) and the objects tests need that the SDK does not manage
// (OAuth clients), made through the management API with plain fetch.
import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import { startServer } from './server.mjs';

let shared;

/** `{ issuer, secretKey }` of the suite's server; call it at the top level of a test file (top-level await). */
export async function server() {
  if (process.env.SDK_TEST_ISSUER && process.env.SDK_TEST_SECRET_KEY) {
    return { issuer: process.env.SDK_TEST_ISSUER, secretKey: process.env.SDK_TEST_SECRET_KEY };
  }
  if (!shared) {
    shared = startServer();
    after(async () => (await shared).stop());
  }
  return shared;
}

export const REDIRECT_URI = 'https://app.example.com/callback';
export const PASSWORD = 'correct horse battery staple';

export async function admin(srv, method, path, body) {
  const response = await fetch(`${srv.issuer}${path}`, {
    method,
    headers: { authorization: `Bearer ${srv.secretKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

export function email(label = 'user') {
  return `${label}-${randomUUID()}@example.com`;
}

/** An OAuth client; `type` confidential (with a secret) or public (PKCE). */
export async function client(srv, type, scopes = ['openid', 'email', 'profile', 'offline_access', 'read:users'], extra = {}) {
  const c = await admin(srv, 'POST', '/v1/oauth/clients', {
    name: `sdk ${type}`,
    type,
    redirect_uris: [REDIRECT_URI],
    scopes,
    ...extra,
  });
  return { clientId: c.client_id, clientSecret: c.client_secret };
}

/** A user who can sign in; `admin: true` puts them in trusec-admins (needed to grant management scopes). */
export async function user(srv, { admin: isAdmin = false } = {}) {
  const address = email();
  const u = await admin(srv, 'POST', '/v1/users', {
    email: address,
    password: PASSWORD,
    name: 'Ada Lovelace',
    groups: isAdmin ? ['trusec-admins'] : [],
  });
  return { id: u.id, email: address, password: PASSWORD };
}

/**
 * An API resource (RFC 8707) with its scopes `<label>:read` and
 * `<label>:write`, under a fresh identifier; `extra` e.g. `{ signing_alg: 'RS256' }`.
 */
export async function resource(srv, label = 'orders', extra = {}) {
  const identifier = `https://api.example.com/${label}-${randomUUID()}`;
  const r = await admin(srv, 'POST', '/v1/oauth/resources', {
    identifier,
    name: `${label} API`,
    scopes: [
      { name: `${label}:read`, description: `See your ${label}` },
      { name: `${label}:write`, description: `Change your ${label}` },
    ],
    ...extra,
  });
  return { id: r.id, identifier, read: `${label}:read`, write: `${label}:write` };
}
