/** `/v1/api-keys`: the environment's API keys. */
import { type Context, pathId } from './context.js';
import { type PageParams, type PageRequest, listOf } from './pagination.js';
import type { Duration } from './sessions.js';

export type ApiKeyType = 'secret' | 'public' | 'test';

export interface ApiKey {
  id: string;
  type: ApiKeyType;
  name: string;
  environment: string;
  prefix: string;
  lastFour: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedTo: string | null;
}

/** A new key: the record and the key itself (shown once). */
export interface CreatedApiKey extends ApiKey {
  key: string;
}

export interface RotatedApiKey extends CreatedApiKey {
  /** The old key, which keeps working until `previous.expiresAt` (the grace period). */
  previous: ApiKey;
}

export class ApiKeys {
  constructor(private readonly ctx: Context) {}

  /** `expiresIn` defaults to 90 days on the server. */
  create(params: { type: ApiKeyType; name: string; expiresIn?: Duration }): Promise<CreatedApiKey> {
    return this.ctx.api({ method: 'POST', path: '/v1/api-keys', body: params });
  }

  get(id: string): Promise<ApiKey> {
    return this.ctx.api({ method: 'GET', path: `/v1/api-keys/${pathId(id)}` });
  }

  list(params: PageParams = {}): PageRequest<ApiKey> {
    return listOf<ApiKey>((c) => this.ctx.api(c), '/v1/api-keys', params);
  }

  /** A new key replacing `id`; the old one works until the grace period (default on the server: 24h) ends. */
  rotate(id: string, params: { gracePeriod?: Duration; expiresIn?: Duration } = {}): Promise<RotatedApiKey> {
    return this.ctx.api({ method: 'POST', path: `/v1/api-keys/${pathId(id)}/rotate`, body: params });
  }

  revoke(id: string): Promise<ApiKey> {
    return this.ctx.api({ method: 'DELETE', path: `/v1/api-keys/${pathId(id)}` });
  }
}
