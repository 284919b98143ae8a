import { createHash } from 'node:crypto';
import { FpxError } from './errors';

export interface Page<T> {
  page: number;
  items: T[];
  count?: number;
  hasMore: boolean;
  /** The whole envelope, for fields next to `items` (`rfaId`, `tenantName`, …). */
  envelope: Record<string, unknown>;
}

/** What one page's answer holds once validated (the list envelope; a bare array is mapped to one). */
export interface PageBody<T> {
  items?: T[] | null;
  count?: number | null;
  hasMore?: boolean | null;
  [key: string]: unknown;
}

export type FetchPage<T> = (page: number) => Promise<PageBody<T>>;

/**
 * A paged FPX listing: iterate items directly, or `.pages()` for page-at-a-time work.
 * Follows `hasMore`, and stops with an error rather than loop forever when FPX repeats a page
 * or says there is more after an empty page.
 */
export class PagedList<T> implements AsyncIterable<T> {
  constructor(
    private readonly endpoint: string,
    private readonly fetchPage: FetchPage<T>,
  ) {}

  /**
   * From page 1, or from `fromPage` when a listing continues where an earlier invocation stopped
   * (`itemsBefore`: the items those pages held, for the fallback on `count`).
   */
  async *pages(fromPage = 1, itemsBefore = 0): AsyncGenerator<Page<T>> {
    let previousDigest: string | undefined;
    let seen = itemsBefore;
    for (let page = fromPage; ; page++) {
      const envelope = await this.fetchPage(page);
      const items = envelope.items ?? [];
      const count = envelope.count ?? undefined;
      seen += items.length;
      // Without `hasMore`, fall back on the items counted against `count` (FPX may cap the page size below
      // ours); with neither, read on until an empty page rather than risk taking part of a list for all of it.
      const hasMore = envelope.hasMore ?? (count !== undefined ? seen < count : items.length > 0);
      if (hasMore && items.length === 0) {
        throw this.loopError(
          `page ${page} is empty but ${envelope.hasMore ? 'hasMore is still true' : `count says ${count}`}`,
        );
      }
      const digest =
        items.length > 0 ? createHash('sha256').update(JSON.stringify(items)).digest('hex') : undefined;
      if (digest && digest === previousDigest) {
        throw this.loopError(`page ${page} repeats page ${page - 1} (is paging ignored?)`);
      }
      previousDigest = digest;
      yield { page, items, count, hasMore, envelope };
      if (!hasMore) return;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.pages()) yield* page.items;
  }

  /** Every item in memory: only for lists known to be small. */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }

  private loopError(detail: string): FpxError {
    return new FpxError(
      { kind: 'loop', endpoint: this.endpoint },
      `FPX ${this.endpoint} paging stopped: ${detail}; refusing to loop`,
    );
  }
}
