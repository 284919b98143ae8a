import { TableClient, TableServiceClient, type TableServiceClientOptions } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import { QueueClient, QueueServiceClient, type StoragePipelineOptions } from '@azure/storage-queue';
import { lazy } from '../lazy';
import { isInsecureEndpoint, type StorageSettings } from './settings';

export { isConflict, isNotFound, isPreconditionFailed } from './errors';
export {
  decodeMessageText,
  ensureQueueOnce,
  parseJsonMessage,
  queueDepth,
  sendJsonMessage,
  sendTextMessage,
} from './queues';
export {
  connectionStringParts,
  DEVELOPMENT_STORAGE,
  isInsecureEndpoint,
  parseStorageSettings,
  STORAGE_SETTING,
  type StorageSettings,
  type StorageSettingsProblem,
  type StorageSettingsResult,
} from './settings';
export {
  deleteEntities,
  deleteEntityIfUnchanged,
  ensureTable,
  ensureTableOnce,
  getEntityOrUndefined,
  listEntitiesOrNone,
} from './tables';

/**
 * Table and queue clients for the app's storage (`AzureWebJobsStorage`), in either form the Functions host
 * accepts: a connection string (Azurite locally) or identity-based settings (managed identity in Azure,
 * where shared keys are disabled). Every caller builds its clients through `createStorage(config.storage)`.
 */
export interface StorageClients {
  readonly settings: StorageSettings;
  readonly tableService: TableServiceClient;
  readonly queueService: QueueServiceClient;
  /** The token credential of the identity form (one per process, so tokens are cached once). */
  readonly credential?: TokenCredential;
  /** A client for one table (cached per name unless options are given). The table is not created: see `ensureTableOnce`. */
  table(name: string, options?: TableServiceClientOptions): TableClient;
  /** A client for one queue (cached per name unless options are given). The queue is not created. */
  queue(name: string, options?: StoragePipelineOptions): QueueClient;
}

export interface StorageClientOptions {
  /** Identity form: use this credential instead of the one the settings describe (tests). */
  credential?: TokenCredential;
  /** Options for every table client (e.g. `httpClient`, `retryOptions`). */
  tableOptions?: TableServiceClientOptions;
  /** Options for every queue client unless `queue(name, options)` passes its own. */
  queueOptions?: StoragePipelineOptions;
}

/** The credential identity-based settings describe, as the Functions host builds it for its own use. */
export function storageCredential(settings: Extract<StorageSettings, { kind: 'identity' }>): TokenCredential {
  if (settings.credential === 'managedidentity') {
    return settings.clientId
      ? new (lazy.identity().ManagedIdentityCredential)({ clientId: settings.clientId })
      : new (lazy.identity().ManagedIdentityCredential)();
  }
  return new (lazy.identity().DefaultAzureCredential)(
    settings.clientId ? { managedIdentityClientId: settings.clientId } : undefined,
  );
}

export function createStorage(settings: StorageSettings, options: StorageClientOptions = {}): StorageClients {
  const tables = new Map<string, TableClient>();
  const queues = new Map<string, QueueClient>();
  const cached = <T>(cache: Map<string, T>, name: string, create: () => T): T => {
    let client = cache.get(name);
    if (!client) {
      client = create();
      cache.set(name, client);
    }
    return client;
  };

  if (settings.kind === 'connectionString') {
    const connection = settings.connectionString;
    const tableOptions = { ...options.tableOptions, allowInsecureConnection: isInsecureEndpoint(connection) };
    return {
      settings,
      tableService: TableServiceClient.fromConnectionString(connection, tableOptions),
      queueService: QueueServiceClient.fromConnectionString(connection, options.queueOptions),
      table: (name, own) =>
        own
          ? TableClient.fromConnectionString(connection, name, { ...tableOptions, ...own })
          : cached(tables, name, () => TableClient.fromConnectionString(connection, name, tableOptions)),
      queue: (name, queueOptions) =>
        queueOptions
          ? new QueueClient(connection, name, queueOptions)
          : cached(queues, name, () => new QueueClient(connection, name, options.queueOptions)),
    };
  }

  const credential = options.credential ?? storageCredential(settings);
  const { tableServiceUrl, queueServiceUrl } = settings;
  const queueUrl = (name: string) => `${queueServiceUrl}/${encodeURIComponent(name)}`;
  return {
    settings,
    credential,
    tableService: new TableServiceClient(tableServiceUrl, credential, options.tableOptions),
    queueService: new QueueServiceClient(queueServiceUrl, credential, options.queueOptions),
    table: (name, own) =>
      own
        ? new TableClient(tableServiceUrl, name, credential, { ...options.tableOptions, ...own })
        : cached(
            tables,
            name,
            () => new TableClient(tableServiceUrl, name, credential, options.tableOptions),
          ),
    queue: (name, queueOptions) =>
      queueOptions
        ? new QueueClient(queueUrl(name), credential, queueOptions)
        : cached(queues, name, () => new QueueClient(queueUrl(name), credential, options.queueOptions)),
  };
}

/** A table client from a connection string (Azurite locally, tests). Prefer `createStorage(…).table()`. */
export function tableClient(connection: string, table: string): TableClient {
  return TableClient.fromConnectionString(connection, table, {
    allowInsecureConnection: isInsecureEndpoint(connection),
  });
}

/** A queue client from a connection string (the local host, tests). Prefer `createStorage(…).queue()`. */
export function queueClient(
  connection: string,
  queue: string,
  options?: StoragePipelineOptions,
): QueueClient {
  return new QueueClient(connection, queue, options);
}
