import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type DevCertificates, ensureDevCertificates } from '../certs';
import { type Caller, decodeCaller } from './context';
import type { SandboxData } from './data';
import { type FaultMatch, type FaultProbabilities, Faults, type ScriptedFault } from './faults';
import { generateData } from './generate';
import { errorReply, Query, type Reply, validationReply } from './http';
import { SlidingWindowLimit } from './rate-limit';
import { API_BASE, matchRoute, unmatchedReply } from './routes';
import { headerOf, queryRecord, readBody, write } from './wire';

export interface SandboxOptions {
  /** 0 (default): a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default `ensureDevCertificates()`. */
  certs?: DevCertificates;
  /** Extra CA PEMs whose client certificates are accepted (besides `certs.ca`). */
  trustedClientCas?: string[];
  /** Sizes: default 60 tenants, 40 referrals, seed 1. */
  data?: { tenants?: number; referrals?: number; seed?: number };
  /** Default 600; 0 turns the limit off. */
  rateLimitPerMinute?: number;
  /** Default none. */
  faults?: FaultProbabilities;
  /** Fixed latency added to every answer; default 0. */
  latencyMs?: number;
}

export interface RequestLogEntry {
  time: number;
  method: string;
  /** The path after the API base, e.g. `/partnerReferrals`. */
  path: string;
  query: Record<string, string[]>;
  status: number | 'dropped';
  authorization?: string;
  origin?: string;
  body?: unknown;
  /** SHA-256 of the client certificate's DER, lowercase hex. */
  clientCertThumbprint?: string;
  fault?: string;
  durationMs: number;
}

export interface Sandbox {
  /** `https://127.0.0.1:<port>/ftop/v1.2/api`: every endpoint lives under it. */
  url: string;
  port: number;
  certs: DevCertificates;
  /** The live, mutable store; tests edit it to simulate changes in FPX. */
  data: SandboxData;
  requests: RequestLogEntry[];
  clearRequests(): void;
  /** Queue one-shot faults, consumed in order by the next matching requests. */
  injectFault(fault: ScriptedFault, match?: FaultMatch, times?: number): void;
  setFaults(p: FaultProbabilities): void;
  /** 0 = off. */
  setRateLimit(perMinute: number): void;
  /** The most calls let through in any 60-second window, per caller (`cert:<thumbprint>`). */
  busiestWindows(): Record<string, number>;
  /** When down, every request answers 503 (PascalCase error body). */
  setOutage(down: boolean): void;
  /** Closes the server and all open sockets. */
  close(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const certs = options.certs ?? ensureDevCertificates();
  const data = generateData(options.data);
  const limiter = new SlidingWindowLimit(options.rateLimitPerMinute ?? 600);
  const faults = new Faults(options.faults);
  const requests: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const thumbprints = new WeakMap<object, string | undefined>();
  let outage = false;

  const server = https.createServer({
    key: certs.server.keyPem,
    cert: certs.server.certPem,
    ca: [certs.ca.certPem, ...(options.trustedClientCas ?? [])],
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const delay = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const thumbprintOf = (socket: TLSSocket): string | undefined => {
    if (!thumbprints.has(socket)) {
      const raw = socket.getPeerX509Certificate?.()?.raw;
      thumbprints.set(socket, raw ? createHash('sha256').update(raw).digest('hex') : undefined);
    }
    return thumbprints.get(socket);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'https://sandbox.invalid');
    const method = (req.method ?? 'GET').toUpperCase();
    const inApi = url.pathname === API_BASE || url.pathname.startsWith(`${API_BASE}/`);
    const path = inApi ? url.pathname.slice(API_BASE.length) || '/' : url.pathname;
    const entry: RequestLogEntry = {
      time: Date.now(),
      method,
      path,
      query: queryRecord(url.searchParams),
      status: 0,
      authorization: headerOf(req, 'authorization'),
      origin: headerOf(req, 'origin'),
      clientCertThumbprint: thumbprintOf(req.socket as TLSSocket),
      durationMs: 0,
    };
    // Logged before the answer is written, so a client that got its answer always finds the entry.
    const log = (status: number | 'dropped', fault?: string) => {
      entry.status = status;
      if (fault) entry.fault = fault;
      entry.durationMs = performance.now() - started;
      requests.push(entry);
    };
    const answer = async (reply: Reply, fault?: string) => {
      if (options.latencyMs) await delay(options.latencyMs);
      log(reply.status, fault);
      write(res, reply);
    };
    const drop = (fault: string) => {
      log('dropped', fault);
      req.socket.destroy();
    };

    if (outage) return answer(errorReply(503, 'FPX is unavailable (sandbox outage).'), 'outage');
    const fault = faults.next(method, path);
    if (fault?.kind === 'drop') return drop('drop');
    if (fault?.kind === '5xx') {
      const status = fault.status ?? 503;
      return answer(
        errorReply(status, `Simulated ${status} from the FPX sandbox.`, { dependencyType: 'Dynamics' }),
        '5xx',
      );
    }
    if (fault?.kind === '429') {
      const headers = { 'Retry-After': fault.retryAfter ?? '1' };
      return answer(errorReply(429, 'Too many requests (simulated).', { headers }), '429');
    }
    if (fault?.kind === 'refused') {
      return answer(errorReply(fault.status, `Simulated ${fault.status} from the FPX sandbox.`), 'refused');
    }
    if (fault?.kind === 'slow') await delay(fault.delayMs);

    const caller = decodeCaller(entry.authorization);
    // Per client certificate: every call the partner makes with it counts, whoever the user (FPX-NOTES #18).
    const wait = limiter.take(
      entry.clientCertThumbprint ? `cert:${entry.clientCertThumbprint}` : `ip:${req.socket.remoteAddress}`,
    );
    if (wait !== undefined) {
      const headers = { 'Retry-After': String(wait) };
      return answer(
        errorReply(429, `Rate limit exceeded: ${limiter.limit} calls in 60 seconds per certificate.`, {
          headers,
        }),
        fault?.kind,
      );
    }

    const body = await readBody(req);
    if (body === 'tooLarge') return answer(errorReply(413, 'The request body is too large.'), fault?.kind);
    entry.body = body.json ?? body.text;
    const reply = body.error
      ? validationReply({ Body: [body.error] })
      : dispatch(method, path, url, body.json, caller, inApi);
    if (fault?.kind === 'dropAfterHandling') {
      if (options.latencyMs) await delay(options.latencyMs);
      return drop('dropAfterHandling');
    }
    if (fault?.kind === 'applyThen5xx') {
      // The write is done (or refused, as it would be); the answer says only that something failed.
      const status = fault.status ?? 500;
      return answer(
        errorReply(status, `Simulated ${status} from the FPX sandbox.`, { dependencyType: 'Dynamics' }),
        'applyThen5xx',
      );
    }
    return answer(reply, fault?.kind);
  }

  function dispatch(
    method: string,
    path: string,
    url: URL,
    json: unknown,
    caller: Caller,
    inApi: boolean,
  ): Reply {
    try {
      const match = inApi ? matchRoute(method, path) : ({ status: 404 } as const);
      if ('status' in match) return unmatchedReply(match, method, path);
      return match.handler({
        method,
        params: match.params,
        query: new Query(url.searchParams),
        body: json,
        data,
        caller,
      });
    } catch (error) {
      if (error instanceof URIError)
        return validationReply({ Path: ['The path is not valid URL encoding.'] });
      console.error('FPX sandbox handler failed:', error);
      return errorReply(500, `Sandbox error: ${(error as Error).message}`);
    }
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      // The client gave up while its request was read (its timeout): nothing to answer, nothing to report.
      if (req.destroyed && !res.headersSent) return;
      console.error('FPX sandbox request failed:', error);
      if (!res.headersSent) write(res, errorReply(500, 'Sandbox error.'));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);

  return {
    url: `https://${urlHost(options.host ?? '127.0.0.1')}:${port}${API_BASE}`,
    port,
    certs,
    data,
    requests,
    clearRequests: () => {
      requests.length = 0;
    },
    injectFault: (fault, match, times) => faults.inject(fault, match, times),
    setFaults: (probabilities) => faults.setProbabilities(probabilities),
    setRateLimit: (perMinute) => limiter.setLimit(perMinute),
    busiestWindows: () => limiter.busiestWindows(),
    setOutage: (down) => {
      outage = down;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
