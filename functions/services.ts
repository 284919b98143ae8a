import type { TableClient, TableServiceClient } from '@azure/data-tables';
import type { QueueServiceClient } from '@azure/storage-queue';
import { type AlertSender, type AlertSenderOverrides, createAlertSender } from '../lib/alerts';
import { type CertificateSource, createCertificateSource, type KeyVaultOverrides } from '../lib/cert';
import { type Clock, systemClock } from '../lib/clock';
import type { Config } from '../lib/config';
import { createFpxClient, type FpxClient } from '../lib/fpx';
import { RATE_BUDGET_TABLE, SharedRateBudget, TableBudgetStore } from '../lib/rate-budget';
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
  /** The one clock: the rate budget, the FPX transport, Key Vault refreshes and CRM deliveries read it. */
  clock: Clock;
}

/** What tests swap in to reach local fakes of Key Vault and ACS Email; production passes nothing. */
export interface ServiceOverrides {
  keyVault?: KeyVaultOverrides;
  alerts?: AlertSenderOverrides;
  clock?: Clock;
}

export function buildServices(config: Config, overrides: ServiceOverrides = {}): Services {
  const clock = overrides.clock ?? systemClock;
  const certificates = createCertificateSource(config.fpx.certificate, { clock, ...overrides.keyVault });
  const storage = createStorage(config.storage);
  return {
    config,
    certificates,
    alerts: createAlertSender(config.alerts, overrides.alerts),
    fpx: createFpxClient(config.fpx, certificates, { limiter: sharedBudget(config, storage, clock), clock }),
    storage,
    tableService: storage.tableService,
    queueService: storage.queueService,
    table: (name) => storage.table(name),
    clock,
  };
}

/**
 * The deployment's one FPX budget, kept in the app's own storage account. Its table client gives up fast
 * (one retry): while storage is down the budget falls back to this instance's share at once.
 */
function sharedBudget(config: Config, storage: StorageClients, clock: Clock): SharedRateBudget {
  const table = storage.table(RATE_BUDGET_TABLE, { retryOptions: { maxRetries: 1, retryDelayInMs: 200 } });
  return new SharedRateBudget(config.fpx.rateLimitPerMinute, new TableBudgetStore(table), {
    fallbackPerMinute: Math.max(1, Math.floor(config.fpx.rateLimitPerMinute / config.fpx.maxInstances)),
    clock,
  });
}
