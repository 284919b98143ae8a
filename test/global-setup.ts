import type { TestProject } from 'vitest/node';
import { type AzuriteInstance, startAzurite } from '../dev/azurite';

/**
 * Storage accounts of their own on the run's one Azurite, for the suites whose host polls the contract's
 * queues (`crm-deliveries`, `fpx-tenant-details`) or that count what is in them: an account is a namespace of
 * its own (tables and queues), so no other suite's host takes their messages, and no second Azurite starts.
 */
export type OwnAccount = 'opspage' | 'crmhost' | 'details' | 'health' | 'start';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The development account: suites keep apart by table and queue names. */
    storageConnection: string;
    /** A connection string per account of its own. */
    storageAccounts: Record<OwnAccount, string>;
  }
}

// Azurite's well-known development account and key (public, documented by Microsoft; not a secret). Every
// account here uses that key.
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const OWN_ACCOUNTS: Record<OwnAccount, true> = {
  opspage: true,
  crmhost: true,
  details: true,
  health: true,
  start: true,
};

function connectionFor(account: string, ports: AzuriteInstance['ports']): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${account}`,
    `AccountKey=${DEV_KEY}`,
    `BlobEndpoint=http://127.0.0.1:${ports.blob}/${account}`,
    `QueueEndpoint=http://127.0.0.1:${ports.queue}/${account}`,
    `TableEndpoint=http://127.0.0.1:${ports.table}/${account}`,
  ].join(';');
}

/**
 * The run's Azurite, shared by the projects that list this file (each runs its global setup; all in the
 * main process): started by the first, stopped by the last teardown.
 */
interface Shared {
  azurite: Promise<AzuriteInstance>;
  users: number;
}
const SHARED = Symbol.for('fpx-crm-connector.test.azurite');
const holder = globalThis as { [SHARED]?: Shared };

/** One in-memory Azurite for the whole run, with the development account and the accounts of their own. */
export async function setup(project: TestProject) {
  holder[SHARED] ??= { azurite: startWithAccounts(), users: 0 };
  const shared = holder[SHARED];
  shared.users++;
  const azurite = await shared.azurite;
  const { ports } = azurite;
  project.provide('storageConnection', azurite.connectionString);
  project.provide('storageAccounts', {
    opspage: connectionFor('opspage', ports),
    crmhost: connectionFor('crmhost', ports),
    details: connectionFor('details', ports),
    health: connectionFor('health', ports),
    start: connectionFor('start', ports),
  });
}

export async function teardown() {
  const shared = holder[SHARED];
  if (!shared || --shared.users > 0) return;
  holder[SHARED] = undefined;
  await (await shared.azurite).stop();
}

async function startWithAccounts(): Promise<AzuriteInstance> {
  const own = Object.keys(OWN_ACCOUNTS);
  // Azurite reads its accounts from its environment (then the development account must be listed too).
  const before = process.env.AZURITE_ACCOUNTS;
  process.env.AZURITE_ACCOUNTS = [DEV_ACCOUNT, ...own].map((a) => `${a}:${DEV_KEY}`).join(';');
  try {
    return await startAzurite();
  } finally {
    if (before === undefined) delete process.env.AZURITE_ACCOUNTS;
    else process.env.AZURITE_ACCOUNTS = before;
  }
}
