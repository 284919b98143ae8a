/**
 * The HTTP status an Azure SDK call failed with (`RestError.statusCode`), for tables, queues and any other
 * Azure client; undefined for errors that carry none (a network failure, a bug).
 */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** 404: the entity, table or queue does not exist. */
export const isNotFound = (error: unknown): boolean => statusOf(error) === 404;

/** 409: created by someone else first (an insert of an existing entity, a claim already taken). */
export const isConflict = (error: unknown): boolean => statusOf(error) === 409;

/** 412: changed by someone else since it was read (an ETag condition failed). */
export const isPreconditionFailed = (error: unknown): boolean => statusOf(error) === 412;
