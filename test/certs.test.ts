import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createCertificateAuthority,
  type DevCertificates,
  ensureDevCertificates,
  issueClientCertificate,
} from '../dev/certs';

const dir = mkdtempSync(path.join(tmpdir(), 'fpx-certs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ensureDevCertificates', () => {
  let certs: DevCertificates;
  beforeAll(() => {
    certs = ensureDevCertificates(dir);
  });

  test('writes the CA, server and client files', () => {
    for (const file of [
      'ca.pem',
      'server.pem',
      'server-key.pem',
      'client.pem',
      'client.pfx',
      'client.pfx.password',
      'client-cert.pem',
      'client-key.pem',
    ]) {
      expect(readFileSync(path.join(dir, file)).length, file).toBeGreaterThan(0);
    }
    expect(readFileSync(certs.client.pemPath, 'utf8')).toBe(certs.client.certPem + certs.client.keyPem);
    expect(readFileSync(path.join(dir, 'client.pfx.password'), 'utf8')).toBe(certs.client.pfxPassword);
  });

  test('the CA is a CA and signed the server and client certificates', () => {
    const ca = new X509Certificate(certs.ca.certPem);
    expect(ca.ca).toBe(true);
    const server = new X509Certificate(certs.server.certPem);
    const client = new X509Certificate(certs.client.certPem);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.subjectAltName).toContain('DNS:localhost');
    expect(server.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(server.checkIP('::1')).toBe('::1');
    expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // extendedKeyUsage clientAuth
    expect(client.subject).toContain('CN=fpx-sandbox-client');
    expect(client.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(certs.client.thumbprint);
    expect(certs.client.notAfter.getTime()).toBe(new Date(client.validTo).getTime());
  });

  test('the PFX loads in Node TLS (OpenSSL 3) with its password and carries the client certificate', () => {
    expect(() =>
      createSecureContext({ pfx: certs.client.pfx, passphrase: certs.client.pfxPassword }),
    ).not.toThrow();
    expect(() => createSecureContext({ pfx: certs.client.pfx, passphrase: 'wrong' })).toThrow();
  });

  test('a second call reuses the files', () => {
    const again = ensureDevCertificates(dir);
    expect(again.client.thumbprint).toBe(certs.client.thumbprint);
    expect(again.ca.certPem).toBe(certs.ca.certPem);
    expect(again.server.certPem).toBe(certs.server.certPem);
  });

  test('a client certificate expiring within 7 days is replaced; the CA is kept', () => {
    const expiring = issueClientCertificate(certs.ca, { notAfter: new Date(Date.now() + 3 * 86_400_000) });
    writeFileSync(path.join(dir, 'client-cert.pem'), expiring.certPem);
    writeFileSync(path.join(dir, 'client-key.pem'), expiring.keyPem);
    writeFileSync(path.join(dir, 'client.pem'), expiring.certPem + expiring.keyPem);
    const renewed = ensureDevCertificates(dir);
    expect(renewed.ca.certPem).toBe(certs.ca.certPem);
    expect(renewed.client.thumbprint).not.toBe(expiring.thumbprint);
    expect(renewed.client.notAfter.getTime()).toBeGreaterThan(Date.now() + 7 * 86_400_000);
  });

  test('a missing file is regenerated', () => {
    rmSync(path.join(dir, 'server.pem'));
    const renewed = ensureDevCertificates(dir);
    expect(readFileSync(path.join(dir, 'server.pem'), 'utf8')).toBe(renewed.server.certPem);
    expect(renewed.ca.certPem).toBe(certs.ca.certPem);
  });
});

test('issueClientCertificate honours the name, validity and password; createCertificateAuthority is another CA', () => {
  const ca = createCertificateAuthority('Other CA');
  const notBefore = new Date(Date.now() - 10 * 86_400_000);
  const notAfter = new Date(Date.now() - 86_400_000);
  const issued = issueClientCertificate(ca, {
    commonName: 'rotated',
    notBefore,
    notAfter,
    pfxPassword: 'pw',
  });
  const x509 = new X509Certificate(issued.certPem);
  expect(x509.subject).toContain('CN=rotated');
  expect(x509.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  expect(issued.notAfter.getTime()).toBe(Math.floor(notAfter.getTime() / 1000) * 1000);
  expect(issued.notBefore.getTime()).toBe(Math.floor(notBefore.getTime() / 1000) * 1000);
  expect(issued.pfxPassword).toBe('pw');
  expect(() => createSecureContext({ pfx: issued.pfx, passphrase: 'pw' })).not.toThrow();
  expect(new X509Certificate(ca.certPem).subject).toContain('CN=Other CA');
});
