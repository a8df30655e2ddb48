/** `/v1/sessions`: server-side sessions for apps that keep their own sign-in. */
import { type Context, pathId } from './context.js';
import { type PageParams, type PageRequest, listOf } from './pagination.js';
import type { User } from './users.js';

/** A duration: `"30m"`, `"24h"`, `"7d"`, or a number of seconds. */
export type Duration = string | number;

export interface Session {
  id: string;
  userId: string;
  environment: string;
  metadata: Record<string, unknown>;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

/** A new session, with its token (shown once). */
export interface CreatedSession {
  id: string;
  token: string;
  userId: string;
  environment: string;
  createdAt: string;
  expiresAt: string;
  metadata: Record<string, unknown>;
}

export type SessionInvalidReason = 'not_found' | 'expired' | 'revoked' | (string & {});

export type SessionVerification =
  | { valid: true; user: User; session: Session }
  | { valid: false; reason: SessionInvalidReason };

export class Sessions {
  constructor(private readonly ctx: Context) {}

  create(params: { userId: string; expiresIn?: Duration; metadata?: Record<string, unknown> }): Promise<CreatedSession> {
    return this.ctx.api({ method: 'POST', path: '/v1/sessions', body: params });
  }

  verify(params: { token: string }): Promise<SessionVerification> {
    return this.ctx.api({ method: 'POST', path: '/v1/sessions/verify', body: { token: params?.token } });
  }

  /** Ends the session everywhere; its refresh tokens (but `offline_access` ones) end with it. */
  revoke(params: { token: string }): Promise<{ revoked: boolean; sessionId?: string }> {
    return this.ctx.api({ method: 'POST', path: '/v1/sessions/revoke', body: { token: params?.token } });
  }

  /** The user's live sessions. */
  list(params: { userId: string } & PageParams): PageRequest<Session> {
    const path = `/v1/users/${pathId(params?.userId, 'userId')}/sessions`;
    return listOf<Session>((c) => this.ctx.api(c), path, params);
  }

  /** Ends every session of the user. */
  revokeAll(params: { userId: string }): Promise<{ revoked: number }> {
    return this.ctx.api({ method: 'DELETE', path: `/v1/users/${pathId(params?.userId, 'userId')}/sessions` });
  }
}
