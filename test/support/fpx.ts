import type { Sandbox } from '../../dev/sandbox';
import { FileCertificateSource } from '../../lib/cert';
import { FpxClient, FpxTransport, type TransportOptions } from '../../lib/fpx';

/** The FPX client a test points at its sandbox, over real mutual TLS, its own limit out of the way. */
export function sandboxClient(
  sandbox: Sandbox,
  pageSize: number,
  options: Partial<TransportOptions> = {},
): FpxClient {
  return new FpxClient(
    new FpxTransport({
      baseUrl: sandbox.url,
      certificates: new FileCertificateSource(sandbox.certs.client.pemPath),
      caPem: sandbox.certs.ca.certPem,
      rateLimitPerMinute: 60_000,
      ...options,
    }),
    pageSize,
  );
}
