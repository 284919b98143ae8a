import type { Sandbox } from './server';

/** The app settings that point the app at this sandbox over mutual TLS (its URL, client certificate and CA). */
export function sandboxSettings(sandbox: Pick<Sandbox, 'url' | 'certs'>) {
  return {
    FPX_BASE_URL: sandbox.url,
    FPX_CERT_PATH: sandbox.certs.client.pemPath,
    FPX_CA_PATH: sandbox.certs.ca.path,
  };
}
