/**
 * Hot certificate rotation under load, against the sandbox over mutual TLS: the figures behind
 * test/cert-rotation.test.ts (which asserts what holds on any machine: no call fails, the calls already on
 * the old certificate's Agent still reach FPX, new calls present the new certificate).
 *   npx tsx bench/cert-rotation.ts [-- --calls 1500 --hold-ms 6000 --runs 3]
 * The first 32 answers (one per connection of the old certificate's Agent) are held `hold-ms`; meanwhile the
 * client dispatches as fast as it can, so calls pile up on the old Agent; then the certificate rotates.
 * Printed per run: calls in flight at the rotation, how many of them were on the old Agent (about 1,000 on
 * an idle machine, fewer when the CPU is shared: the client dispatches slower), how many of those reached
 * FPX after the switch, failures and retries.
 */
import { parseArgs } from 'node:util';
import { type IssuedClientCertificate, issueClientCertificate } from '../dev/certs';
import { startSandbox } from '../dev/sandbox';
import { type CertificateSource, type ClientCertificate, parseClientCertificate } from '../lib/cert';
import { FpxClient, FpxTransport } from '../lib/fpx';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1500' },
    'hold-ms': { type: 'string', default: '6000' },
    runs: { type: 'string', default: '3' },
  },
});
const total = Number(values.calls);
const holdMs = Number(values['hold-ms']);
const runs = Number(values.runs);

/** A certificate source that presents one certificate until the bench rotates it to another. */
class RotatingSource implements CertificateSource {
  readonly description = 'bench rotation';
  constructor(private certificate: ClientCertificate) {}
  rotate(to: ClientCertificate): void {
    this.certificate = to;
  }
  async current(): Promise<ClientCertificate> {
    return this.certificate;
  }
  async refresh(): Promise<ClientCertificate> {
    return this.certificate;
  }
}

const parsed = (c: IssuedClientCertificate) => parseClientCertificate(`${c.certPem}\n${c.keyPem}`, 'bench');

async function main() {
  const sandbox = await startSandbox({
    data: { tenants: 5, referrals: 5 },
    rateLimitPerMinute: 0,
    latencyMs: 1,
  });
  try {
    const tenantId = String(sandbox.data.partnerTenants[0]?.tenantId);
    for (let run = 1; run <= runs; run++) {
      const oldCert = issueClientCertificate(sandbox.certs.ca, { commonName: `bench-old-${run}` });
      const newCert = issueClientCertificate(sandbox.certs.ca, { commonName: `bench-new-${run}` });
      const source = new RotatingSource(parsed(oldCert));
      const transport = new FpxTransport({
        baseUrl: sandbox.url,
        certificates: source,
        caPem: sandbox.certs.ca.certPem,
        rateLimitPerMinute: 6_000_000,
        retry: { baseDelayMs: 20, maxDelayMs: 200 },
      });
      const fpx = new FpxClient(transport, 25);
      // The old Agent's connections first, so their handshakes are done before the load starts.
      await Promise.all(Array.from({ length: 64 }, () => fpx.referenceList('timezones')));
      sandbox.clearRequests();

      let settled = 0;
      sandbox.injectFault({ kind: 'slow', delayMs: holdMs }, {}, 32);
      const calls = Array.from({ length: total }, (_, i) =>
        (i % 10 === 0
          ? fpx.createNote(tenantId, { text: `rotation bench ${i}`, noteCategoryId: 1 })
          : fpx.referenceList(i % 2 ? 'timezones' : 'noteCategories')
        ).finally(() => {
          settled++;
        }),
      );
      const dispatched = () => total - transport.limiter.queued;
      while (dispatched() - settled < 1000 && settled === 0) await new Promise((r) => setTimeout(r, 5));
      const inFlightAtRotation = total - settled;
      const onOldAgentAtRotation = dispatched() - settled;
      const rotatedAt = Date.now();
      source.rotate(parsed(newCert));

      const results = await Promise.allSettled(calls);
      const byThumbprint = (t: string) => sandbox.requests.filter((r) => r.clientCertThumbprint === t).length;
      console.log(
        `run ${run}: ${JSON.stringify({
          calls: total,
          holdMs,
          inFlightAtRotation,
          onOldAgentAtRotation,
          oldArrivedAfterRotation: sandbox.requests.filter(
            (r) => r.clientCertThumbprint === oldCert.thumbprint && r.time >= rotatedAt,
          ).length,
          failed: results.filter((r) => r.status === 'rejected').length,
          retries: transport.stats.retries,
          oldThumbprint: byThumbprint(oldCert.thumbprint),
          newThumbprint: byThumbprint(newCert.thumbprint),
        })}`,
      );
      await transport.close();
    }
  } finally {
    await sandbox.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
