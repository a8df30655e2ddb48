export { TruSec } from './client.js';
export type { TruSecOptions, Discovery } from './context.js';
export { TruSecError } from './errors.js';
export type { TruSecErrorType, ApiErrorType, OAuthErrorCode, ClientErrorType } from './errors.js';
export { generateCodeVerifier, generateCodeChallenge } from './pkce.js';
export type { AuthorizationUrlParams, ExchangeCodeParams, RefreshParams, ClientCredentialsParams, TokenSet, OAuth } from './oauth.js';
export type { User, UserCreateParams, UserUpdateParams, UserInfo, Users } from './users.js';
export type {
  Session,
  CreatedSession,
  SessionVerification,
  SessionInvalidReason,
  Duration,
  Sessions,
} from './sessions.js';
export type { Resource, ResourceScope, ResourceSigningAlg, ResourceCreateParams, ResourceUpdateParams, Resources } from './resources.js';
export type { ApiKey, ApiKeyType, CreatedApiKey, RotatedApiKey, ApiKeys } from './api-keys.js';
export type { AuditEvent, AuditEventType, AuditEventListParams, AuditEvents } from './audit-events.js';
export type { SigningKeyRotation, SigningKeys } from './signing-keys.js';
export type { AccessTokenClaims, IdTokenClaims, VerifyOptions, Tokens } from './tokens.js';
export type { RequireToken, RequireTokenOptions, Decision, Refusal, NodeRequest, NodeResponse, Next } from './middleware.js';
export type { Page, PageParams, PageRequest } from './pagination.js';
