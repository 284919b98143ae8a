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
import { loadTransport, rotateUnderLoad } from '../dev/rotation-load';
import { startSandbox } from '../dev/sandbox';
import { type CertificateSource, type ClientCertificate, parseClientCertificate } from '../lib/cert';

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
    for (let run = 1; run <= runs; run++) {
      const oldCert = issueClientCertificate(sandbox.certs.ca, { commonName: `bench-old-${run}` });
      const newCert = issueClientCertificate(sandbox.certs.ca, { commonName: `bench-new-${run}` });
      const source = new RotatingSource(parsed(oldCert));
      const transport = loadTransport(sandbox, source);
      const { failures, ...figures } = await rotateUnderLoad(sandbox, transport, {
        calls: total,
        holdMs,
        oldThumbprint: oldCert.thumbprint,
        newThumbprint: newCert.thumbprint,
        rotate: () => source.rotate(parsed(newCert)),
      });
      console.log(`run ${run}: ${JSON.stringify({ holdMs, ...figures })}`);
      for (const failure of failures.slice(0, 3)) console.log(`  failed: ${failure}`);
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
