import type { TokenCredential } from '@azure/identity';
import type { KeyVaultSecret, SecretClient, SecretClientOptions } from '@azure/keyvault-secrets';
import { type Clock, systemClock } from '../clock';
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
  /** Default: DefaultAzureCredential (managed identity in Azure; `identityClientId` picks a user-assigned one). */
  credential?: TokenCredential;
  /** The default credential's user-assigned managed identity (AZURE_CLIENT_ID); unset: system-assigned. */
  identityClientId?: string;
  /** E.g. `tlsOptions` and `disableChallengeResourceVerification` for a local fake. */
  clientOptions?: SecretClientOptions;
  /** Time for the refresh interval, certificate validity and the Key Vault timeout (tests move it). */
  clock?: Clock;
  /** How long one look in Key Vault may take, the SDK's retries included; default 10 s. */
  timeoutMs?: number;
  /** Told of rotations and of checks that failed while the cached certificate stays in use. */
  log?: (message: string) => void;
}

/** After a failed Key Vault call, the next look comes this soon (not a whole refresh interval later). */
const RETRY_AFTER_ERROR_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;

const CONTENT_TYPES: Record<string, 'pem' | 'pkcs12'> = {
  'application/x-pkcs12': 'pkcs12',
  'application/x-pem-file': 'pem',
};

/**
 * FPX_CERT_KEYVAULT_URL + FPX_CERT_NAME: the certificate's secret (PFX or PEM, as Key Vault stores
 * certificates), cached and checked for a new version every `refreshMinutes` and on `refresh()`.
 * Once a certificate is loaded, Key Vault never holds up an FPX call: a due check runs in the background
 * while `current()` answers with the certificate in use, and a failed or slow check keeps it (logged).
 * Without a certificate yet, each call looks again, and gives up after the timeout with a clear error.
 */
export class KeyVaultCertificateSource implements CertificateSource {
  readonly description: string;
  readonly location: CertificateLocation;
  private readonly client: SecretClient;
  private readonly refreshMs: number;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly log: (message: string) => void;
  private cached?: ClientCertificate;
  private nextCheckAt = 0;
  private inflight?: Promise<ClientCertificate>;

  constructor(private readonly options: KeyVaultSourceOptions) {
    this.description = `Key Vault certificate ${options.name} in ${options.vaultUrl}`;
    this.location = { kind: 'keyVault', vaultUrl: options.vaultUrl, name: options.name };
    this.refreshMs = options.refreshMinutes * 60_000;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? ((message) => console.warn(message));
    const credential =
      options.credential ??
      new (lazy.identity().DefaultAzureCredential)({
        managedIdentityClientId: options.identityClientId || undefined,
      });
    this.client = new (lazy.keyVaultSecrets().SecretClient)(
      options.vaultUrl,
      credential,
      options.clientOptions,
    );
  }

  async current(): Promise<ClientCertificate> {
    if (!this.cached) return this.check('first load');
    if (this.clock.now() >= this.nextCheckAt) {
      // In the background: the calls after it get the new version; a failed look is logged by load().
      this.check('refresh interval').catch(() => undefined);
    }
    return this.cached;
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
    const startedAt = this.clock.now();
    let secret: KeyVaultSecret;
    try {
      secret = await this.getSecret();
    } catch (error) {
      this.nextCheckAt = startedAt + Math.min(RETRY_AFTER_ERROR_MS, this.refreshMs);
      return this.keepCached(error);
    }
    // An unusable version is looked at again after the interval (a certificate not valid yet becomes valid).
    this.nextCheckAt = startedAt + this.refreshMs;
    const version = secret.properties.version;
    if (this.cached && version && this.cached.version === version) return this.cached;
    let certificate: ClientCertificate;
    try {
      certificate = certificateFromSecret(secret, this.description, new Date(this.clock.now()));
    } catch (error) {
      return this.keepCached(error);
    }
    if (this.cached) {
      this.log(
        `${this.description}: switched to version ${version} (thumbprint ${certificate.thumbprint}, expires ${certificate.notAfter.toISOString()}) after ${reason}`,
      );
    }
    this.cached = certificate;
    return certificate;
  }

  /** The latest version, or a CertificateError once the timeout passes (the request is abandoned). */
  private async getSecret(): Promise<KeyVaultSecret> {
    const controller = new AbortController();
    const timedOut = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () =>
        reject(
          new CertificateError(
            `${this.description}: Key Vault did not answer within ${this.timeoutMs / 1000} s`,
          ),
        ),
      );
    });
    const cancel = this.clock.setTimer(() => controller.abort(), this.timeoutMs);
    try {
      return await Promise.race([
        this.client.getSecret(this.options.name, { abortSignal: controller.signal }).catch((error) => {
          throw controller.signal.aborted ? error : keyVaultError(this.description, error);
        }),
        timedOut,
      ]);
    } finally {
      cancel();
    }
  }

  private keepCached(error: unknown): ClientCertificate {
    if (!this.cached) throw error;
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
