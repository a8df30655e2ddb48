/** `/v1/users`: the environment's users. */
import { type Context, pathId, required } from './context.js';
import { type PageParams, type PageRequest, listOf } from './pagination.js';

export interface User {
  id: string;
  environment: string;
  email: string;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  groups: string[];
  metadata: Record<string, unknown>;
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface UserCreateParams {
  email: string;
  password?: string;
  name?: string;
  givenName?: string;
  familyName?: string;
  /** Group names, released as the OIDC `groups` claim and the SAML `groups` attribute. */
  groups?: string[];
  metadata?: Record<string, unknown>;
}

/** Fields to change; `null` clears an optional one (and `password: null` removes the password). */
export interface UserUpdateParams {
  email?: string;
  password?: string | null;
  name?: string | null;
  givenName?: string | null;
  familyName?: string | null;
  groups?: string[];
  metadata?: Record<string, unknown>;
}

/** What `/v1/users/me` shows a token: `id` and the fields its scopes release (all of them with `read:users`). */
export type UserInfo = Pick<User, 'id'> & Partial<Omit<User, 'id'>> & { emailVerified?: boolean };

export class Users {
  constructor(private readonly ctx: Context) {}

  create(params: UserCreateParams): Promise<User> {
    return this.ctx.api({ method: 'POST', path: '/v1/users', body: params });
  }

  get(id: string): Promise<User> {
    return this.ctx.api({ method: 'GET', path: `/v1/users/${pathId(id)}` });
  }

  list(params: PageParams = {}): PageRequest<User> {
    return listOf<User>((c) => this.ctx.api(c), '/v1/users', params);
  }

  update(id: string, params: UserUpdateParams): Promise<User> {
    return this.ctx.api({ method: 'PATCH', path: `/v1/users/${pathId(id)}`, body: params });
  }

  /** Deletes the user; their sessions and refresh tokens end with them. */
  delete(id: string): Promise<{ id: string; deleted: true }> {
    return this.ctx.api({ method: 'DELETE', path: `/v1/users/${pathId(id)}` });
  }

  /** The user behind an OAuth access token (never an API key). */
  me(params: { accessToken: string }): Promise<UserInfo> {
    required(params?.accessToken, 'accessToken');
    return this.ctx.api({ method: 'GET', path: '/v1/users/me', accessToken: params.accessToken });
  }
}
