import type { CertificateSettings } from '../config';
import type { CertificateSource } from './certificate';
import { FileCertificateSource } from './file-source';
import { KeyVaultCertificateSource, type KeyVaultSourceOptions } from './keyvault-source';

export * from './certificate';
export * from './expiry';
export * from './expiry-check';
export { expiryEmail } from './expiry-email';
export { FileCertificateSource } from './file-source';
export {
  certificateFromSecret,
  KeyVaultCertificateSource,
  type KeyVaultSourceOptions,
} from './keyvault-source';

/** What tests (and only tests) swap in for the Key Vault source: a credential, client options, a clock. */
export type KeyVaultOverrides = Omit<KeyVaultSourceOptions, 'vaultUrl' | 'name' | 'refreshMinutes'>;

/** The certificate source the settings ask for. */
export function createCertificateSource(
  settings: CertificateSettings,
  keyVault: KeyVaultOverrides = {},
): CertificateSource {
  if (settings.kind === 'file') return new FileCertificateSource(settings.path, settings.password);
  return new KeyVaultCertificateSource({
    vaultUrl: settings.vaultUrl,
    name: settings.name,
    refreshMinutes: settings.refreshMinutes,
    identityClientId: settings.identityClientId,
    ...keyVault,
  });
}
