import { createSecureContext, rootCertificates } from 'node:tls';
import type { Agent } from 'undici';
import type { z } from 'zod';
import type { CertificateSource, ClientCertificate } from '../cert/certificate';
import { type Clock, sleep, systemClock } from '../clock';
import { lazy } from '../lazy';
import { FpxAttemptSpan, recordCertificate } from '../telemetry';
import { FpxError, readErrorBody } from './errors';
import { type CallLimiter, type Priority, RateLimiter } from './rate-limiter';

export type Query = Record<string, string | number | boolean | Array<string | number> | undefined | null>;

export interface CallSpec<S extends z.ZodType> {
  method: 'GET' | 'POST' | 'PATCH';
  /** Path below the base URL, already encoded, e.g. `/tenants/<id>/notes`. */
  path: string;
  /** Names the endpoint in errors and stats, e.g. `GET /tenants/{tenantId}/notes`. */
  endpoint: string;
  query?: Query;
  body?: unknown;
  /** The end user's JWT, sent as `Authorization: Bearer`; never logged or kept. */
  endUserToken?: string;
  schema: S;
  signal?: AbortSignal;
  /** Overrides the policy's attempts for this call (a GET only; e.g. 1 for a health probe). */
  maxAttempts?: number;
  /** Interactive calls (a webhook's delivery, the health probe) get their rate slot before bulk ones. */
  priority?: Priority;
  /** Told of every HTTP request this call sends (retries included), e.g. to count a sync run's calls. */
  onAttempt?: () => void;
}

export interface RetryPolicy {
  /** Attempts of a GET in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry starts after this long since the first attempt (Retry-After included). */
  maxTotalMs: number;
}

export interface TransportOptions {
  baseUrl: string;
  certificates: CertificateSource;
  /** Extra CA certificates (PEM) trusted for FPX's server certificate, besides the system's. */
  caPem?: string;
  origin?: string;
  rateLimitPerMinute: number;
  /** The deployment's shared budget; without it, a limiter of this process's own at `rateLimitPerMinute`. */
  limiter?: CallLimiter;
  /** Where retry waits and certificate-refresh spacing take their time (tests move a ManualClock). */
  clock?: Clock;
  timeouts?: { connectMs?: number; headersMs?: number; bodyMs?: number };
  retry?: Partial<RetryPolicy>;
}

export interface TransportStats {
  /** HTTP requests sent to FPX (retries included). */
  calls: number;
  retries: number;
  /** 429 answers received. */
  throttled: number;
}

const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  maxTotalMs: 120_000,
};
const AUTH_REFRESH_INTERVAL_MS = 60_000;
const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_|CERT_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/;

/**
 * The one way to FPX: mutual TLS through an undici Agent per certificate, the process-wide rate
 * limiter, and retries for GETs only. POST and PATCH are never resent here (the caller decides).
 */
export class FpxTransport {
  readonly stats: TransportStats = { calls: 0, retries: 0, throttled: 0 };
  readonly limiter: CallLimiter;
  private readonly clock: Clock;
  private readonly base: string;
  /** FPX's host name, for the spans (never a path: it may hold ids). */
  private readonly host: string;
  private readonly retry: RetryPolicy;
  private readonly timeouts: { connectMs: number; headersMs: number; bodyMs: number };
  private readonly ca?: string[];
  private current?: { thumbprint: string; agent: Agent };
  /** The last refresh asked for because FPX refused us; callers refused within the minute share it. */
  private authRefresh?: { at: number; result: Promise<ClientCertificate | undefined> };

  constructor(private readonly options: TransportOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.host = URL.canParse(this.base) ? new URL(this.base).host : '';
    this.clock = options.clock ?? systemClock;
    this.limiter = options.limiter ?? new RateLimiter(options.rateLimitPerMinute, this.clock);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.timeouts = { connectMs: 10_000, headersMs: 30_000, bodyMs: 30_000, ...options.timeouts };
    this.ca = options.caPem ? [...rootCertificates, options.caPem] : undefined;
  }

  async call<S extends z.ZodType>(spec: CallSpec<S>): Promise<z.output<S>> {
    const startedAt = this.clock.now();
    const retriable = spec.method === 'GET';
    let renewed = false;
    for (let attempt = 1; ; attempt++) {
      const waitFrom = this.clock.now();
      await this.limiter.acquire(spec.signal, spec.priority);
      // The wait for a rate slot only (a certificate load below is not part of it).
      const slotWaitMs = this.clock.now() - waitFrom;
      const certificate = await this.options.certificates.current();
      recordCertificate(certificate.notAfter);
      // One span per HTTP request (an Application Insights dependency), ended on every way out below.
      const span = new FpxAttemptSpan(spec.method, spec.endpoint, this.host, attempt, slotWaitMs);
      let error: FpxError;
      try {
        const result = await this.send(spec, certificate, span);
        span.end('ok');
        return result;
      } catch (e) {
        if (!(e instanceof FpxError)) {
          span.fail({ kind: 'unexpected' });
          throw e;
        }
        error = e;
      }
      if (error.status === 429) {
        // FPX counts per user or IP, so every caller of this process waits, not just this one.
        this.limiter.pause(this.clock.now() + (error.retryAfterMs ?? this.backoff(attempt)));
      }
      if (refusedCertificate(error, spec)) {
        const now = await this.refreshCertificate(error);
        // Refused with a certificate that has since been replaced: once more with the new one, whatever the
        // method, when FPX did not act on the request (handshake refused, 401).
        if (!renewed && !error.outcomeUnknown && now && now.thumbprint !== certificate.thumbprint) {
          renewed = true;
          this.stats.retries++;
          span.end('retried', error);
          continue;
        }
      }
      if (!retriable || !error.transient || attempt >= (spec.maxAttempts ?? this.retry.maxAttempts))
        throw span.fail(error);
      const delay = error.status === 429 ? 0 : (error.retryAfterMs ?? this.backoff(attempt));
      const now = this.clock.now();
      const resumeAt = Math.max(now + delay, now + this.limiter.pausedForMs);
      if (resumeAt - startedAt > this.retry.maxTotalMs) throw span.fail(error);
      this.stats.retries++;
      span.end('retried', error);
      if (delay > 0) await sleep(this.clock, delay, spec.signal);
    }
  }

  /** Closes the connections; in-flight calls finish first. */
  async close(): Promise<void> {
    const agent = this.current?.agent;
    this.current = undefined;
    await agent?.close();
  }

  /** Full-jitter exponential backoff. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(Math.random() * ceiling);
  }

  private async send<S extends z.ZodType>(
    spec: CallSpec<S>,
    certificate: ClientCertificate,
    span: FpxAttemptSpan,
  ): Promise<z.output<S>> {
    const agent = this.agentFor(certificate);
    const url = `${this.base}${spec.path}${queryString(spec.query)}`;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'fpx-crm-connector' };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.origin) headers.origin = this.options.origin;
    if (spec.endUserToken) headers.authorization = `Bearer ${spec.endUserToken}`;

    this.stats.calls++;
    spec.onAttempt?.();
    let status: number;
    let responseHeaders: Record<string, string | string[] | undefined>;
    let text: string;
    try {
      const response = await lazy.undici().request(url, {
        method: spec.method,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        dispatcher: agent,
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyMs,
        signal: spec.signal,
      });
      status = response.statusCode;
      span.answered(status);
      responseHeaders = response.headers;
      text = await response.body.text();
    } catch (error) {
      throw networkError(spec, error);
    }

    const body = parseJson(text);
    if (status >= 200 && status < 300) {
      if (body === INVALID_JSON) {
        throw new FpxError(
          { kind: 'invalid-response', endpoint: spec.endpoint, status },
          invalidBody(spec, 'not JSON'),
        );
      }
      const parsed = spec.schema.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
        throw new FpxError(
          { kind: 'invalid-response', endpoint: spec.endpoint, status },
          invalidBody(spec, `${where}${issue?.message ?? 'does not match'}`),
        );
      }
      return parsed.data;
    }
    if (status === 429) this.stats.throttled++;
    throw new FpxError({
      kind: 'http',
      endpoint: spec.endpoint,
      status,
      // A 5xx may come after FPX (or a dependency behind it) applied a write (FPX-NOTES #13); only a 4xx says not.
      outcomeUnknown: spec.method !== 'GET' && status >= 500,
      retryAfterMs: retryAfterMs(responseHeaders['retry-after']),
      ...readErrorBody(body === INVALID_JSON ? text : body),
    });
  }

  /** One Agent per certificate; a new certificate gets a new Agent and the old one closes once idle. */
  private agentFor(certificate: ClientCertificate): Agent {
    if (this.current?.thumbprint === certificate.thumbprint) return this.current.agent;
    const previous = this.current?.agent;
    // One TLS context per certificate, shared by its connections: building one parses the key and, with
    // FPX_CA_PATH, every root CA again (tens of milliseconds of CPU per new connection otherwise).
    const secureContext = createSecureContext({
      cert: certificate.certPem,
      key: certificate.keyPem,
      ca: this.ca,
    });
    const agent = new (lazy.undici().Agent)({
      connect: { secureContext, timeout: this.timeouts.connectMs },
      connections: 32,
    });
    this.current = { thumbprint: certificate.thumbprint, agent };
    // close() lets requests already dispatched on the old Agent finish.
    previous?.close().catch(() => undefined);
    return agent;
  }

  /**
   * FPX refused us: maybe the certificate was rotated. Asks the source again at most once a minute; resolves
   * to the certificate current after that look (undefined if the source failed).
   */
  private refreshCertificate(error: FpxError): Promise<ClientCertificate | undefined> {
    if (this.authRefresh && this.clock.now() - this.authRefresh.at < AUTH_REFRESH_INTERVAL_MS) {
      return this.authRefresh.result;
    }
    const result = this.options.certificates
      .refresh(`FPX ${error.endpoint} answered ${error.status ?? error.kind}`)
      .catch(() => undefined);
    this.authRefresh = { at: this.clock.now(), result };
    return result;
  }
}

/**
 * A 401 to a call without an end user's token, a failed TLS handshake, or a connection closed before any
 * answer: a TLS 1.3 server that rejects the client certificate after the handshake just closes the connection
 * (Node's does), which looks like that. Not a 403 (FPX knows us and refuses this request, FPX-NOTES #14), nor
 * a 401 to a call with a token (FPX refused that user: final, never resent).
 */
function refusedCertificate(error: FpxError, spec: CallSpec<z.ZodType>): boolean {
  if (error.status === 401) return !spec.endUserToken;
  if (error.kind === 'tls') return true;
  const cause = error.cause as { code?: string; socket?: { bytesRead?: number } } | undefined;
  return error.kind === 'network' && cause?.code === 'UND_ERR_SOCKET' && cause.socket?.bytesRead === 0;
}

const INVALID_JSON = Symbol('invalid JSON');

function parseJson(text: string): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return INVALID_JSON;
  }
}

function invalidBody(spec: CallSpec<z.ZodType>, detail: string): string {
  return `FPX ${spec.endpoint} answered with an unexpected body: ${detail}`;
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** Seconds or an HTTP date, as FPX may send either. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function errorCode(error: unknown): string {
  let current = error as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    if (typeof current.code === 'string') return current.code;
    current = current.cause as typeof current;
  }
  return '';
}

/** No answer from FPX. For a create or update, whether it reached FPX is unknown unless the connection never opened. */
function networkError(spec: CallSpec<z.ZodType>, error: unknown): FpxError {
  const code = errorCode(error);
  const neverSent = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH'];
  const write = spec.method !== 'GET';
  const name = (error as Error)?.name;
  // undici rejects with the signal's reason: an AbortError, or the TimeoutError of AbortSignal.timeout().
  if (code === 'UND_ERR_ABORTED' || name === 'AbortError' || name === 'TimeoutError') {
    return new FpxError(
      { kind: 'timeout', endpoint: spec.endpoint, outcomeUnknown: write, cause: error },
      `FPX ${spec.endpoint} ${name === 'TimeoutError' ? 'failed: no answer in time' : 'was aborted'}`,
    );
  }
  if (TLS_CODE.test(code)) {
    return new FpxError(
      { kind: 'tls', endpoint: spec.endpoint, outcomeUnknown: false, cause: error },
      `FPX ${spec.endpoint} failed: TLS handshake refused (${code}); check the client certificate and FPX_CA_PATH`,
    );
  }
  const timeout = code.includes('TIMEOUT');
  return new FpxError(
    {
      kind: timeout ? 'timeout' : 'network',
      endpoint: spec.endpoint,
      outcomeUnknown: write && !neverSent.includes(code),
      cause: error,
    },
    `FPX ${spec.endpoint} failed: ${timeout ? 'no answer in time' : 'connection failed'} (${code || 'unknown error'})`,
  );
}
