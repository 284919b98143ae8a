/**
 * Registers the OpenTelemetry SDK the settings ask for, once per process, before the composition root
 * registers any function (the worker takes the OpenTelemetry capability only during start-up, so this is
 * synchronous). The SDK and exporters (sdk.ts) are loaded only when configured, from their own file in the
 * deployment package (dev/build.ts): with neither setting, nothing but `@opentelemetry/api` is loaded.
 *
 * - APPLICATIONINSIGHTS_CONNECTION_STRING: the Azure Monitor OpenTelemetry distro (traces, metrics, logs);
 *   with APPLICATIONINSIGHTS_AUTHENTICATION_STRING (Authorization=AAD) it sends as the managed identity.
 * - OTEL_EXPORTER_OTLP_ENDPOINT: OTLP over HTTP (JSON) to that receiver; the exporters read the other
 *   standard OTEL_EXPORTER_OTLP_* variables themselves (per-signal endpoints, headers, timeout).
 * - neither: nothing is registered; lib/telemetry's calls stay no-ops.
 *
 * `functionsModule` is `@azure/functions` (passed in: lib/ does not import it). The Functions instrumentation
 * hooks it so that each invocation's spans and logs carry the host's operation id (its traceparent).
 */
import type { TelemetrySettings } from '../config';
import { safeErrorMessage } from '../redact';
import type { Telemetry } from './sdk';

export type { Telemetry } from './sdk';

const OFF: Telemetry = { exporter: 'none', flush: async () => undefined, shutdown: async () => undefined };

let started: Telemetry | undefined;

/** The SDK module; tests pass their import of it (their runner cannot `require` TypeScript). */
export type SdkLoader = () => typeof import('./sdk');

// In the bundle this `require` is left external and points at dist/telemetry-sdk.js (dev/build.ts).
const loadSdk: SdkLoader = () => require('./sdk');

export function startTelemetry(
  settings: TelemetrySettings,
  functionsModule?: unknown,
  sdk: SdkLoader = loadSdk,
): Telemetry {
  if (started) return started;
  if (settings.exporter === 'none') return OFF;
  let module: ReturnType<SdkLoader>;
  let telemetry: Telemetry;
  try {
    module = sdk();
    telemetry =
      settings.exporter === 'otlp' ? module.startOtlp(settings) : module.startAzureMonitor(settings);
  } catch (error) {
    // Telemetry is for the operators, not a reason to register no function at all: the app runs without it.
    console.error(
      `Telemetry could not start (${settings.exporter}); running without it: ${safeErrorMessage(error)}`,
    );
    return OFF;
  }
  if (functionsModule) module.linkInvocations(functionsModule);
  started = {
    ...telemetry,
    shutdown: async () => {
      started = undefined;
      await telemetry.shutdown();
    },
  };
  return started;
}
