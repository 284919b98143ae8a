/**
 * The certificate rotation under load that test/cert-rotation.test.ts asserts on and bench/cert-rotation.ts
 * prints figures of: calls pile up on the old certificate's Agent, the certificate rotates, every call settles.
 */

import type { CertificateSource } from '../lib/cert';
import { FpxClient, FpxTransport } from '../lib/fpx';
import type { Sandbox } from './sandbox';

/** A transport to the sandbox whose own limit and retry waits stay out of the way of the load. */
export function loadTransport(sandbox: Sandbox, certificates: CertificateSource): FpxTransport {
  return new FpxTransport({
    baseUrl: sandbox.url,
    certificates,
    caPem: sandbox.certs.ca.certPem,
    rateLimitPerMinute: 6_000_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });
}

export interface RotationLoad {
  calls: number;
  /** How long the first 32 answers (one per connection of the old Agent) are held. */
  holdMs: number;
  oldThumbprint: string;
  newThumbprint: string;
  /** Makes the new certificate current (the source is the transport's). */
  rotate(): Promise<void> | void;
}

export interface RotationFigures {
  calls: number;
  inFlightAtRotation: number;
  onOldAgentAtRotation: number;
  oldArrivedAfterRotation: number;
  failed: number;
  retries: number;
  oldThumbprint: number;
  newThumbprint: number;
  /** Why the failed calls failed (empty when none did). */
  failures: string[];
}

/**
 * Opens the old Agent's connections, holds their first answers so the client's dispatching piles calls onto
 * the old Agent (until 1,000 are there or one settles), rotates, and waits for every call. One call in ten is a
 * POST: the transport never resends a POST, so a POST dispatched to a closed Agent would fail outright.
 */
export async function rotateUnderLoad(
  sandbox: Sandbox,
  transport: FpxTransport,
  load: RotationLoad,
): Promise<RotationFigures> {
  const fpx = new FpxClient(transport, 25);
  await Promise.all(Array.from({ length: 64 }, () => fpx.referenceList('timezones')));
  sandbox.clearRequests();
  const tenantId = String(sandbox.data.partnerTenants[0]?.tenantId);
  let settled = 0;
  sandbox.injectFault({ kind: 'slow', delayMs: load.holdMs }, {}, 32);
  const calls = Array.from({ length: load.calls }, (_, i) =>
    (i % 10 === 0
      ? fpx.createNote(tenantId, { text: `rotation ${i}`, noteCategoryId: 1 })
      : fpx.referenceList(i % 2 ? 'timezones' : 'noteCategories')
    ).finally(() => {
      settled++;
    }),
  );
  const dispatched = () => load.calls - transport.limiter.queued;
  // Polls the load as it builds up (it is not a wait for something that must happen by a deadline).
  while (dispatched() - settled < 1000 && settled === 0) await new Promise((r) => setTimeout(r, 5));
  const inFlightAtRotation = load.calls - settled;
  const onOldAgentAtRotation = dispatched() - settled;
  const rotatedAt = Date.now();
  await load.rotate();

  const results = await Promise.allSettled(calls);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  const byThumbprint = (t: string) => sandbox.requests.filter((r) => r.clientCertThumbprint === t).length;
  return {
    calls: load.calls,
    inFlightAtRotation,
    onOldAgentAtRotation,
    oldArrivedAfterRotation: sandbox.requests.filter(
      (r) => r.clientCertThumbprint === load.oldThumbprint && r.time >= rotatedAt,
    ).length,
    failed: failures.length,
    retries: transport.stats.retries,
    oldThumbprint: byThumbprint(load.oldThumbprint),
    newThumbprint: byThumbprint(load.newThumbprint),
    failures,
  };
}
