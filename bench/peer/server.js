// node-oidc-provider, configured like TruSec for bench/run: a confidential
// client (client_secret_basic) with client_credentials and the
// authorization-code flow, JWT access tokens signed ES256 (or RS256 for the
// resource that asks for it), introspection, userinfo, and the provider's
// own interaction pages for sign-in.
//
// Needs: PORT, DATA (a directory: the signing keys are made there on the
// first start and read on every later one, so a restart is a warm start),
// CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
//
// Differences that favour the peer (bench/README.md says so): its grants,
// sessions and codes live in the provider's in-process memory adapter (no
// database, no audit log), and its sign-in pages accept any password
// (devInteractions: no password hash).
import Provider, { errors } from "oidc-provider";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const { PORT, DATA, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;
for (const [name, value] of Object.entries({ PORT, DATA, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI })) {
  if (!value) {
    console.error(`peer: ${name} is not set`);
    process.exit(2);
  }
}
const issuer = `http://127.0.0.1:${PORT}`;

// The private JWKs and the cookie key, made once per data directory.
const keysFile = join(DATA, "keys.json");
if (!existsSync(keysFile)) {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const keys = {
    jwks: [
      { ...ec, kid: "es256", alg: "ES256", use: "sig" },
      { ...rsa, kid: "rs256", alg: "RS256", use: "sig" },
    ],
    cookie: randomBytes(32).toString("base64url"),
  };
  writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
}
const stored = JSON.parse(readFileSync(keysFile, "utf8"));

// Resource servers: the access-token format and algorithm of each. A
// client_credentials request without `resource` gets an opaque token (the
// one the peer can introspect; it cannot introspect its own JWTs).
const resources = {
  "urn:bench:es256": { alg: "ES256", format: "jwt" },
  "urn:bench:rs256": { alg: "RS256", format: "jwt" },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials", "authorization_code"],
      response_types: ["code"],
      redirect_uris: [REDIRECT_URI],
      scope: "openid email profile read:users",
    },
  ],
  jwks: { keys: stored.jwks },
  cookies: { keys: [stored.cookie] },
  scopes: ["openid", "email", "profile", "read:users"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  pkce: { required: () => true },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => {
        const server = resources[resource];
        if (!server) throw new errors.InvalidTarget();
        return {
          scope: "read:users",
          audience: resource,
          accessTokenTTL: 3600,
          accessTokenFormat: server.format,
          jwt: { sign: { alg: server.alg } },
        };
      },
    },
  },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true, name: id }),
  }),
});
provider.on("server_error", (_ctx, err) => console.error("peer: server_error", err));

provider.listen(Number(PORT), "127.0.0.1");
