/**
 * A cursor-paginated list (`?limit=&after=` → `{data, has_more, next_cursor}`).
 * Awaiting it gives the first page; `for await` walks every item of every page.
 */
import { TruSecError } from './errors.js';

export interface Page<T> {
  data: T[];
  hasMore: boolean;
  nextCursor: string | null;
}

export interface PageParams {
  /** 1 to 100 (the server's default: 20). */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  after?: string;
}

export type PageFetcher<T> = (after: string | undefined) => Promise<Page<T>>;

export class PageRequest<T> implements PromiseLike<Page<T>>, AsyncIterable<T> {
  #first: Promise<Page<T>> | undefined;

  constructor(
    private readonly fetchPage: PageFetcher<T>,
    private readonly after: string | undefined,
  ) {}

  then<A = Page<T>, B = never>(
    onFulfilled?: ((page: Page<T>) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.#first ??= this.fetchPage(this.after);
    return this.#first.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page<T> | B> {
    return this.then(undefined, onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page<T>> {
    return this.then().finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page = await this.fetchPage(this.after);
    yield* page.data;
    while (page.hasMore) {
      const cursor = page.nextCursor;
      if (typeof cursor !== 'string' || cursor === '') {
        throw new TruSecError({ type: 'invalid_response', message: 'has_more is true but next_cursor is missing' });
      }
      const next = await this.fetchPage(cursor);
      if (next.nextCursor === cursor) {
        throw new TruSecError({ type: 'invalid_response', message: 'the server returned the same cursor twice' });
      }
      page = next;
      yield* page.data;
    }
  }
}

/** The request of a `/v1` list route, with its filters; pages follow `next_cursor`. */
export function listOf<T>(
  api: <R>(call: { method: 'GET'; path: string; query: Record<string, string | number | Date | undefined> }) => Promise<R>,
  path: string,
  params: PageParams,
  filters: Record<string, string | Date | undefined> = {},
): PageRequest<T> {
  const fetchPage = (after: string | undefined): Promise<Page<T>> =>
    api<Page<T>>({ method: 'GET', path, query: { ...filters, limit: params.limit, after } });
  return new PageRequest(fetchPage, params.after);
}
