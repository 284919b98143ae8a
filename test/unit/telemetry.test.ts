/** Issue 17's pure rules: endpoint templates for spans and dimensions, outcomes, stream kinds, the settings. */
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config';
import {
  finalOutcome,
  observeGauges,
  pathTemplate,
  streamKind,
  useTelemetryClock,
} from '../../lib/telemetry';

describe('pathTemplate', () => {
  test("keeps the client's endpoint templates, without the method", () => {
    expect(pathTemplate('GET /tenants/{tenantId}/notes')).toBe('/tenants/{tenantId}/notes');
    expect(pathTemplate('PATCH /tenants/{tenantId}/services/{serviceId}/entitlements')).toBe(
      '/tenants/{tenantId}/services/{serviceId}/entitlements',
    );
    expect(pathTemplate('GET /partnerReferrals')).toBe('/partnerReferrals');
  });

  test('a concrete path loses its ids and its query', () => {
    expect(pathTemplate('/tenants/9d4c6f56-7db9-4236-9957-ce225e3583be/notes?rfaId=12&noteCategory=2')).toBe(
      '/tenants/{id}/notes',
    );
    expect(pathTemplate('/tenants/9D4C6F567DB942369957CE225E3583BE/services/3/maxEntitlements')).toBe(
      '/tenants/{id}/services/{id}/maxEntitlements',
    );
    expect(pathTemplate('PATCH /contacts/c0ffee00-0000-4000-8000-000000000001#x')).toBe('/contacts/{id}');
    expect(pathTemplate('/contacts/pat%40example.com')).toBe('/contacts/{id}');
  });
});

describe('finalOutcome', () => {
  test('a write that may have been applied, a refusal, anything else', () => {
    expect(finalOutcome({ kind: 'http', status: 503, outcomeUnknown: true })).toBe('outcomeUnknown');
    expect(finalOutcome({ kind: 'timeout', outcomeUnknown: true })).toBe('outcomeUnknown');
    expect(finalOutcome({ kind: 'http', status: 422 })).toBe('refused');
    expect(finalOutcome({ kind: 'http', status: 429 })).toBe('refused');
    expect(finalOutcome({ kind: 'tls' })).toBe('refused');
    expect(finalOutcome({ kind: 'http', status: 503 })).toBe('failed');
    expect(finalOutcome({ kind: 'invalid-response', status: 200 })).toBe('failed');
  });
});

describe('streamKind', () => {
  test("a tenant's stream counts as its kind, without the tenant id", () => {
    expect(streamKind('9d4c6f56-7db9-4236-9957-ce225e3583be-notes')).toEqual({
      stream: 'notes',
      perTenant: true,
    });
    expect(streamKind('referrals')).toEqual({ stream: 'referrals', perTenant: false });
  });
});

describe('telemetry settings', () => {
  const minimal = {
    FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api',
    FPX_CERT_PATH: '/certs/client.pem',
  };
  const errorOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (error) {
      if (error instanceof ConfigError) return error;
    }
    throw new Error('expected a ConfigError');
  };
  const connectionString =
    'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/';

  test('Application Insights wins over OTLP; the managed identity from the authentication string', () => {
    expect(
      loadConfig({
        ...minimal,
        APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=abc-123;Authorization=AAD',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      }).telemetry,
    ).toEqual({
      exporter: 'azureMonitor',
      connectionString,
      entraId: { clientId: 'abc-123' },
      metricIntervalMs: 60_000,
    });
    expect(
      loadConfig({ ...minimal, APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString }).telemetry,
    ).toEqual({
      exporter: 'azureMonitor',
      connectionString,
      metricIntervalMs: 60_000,
    });
  });

  test('OTLP over HTTP with the standard variables', () => {
    expect(
      loadConfig({
        ...minimal,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRIC_EXPORT_INTERVAL: '5000',
      }).telemetry,
    ).toEqual({ exporter: 'otlp', endpoint: 'http://127.0.0.1:4318', metricIntervalMs: 5000 });
  });

  test('OTEL_SDK_DISABLED=true turns every exporter off', () => {
    const both = {
      ...minimal,
      APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000000',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
    };
    expect(loadConfig({ ...both, OTEL_SDK_DISABLED: 'TRUE' }).telemetry).toEqual({ exporter: 'none' });
    expect(loadConfig({ ...both, OTEL_SDK_DISABLED: 'false' }).telemetry.exporter).toBe('azureMonitor');
  });

  test('bad values are named, and the connection string is never echoed', () => {
    const bad = errorOf({ ...minimal, APPLICATIONINSIGHTS_CONNECTION_STRING: 'secret-looking-text' });
    expect(bad.setting).toBe('APPLICATIONINSIGHTS_CONNECTION_STRING');
    expect(bad.message).not.toContain('secret-looking-text');
    expect(errorOf({ ...minimal, OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' }).setting).toBe(
      'OTEL_EXPORTER_OTLP_ENDPOINT',
    );
    expect(
      errorOf({
        ...minimal,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      }).setting,
    ).toBe('OTEL_EXPORTER_OTLP_PROTOCOL');
    expect(errorOf({ ...minimal, OTEL_METRIC_EXPORT_INTERVAL: '0' }).setting).toBe(
      'OTEL_METRIC_EXPORT_INTERVAL',
    );
    // Unused, a protocol the app has no exporter for is harmless.
    expect(loadConfig({ ...minimal, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).telemetry).toEqual({
      exporter: 'none',
    });
  });
});

describe('the gauges', () => {
  /** Collects on demand: what an export would send now. */
  class CollectingReader extends MetricReader {
    protected onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
    protected onShutdown(): Promise<void> {
      return Promise.resolve();
    }
  }

  test('read their sources at each export: a queue cleared or a certificate rotated since shows at once', async () => {
    const reader = new CollectingReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const time = Date.UTC(2026, 11, 1, 8);
    useTelemetryClock({ now: () => time });
    let depth = 3;
    let notAfter = new Date(time + 10 * 86_400_000);
    observeGauges({
      queueDepths: async () => [
        { name: 'crm-deliveries-poison', depth },
        { name: 'crm-events-poison', depth: -1 },
      ],
      certificateNotAfter: async () => notAfter,
    });
    const gauges = async () => {
      const { resourceMetrics } = await reader.collect();
      const all = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
      return Object.fromEntries(all.map((m) => [m.descriptor.name, m.dataPoints.map((p) => p.value)]));
    };
    try {
      // An unreadable queue (-1) is left out rather than reported empty.
      expect(await gauges()).toMatchObject({ 'queue.depth': [3], 'certificate.days_left': [10] });
      depth = 0; // another instance's operator cleared it
      notAfter = new Date(time + 120 * 86_400_000); // rotated in Key Vault
      expect(await gauges()).toMatchObject({ 'queue.depth': [0], 'certificate.days_left': [120] });
    } finally {
      observeGauges({});
      useTelemetryClock({ now: () => Date.now() });
      metrics.disable();
    }
  });
});
