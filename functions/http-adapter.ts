import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { PlainRequest, PlainResponse } from '../lib/http';
import type { Log } from '../lib/log';

/**
 * The one place HTTP functions meet the Functions library: lib/ handlers take a `PlainRequest` and a `Log`
 * and answer a `PlainResponse`; this turns them into the library's `HttpHandler`.
 */
export type PlainHttpHandler = (request: PlainRequest, log: Log) => PlainResponse | Promise<PlainResponse>;

/** An `HttpHandler` of the Functions library (narrowed: it always answers an `HttpResponseInit`). */
export type FunctionsHttpHandler = (
  request: HttpRequest,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

export function adaptHttp(handler: PlainHttpHandler): FunctionsHttpHandler {
  return async (request, context) => toHttpResponse(await handler(toPlainRequest(request), context));
}

/**
 * The host's request as plain values. The body is passed through as the library's stream, not read here:
 * lib reads it only as far as its limit (readBoundedBody), so an oversized body is never held.
 */
function toPlainRequest(request: HttpRequest): PlainRequest {
  // Headers iterate with lower-case names, repeated ones joined; of a repeated query parameter the first counts.
  const headers = Object.fromEntries(request.headers);
  const query = Object.fromEntries([...request.query].reverse());
  return {
    method: request.method,
    path: new URL(request.url).pathname,
    headers,
    body: request.body,
    params: { ...request.params },
    query,
  };
}

function toHttpResponse(response: PlainResponse): HttpResponseInit {
  const { status, headers, jsonBody, body } = response;
  return {
    status,
    ...(headers ? { headers } : {}),
    ...(jsonBody !== undefined ? { jsonBody } : {}),
    ...(body !== undefined ? { body } : {}),
  };
}
