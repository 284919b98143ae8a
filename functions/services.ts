import { TableServiceClient } from '@azure/data-tables';
import { QueueServiceClient } from '@azure/storage-queue';
import { type CertificateSource, createCertificateSource } from '../lib/cert';
import type { Config } from '../lib/config';
import { createFpxClient, type FpxClient } from '../lib/fpx';
import { isInsecureEndpoint } from '../lib/storage';

/** The clients every function shares: built once per process by the composition root. */
export interface Services {
  config: Config;
  certificates: CertificateSource;
  fpx: FpxClient;
  tableService: TableServiceClient;
  queueService: QueueServiceClient;
}

export function buildServices(config: Config): Services {
  const certificates = createCertificateSource(config.fpx.certificate);
  return {
    config,
    certificates,
    fpx: createFpxClient(config.fpx, certificates),
    tableService: TableServiceClient.fromConnectionString(config.storageConnection, {
      allowInsecureConnection: isInsecureEndpoint(config.storageConnection),
    }),
    queueService: QueueServiceClient.fromConnectionString(config.storageConnection),
  };
}
