import type { IncomingHttpHeaders } from 'node:http';
import type { RpcHttpCookie, RpcHttpData, RpcTypedData } from './core-types';
import type { InvocationInput } from './invocation';

/** An HTTP answer as the local host writes it and `invoke` reports it. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

export interface HttpRequestInit {
  method: string;
  url: string;
  headers: Record<string, string>;
  params: Record<string, string>;
  body?: Buffer;
}

/** Node joins repeated headers except a few; the Functions host hands one string per header. */
export function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    result[name] = Array.isArray(value) ? value.join(name === 'cookie' ? '; ' : ', ') : value;
  }
  return result;
}

/**
 * The RPC http data the host sends the worker (raw body bytes, as with the worker's `RawHttpBodyBytes`
 * capability). The query is left to the library, which reads it from the URL and so keeps repeated keys.
 */
export function httpInvocationInput(triggerBinding: string, request: HttpRequestInit): InvocationInput {
  const http: RpcHttpData = {
    method: request.method.toUpperCase(),
    url: request.url,
    headers: request.headers,
    params: request.params,
  };
  if (request.body && request.body.length > 0) http.body = { bytes: request.body };
  return { inputData: [{ name: triggerBinding, data: { http } }], triggerMetadata: {} };
}

function cookieHeader(cookie: RpcHttpCookie): string | undefined {
  if (!cookie.name) return undefined;
  const parts = [`${cookie.name}=${encodeURIComponent(cookie.value ?? '')}`];
  if (cookie.domain?.value) parts.push(`Domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`Path=${cookie.path.value}`);
  const expires = cookie.expires?.value;
  if (expires?.seconds !== undefined && expires.seconds !== null) {
    parts.push(`Expires=${new Date(Number(expires.seconds) * 1000).toUTCString()}`);
  }
  if (cookie.maxAge?.value !== undefined && cookie.maxAge.value !== null)
    parts.push(`Max-Age=${cookie.maxAge.value}`);
  if (cookie.secure?.value) parts.push('Secure');
  if (cookie.httpOnly?.value) parts.push('HttpOnly');
  const sameSite = { lax: 'Lax', strict: 'Strict', explicitNone: 'None', none: undefined }[
    cookie.sameSite ?? 'none'
  ];
  if (sameSite) parts.push(`SameSite=${sameSite}`);
  return parts.join('; ');
}

function bodyBytes(body: RpcTypedData | null | undefined): Buffer {
  if (!body) return Buffer.alloc(0);
  if (body.bytes) return Buffer.from(body.bytes);
  if (body.stream) return Buffer.from(body.stream);
  if (typeof body.string === 'string') return Buffer.from(body.string, 'utf8');
  if (typeof body.json === 'string') return Buffer.from(body.json, 'utf8');
  return Buffer.alloc(0);
}

/**
 * The answer for the http return value the library produced (`toRpcHttp`). A handler that returns
 * nothing gets 204 No Content.
 */
export function httpAnswer(returnValue: RpcTypedData | null | undefined): HttpAnswer {
  const http = returnValue?.http;
  if (!http) return { status: 204, headers: {}, cookies: [], body: Buffer.alloc(0) };
  const cookies = (http.cookies ?? []).map(cookieHeader).filter((c): c is string => c !== undefined);
  return {
    status: Number(http.statusCode) || 200,
    headers: { ...(http.headers ?? {}) },
    cookies,
    body: bodyBytes(http.body),
  };
}

/** For summaries: JSON bodies parsed, other text as a string. */
export function describeHttpAnswer(answer: HttpAnswer): {
  status: number;
  headers: Record<string, string>;
  body: unknown;
} {
  const headers = { ...answer.headers };
  if (answer.cookies.length) headers['set-cookie'] = answer.cookies.join(', ');
  const text = answer.body.toString('utf8');
  let body: unknown = text;
  const type = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
  if (/json/i.test(type) && text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: answer.status, headers, body };
}
