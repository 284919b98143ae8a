import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export interface IssuedClientCertificate extends PemPair {
  pfx: Buffer;
  pfxPassword: string;
  /** SHA-256 of the DER certificate, lowercase hex. */
  thumbprint: string;
  notBefore: Date;
  notAfter: Date;
}

export interface DevCertificates {
  dir: string;
  ca: PemPair & { path: string };
  server: PemPair;
  client: IssuedClientCertificate & { pemPath: string; pfxPath: string; certPath: string; keyPath: string };
}

export interface ClientCertificateOptions {
  commonName?: string;
  notBefore?: Date;
  notAfter?: Date;
  pfxPassword?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates closer than this to their expiry are replaced. */
const RENEW_BEFORE_MS = 7 * DAY_MS;
/** Back-date certificates a little so clocks that differ slightly still accept them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** FPX makes partners rotate client certificates every 120 days; the dev certificate does the same. */
const CLIENT_VALIDITY_DAYS = 120;
const SERVER_VALIDITY_DAYS = 397;
const CA_VALIDITY_DAYS = 3650;

export const DEFAULT_CERT_DIR = path.resolve(__dirname, '..', '.local', 'certs');

const FILES = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  server: 'server.pem',
  serverKey: 'server-key.pem',
  clientPem: 'client.pem',
  clientCert: 'client-cert.pem',
  clientKey: 'client-key.pem',
  clientPfx: 'client.pfx',
  clientPfxPassword: 'client.pfx.password',
} as const;

/** Loads the development CA, server and client certificates from `dir`, creating or renewing what is missing or about to expire. */
export function ensureDevCertificates(dir: string = DEFAULT_CERT_DIR): DevCertificates {
  const existing = tryLoad(dir);
  if (existing) return existing;
  // Several test workers may start at once: one generates, the others wait and then read.
  return withLock(dir, () => tryLoad(dir) ?? generateInto(dir));
}

/** Another client certificate from the same CA (later used to test certificate rotation and expiry). */
export function issueClientCertificate(
  ca: PemPair,
  options: ClientCertificateOptions = {},
): IssuedClientCertificate {
  const notBefore = options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + CLIENT_VALIDITY_DAYS * DAY_MS);
  const pfxPassword = options.pfxPassword ?? randomBytes(12).toString('hex');
  const issuer = forgeIssuer(ca);
  const keys = newKeyPair();
  const cert = buildCertificate({
    commonName: options.commonName ?? 'fpx-sandbox-client',
    publicKey: keys.publicKey,
    notBefore,
    notAfter,
    issuer,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
  });
  const certPem = forge.pki.certificateToPem(cert);
  return {
    certPem,
    keyPem: keys.keyPem,
    pfx: toPfx(keys.keyPem, [cert, issuer.cert], pfxPassword),
    pfxPassword,
    ...validity(certPem),
  };
}

/** A separate CA that the sandbox does NOT trust (for the "untrusted client certificate" test). */
export function createCertificateAuthority(commonName = 'FPX Sandbox Untrusted CA'): PemPair {
  const keys = newKeyPair();
  const now = Date.now();
  const cert = buildCertificate({
    commonName,
    publicKey: keys.publicKey,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    issuer: undefined,
    selfSignedKeyPem: keys.keyPem,
    extensions: [
      { name: 'basicConstraints', critical: true, cA: true },
      { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
      { name: 'subjectKeyIdentifier' },
    ],
  });
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

/** SHA-256 of the certificate's DER bytes, lowercase hex (what the sandbox logs per request). */
export function certificateThumbprint(certPemOrDer: string | Buffer): string {
  const raw = typeof certPemOrDer === 'string' ? new X509Certificate(certPemOrDer).raw : certPemOrDer;
  return createHash('sha256').update(raw).digest('hex');
}

function issueServerCertificate(ca: PemPair): PemPair {
  const issuer = forgeIssuer(ca);
  const keys = newKeyPair();
  const now = Date.now();
  const cert = buildCertificate({
    commonName: 'localhost',
    publicKey: keys.publicKey,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + SERVER_VALIDITY_DAYS * DAY_MS),
    issuer,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.keyPem };
}

// --- generation and storage -------------------------------------------------------------------

function generateInto(dir: string): DevCertificates {
  mkdirSync(dir, { recursive: true });
  const caOk = readValidCa(dir);
  const ca = caOk ?? createCertificateAuthority('FPX Sandbox Development CA');
  if (!caOk) {
    writeAtomic(dir, FILES.ca, ca.certPem);
    writeAtomic(dir, FILES.caKey, ca.keyPem, 0o600);
  }
  if (!caOk || !readValidLeaf(dir, FILES.server, FILES.serverKey, ca)) {
    const server = issueServerCertificate(ca);
    writeAtomic(dir, FILES.server, server.certPem);
    writeAtomic(dir, FILES.serverKey, server.keyPem, 0o600);
  }
  if (!caOk || !readValidClient(dir, ca)) {
    const client = issueClientCertificate(ca);
    writeAtomic(dir, FILES.clientCert, client.certPem);
    writeAtomic(dir, FILES.clientKey, client.keyPem, 0o600);
    writeAtomic(dir, FILES.clientPem, client.certPem + client.keyPem, 0o600);
    writeAtomic(dir, FILES.clientPfxPassword, client.pfxPassword, 0o600);
    writeAtomic(dir, FILES.clientPfx, client.pfx, 0o600);
  }
  const loaded = tryLoad(dir);
  if (!loaded) throw new Error(`Could not create usable development certificates in ${dir}`);
  return loaded;
}

function tryLoad(dir: string): DevCertificates | undefined {
  const ca = readValidCa(dir);
  if (!ca) return undefined;
  const server = readValidLeaf(dir, FILES.server, FILES.serverKey, ca);
  const client = server && readValidClient(dir, ca);
  if (!server || !client) return undefined;
  return {
    dir,
    ca: { ...ca, path: path.join(dir, FILES.ca) },
    server,
    client: {
      ...client,
      pemPath: path.join(dir, FILES.clientPem),
      pfxPath: path.join(dir, FILES.clientPfx),
      certPath: path.join(dir, FILES.clientCert),
      keyPath: path.join(dir, FILES.clientKey),
    },
  };
}

function readValidCa(dir: string): PemPair | undefined {
  const pair = readPair(dir, FILES.ca, FILES.caKey);
  if (!pair) return undefined;
  const x509 = new X509Certificate(pair.certPem);
  return x509.ca && usable(x509) && x509.checkPrivateKey(keyObject(pair.keyPem)) ? pair : undefined;
}

function readValidLeaf(dir: string, certFile: string, keyFile: string, ca: PemPair): PemPair | undefined {
  const pair = readPair(dir, certFile, keyFile);
  if (!pair) return undefined;
  const x509 = new X509Certificate(pair.certPem);
  const signedByCa = x509.verify(new X509Certificate(ca.certPem).publicKey);
  return signedByCa && usable(x509) && x509.checkPrivateKey(keyObject(pair.keyPem)) ? pair : undefined;
}

function readValidClient(dir: string, ca: PemPair): IssuedClientCertificate | undefined {
  const pair = readValidLeaf(dir, FILES.clientCert, FILES.clientKey, ca);
  const combined = readText(dir, FILES.clientPem);
  const pfxPassword = readText(dir, FILES.clientPfxPassword);
  const pfxPath = path.join(dir, FILES.clientPfx);
  if (!pair || combined !== pair.certPem + pair.keyPem || pfxPassword === undefined || !existsSync(pfxPath)) {
    return undefined;
  }
  return { ...pair, pfx: readFileSync(pfxPath), pfxPassword, ...validity(pair.certPem) };
}

function readPair(dir: string, certFile: string, keyFile: string): PemPair | undefined {
  const certPem = readText(dir, certFile);
  const keyPem = readText(dir, keyFile);
  if (certPem === undefined || keyPem === undefined) return undefined;
  try {
    new X509Certificate(certPem);
    keyObject(keyPem);
  } catch {
    return undefined; // half-written or corrupt: regenerate
  }
  return { certPem, keyPem };
}

function readText(dir: string, file: string): string | undefined {
  const full = path.join(dir, file);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
}

function usable(x509: X509Certificate): boolean {
  const now = Date.now();
  return (
    new Date(x509.validFrom).getTime() <= now + CLOCK_SKEW_MS &&
    new Date(x509.validTo).getTime() - now > RENEW_BEFORE_MS
  );
}

function validity(certPem: string): { thumbprint: string; notBefore: Date; notAfter: Date } {
  const x509 = new X509Certificate(certPem);
  return {
    thumbprint: certificateThumbprint(x509.raw),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
  };
}

function writeAtomic(dir: string, file: string, content: string | Buffer, mode = 0o644): void {
  const temp = path.join(dir, `.${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(temp, content, { mode });
  renameSync(temp, path.join(dir, file));
}

/** A lock file held while generating; a lock older than a minute is left over from a crashed process. */
function withLock<T>(dir: string, action: () => T): T {
  mkdirSync(dir, { recursive: true });
  const lockPath = path.join(dir, '.lock');
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      closeSync(openSync(lockPath, 'wx'));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (isStale(lockPath)) removeQuietly(lockPath);
      else if (Date.now() > deadline) throw new Error(`Timed out waiting for ${lockPath}`);
      else sleepSync(50);
    }
  }
  try {
    return action();
  } finally {
    removeQuietly(lockPath);
  }
}

function isStale(lockPath: string): boolean {
  try {
    return Date.now() - statSync(lockPath).mtimeMs > 60_000;
  } catch {
    return false;
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// --- X.509 with node-forge, keys with node:crypto (much faster than forge's key generation) ------

interface KeyPair {
  keyPem: string;
  publicKey: forge.pki.rsa.PublicKey;
}

interface ForgeIssuer {
  cert: forge.pki.Certificate;
  keyPem: string;
}

function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    keyPem: privateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
  };
}

function keyObject(keyPem: string): KeyObject {
  return createPrivateKey(keyPem);
}

function forgeIssuer(ca: PemPair): ForgeIssuer {
  return { cert: forge.pki.certificateFromPem(ca.certPem), keyPem: ca.keyPem };
}

interface CertificateSpec {
  commonName: string;
  publicKey: forge.pki.rsa.PublicKey;
  notBefore: Date;
  notAfter: Date;
  /** Undefined for a self-signed CA. */
  issuer: ForgeIssuer | undefined;
  selfSignedKeyPem?: string;
  extensions: object[];
}

function buildCertificate(spec: CertificateSpec): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = spec.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  const subject = [
    { name: 'commonName', value: spec.commonName },
    { name: 'organizationName', value: 'FPX CRM connector (development)' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(spec.issuer ? spec.issuer.cert.subject.attributes : subject);
  const authorityKeyId = spec.issuer
    ? [
        {
          name: 'authorityKeyIdentifier',
          keyIdentifier: spec.issuer.cert.generateSubjectKeyIdentifier().getBytes(),
        },
      ]
    : [];
  cert.setExtensions([...spec.extensions, ...authorityKeyId]);
  const signingKeyPem = spec.issuer?.keyPem ?? spec.selfSignedKeyPem;
  if (!signingKeyPem) throw new Error('A self-signed certificate needs its signing key');
  // forge lays out the certificate and asks the "key" to sign it; Node signs ~20x faster than forge's RSA.
  const nodeSigner = {
    sign: () => {
      const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
      return sign('sha256', tbs, signingKeyPem).toString('binary');
    },
  };
  cert.sign(nodeSigner as unknown as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return cert;
}

/** A positive 128-bit serial (the top bit clear so DER does not read it as negative). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** 3DES-encrypted PKCS#12 with a SHA-1 MAC: Node's TLS (OpenSSL 3) loads it without the legacy provider. */
function toPfx(keyPem: string, chain: forge.pki.Certificate[], password: string): Buffer {
  const asn1 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(keyPem), chain, password, {
    algorithm: '3des',
    friendlyName: 'fpx-sandbox-client',
  });
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}
