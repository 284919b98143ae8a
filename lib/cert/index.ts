import type { CertificateSettings } from '../config';
import { CertificateError, type CertificateSource } from './certificate';
import { FileCertificateSource } from './file-source';

export * from './certificate';
export { FileCertificateSource } from './file-source';

/** The certificate source the settings ask for. */
export function createCertificateSource(settings: CertificateSettings): CertificateSource {
  if (settings.kind === 'file') return new FileCertificateSource(settings.path, settings.password);
  throw new CertificateError(
    `Key Vault certificate ${settings.name} in ${settings.vaultUrl}: the Key Vault source is not available yet; set FPX_CERT_PATH`,
  );
}
