/** `/v1/signing-keys`: the environment's token and SAML signing keys. */
import type { Context } from './context.js';

export interface SigningKeyRotation {
  /** The JWT algorithms rotated (`RS256`, `ES256`, `EdDSA`). */
  rotated: string[];
  /** The JWKS after the rotation (RFC 7517). */
  jwks: { keys: Record<string, unknown>[] };
  /** The SAML step taken (SAML rotates in two steps, since SPs cache metadata). */
  saml: unknown;
}

export class SigningKeys {
  constructor(private readonly ctx: Context) {}

  /** Starts a rotation now: the `next` keys become current, new `next` keys are published. */
  rotate(): Promise<SigningKeyRotation> {
    return this.ctx.api({ method: 'POST', path: '/v1/signing-keys/rotate' });
  }
}
