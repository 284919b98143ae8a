import { readFile, stat } from 'node:fs/promises';
import type { CertificateLocation, CertificateSource, ClientCertificate } from './certificate';
import { CertificateError, parseClientCertificate } from './certificate';

/** FPX_CERT_PATH: a PEM (certificate and key) or PFX file (FPX_CERT_PASSWORD), re-read when it changes. */
export class FileCertificateSource implements CertificateSource {
  readonly description: string;
  readonly location: CertificateLocation;
  private cached?: { certificate: ClientCertificate; mtimeMs: number };

  constructor(
    private readonly path: string,
    private readonly password?: string,
  ) {
    this.description = `certificate file ${path}`;
    this.location = { kind: 'file', path };
  }

  async current(): Promise<ClientCertificate> {
    return this.cached?.certificate ?? this.load();
  }

  async refresh(_reason: string): Promise<ClientCertificate> {
    const mtimeMs = await this.mtime();
    if (this.cached && this.cached.mtimeMs === mtimeMs) return this.cached.certificate;
    return this.load();
  }

  private async mtime(): Promise<number> {
    try {
      return (await stat(this.path)).mtimeMs;
    } catch {
      throw new CertificateError(`${this.description}: cannot be read`);
    }
  }

  private async load(): Promise<ClientCertificate> {
    const mtimeMs = await this.mtime();
    const data = await readFile(this.path);
    const certificate = parseClientCertificate(data, this.description, { password: this.password });
    this.cached = { certificate, mtimeMs };
    return certificate;
  }
}
