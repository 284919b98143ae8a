import { readFileSync } from 'node:fs';
import type { CertificateSource } from '../cert/certificate';
import { type Config, ConfigError } from '../config';
import { FpxClient } from './client';
import { FpxTransport, type TransportOptions } from './transport';

export { type CallOptions, FpxClient, REFERENCE_LISTS, type ReferenceList } from './client';
export { FpxError, type FpxErrorKind } from './errors';
export { EMPTY_GUID, normalizeGuid } from './guid';
export { type Page, PagedList } from './paging';
export { RateLimiter } from './rate-limiter';
export * as fpxRequests from './requests';
export type { Contact, EntitlementRecord, NamedRef, Note, PartnerTenant, Referral } from './schemas';
export * as fpxSchemas from './schemas';
export { FpxTransport, type TransportOptions, type TransportStats } from './transport';

/** Builds the process's one FPX client from the config and a certificate source. */
export function createFpxClient(
  fpx: Config['fpx'],
  certificates: CertificateSource,
  overrides: Partial<TransportOptions> = {},
): FpxClient {
  const transport = new FpxTransport({
    baseUrl: fpx.baseUrl,
    certificates,
    caPem: fpx.caPath ? readCaFile(fpx.caPath) : undefined,
    origin: fpx.origin,
    rateLimitPerMinute: fpx.rateLimitPerMinute,
    ...overrides,
  });
  return new FpxClient(transport, fpx.pageSize);
}

function readCaFile(path: string): string {
  try {
    const pem = readFileSync(path, 'utf8');
    if (pem.includes('-----BEGIN CERTIFICATE-----')) return pem;
  } catch {
    // Reported below, naming the setting.
  }
  throw new ConfigError('FPX_CA_PATH', `a readable PEM file of CA certificates at ${path}`);
}
