import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  createCertificateAuthority,
  type IssuedClientCertificate,
  issueClientCertificate,
} from '../dev/certs';
import { type Sandbox, startSandbox } from '../dev/sandbox';
import { KeyVaultCertificateSource } from '../lib/cert';
import { type Clock, ManualClock, systemClock } from '../lib/clock';
import { FpxClient, FpxTransport } from '../lib/fpx';
import { type KeyVaultFake, startKeyVaultFake } from './fakes/keyvault';
import { waitFor } from './support/wait';

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
  const transport = new FpxTransport({
    baseUrl: sandbox.url,
    certificates: source,
    caPem: sandbox.certs.ca.certPem,
    rateLimitPerMinute: 6_000_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });
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
  // Opens the old Agent's 32 connections first, so their TLS handshakes are done before the load starts.
  await Promise.all(Array.from({ length: 64 }, () => fpx.referenceList('timezones')));
  sandbox.clearRequests();

  const total = 1500;
  const tenantId = String(sandbox.data.partnerTenants[0]?.tenantId);
  let settled = 0;
  // The first 32 answers (one per connection of the Agent) are held a second: meanwhile the client keeps
  // dispatching, so calls pile up in the old certificate's Agent, on the wire and in its queue. How many
  // depends on the machine's load: bench/cert-rotation.ts prints it (about 1,000 on an idle machine).
  sandbox.injectFault({ kind: 'slow', delayMs: 1_000 }, {}, 32);
  // Mostly GETs, and one call in ten a POST: the transport never resends a POST, so a POST dispatched to a
  // closed Agent would fail outright.
  const calls = Array.from({ length: total }, (_, i) =>
    (i % 10 === 0
      ? fpx.createNote(tenantId, { text: `rotation ${i}`, noteCategoryId: 1 })
      : fpx.referenceList(i % 2 ? 'timezones' : 'noteCategories')
    ).finally(() => {
      settled++;
    }),
  );
  const dispatched = () => total - transport.limiter.queued;
  await waitFor(
    '1,000 calls on the old Agent, or the first answer',
    () => dispatched() - settled >= 1000 || settled > 0,
    {
      intervalMs: 5,
    },
  );
  const inFlightAtRotation = total - settled;
  const onOldAgentAtRotation = dispatched() - settled;
  const rotatedAt = Date.now();

  // Key Vault gets a new version; the refresh interval passes; the next call's current() looks in the
  // background, and the calls after that look present the new certificate.
  vault.setSecret('fpx-load', pfx(newCert));
  await clock.advance(61 * 60_000);

  const results = await Promise.allSettled(calls);
  const failures = results.filter((r) => r.status === 'rejected');
  const byThumbprint = (t: string) => sandbox.requests.filter((r) => r.clientCertThumbprint === t).length;
  const figures = {
    calls: total,
    inFlightAtRotation,
    onOldAgentAtRotation,
    oldArrivedAfterRotation: sandbox.requests.filter(
      (r) => r.clientCertThumbprint === oldCert.thumbprint && r.time >= rotatedAt,
    ).length,
    failed: failures.length,
    retries: transport.stats.retries,
    oldThumbprint: byThumbprint(oldCert.thumbprint),
    newThumbprint: byThumbprint(newCert.thumbprint),
  };
  console.log('rotation under load:', JSON.stringify(figures));

  expect(inFlightAtRotation).toBeGreaterThanOrEqual(1000);
  // More on the old Agent than its 32 connections hold: some wait in its queue at the switch.
  expect(onOldAgentAtRotation).toBeGreaterThan(64);
  // The old Agent went on with what it had queued: those calls reached FPX after the switch, not dropped
  // (only the ones already on its 32 connections arrived before).
  expect(figures.oldArrivedAfterRotation).toBeGreaterThanOrEqual(onOldAgentAtRotation - 64);
  expect(failures.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);
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
