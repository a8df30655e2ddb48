/** RFC 7636 Proof Key for Code Exchange, S256 only (the only method TruSec accepts). */
import { encode } from './base64url.js';
import { TruSecError } from './errors.js';

// RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/** A fresh code verifier: 32 random bytes, base64url (43 characters, 256 bits, RFC 7636 §7.1). */
export function generateCodeVerifier(): string {
  return encode(crypto.getRandomValues(new Uint8Array(32)));
}

/** The S256 challenge of a verifier: base64url(SHA-256(ASCII(verifier))) (RFC 7636 §4.2). */
export async function generateCodeChallenge(verifier: string): Promise<string> {
  if (!VERIFIER.test(verifier)) {
    throw new TruSecError({
      type: 'invalid_request',
      param: 'codeVerifier',
      message: 'a code verifier is 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)',
    });
  }
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return encode(new Uint8Array(digest));
}
