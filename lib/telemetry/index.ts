/**
 * The app's spans and metrics, through `@opentelemetry/api` only: without a registered SDK (neither
 * APPLICATIONINSIGHTS_CONNECTION_STRING nor OTEL_EXPORTER_OTLP_ENDPOINT set) every call here is a no-op.
 * `setup.ts` registers the SDK and exporters; nothing else in lib/ knows about them. See docs/operations.md.
 *
 * Attributes carry names, counts, statuses, templates and ids of our own records only: never a secret, a
 * token, certificate material, a note's text, a contact's field or a query value.
 */
import {
  type Attributes,
  type Context,
  context,
  type Meter,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

export const INSTRUMENTATION_NAME = 'fpx-crm-connector';

// Taken at each use, not once at load: a tracer follows a provider registered later, but not one registered
// after `trace.disable()`, which the Azure Monitor distro calls before registering its own.
const tracer = () => trace.getTracer(INSTRUMENTATION_NAME);

// What the observable gauges report. Read at each export where a source is set (the composition root sets
// them), so every instance reports what is true now: a value sampled once would stay in the SDK's cumulative
// series after another instance saw the queue cleared or the certificate rotated, and keep an alert firing.
export type QueueDepthSource = () => Promise<Iterable<{ name: string; depth: number }>>;
let queueDepthSource: QueueDepthSource | undefined;
let certificateSource: (() => Promise<Date>) | undefined;
// Without a source: the certificate the last FPX call of this process presented.
let certificateNotAfter: Date | undefined;
let now: () => number = Date.now;

function createInstruments(meter: Meter) {
  meter
    .createObservableGauge('queue.depth', { description: 'Messages in each queue (poison queues included)' })
    .addCallback(async (result) => {
      if (!queueDepthSource) return;
      for (const { name, depth } of await queueDepthSource().catch(() => [])) {
        // A queue that could not be read (-1) is left out rather than reported empty.
        if (depth >= 0)
          result.observe(depth, { 'queue.name': name, 'queue.poison': name.endsWith('-poison') });
      }
    });
  meter
    .createObservableGauge('certificate.days_left', {
      description: "Days until the FPX client certificate's notAfter",
      unit: 'd',
    })
    .addCallback(async (result) => {
      const notAfter = certificateSource
        ? await certificateSource().catch(() => undefined)
        : certificateNotAfter;
      if (notAfter) result.observe(Math.floor((notAfter.getTime() - now()) / 86_400_000));
    });
  return {
    fpxCalls: meter.createCounter('fpx.calls', {
      description: 'HTTP requests sent to FPX (retries included), by endpoint template, status and outcome',
    }),
    fpxRateWait: meter.createHistogram('fpx.rate_wait', {
      description: 'Time a request waited for its rate-limit slot',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [0, 10, 100, 500, 1_000, 5_000, 15_000, 60_000, 120_000] },
    }),
    fpxThrottled: meter.createCounter('fpx.throttled', {
      description: 'FPX answers 429 (too many requests)',
    }),
    syncRuns: meter.createCounter('sync.runs', { description: 'Sync runs by stream and final status' }),
    syncRows: meter.createCounter('sync.rows', {
      description: 'Rows a sync run created, changed or marked removed, by stream',
    }),
    deliveries: meter.createCounter('crm.deliveries', {
      description:
        'CRM deliveries that reached a final status (delivered, rejected, failed, superseded, ignored)',
    }),
  };
}

// Metrics have no proxy in the API: a meter taken before the SDK registers stays a no-op. So the instruments
// are made from the provider current at first use, and again should it change (tests register and unregister).
let made: { provider: MeterProvider; instruments: ReturnType<typeof createInstruments> } | undefined;

function instruments(): ReturnType<typeof createInstruments> {
  const provider = metrics.getMeterProvider();
  if (made?.provider !== provider) {
    made = { provider, instruments: createInstruments(provider.getMeter(INSTRUMENTATION_NAME)) };
  }
  return made.instruments;
}

/** Whose time the certificate gauge counts days with (the composition root's clock). */
export function useTelemetryClock(clock: { now(): number }): void {
  now = () => clock.now();
}

/**
 * Where the gauges read at each export: the queues' depths, and the certificate this instance would present now
 * (its source refreshes from Key Vault when due). Set by the composition root when telemetry is on.
 */
export function observeGauges(sources: {
  queueDepths?: QueueDepthSource;
  certificateNotAfter?: () => Promise<Date>;
}): void {
  instruments();
  queueDepthSource = sources.queueDepths;
  certificateSource = sources.certificateNotAfter;
}

/** The certificate an FPX call presented (reported while no certificate source is set). */
export function recordCertificate(notAfter: Date): void {
  instruments();
  certificateNotAfter = notAfter;
}

// ---------------------------------------------------------------------------------------------------------
// FPX calls

/**
 * The path of an FPX endpoint with its ids as placeholders, for spans and metric dimensions: from
 * `GET /tenants/{tenantId}/notes` (the transport's endpoint names) or a concrete path, whose query is dropped
 * and whose id-like segments (GUIDs, numbers, anything but plain words) become `{id}`.
 */
export function pathTemplate(endpoint: string): string {
  const path = endpoint.replace(/^[A-Z]+\s+/, '').split(/[?#]/)[0] ?? '';
  const segments = path.split('/').map((segment) => {
    if (segment === '' || /^\{\w+\}$/.test(segment) || /^[A-Za-z][A-Za-z_-]*$/.test(segment)) return segment;
    return '{id}';
  });
  const joined = segments.join('/');
  return joined.startsWith('/') ? joined : `/${joined}`;
}

/**
 * What became of one HTTP request to FPX: `ok`; `retried` (failed, and the transport sends it again);
 * `outcomeUnknown` (a create or update that may have been applied); `refused` (FPX answered no: a 4xx, or a
 * handshake it refused); `failed` (no usable answer and no retry left: timeouts, 5xx of a read, an unexpected body).
 */
export type FpxOutcome = 'ok' | 'retried' | 'outcomeUnknown' | 'refused' | 'failed';

/** What the transport knows of a failed request (an FpxError's fields). */
export interface FpxFailure {
  kind: string;
  status?: number;
  outcomeUnknown?: boolean;
}

/** The final outcome of a request that failed and is not sent again. */
export function finalOutcome(error: FpxFailure): FpxOutcome {
  if (error.outcomeUnknown) return 'outcomeUnknown';
  if ((error.status !== undefined && error.status >= 400 && error.status < 500) || error.kind === 'tls') {
    return 'refused';
  }
  return 'failed';
}

/** One HTTP request to FPX as a client span (an Application Insights dependency). */
export class FpxAttemptSpan {
  private readonly span: Span;
  private readonly template: string;
  private status?: number;

  constructor(
    private readonly method: string,
    endpoint: string,
    host: string,
    attempt: number,
    waitedMs: number,
  ) {
    this.template = pathTemplate(endpoint);
    this.span = tracer().startSpan(`FPX ${method} ${this.template}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'url.template': this.template,
        'server.address': host,
        'fpx.attempt': attempt,
        'fpx.rate_wait_ms': Math.round(waitedMs),
      },
    });
    instruments().fpxRateWait.record(Math.max(0, waitedMs), { 'fpx.endpoint': this.template });
  }

  /** FPX's HTTP status, once the answer's head arrived. */
  answered(status: number): void {
    this.status = status;
    this.span.setAttribute('http.response.status_code', status);
  }

  /** Ends the span; `failure` is what went wrong (its kind only: messages may quote FPX's answer). */
  end(outcome: FpxOutcome, failure?: FpxFailure): void {
    const status = this.status ?? failure?.status;
    this.span.setAttribute('fpx.outcome', outcome);
    if (failure) {
      this.span.setAttribute('error.type', status ? String(status) : failure.kind);
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.span.end();
    const dimensions: Attributes = {
      'fpx.endpoint': this.template,
      'http.request.method': this.method,
      'http.response.status_code': status ?? 0,
      'fpx.outcome': outcome,
    };
    instruments().fpxCalls.add(1, dimensions);
    if (status === 429) instruments().fpxThrottled.add(1, { 'fpx.endpoint': this.template });
  }

  /** Ends the span of a request that is not sent again; returns the error for `throw`. */
  fail<E extends FpxFailure>(error: E): E {
    this.end(finalOutcome(error), error);
    return error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Syncs and deliveries

/** Runs `work` in an active span (child spans, the FPX calls, nest under it); errors mark it failed. */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, parent, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', (error as Error)?.name ?? 'Error');
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A per-tenant stream (`<tenantId>-notes`) counts as its kind (`notes`): no tenant id in a metric dimension. */
export function streamKind(stream: string): { stream: string; perTenant: boolean } {
  const match = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(.+)$/i.exec(stream);
  return match ? { stream: match[1] as string, perTenant: true } : { stream, perTenant: false };
}

export interface SyncCounts {
  status: string;
  seen: number;
  created: number;
  changed: number;
  removed: number;
  unchanged: number;
  pages: number;
  apiCalls: number;
}

/** A sync run of one stream as a span `sync <stream>`, its counts as attributes and metrics. */
export function traceSyncRun<R extends SyncCounts>(stream: string, run: () => Promise<R>): Promise<R> {
  const kind = streamKind(stream);
  const dimensions = { 'sync.stream': kind.stream, 'sync.per_tenant': kind.perTenant };
  return inSpan(`sync ${kind.stream}`, dimensions, async (span) => {
    let result: R;
    try {
      result = await run();
    } catch (error) {
      span.setAttribute('sync.status', 'failed');
      instruments().syncRuns.add(1, { ...dimensions, 'sync.status': 'failed' });
      throw error;
    }
    span.setAttributes({
      'sync.status': result.status,
      'sync.seen': result.seen,
      'sync.created': result.created,
      'sync.changed': result.changed,
      'sync.removed': result.removed,
      'sync.unchanged': result.unchanged,
      'sync.pages': result.pages,
      'sync.api_calls': result.apiCalls,
    });
    instruments().syncRuns.add(1, { ...dimensions, 'sync.status': result.status });
    for (const change of ['created', 'changed', 'removed'] as const) {
      if (result[change] > 0)
        instruments().syncRows.add(result[change], { ...dimensions, 'sync.change': change });
    }
    return result;
  });
}

/** A delivery that reached a final status. */
export function recordDeliveryFinal(status: string, endpoint: string): void {
  instruments().deliveries.add(1, { 'crm.delivery.status': status, 'crm.endpoint': endpoint });
}
