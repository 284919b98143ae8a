/**
 * HTTP as lib sees it: plain values, no Functions types. functions/http-adapter.ts turns the host's
 * `HttpRequest` into a `PlainRequest` and a `PlainResponse` back into its `HttpResponseInit`.
 */

/**
 * A request body: the bytes, or a stream read only as far as a handler needs (`readBoundedBody`), so a
 * body past a handler's limit is never held. `null`: no body.
 */
export type RequestBody = Buffer | AsyncIterable<Uint8Array> | null;

export interface PlainRequest {
  method: string;
  /** The URL's path, e.g. `/api/crm/notes`. */
  path: string;
  /** Header names in lower case (see `header`); repeated headers joined with ", ". */
  headers: Readonly<Record<string, string>>;
  body: RequestBody;
  /** The route's parameters, e.g. `{id}` of `crm/deliveries/{id}`. */
  params?: Readonly<Record<string, string>>;
  /** The query string's parameters (the first value of each). */
  query?: Readonly<Record<string, string>>;
}

export interface PlainResponse {
  status: number;
  headers?: Record<string, string>;
  /** Sent as JSON (`content-type: application/json`). */
  jsonBody?: unknown;
  /** Sent as is, for answers that are not JSON (set their content-type in `headers`). */
  body?: string;
}

/** A header's value, or null when absent; the name in any case. */
export function header(request: Pick<PlainRequest, 'headers'>, name: string): string | null {
  const lower = name.toLowerCase();
  const value = request.headers[lower];
  if (value !== undefined) return value;
  const key = Object.keys(request.headers).find((k) => k.toLowerCase() === lower);
  return key === undefined ? null : (request.headers[key] ?? null);
}

/**
 * The body, read chunk by chunk; undefined as soon as it passes `limit` bytes, whatever Content-Length said
 * (chunked bodies have none): the rest is never read (the stream is cancelled), so no request holds more
 * than the limit.
 */
export async function readBoundedBody(body: RequestBody, limit: number): Promise<Buffer | undefined> {
  if (body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body.byteLength > limit ? undefined : body;
  const chunks: Uint8Array[] = [];
  let total = 0;
  const chunksOf = body[Symbol.asyncIterator]();
  for (;;) {
    const { done, value } = await chunksOf.next();
    if (done) return Buffer.concat(chunks, total);
    total += value.byteLength;
    if (total > limit) {
      // Stops the stream (a ReadableStream is cancelled): nothing more is pulled.
      await Promise.resolve(chunksOf.return?.()).catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
}
