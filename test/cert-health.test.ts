import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { issueClientCertificate } from '../dev/certs';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { healthCheck } from '../functions/health';
import { buildServices, type ServiceOverrides } from '../functions/services';
import { loadConfig } from '../lib/config';
import { type KeyVaultFake, startKeyVaultFake } from './fakes/keyvault';

const DAY = 24 * 60 * 60 * 1000;
let sandbox: Sandbox;
let vault: KeyVaultFake;

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 3, referrals: 3 } });
  vault = await startKeyVaultFake();
});
afterAll(async () => {
  await sandbox?.close();
  await vault?.close();
});

type Body = { status: string; checks: { certificate: Record<string, unknown> } };

async function health(settings: Record<string, string>, overrides: ServiceOverrides = {}) {
  const services = buildServices(
    loadConfig({
      AzureWebJobsStorage: inject('storageConnection'),
      FPX_BASE_URL: sandbox.url,
      FPX_CA_PATH: sandbox.certs.ca.path,
      ...settings,
    }),
    overrides,
  );
  const response = await healthCheck(services);
  return { status: response.status, body: response.jsonBody as Body };
}

test('health reports the Key Vault certificate: days left, expiry, thumbprint', async () => {
  const cert = issueClientCertificate(sandbox.certs.ca, {
    notAfter: new Date(Date.now() + 20 * DAY + 60_000),
    pfxPassword: '',
  });
  vault.setSecret('fpx-health', { value: cert.pfx.toString('base64'), contentType: 'application/x-pkcs12' });
  const { status, body } = await health(
    { FPX_CERT_KEYVAULT_URL: vault.url, FPX_CERT_NAME: 'fpx-health' },
    { keyVault: { credential: vault.credential, clientOptions: vault.clientOptions } },
  );
  expect(status).toBe(200);
  expect(body.checks.certificate).toEqual({
    ok: true,
    daysLeft: 20,
    notAfter: cert.notAfter.toISOString(),
    thumbprint: cert.thumbprint,
  });
  // FPX was called with the Key Vault certificate.
  expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(cert.thumbprint);
});

test('an expired certificate: ok false, negative days left, 503', async () => {
  const expired = issueClientCertificate(sandbox.certs.ca, {
    notBefore: new Date(Date.now() - 130 * DAY),
    notAfter: new Date(Date.now() - 2 * DAY - 60_000),
  });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'fpx-cert-')), 'expired.pem');
  writeFileSync(file, expired.certPem + expired.keyPem);
  const { status, body } = await health({ FPX_CERT_PATH: file });
  expect(status).toBe(503);
  expect(body.checks.certificate).toEqual({
    ok: false,
    daysLeft: -3,
    notAfter: expired.notAfter.toISOString(),
    thumbprint: expired.thumbprint,
  });
});

test('a certificate that cannot be loaded: ok false with the reason, naming the secret', async () => {
  const { status, body } = await health(
    { FPX_CERT_KEYVAULT_URL: vault.url, FPX_CERT_NAME: 'missing-certificate' },
    { keyVault: { credential: vault.credential, clientOptions: vault.clientOptions } },
  );
  expect(status).toBe(503);
  expect(body.checks.certificate).toEqual({
    ok: false,
    error: `Key Vault certificate missing-certificate in ${vault.url}: not found in the vault (404)`,
  });
});
