import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ensureDevCertificates, type IssuedClientCertificate, issueClientCertificate } from '../dev/certs';
import { CertificateError, KeyVaultCertificateSource, type KeyVaultSourceOptions } from '../lib/cert';
import { ManualClock } from '../lib/clock';
import { type KeyVaultFake, startKeyVaultFake } from './fakes/keyvault';

const DAY = 24 * 60 * 60 * 1000;

/** The error `promise` rejects with (a promise that resolves fails the test). */
const rejection = (promise: Promise<unknown>): Promise<Error> =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error as Error,
  );
let vault: KeyVaultFake;
let first: IssuedClientCertificate;
let second: IssuedClientCertificate;

beforeAll(async () => {
  vault = await startKeyVaultFake();
  const ca = ensureDevCertificates().ca;
  first = issueClientCertificate(ca, { commonName: 'partner-first', pfxPassword: '' });
  second = issueClientCertificate(ca, { commonName: 'partner-second', pfxPassword: '' });
});
afterAll(() => vault.close());

let names = 0;
/** A fresh secret name per test, so tests never see each other's versions. */
const secretName = () => `fpx-client-${++names}`;

const pfxSecret = (c: IssuedClientCertificate) => ({
  value: c.pfx.toString('base64'),
  contentType: 'application/x-pkcs12',
});
// Key Vault puts the private key first, then the certificate chain.
const pemSecret = (c: IssuedClientCertificate) => ({
  value: `${c.keyPem}${c.certPem}`,
  contentType: 'application/x-pem-file',
});

function source(name: string, options: Partial<KeyVaultSourceOptions> = {}): KeyVaultCertificateSource {
  return new KeyVaultCertificateSource({
    vaultUrl: vault.url,
    name,
    refreshMinutes: 60,
    credential: vault.credential,
    clientOptions: vault.clientOptions,
    log: () => undefined,
    ...options,
  });
}

describe('reading the certificate from Key Vault', () => {
  test('PKCS#12 (base64 PFX without password), after the bearer challenge', async () => {
    const name = secretName();
    const version = vault.setSecret(name, pfxSecret(first));
    const before = vault.requests.length;
    const certificate = await source(name).current();
    expect(certificate).toMatchObject({
      thumbprint: first.thumbprint,
      notBefore: first.notBefore,
      notAfter: first.notAfter,
      version,
    });
    expect(certificate.subject).toContain('CN=partner-first');
    expect(certificate.certPem).toContain('BEGIN CERTIFICATE');
    expect(certificate.keyPem).toContain('PRIVATE KEY');
    // The real protocol: first without a token (401 challenge), then the same request with it.
    const seen = vault.requests.slice(before);
    expect(seen.map((r) => [r.status, r.authorized])).toEqual([
      [401, false],
      [200, true],
    ]);
    expect(seen[1]?.path).toBe(`/secrets/${name}/`);
  });

  test('PEM (private key and certificate chain)', async () => {
    const name = secretName();
    const version = vault.setSecret(name, pemSecret(second));
    const certificate = await source(name).current();
    expect(certificate).toMatchObject({ thumbprint: second.thumbprint, version, notAfter: second.notAfter });
    expect(certificate.subject).toContain('CN=partner-second');
  });

  test('the certificate is cached between checks', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const kv = source(name);
    await kv.current();
    const before = vault.requests.length;
    await Promise.all(Array.from({ length: 20 }, () => kv.current()));
    expect(vault.requests.length).toBe(before);
  });
});

describe('rotation', () => {
  test('a new version is picked up on the refresh interval, with one Key Vault call however many callers', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const clock = new ManualClock(Date.now());
    const kv = source(name, { refreshMinutes: 30, clock });
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);

    const newVersion = vault.setSecret(name, pemSecret(second));
    const before = vault.requests.length;
    await clock.advance(29 * 60_000);
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);
    expect(vault.requests.length).toBe(before);

    await clock.advance(2 * 60_000);
    await Promise.all(Array.from({ length: 50 }, () => kv.current()));
    // The due look runs in the background; refresh() joins it (or looks once more if it is done).
    const looked = await kv.refresh('test');
    expect(looked).toMatchObject({ thumbprint: second.thumbprint, version: newVersion });
    expect((await kv.current()).thumbprint).toBe(second.thumbprint);
    expect(vault.requests.length - before).toBeLessThanOrEqual(2);
  });

  test('refresh() (FPX refused the handshake or answered 401/403) looks at once', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const logged: string[] = [];
    const kv = source(name, { log: (m) => logged.push(m) });
    await kv.current();
    vault.setSecret(name, pfxSecret(second));
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);
    expect((await kv.refresh('FPX GET /timezones answered 401')).thumbprint).toBe(second.thumbprint);
    expect((await kv.current()).thumbprint).toBe(second.thumbprint);
    expect(logged.join('\n')).toMatch(
      /switched to version [0-9a-f]{32} .* after FPX GET \/timezones answered 401/,
    );
  });

  test('the same version is not parsed again; an unusable new version keeps the old certificate in use', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const logged: string[] = [];
    const kv = source(name, { log: (m) => logged.push(m) });
    const loaded = await kv.current();
    expect(await kv.refresh('check')).toBe(loaded);

    vault.setSecret(name, { value: first.certPem, contentType: 'application/x-pem-file' });
    expect((await kv.refresh('check')).thumbprint).toBe(first.thumbprint);
    expect(logged.at(-1)).toMatch(new RegExp(`${name}.*no private key.*still using version`));
  });
});

describe('errors name the secret and never hold its value', () => {
  async function failure(name: string): Promise<CertificateError> {
    const error = await source(name)
      .current()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CertificateError);
    return error as CertificateError;
  }

  function expectNoSecret(error: Error, ...values: string[]) {
    const shown = `${error.message}\n${inspect(error, { depth: 5 })}`;
    expect(shown).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|fake-kv-token/);
    for (const value of values) expect(shown).not.toContain(value.slice(100, 160));
  }

  test('a content type other than PKCS#12 or PEM', async () => {
    const name = secretName();
    const value = first.pfx.toString('base64');
    vault.setSecret(name, { value, contentType: 'text/plain' });
    const error = await failure(name);
    expect(error.message).toMatch(
      new RegExp(`Key Vault certificate ${name} in ${vault.url}.*"text/plain" is not a certificate`),
    );
    expectNoSecret(error, value);
  });

  test('a secret without content type (a plain secret, not a certificate)', async () => {
    const name = secretName();
    vault.setSecret(name, { value: pemSecret(first).value });
    const error = await failure(name);
    expect(error.message).toMatch(/\(none\) is not a certificate/);
    expectNoSecret(error, pemSecret(first).value);
  });

  test('PEM without a private key', async () => {
    const name = secretName();
    vault.setSecret(name, { value: first.certPem, contentType: 'application/x-pem-file' });
    const error = await failure(name);
    expect(error.message).toMatch(new RegExp(`${name}.*no private key in the PEM content`));
    expectNoSecret(error, first.certPem);
  });

  test('a PKCS#12 that is not one', async () => {
    const name = secretName();
    const value = Buffer.from('not a pfx at all, but long enough to be mistaken for one'.repeat(4)).toString(
      'base64',
    );
    vault.setSecret(name, { value, contentType: 'application/x-pkcs12' });
    const error = await failure(name);
    expect(error.message).toMatch(new RegExp(`${name}.*neither PEM nor a readable PKCS#12`));
    expectNoSecret(error, value);
  });

  test('a certificate not valid yet', async () => {
    const name = secretName();
    const future = issueClientCertificate(ensureDevCertificates().ca, {
      notBefore: new Date(Date.now() + 2 * DAY),
      pfxPassword: '',
    });
    vault.setSecret(name, pfxSecret(future));
    const error = await failure(name);
    expect(error.message).toMatch(new RegExp(`${name}.*not valid before ${future.notBefore.toISOString()}`));
    expectNoSecret(error, future.pfx.toString('base64'));
  });

  test('a wrong secret name (404)', async () => {
    const error = await failure('no-such-certificate');
    expect(error.message).toBe(
      `Key Vault certificate no-such-certificate in ${vault.url}: not found in the vault (404)`,
    );
    expectNoSecret(error);
  });

  test('without a certificate yet, the next call looks again', async () => {
    const name = secretName();
    const kv = source(name, { clock: new ManualClock(Date.now()) });
    await expect(kv.current()).rejects.toThrow(/not found in the vault \(404\)/);
    vault.setSecret(name, pfxSecret(first));
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);
  });

  test('a disabled latest version (403)', async () => {
    const name = secretName();
    vault.setSecret(name, { ...pfxSecret(first), enabled: false });
    const error = await failure(name);
    expect(error.message).toMatch(new RegExp(`${name}.*access denied \\(403`));
  });
});

describe('Key Vault slow or down never holds up a call', () => {
  afterEach(() => vault.release());

  test('a due refresh answers with the certificate in use at once and looks in the background', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const clock = new ManualClock(Date.now());
    const logged: string[] = [];
    const kv = source(name, { clock, log: (m) => logged.push(m) });
    await kv.current();
    const newVersion = vault.setSecret(name, pfxSecret(second));

    vault.setMode('slow');
    await clock.advance(61 * 60_000);
    const calls = Promise.all(Array.from({ length: 20 }, () => kv.current()));
    // Key Vault now holds the look the refresh interval started; the callers have their answer already.
    const first20 = await Promise.race([calls, vault.held(1).then(() => 'waiting for Key Vault' as const)]);
    expect(first20).not.toBe('waiting for Key Vault');
    expect(new Set((first20 as Array<{ thumbprint: string }>).map((c) => c.thumbprint))).toEqual(
      new Set([first.thumbprint]),
    );
    await vault.held(1);
    expect(await kv.current()).toMatchObject({ thumbprint: first.thumbprint });
    expect(vault.heldCount()).toBe(1);

    vault.release();
    expect(await kv.refresh('test')).toMatchObject({ thumbprint: second.thumbprint, version: newVersion });
    expect(logged.join('\n')).toMatch(/switched to version .* after refresh interval/);
  });

  test('a background look that times out keeps the certificate and is tried again a minute later', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const clock = new ManualClock(Date.now());
    const logged: string[] = [];
    const kv = source(name, { clock, log: (m) => logged.push(m), timeoutMs: 10_000 });
    const loaded = await kv.current();
    vault.setSecret(name, pfxSecret(second));

    vault.setMode('slow');
    await clock.advance(61 * 60_000);
    expect(await kv.current()).toBe(loaded);
    await vault.held(1);
    await clock.advance(10_000);
    expect(logged.at(-1)).toBe(
      `Key Vault certificate ${name} in ${vault.url}: Key Vault did not answer within 10 s; still using version ${loaded.version}`,
    );
    vault.release();
    // Within the minute after the failure the certificate in use answers, without a look.
    const before = vault.requests.length;
    await clock.advance(30_000);
    expect(await kv.current()).toBe(loaded);
    expect(vault.requests.length).toBe(before);
    await clock.advance(31_000);
    expect(await kv.current()).toBe(loaded);
    expect((await kv.refresh('test')).thumbprint).toBe(second.thumbprint);
  });

  test('a cold start with Key Vault unreachable fails fast, naming the vault and secret; the next call retries', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const kv = source(name, { clock: new ManualClock(Date.now()) });
    vault.setMode('failing');
    const error = await rejection(kv.current());
    expect(error).toBeInstanceOf(CertificateError);
    expect(error.message).toMatch(
      new RegExp(`^Key Vault certificate ${name} in ${vault.url}: Key Vault cannot be reached \\(`),
    );
    expect(`${error.message}${inspect(error)}`).not.toMatch(/fake-kv-token|PRIVATE KEY/);

    vault.setMode('normal');
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);
  });

  test('a cold start with Key Vault not answering gives up after the timeout; the next call retries', async () => {
    const name = secretName();
    vault.setSecret(name, pfxSecret(first));
    const clock = new ManualClock(Date.now());
    const kv = source(name, { clock, timeoutMs: 10_000 });
    vault.setMode('slow');
    const loading = rejection(kv.current());
    await vault.held(1);
    await clock.advance(10_000);
    const error = await loading;
    expect(error).toBeInstanceOf(CertificateError);
    expect(error.message).toBe(
      `Key Vault certificate ${name} in ${vault.url}: Key Vault did not answer within 10 s`,
    );

    vault.release();
    expect((await kv.current()).thumbprint).toBe(first.thumbprint);
  });
});
