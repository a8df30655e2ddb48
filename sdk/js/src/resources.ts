/**
 * `/v1/oauth/resources`: the environment's APIs (RFC 8707 resources). A
 * resource's `identifier` is the `aud` of the access tokens issued for it;
 * its scopes are the ones a client may then be allowed.
 */
import { type Context, pathId } from './context.js';
import { type PageParams, type PageRequest, listOf } from './pagination.js';

export interface ResourceScope {
  name: string;
  /** What the consent page shows for it. */
  description: string;
}

export type ResourceSigningAlg = 'ES256' | 'RS256' | 'EdDSA';

export interface Resource {
  id: string;
  environment: string;
  /** An absolute URI without fragment or query (RFC 8707 §2): the `aud` of its tokens. */
  identifier: string;
  name: string;
  scopes: ResourceScope[];
  /** `null`: the server's access-token lifetime. */
  accessTokenLifetimeSeconds: number | null;
  signingAlg: ResourceSigningAlg;
  createdAt: string;
  updatedAt: string;
}

export interface ResourceCreateParams {
  identifier: string;
  name: string;
  scopes?: ResourceScope[];
  /** 60 up to the server's access-token lifetime. */
  accessTokenLifetimeSeconds?: number;
  /** `ES256` by default. */
  signingAlg?: ResourceSigningAlg;
}

/** `scopes` replaces the whole list. */
export type ResourceUpdateParams = Partial<ResourceCreateParams>;

export class Resources {
  constructor(private readonly ctx: Context) {}

  create(params: ResourceCreateParams): Promise<Resource> {
    return this.ctx.api({ method: 'POST', path: '/v1/oauth/resources', body: params });
  }

  get(id: string): Promise<Resource> {
    return this.ctx.api({ method: 'GET', path: `/v1/oauth/resources/${pathId(id)}` });
  }

  list(params: PageParams = {}): PageRequest<Resource> {
    return listOf<Resource>((c) => this.ctx.api(c), '/v1/oauth/resources', params);
  }

  update(id: string, params: ResourceUpdateParams): Promise<Resource> {
    return this.ctx.api({ method: 'PATCH', path: `/v1/oauth/resources/${pathId(id)}`, body: params });
  }

  /** Deletes the resource; clients that had it as `default_resource` lose it. */
  delete(id: string): Promise<{ id: string; deleted: true }> {
    return this.ctx.api({ method: 'DELETE', path: `/v1/oauth/resources/${pathId(id)}` });
  }
}
