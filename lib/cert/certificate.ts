import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type forge from 'node-forge';
import { lazy } from '../lazy';

/** A client certificate ready for TLS, with what the app reports about it. */
export interface ClientCertificate {
  /** Leaf certificate first, then any chain, PEM. */
  certPem: string;
  keyPem: string;
  /** SHA-256 of the leaf's DER, lowercase hex. */
  thumbprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** Key Vault secret version, when the certificate came from Key Vault. */
  version?: string;
}

/** Where a certificate lives, for alerts and messages. */
export type CertificateLocation =
  | { kind: 'keyVault'; vaultUrl: string; name: string }
  | { kind: 'file'; path: string };

/** Where the FPX client gets its certificate: Key Vault or a file. */
export interface CertificateSource {
  /** The current certificate; sources cache it. */
  current(): Promise<ClientCertificate>;
  /** Look again at once (e.g. after FPX refused the handshake); resolves to the certificate now current. */
  refresh(reason: string): Promise<ClientCertificate>;
  /** Where the certificate lives, for messages (never its content). */
  readonly description: string;
  /** The same, structured (alerts say what to do with it). */
  readonly location?: CertificateLocation;
}

/** A certificate that cannot be used; the message names where it came from, never its content. */
export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

export interface ParseOptions {
  password?: string;
  now?: Date;
  /** What the content is (Key Vault says so by content type); default: PEM when it looks like PEM, else PKCS#12. */
  format?: 'pem' | 'pkcs12';
}

/**
 * Reads a PEM bundle (certificate chain and private key) or a PKCS#12 (PFX) file into a ClientCertificate.
 * `label` names the file or Key Vault secret in errors; errors never quote the content.
 */
export function parseClientCertificate(
  data: Buffer | string,
  label: string,
  options: ParseOptions = {},
): ClientCertificate {
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const format = options.format ?? (text.includes('-----BEGIN ') ? 'pem' : 'pkcs12');
  const { certs, keyPem } =
    format === 'pem'
      ? splitPem(text, label)
      : readPkcs12(typeof data === 'string' ? Buffer.from(data, 'base64') : data, label, options.password);

  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new CertificateError(
      `${label}: the private key cannot be read (encrypted PEM keys are not supported)`,
    );
  }
  const parsed = certs.map((pem) => ({ pem, x509: readX509(pem, label) }));
  // The leaf is the certificate that matches the private key, wherever it stands in the bundle.
  const leaf = parsed.find((c) => c.x509.checkPrivateKey(key));
  if (!leaf) throw new CertificateError(`${label}: no certificate matches the private key`);

  const notBefore = new Date(leaf.x509.validFrom);
  const notAfter = new Date(leaf.x509.validTo);
  const now = options.now ?? new Date();
  if (notBefore > now) {
    throw new CertificateError(`${label}: the certificate is not valid before ${notBefore.toISOString()}`);
  }
  const chain = [leaf, ...parsed.filter((c) => c !== leaf)].map((c) => c.pem.trim());
  return {
    certPem: `${chain.join('\n')}\n`,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    thumbprint: createHash('sha256').update(leaf.x509.raw).digest('hex'),
    subject: leaf.x509.subject.replace(/\n/g, ', '),
    notBefore,
    notAfter,
  };
}

function readX509(pem: string, label: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new CertificateError(`${label}: a certificate in the content cannot be read`);
  }
}

function splitPem(text: string, label: string): { certs: string[]; keyPem: string } {
  const certs: string[] = [];
  let keyPem: string | undefined;
  for (const match of text.matchAll(PEM_BLOCK)) {
    if (match[1] === 'CERTIFICATE') certs.push(match[0]);
    else if (match[1]?.endsWith('PRIVATE KEY')) keyPem ??= match[0];
  }
  if (certs.length === 0) throw new CertificateError(`${label}: no certificate in the PEM content`);
  if (!keyPem) throw new CertificateError(`${label}: no private key in the PEM content`);
  return { certs, keyPem };
}

function readPkcs12(der: Buffer, label: string, password = ''): { certs: string[]; keyPem: string } {
  const forge = lazy.forge();
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString('binary')), false, password);
  } catch (error) {
    const wrongPassword = /mac|password|decrypt/i.test(String((error as Error)?.message));
    throw new CertificateError(
      wrongPassword
        ? `${label}: the PKCS#12 (PFX) password is wrong or missing`
        : `${label}: neither PEM nor a readable PKCS#12 (PFX)`,
    );
  }
  const bags = (type: string | undefined) => (type ? (p12.getBags({ bagType: type })[type] ?? []) : []);
  const certs = bags(forge.pki.oids.certBag)
    .map((bag) => bag.cert)
    .filter((cert): cert is forge.pki.Certificate => Boolean(cert))
    .map((cert) => forge.pki.certificateToPem(cert));
  const keyBags = [...bags(forge.pki.oids.pkcs8ShroudedKeyBag), ...bags(forge.pki.oids.keyBag)];
  const key = keyBags.find((bag) => bag.key)?.key;
  if (certs.length === 0) throw new CertificateError(`${label}: no certificate in the PKCS#12 (PFX)`);
  if (!key) throw new CertificateError(`${label}: no private key in the PKCS#12 (PFX)`);
  return { certs, keyPem: forge.pki.privateKeyToPem(key) };
}
