/** `new TruSec(options)`: one object per environment, holding every resource. */
import { ApiKeys } from './api-keys.js';
import { AuditEvents } from './audit-events.js';
import { Context, type TruSecOptions } from './context.js';
import { type RequireToken, type RequireTokenOptions, requireToken } from './middleware.js';
import { OAuth } from './oauth.js';
import { Resources } from './resources.js';
import { Sessions } from './sessions.js';
import { SigningKeys } from './signing-keys.js';
import { Tokens } from './tokens.js';
import { Users } from './users.js';

export class TruSec {
  readonly oauth: OAuth;
  /** The environment's APIs (RFC 8707 resources), `/v1/oauth/resources`. */
  readonly resources: Resources;
  readonly users: Users;
  readonly sessions: Sessions;
  readonly apiKeys: ApiKeys;
  readonly auditEvents: AuditEvents;
  readonly signingKeys: SigningKeys;
  readonly tokens: Tokens;
  readonly middleware: { requireToken(options?: RequireTokenOptions): RequireToken };

  constructor(options: TruSecOptions) {
    const ctx = new Context(options);
    this.oauth = new OAuth(ctx);
    this.resources = new Resources(ctx);
    this.users = new Users(ctx);
    this.sessions = new Sessions(ctx);
    this.apiKeys = new ApiKeys(ctx);
    this.auditEvents = new AuditEvents(ctx);
    this.signingKeys = new SigningKeys(ctx);
    this.tokens = new Tokens(ctx);
    const tokens = this.tokens;
    this.middleware = { requireToken: (o) => requireToken(tokens, o) };
  }
}
