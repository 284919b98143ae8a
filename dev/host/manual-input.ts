import type { RegisteredFunctionInfo } from './function-info';
import { type HttpRequestInit, httpInvocationInput } from './http-message';
import type { InvocationInput } from './invocation';
import { queueInvocationInput, syntheticMessage } from './queue-message';
import { parseRoute } from './routes';

/**
 * Inputs for runs that do not come from a trigger source: the admin endpoint, `RunningHost.invoke`
 * and `npm run invoke`.
 */

/** An HTTP request described as JSON: `{"method", "path" or "url", "query", "headers", "body", "params"}`. */
export interface HttpInvokeInput {
  method?: string;
  path?: string;
  url?: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  /** A string or bytes are sent as they are; anything else as JSON. */
  body?: unknown;
  /** Route parameters, used to fill the route when neither path nor url is given. */
  params?: Record<string, string>;
}

export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

function fillRoute(route: string, params: Record<string, string>): string {
  return route
    .replace(/\{\*{0,2}([A-Za-z_]\w*)[^}]*\}/g, (_m, name: string) => encodeURIComponent(params[name] ?? ''))
    .replace(/\/{2,}/g, '/')
    .replace(/\/+$/, '');
}

export function httpRequestFromInput(
  info: RegisteredFunctionInfo,
  input: HttpInvokeInput,
  origin: string,
  routePrefix: string,
): HttpRequestInit {
  const prefix = routePrefix ? `/${routePrefix}` : '';
  let url: URL;
  if (input.url) {
    url = new URL(input.url, origin);
  } else {
    let path = input.path ?? fillRoute(info.route ?? '', input.params ?? {});
    if (!path.startsWith('/')) path = `/${path}`;
    if (
      prefix &&
      !path.toLowerCase().startsWith(`${prefix.toLowerCase()}/`) &&
      path.toLowerCase() !== prefix
    ) {
      path = `${prefix}${path === '/' ? '' : path}`;
    }
    url = new URL(path, origin);
  }
  for (const [name, value] of Object.entries(input.query ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(v));
  }
  const subPath = prefix ? url.pathname.slice(prefix.length) : url.pathname;
  const params = parseRoute(info.route ?? '').match(subPath);
  if (!params) {
    throw new InputError(
      `Path ${url.pathname} does not match the route "${prefix}/${info.route}" of ${info.name}`,
    );
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  let body: Buffer | undefined;
  if (typeof input.body === 'string') body = Buffer.from(input.body, 'utf8');
  else if (Buffer.isBuffer(input.body)) body = input.body;
  else if (input.body !== undefined) {
    body = Buffer.from(JSON.stringify(input.body), 'utf8');
    headers['content-type'] ??= 'application/json';
  }
  const methods = info.methods ?? ['GET', 'POST'];
  const method = (
    input.method ??
    (body && methods.includes('POST') ? 'POST' : methods[0]) ??
    'GET'
  ).toUpperCase();
  if (!methods.includes(method)) {
    throw new InputError(`${info.name} accepts ${methods.join(', ')}, not ${method}`);
  }
  headers.host ??= url.host;
  if (body) headers['content-length'] = String(body.length);
  return { method, url: url.toString(), headers, params, body };
}

/** The input for a manual run of a queue or http function (timers are run by their TimerRunner). */
export function manualInvocationInput(
  info: RegisteredFunctionInfo,
  input: unknown,
  origin: string,
  routePrefix: string,
): InvocationInput {
  switch (info.trigger) {
    case 'queue':
      if (input === undefined) throw new InputError(`${info.name} needs an input: the queue message`);
      return queueInvocationInput(info.name, info.triggerBinding, syntheticMessage(input));
    case 'http': {
      const described = typeof input === 'string' && input.trim() ? safeJson(input) : (input ?? {});
      if (typeof described !== 'object' || described === null || Array.isArray(described)) {
        throw new InputError(`${info.name} needs an input like {"method","path","query","headers","body"}`);
      }
      return httpInvocationInput(
        info.triggerBinding,
        httpRequestFromInput(info, described, origin, routePrefix),
      );
    }
    default:
      throw new InputError(`${info.name} has a ${info.triggerType}, which the local host cannot run`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError(`The input is not JSON: ${text}`);
  }
}
