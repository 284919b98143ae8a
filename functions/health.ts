import { app } from '@azure/functions';
import { daysLeft, isExpired } from '../lib/cert';
import type { PlainResponse } from '../lib/http';
import { POISON_QUEUES } from '../lib/ops';
import { queueDepth } from '../lib/storage';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

const CHECK_TIMEOUT_MS = 5_000;
/**
 * The FPX probe's answer is reused this long: health is anonymous, and every probe takes a slot of the
 * partner's FPX rate limit, so a monitor (or anyone) calling it often must not eat into the syncs' budget.
 */
export const FPX_PROBE_TTL_MS = 30_000;

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

type CertificateCheck =
  | { ok: boolean; daysLeft: number; notAfter: string; thumbprint: string }
  | { ok: false; error: string };

/** The certificate FPX calls use now: days left (ok false once expired), or why it cannot be loaded. */
async function certificateCheck(
  services: Services,
  now = new Date(services.clock.now()),
): Promise<CertificateCheck> {
  let found: CertificateCheck | undefined;
  const loaded = await check(async () => {
    const c = await services.certificates.current();
    found = {
      ok: !isExpired(c.notAfter, now),
      daysLeft: daysLeft(c.notAfter, now),
      notAfter: c.notAfter.toISOString(),
      thumbprint: c.thumbprint,
    };
  });
  return loaded.ok && found ? found : { ok: false, error: loaded.ok ? 'no certificate' : loaded.error };
}

type FpxCheck = Check & { checkedAt: string };
const fpxProbes = new WeakMap<Services, { at: number; result: Promise<FpxCheck> }>();

/** The cheapest authenticated call (it proves the certificate, the network and FPX), at most once per TTL. */
function fpxCheck(services: Services, now = services.clock.now()): Promise<FpxCheck> {
  const last = fpxProbes.get(services);
  if (last && now - last.at < FPX_PROBE_TTL_MS) return last.result;
  const result = check((signal) =>
    services.fpx.referenceList('noteCategories', { signal, maxAttempts: 1, priority: 'interactive' }),
  ).then((outcome) => ({ ...outcome, checkedAt: new Date(now).toISOString() }));
  fpxProbes.set(services, { at: now, result });
  return result;
}

/** Storage and FPX (FPX's answer shared for 30 s): also the operations page's reachability. */
export async function storageAndFpx(
  services: Services,
  now = services.clock.now(),
): Promise<{ storage: Check; fpx: FpxCheck }> {
  const [storage, fpx] = await Promise.all([
    check((abortSignal) => services.tableService.getProperties({ abortSignal })),
    fpxCheck(services, now),
  ]);
  return { storage, fpx };
}

/** Messages waiting in each poison queue (0 when the queue does not exist yet); informational, never a 503. */
async function poisonQueueDepths(services: Services): Promise<Record<string, number | string>> {
  const depths: Record<string, number | string> = {};
  await Promise.all(
    POISON_QUEUES.map(async (name) => {
      depths[name] = await queueDepth(services.queueService.getQueueClient(name), {
        abortSignal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
      }).catch(() => 'unknown' as const);
    }),
  );
  return depths;
}

/**
 * The full checks: 200 when storage and FPX answer and the certificate is valid, 503 naming what is not;
 * also the certificate's days left and thumbprint and the poison queues' depths. FPX's answer may be up to
 * 30 s old. Served to key holders only (GET /api/health/details, functions/healthDetails.ts).
 */
export async function healthCheck(services: Services): Promise<PlainResponse> {
  const [{ storage, fpx }, certificate, poisonQueues] = await Promise.all([
    storageAndFpx(services),
    certificateCheck(services),
    poisonQueueDepths(services),
  ]);
  const checks = { storage, fpx, certificate };
  const ok = storage.ok && fpx.ok && certificate.ok;
  return { status: ok ? 200 : 503, jsonBody: { status: ok ? 'ok' : 'unavailable', checks, poisonQueues } };
}

/** How long the anonymous answer is reused: anyone may call it, so callers share one check. */
export const HEALTH_TTL_MS = FPX_PROBE_TTL_MS;
const summaries = new WeakMap<Services, { at: number; ok: Promise<boolean> }>();

/**
 * GET /api/health, anonymous: `{status}` only (200 ok, 503 unavailable), nothing about why. Storage, FPX and
 * the certificate are checked at most once per 30 s, whoever calls and however often.
 */
export async function healthStatus(services: Services, now = services.clock.now()): Promise<PlainResponse> {
  let last = summaries.get(services);
  if (!last || now - last.at >= HEALTH_TTL_MS) {
    const ok = Promise.all([storageAndFpx(services, now), certificateCheck(services, new Date(now))]).then(
      ([{ storage, fpx }, certificate]) => storage.ok && fpx.ok && certificate.ok,
    );
    last = { at: now, ok };
    summaries.set(services, last);
  }
  const ok = await last.ok;
  return { status: ok ? 200 : 503, jsonBody: { status: ok ? 'ok' : 'unavailable' } };
}

export function registerHealth(services: Services): void {
  app.http('health', {
    methods: ['GET'],
    route: 'health',
    // For load balancers and uptime monitors; the details need the function key.
    authLevel: 'anonymous',
    handler: adaptHttp(() => healthStatus(services)),
  });
}
