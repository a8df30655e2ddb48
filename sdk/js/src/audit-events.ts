/** `/v1/audit-events`: the environment's hash-chained audit log, newest first. */
import type { Context } from './context.js';
import { type PageParams, type PageRequest, listOf } from './pagination.js';

/** The contract's event types. */
export type AuditEventType =
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'user.login.succeeded'
  | 'user.login.failed'
  | 'user.logout'
  | 'session.created'
  | 'session.revoked'
  | 'api_key.created'
  | 'api_key.rotated'
  | 'api_key.revoked'
  | 'oauth.client.created'
  | 'oauth.client.updated'
  | 'oauth.client.deleted'
  | 'oauth.consent.granted'
  | 'oauth.token.issued'
  | 'oauth.token.refreshed'
  | 'oauth.token.revoked'
  | 'oauth.refresh_token.reuse_detected'
  | 'saml.sp.created'
  | 'saml.assertion.issued'
  | 'saml.request.refused'
  | 'saml.logout'
  | 'signing_key.rotated'
  | 'rate_limit.exceeded'
  | (string & {});

export interface AuditEvent {
  id: string;
  type: AuditEventType;
  environment: string;
  actor: { type: string; id: string | null };
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  outcome: 'success' | 'failure';
  /** The event's own details, as the server wrote them (keys not renamed). */
  data: Record<string, unknown>;
  createdAt: string;
  prevHash: string;
  hash: string;
}

export interface AuditEventListParams extends PageParams {
  type?: AuditEventType;
  userId?: string;
  /** Only events at or after this time (a Date or RFC 3339 text). */
  since?: Date | string;
}

export class AuditEvents {
  constructor(private readonly ctx: Context) {}

  /** Await it for one page; `for await (const event of ...)` for every event of every page. */
  list(params: AuditEventListParams = {}): PageRequest<AuditEvent> {
    const { type, userId, since, ...page } = params;
    return listOf<AuditEvent>((c) => this.ctx.api(c), '/v1/audit-events', page, { type, userId, since });
  }
}
