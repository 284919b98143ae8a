/**
 * The OpenTelemetry SDK and exporters, loaded by setup.ts only when telemetry is configured. The deployment
 * package carries this module as its own file (dist/telemetry-sdk.js, see dev/build.ts): with telemetry off,
 * not a byte of it is read at a cold start.
 */

import { AzureFunctionsInstrumentationESM } from '@azure/functions-opentelemetry-instrumentation';
import { shutdownAzureMonitor, useAzureMonitor } from '@azure/monitor-opentelemetry';
import { diag, metrics, type ProxyTracerProvider, trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { TelemetrySettings } from '../config';
import { lazy } from '../lazy';

export interface Telemetry {
  exporter: TelemetrySettings['exporter'];
  /** Exports what is buffered (tests; a host shutting down). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

function serviceName(): string {
  return process.env.OTEL_SERVICE_NAME || process.env.WEBSITE_SITE_NAME || 'fpx-crm-connector';
}

export function startOtlp(settings: Extract<TelemetrySettings, { exporter: 'otlp' }>): Telemetry {
  const resource = resourceFromAttributes({ 'service.name': serviceName() }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  // The exporters take OTEL_EXPORTER_OTLP_ENDPOINT (adding /v1/traces, /v1/metrics) from the environment.
  const tracerProvider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  tracerProvider.register();
  const interval = settings.metricIntervalMs;
  const meterProvider = new MeterProvider({
    resource,
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(),
        exportIntervalMillis: interval,
        exportTimeoutMillis: Math.min(interval, 30_000),
      }),
    ],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  // The invocations' log lines (context.log, through the Functions instrumentation's log hook).
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  logs.setGlobalLoggerProvider(loggerProvider);
  return {
    exporter: 'otlp',
    flush: async () => {
      await Promise.all([
        tracerProvider.forceFlush(),
        meterProvider.forceFlush(),
        loggerProvider.forceFlush(),
      ]);
    },
    shutdown: async () => {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown(), loggerProvider.shutdown()]);
      trace.disable();
      metrics.disable();
      logs.disable();
    },
  };
}

/** What tests swap in to reach a local fake of the ingestion endpoint; production passes nothing. */
export interface AzureMonitorOverrides {
  tlsOptions?: { ca?: string };
  disableOfflineStorage?: boolean;
}

export function startAzureMonitor(
  settings: Extract<TelemetrySettings, { exporter: 'azureMonitor' }>,
  overrides: AzureMonitorOverrides = {},
): Telemetry {
  // Local authentication is off on the resource (infra): the managed identity sends, as the host does.
  const credential = settings.entraId
    ? new (lazy.identity().ManagedIdentityCredential)(
        settings.entraId.clientId ? { clientId: settings.entraId.clientId } : {},
      )
    : undefined;
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString: settings.connectionString, credential, ...overrides },
    resource: resourceFromAttributes({ 'service.name': serviceName() }),
    // Every span kept (the distro's default keeps 5 traces a second, and never a process's first): the FPX
    // budget bounds the volume, and the sync-failing alert reads every run. OTEL_TRACES_SAMPLER overrides.
    samplingRatio: 1,
    tracesPerSecond: 0,
    // Our own spans only: the FPX calls (undici, not http) and syncs are traced by lib/telemetry; an Azure SDK
    // span per table or queue request would multiply the volume and cost more than it tells.
    instrumentationOptions: {
      http: { enabled: false },
      azureSdk: { enabled: false },
      mongoDb: { enabled: false },
      mySql: { enabled: false },
      postgreSql: { enabled: false },
      redis: { enabled: false },
      redis4: { enabled: false },
      bunyan: { enabled: false },
      winston: { enabled: false },
      console: { enabled: false },
    },
  });
  return {
    exporter: 'azureMonitor',
    flush: async () => {
      // The distro keeps its providers to itself: reach them through the API's globals.
      type Flushable = { forceFlush?: () => Promise<void> };
      const tracer =
        (trace.getTracerProvider() as ProxyTracerProvider).getDelegate?.() ?? trace.getTracerProvider();
      await Promise.all([
        (tracer as Flushable).forceFlush?.(),
        (metrics.getMeterProvider() as Flushable).forceFlush?.(),
        (logs.getLoggerProvider() as Flushable).forceFlush?.(),
      ]);
    },
    shutdown: async () => {
      await shutdownAzureMonitor();
      // The distro leaves its providers registered: unregister them, as the OTLP shutdown does.
      trace.disable();
      metrics.disable();
      logs.disable();
    },
  };
}

/**
 * `@azure/functions-opentelemetry-instrumentation`: a pre-invocation hook runs each handler in the context of
 * the invocation's traceparent (so our spans are children of the host's request or trigger span, one operation
 * id), and a log hook emits `context.log` lines as OpenTelemetry logs with the same ids. Registered on the
 * module we were given: the bundle has no `require` to patch.
 */
export function linkInvocations(functionsModule: unknown): void {
  const instrumentation = new AzureFunctionsInstrumentationESM();
  instrumentation.setTracerProvider(trace.getTracerProvider());
  try {
    instrumentation.registerAzFunc(functionsModule as Parameters<typeof instrumentation.registerAzFunc>[0]);
  } catch (error) {
    diag.warn(`Azure Functions instrumentation not registered: ${(error as Error).message}`);
  }
}
