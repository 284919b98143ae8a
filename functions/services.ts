import type { TableClient, TableServiceClient } from '@azure/data-tables';
import type { QueueServiceClient } from '@azure/storage-queue';
import { type AlertSender, type AlertSenderOverrides, createAlertSender } from '../lib/alerts';
import { type CertificateSource, createCertificateSource, type KeyVaultOverrides } from '../lib/cert';
import type { Config } from '../lib/config';
import { createFpxClient, type FpxClient } from '../lib/fpx';
import { createStorage, type StorageClients } from '../lib/storage';

/** The clients every function shares: built once per process by the composition root. */
export interface Services {
  config: Config;
  certificates: CertificateSource;
  /** Operator alerts (certificate expiry): ACS Email, SMTP or the log. */
  alerts: AlertSender;
  fpx: FpxClient;
  /** Table and queue clients from AzureWebJobsStorage (connection string or managed identity). */
  storage: StorageClients;
  tableService: TableServiceClient;
  queueService: QueueServiceClient;
  /** One TableClient per table name, shared by every function of the process. */
  table(name: string): TableClient;
}

/** What tests swap in to reach local fakes of Key Vault and ACS Email; production passes nothing. */
export interface ServiceOverrides {
  keyVault?: KeyVaultOverrides;
  alerts?: AlertSenderOverrides;
}

export function buildServices(config: Config, overrides: ServiceOverrides = {}): Services {
  const certificates = createCertificateSource(config.fpx.certificate, overrides.keyVault);
  const storage = createStorage(config.storage);
  return {
    config,
    certificates,
    alerts: createAlertSender(config.alerts, overrides.alerts),
    fpx: createFpxClient(config.fpx, certificates),
    storage,
    tableService: storage.tableService,
    queueService: storage.queueService,
    table: (name) => storage.table(name),
  };
}
