import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createCertificateAuthority,
  type IssuedClientCertificate,
  issueClientCertificate,
} from '../dev/certs';
import { loadTransport, rotateUnderLoad } from '../dev/rotation-load';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { KeyVaultCertificateSource } from '../lib/cert';
import { type Clock, ManualClock, systemClock } from '../lib/clock';
import { FpxClient, type FpxTransport } from '../lib/fpx';
import { type KeyVaultFake, startKeyVaultFake } from './fakes/keyvault';

let sandbox: Sandbox;
let vault: KeyVaultFake;
let oldCert: IssuedClientCertificate;
let newCert: IssuedClientCertificate;
const open: FpxTransport[] = [];

beforeAll(async () => {
  sandbox = await startSandbox({ data: { tenants: 5, referrals: 5 }, rateLimitPerMinute: 0, latencyMs: 1 });
  vault = await startKeyVaultFake();
  // Both from the sandbox's CA: FPX accepts the old and the new certificate during the rotation.
  oldCert = issueClientCertificate(sandbox.certs.ca, { commonName: 'partner-2024', pfxPassword: '' });
  newCert = issueClientCertificate(sandbox.certs.ca, { commonName: 'partner-2025', pfxPassword: '' });
});
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
  await sandbox?.close();
  await vault?.close();
});

const pfx = (c: IssuedClientCertificate) => ({
  value: c.pfx.toString('base64'),
  contentType: 'application/x-pkcs12',
});

function fpxWith(source: KeyVaultCertificateSource): { fpx: FpxClient; transport: FpxTransport } {
  const transport = loadTransport(sandbox, source);
  open.push(transport);
  return { fpx: new FpxClient(transport, 25), transport };
}

function keyVaultSource(name: string, clock: Clock): KeyVaultCertificateSource {
  return new KeyVaultCertificateSource({
    vaultUrl: vault.url,
    name,
    refreshMinutes: 60,
    credential: vault.credential,
    clientOptions: vault.clientOptions,
    clock,
    log: () => undefined,
  });
}

test('rotation with 1,000+ FPX calls in flight: no call fails, new calls present the new certificate', async () => {
  vault.setSecret('fpx-load', pfx(oldCert));
  const clock = new ManualClock(Date.now());
  const { fpx, transport } = fpxWith(keyVaultSource('fpx-load', clock));
  // The first 32 answers are held a second while the client keeps dispatching. How many calls pile up on
  // the old Agent depends on the machine's load: bench/cert-rotation.ts prints it (about 1,000 when idle).
  const figures = await rotateUnderLoad(sandbox, transport, {
    calls: 1500,
    holdMs: 1_000,
    oldThumbprint: oldCert.thumbprint,
    newThumbprint: newCert.thumbprint,
    // Key Vault gets a new version; the refresh interval passes; the next call's current() looks in the
    // background, and the calls after that look present the new certificate.
    rotate: async () => {
      vault.setSecret('fpx-load', pfx(newCert));
      await clock.advance(61 * 60_000);
    },
  });
  console.log('rotation under load:', JSON.stringify(figures));

  // More on the old Agent than its 32 connections hold: some wait in its queue at the switch.
  expect(figures.onOldAgentAtRotation).toBeGreaterThan(64);
  // The old Agent went on with what it had queued: those calls reached FPX after the switch, not dropped
  // (only the ones already on its 32 connections arrived before).
  expect(figures.oldArrivedAfterRotation).toBeGreaterThanOrEqual(figures.onOldAgentAtRotation - 64);
  expect(figures.failures).toEqual([]);
  expect(figures.oldThumbprint).toBeGreaterThan(0);
  expect(figures.newThumbprint).toBeGreaterThan(0);
  expect(figures.oldThumbprint + figures.newThumbprint).toBe(sandbox.requests.length);

  // Afterwards every call presents the new certificate.
  sandbox.clearRequests();
  await Promise.all(Array.from({ length: 20 }, () => fpx.referenceList('timezones')));
  expect(new Set(sandbox.requests.map((r) => r.clientCertThumbprint))).toEqual(new Set([newCert.thumbprint]));
}, 30_000);

test('FPX refusing the handshake makes the source look in Key Vault at once', async () => {
  // The old certificate comes from a CA the sandbox does not trust: FPX refuses it, as after a revocation.
  const refused = issueClientCertificate(createCertificateAuthority('Retired partner CA'), {
    pfxPassword: '',
  });
  vault.setSecret('fpx-refused', pfx(refused));
  const source = keyVaultSource('fpx-refused', systemClock);
  const { fpx } = fpxWith(source);
  expect((await source.current()).thumbprint).toBe(refused.thumbprint);

  vault.setSecret('fpx-refused', pfx(newCert));
  const before = vault.requests.length;
  sandbox.clearRequests();
  const outcome = await fpx.referenceList('timezones').then(
    () => 'ok',
    (e: Error) => e.message,
  );
  console.log('refused handshake, then:', outcome);
  // The refused call asked Key Vault at once (the transport's refresh), not after the 60-minute interval.
  expect(vault.requests.length).toBeGreaterThan(before);
  await fpx.referenceList('timezones');
  expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(newCert.thumbprint);
});

test('a slow Key Vault holds up no FPX call: the due look waits in the background', async () => {
  vault.setSecret('fpx-slow-vault', pfx(oldCert));
  const clock = new ManualClock(Date.now());
  const source = keyVaultSource('fpx-slow-vault', clock);
  const { fpx } = fpxWith(source);
  await fpx.referenceList('timezones');
  vault.setSecret('fpx-slow-vault', pfx(newCert));
  sandbox.clearRequests();

  vault.setMode('slow');
  try {
    await clock.advance(61 * 60_000);
    await Promise.all(Array.from({ length: 10 }, () => fpx.referenceList('timezones')));
    await vault.held(1);
    // FPX answered every call with the certificate in use, while Key Vault still holds the look.
    expect(vault.heldCount()).toBe(1);
    expect(new Set(sandbox.requests.map((r) => r.clientCertThumbprint))).toEqual(
      new Set([oldCert.thumbprint]),
    );
  } finally {
    vault.release();
  }
  await source.refresh('test');
  await fpx.referenceList('timezones');
  expect(sandbox.requests.at(-1)?.clientCertThumbprint).toBe(newCert.thumbprint);
});
