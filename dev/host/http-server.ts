import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { RegisteredFunctionInfo } from './function-info';
import { flattenHeaders, type HttpAnswer, httpInvocationInput } from './http-message';
import { hostLine } from './logger';
import { compareRoutes, parseRoute, type RouteTemplate } from './routes';
import type { HostRuntime } from './runtime';

/** Azure's limit for request bodies. */
const MAX_BODY_BYTES = 100 * 1024 * 1024;
const ADMIN_FUNCTION = /^\/admin\/functions\/([^/]+)\/?$/i;
// Written by Node itself, or meaningless once the body is buffered.
const SKIPPED_RESPONSE_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

interface HttpRoute {
  info: RegisteredFunctionInfo;
  template: RouteTemplate;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const type =
    body === undefined
      ? {}
      : {
          'content-type':
            typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
        };
  res.writeHead(status, { ...type, 'content-length': String(Buffer.byteLength(payload)), ...headers });
  res.end(payload);
}

function writeAnswer(res: ServerResponse, answer: HttpAnswer, invocationId: string): void {
  for (const [name, value] of Object.entries(answer.headers)) {
    if (!SKIPPED_RESPONSE_HEADERS.has(name.toLowerCase())) res.setHeader(name, value);
  }
  if (answer.cookies.length) res.setHeader('set-cookie', answer.cookies);
  res.setHeader('x-ms-invocation-id', invocationId);
  res.statusCode = answer.status;
  res.end(answer.body);
}

/**
 * The HTTP face of the local host: `/<routePrefix>/<route>` for HTTP triggers and the admin API
 * (`POST /admin/functions/<name>`, `GET /admin/functions`, `GET /admin/host/status`).
 */
export function createHostServer(runtime: HostRuntime, routePrefix: string, origin: () => string): Server {
  const routes: HttpRoute[] = runtime.functions
    .filter((f) => f.trigger === 'http')
    .map((info) => ({ info, template: parseRoute(info.route ?? '') }))
    .sort((a, b) => compareRoutes(a.template, b.template));
  const prefix = routePrefix ? `/${routePrefix.toLowerCase()}` : '';

  async function handleFunction(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const lower = pathname.toLowerCase();
    if (prefix && lower !== prefix && !lower.startsWith(`${prefix}/`)) return send(res, 404);
    const subPath = pathname.slice(prefix.length);
    const method = (req.method ?? 'GET').toUpperCase();
    const matching = routes
      .map((route) => ({ route, params: route.template.match(subPath) }))
      .filter((m) => m.params !== undefined);
    const chosen = matching.find((m) => m.route.info.methods?.includes(method));
    // As the Functions host: a route that exists but not for this method is not found either.
    if (!chosen?.params) return send(res, 404);
    const body = await readBody(req);
    const request = {
      method,
      url: new URL(req.url ?? '/', origin()).toString(),
      headers: flattenHeaders(req.headers),
      params: chosen.params,
      body,
    };
    const info = chosen.route.info;
    const run = await runtime.invoker.invoke(
      info,
      httpInvocationInput(info.triggerBinding, request),
      'This HTTP triggered function was executed.',
    );
    if (run.outcome.outcome === 'Failed' || !run.http) {
      return send(res, 500, undefined, { 'x-ms-invocation-id': run.outcome.invocationId });
    }
    writeAnswer(res, run.http, run.outcome.invocationId);
  }

  async function handleAdmin(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    if (/^\/admin\/host\/status\/?$/i.test(pathname) && method === 'GET') {
      const errors = [...runtime.problems].map(([name, error]) => `${name}: ${error.message}`);
      return send(res, 200, {
        state: 'Running',
        functions: runtime.functions.length,
        ...(errors.length ? { errors } : {}),
      });
    }
    if (/^\/admin\/functions\/?$/i.test(pathname) && method === 'GET') {
      return send(res, 200, runtime.functions);
    }
    const target = ADMIN_FUNCTION.exec(pathname);
    if (!target?.[1] || method !== 'POST') return send(res, 404);
    const name = decodeURIComponent(target[1]);
    const info = runtime.find(name);
    if (!info) {
      const inError = runtime.problem(name);
      return send(res, 404, {
        message: inError ? `Function ${name} is in error: ${inError.message}` : `No function named ${name}`,
      });
    }
    const text = (await readBody(req)).toString('utf8');
    let input: unknown;
    try {
      input = text.trim() ? (JSON.parse(text) as { input?: unknown }).input : undefined;
    } catch {
      return send(res, 400, { message: 'The body must be JSON: {"input": "..."}' });
    }
    // Accepted now, run in the background, as the Functions host's admin API does.
    runtime.invoke(info.name, input === '' ? undefined : input).catch((error: Error) => {
      hostLine(runtime.logger, 'error', `Admin run of ${info.name} failed to start: ${error.message}`);
    });
    send(res, 202);
  }

  return createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://local').pathname;
    const handle = /^\/admin(\/|$)/i.test(pathname) ? handleAdmin : handleFunction;
    handle(req, res, pathname).catch((error: Error) => {
      if (error instanceof BodyTooLarge) return send(res, 413);
      hostLine(runtime.logger, 'error', `${req.method} ${req.url}: ${error.stack ?? error.message}`);
      send(res, 500);
    });
  });
}
