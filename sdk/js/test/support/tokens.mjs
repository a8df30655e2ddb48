// Access tokens for the verification tests, made the real way: a user
// signs in through the hosted pages and the code is exchanged.
import { TruSec } from '@trusec/sdk';
import { signIn } from './login.mjs';
import { REDIRECT_URI, client, user } from './fixtures.mjs';

/** A confidential client, a signed-in user, and a function minting a fresh token set for them. */
export async function tokenSource(srv, scope = ['openid', 'email', 'offline_access']) {
  const creds = await client(srv, 'confidential');
  const who = await user(srv);
  const trusec = new TruSec({ issuer: srv.issuer, apiKey: srv.secretKey, ...creds });
  const mint = async (extra = {}) => {
    const url = trusec.oauth.getAuthorizationUrl({ redirectUri: REDIRECT_URI, scope, state: 's', ...extra });
    const back = new URL(await signIn(url, { ...who, leaveAt: REDIRECT_URI }));
    return trusec.oauth.exchangeCode({ code: back.searchParams.get('code'), redirectUri: REDIRECT_URI });
  };
  return { trusec, who, mint, creds };
}
