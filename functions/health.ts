import { app, type HttpResponseInit } from '@azure/functions';
import type { Services } from './services';

const CHECK_TIMEOUT_MS = 5_000;

type Check = { ok: true } | { ok: false; error: string };

async function check(probe: (signal: AbortSignal) => Promise<unknown>): Promise<Check> {
  const signal = AbortSignal.timeout(CHECK_TIMEOUT_MS);
  try {
    await Promise.race([
      probe(signal),
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('no answer in 5 s'))),
      ),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: (error as Error).message.split('\n')[0] ?? 'failed' };
  }
}

/** GET /api/health: 200 when storage and FPX answer, 503 naming what does not. */
export async function healthCheck(services: Services): Promise<HttpResponseInit> {
  const [storage, fpx] = await Promise.all([
    check((abortSignal) => services.tableService.getProperties({ abortSignal })),
    // The cheapest authenticated call: it proves the certificate, the network and FPX itself.
    check((signal) => services.fpx.referenceList('noteCategories', { signal, maxAttempts: 1 })),
  ]);
  const checks = { storage, fpx };
  const ok = storage.ok && fpx.ok;
  return { status: ok ? 200 : 503, jsonBody: { status: ok ? 'ok' : 'unavailable', checks } };
}

export function registerHealth(services: Services): void {
  app.http('health', {
    methods: ['GET'],
    route: 'health',
    authLevel: 'anonymous',
    handler: () => healthCheck(services),
  });
}
