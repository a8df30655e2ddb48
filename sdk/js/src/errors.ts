/**
 * Every failure the SDK reports is a `TruSecError`: the server's own error
 * (the `/v1` body `{"error": {"type", "message", "param"}}`, or an RFC 6749
 * §5.2 body from the OAuth endpoints, whose `error` code becomes `type`), or
 * one the SDK detected before or after talking to the server.
 */

/** The `/v1` error types of the contract. */
export type ApiErrorType =
  | 'invalid_request'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'validation'
  | 'rate_limited'
  | 'internal_error'
  | 'unavailable';

/** RFC 6749 §5.2 / §4.1.2.1, RFC 7009, RFC 8707 §2 and RFC 6750 §3.1 error codes. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  /** RFC 8707 §2: the `resource` is unknown, malformed, not allowed to the client, or not part of the grant. */
  | 'invalid_target'
  | 'unsupported_token_type'
  | 'temporarily_unavailable'
  | 'server_error'
  | 'invalid_token'
  | 'insufficient_scope';

/** Failures found by the SDK itself, without (or after) a server answer. */
export type ClientErrorType =
  /** The options given to the SDK cannot work (missing client id, bad issuer, a secret in a browser). */
  | 'invalid_configuration'
  /** The server could not be reached. */
  | 'connection_error'
  /** The server did not answer in time (`timeoutMs`). */
  | 'timeout'
  /** The server's answer is not what the contract promises (not JSON, too large, wrong shape). */
  | 'invalid_response'
  /** The discovery document does not belong to the configured issuer. */
  | 'discovery_error';

/**
 * Server types the SDK does not know yet pass through unchanged, so the
 * union stays open (`string & {}` keeps editor completion of the known ones).
 */
export type TruSecErrorType = ApiErrorType | OAuthErrorCode | ClientErrorType | (string & {});

export interface TruSecErrorInit {
  type: TruSecErrorType;
  message: string;
  param?: string | undefined;
  status?: number | undefined;
  retryAfter?: number | undefined;
  errorId?: string | undefined;
  cause?: unknown;
}

export class TruSecError extends Error {
  override readonly name = 'TruSecError';
  /** What went wrong, as a stable machine-readable word. */
  readonly type: TruSecErrorType;
  /** The request field at fault, when the server named one, in the SDK's camelCase (`expiresIn`). */
  readonly param: string | undefined;
  /** The HTTP status of the server's answer; undefined when there was none. */
  readonly status: number | undefined;
  /** Seconds to wait before trying again (from `Retry-After`, on 429). */
  readonly retryAfter: number | undefined;
  /** The server's `error_id` of a 5xx, to quote when reporting it. */
  readonly errorId: string | undefined;

  constructor(init: TruSecErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.type = init.type;
    this.param = init.param;
    this.status = init.status;
    this.retryAfter = init.retryAfter;
    this.errorId = init.errorId;
  }
}

export function configError(message: string): TruSecError {
  return new TruSecError({ type: 'invalid_configuration', message });
}
