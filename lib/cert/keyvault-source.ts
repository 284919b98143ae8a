import type { TokenCredential } from '@azure/identity';
import type { KeyVaultSecret, SecretClient, SecretClientOptions } from '@azure/keyvault-secrets';
import { lazy } from '../lazy';
import {
  CertificateError,
  type CertificateLocation,
  type CertificateSource,
  type ClientCertificate,
  parseClientCertificate,
} from './certificate';

export interface KeyVaultSourceOptions {
  vaultUrl: string;
  /** The Key Vault certificate's name: its secret of the same name holds the certificate and key. */
  name: string;
  /** How often `current()` looks for a new version. */
  refreshMinutes: number;
  /** Default: DefaultAzureCredential (managed identity in Azure; AZURE_CLIENT_ID picks a user-assigned one). */
  credential?: TokenCredential;
  /** E.g. `tlsOptions` and `disableChallengeResourceVerification` for a local fake. */
  clientOptions?: SecretClientOptions;
  now?: () => Date;
  /** Told of rotations and of checks that failed while the cached certificate stays in use. */
  log?: (message: string) => void;
}

/** After a failed Key Vault call, the next look comes this soon (not a whole refresh interval later). */
const RETRY_AFTER_ERROR_MS = 60_000;

const CONTENT_TYPES: Record<string, 'pem' | 'pkcs12'> = {
  'application/x-pkcs12': 'pkcs12',
  'application/x-pem-file': 'pem',
};

/**
 * FPX_CERT_KEYVAULT_URL + FPX_CERT_NAME: the certificate's secret (PFX or PEM, as Key Vault stores
 * certificates), cached and checked for a new version every `refreshMinutes` and on `refresh()`.
 * Once a certificate is loaded, a failed check keeps it in use (and is logged): FPX calls go on.
 */
export class KeyVaultCertificateSource implements CertificateSource {
  readonly description: string;
  readonly location: CertificateLocation;
  private readonly client: SecretClient;
  private readonly refreshMs: number;
  private readonly now: () => Date;
  private readonly log: (message: string) => void;
  private cached?: ClientCertificate;
  /** Why there is no certificate yet: repeated to callers until the next look, so Key Vault is not asked per call. */
  private failure?: unknown;
  private nextCheckAt = 0;
  private inflight?: Promise<ClientCertificate>;

  constructor(private readonly options: KeyVaultSourceOptions) {
    this.description = `Key Vault certificate ${options.name} in ${options.vaultUrl}`;
    this.location = { kind: 'keyVault', vaultUrl: options.vaultUrl, name: options.name };
    this.refreshMs = options.refreshMinutes * 60_000;
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? ((message) => console.warn(message));
    const credential =
      options.credential ??
      new (lazy.identity().DefaultAzureCredential)({
        managedIdentityClientId: process.env.AZURE_CLIENT_ID || undefined,
      });
    this.client = new (lazy.keyVaultSecrets().SecretClient)(
      options.vaultUrl,
      credential,
      options.clientOptions,
    );
  }

  async current(): Promise<ClientCertificate> {
    if (this.now().getTime() < this.nextCheckAt) {
      if (this.cached) return this.cached;
      if (this.failure) throw this.failure;
    }
    return this.check('refresh interval');
  }

  refresh(reason: string): Promise<ClientCertificate> {
    return this.check(reason);
  }

  /** One Key Vault call at a time: concurrent callers share it. */
  private check(reason: string): Promise<ClientCertificate> {
    this.inflight ??= this.load(reason).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(reason: string): Promise<ClientCertificate> {
    const startedAt = this.now().getTime();
    let secret: KeyVaultSecret;
    try {
      secret = await this.client.getSecret(this.options.name);
    } catch (error) {
      this.nextCheckAt = startedAt + Math.min(RETRY_AFTER_ERROR_MS, this.refreshMs);
      return this.keepCached(keyVaultError(this.description, error));
    }
    // An unusable version is looked at again after the interval (a certificate not valid yet becomes valid);
    // without any certificate, sooner.
    this.nextCheckAt =
      startedAt + (this.cached ? this.refreshMs : Math.min(RETRY_AFTER_ERROR_MS, this.refreshMs));
    const version = secret.properties.version;
    if (this.cached && version && this.cached.version === version) return this.cached;
    let certificate: ClientCertificate;
    try {
      certificate = certificateFromSecret(secret, this.description, this.now());
    } catch (error) {
      return this.keepCached(error);
    }
    if (this.cached) {
      this.log(
        `${this.description}: switched to version ${version} (thumbprint ${certificate.thumbprint}, expires ${certificate.notAfter.toISOString()}) after ${reason}`,
      );
    }
    this.cached = certificate;
    this.failure = undefined;
    this.nextCheckAt = startedAt + this.refreshMs;
    return certificate;
  }

  private keepCached(error: unknown): ClientCertificate {
    if (!this.cached) {
      this.failure = error;
      throw error;
    }
    this.log(`${(error as Error).message}; still using version ${this.cached.version}`);
    return this.cached;
  }
}

/** A Key Vault certificate's secret as Key Vault stores it: base64 PFX without password, or PEM. */
export function certificateFromSecret(
  secret: KeyVaultSecret,
  description: string,
  now = new Date(),
): ClientCertificate {
  const version = secret.properties.version;
  const label = version ? `${description} (version ${version})` : description;
  const contentType = secret.properties.contentType?.split(';')[0]?.trim().toLowerCase();
  const format = contentType ? CONTENT_TYPES[contentType] : undefined;
  if (!format) {
    throw new CertificateError(
      `${label}: content type ${contentType ? `"${contentType}"` : '(none)'} is not a certificate; expected application/x-pkcs12 or application/x-pem-file (import the certificate as a Key Vault certificate, not a plain secret)`,
    );
  }
  if (!secret.value) throw new CertificateError(`${label}: the secret has no value`);
  const data = format === 'pkcs12' ? Buffer.from(secret.value, 'base64') : secret.value;
  return { ...parseClientCertificate(data, label, { format, now }), version };
}

/** The SDK's error without anything from the request (tokens) or the response body beyond its code. */
function keyVaultError(description: string, error: unknown): CertificateError {
  const e = error as { statusCode?: number; code?: string; name?: string };
  if (e?.statusCode === 404) return new CertificateError(`${description}: not found in the vault (404)`);
  if (e?.statusCode === 401 || e?.statusCode === 403) {
    return new CertificateError(
      `${description}: access denied (${e.statusCode}${e.code ? ` ${e.code}` : ''}); the app's identity needs the "Key Vault Secrets User" role`,
    );
  }
  if (e?.statusCode) {
    return new CertificateError(
      `${description}: Key Vault answered ${e.statusCode}${e.code ? ` ${e.code}` : ''}`,
    );
  }
  if (e?.name === 'CredentialUnavailableError' || e?.name === 'AuthenticationError') {
    return new CertificateError(`${description}: no Azure identity to sign in with (${e.name})`);
  }
  return new CertificateError(
    `${description}: Key Vault cannot be reached (${e?.code ?? e?.name ?? 'error'})`,
  );
}
