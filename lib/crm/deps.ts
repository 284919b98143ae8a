import type { TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import type { AlertSender } from '../alerts';
import { type Clock, systemClock } from '../clock';
import type { Config } from '../config';
import { ContactLinks, LINKS_TABLE } from '../dataverse/links';
import type { FpxClient } from '../fpx';
import { DELIVERY_POISON_QUEUE, DELIVERY_QUEUE, DeliveryQueue } from './delivery-queue';
import { DELIVERIES_TABLE, DeliveryStore } from './delivery-store';
import type { CrmOperation } from './payloads';
import { PendingWrites } from './pending-writes';
import { webhookKeys } from './signature';

export interface DeliveryPolicy {
  /** FPX calls per delivery in all, the first (HTTP) one included (CRM_DELIVERY_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** First retry delay; doubles per attempt up to an hour (CRM_DELIVERY_BACKOFF_SECONDS). */
  backoffSeconds: number;
  /** How long an attempt holds a delivery; a crashed one is taken over after it. */
  leaseMs: number;
  /** An attempt is abandoned after this (well inside the lease). */
  attemptTimeoutMs: number;
  /** A webhook is queued at once rather than wait longer than this for an FPX call slot. */
  httpMaxWaitMs: number;
  /** Clock skew allowed between us and FPX when looking for a create whose outcome was unknown. */
  reconcileSkewMs: number;
  /** A queued delivery this far past its next attempt lost its message: recovery queues it again. */
  queuedGraceMs: number;
}

export const DEFAULT_POLICY: Omit<DeliveryPolicy, 'maxAttempts' | 'backoffSeconds'> = {
  leaseMs: 2 * 60_000,
  attemptTimeoutMs: 90_000,
  httpMaxWaitMs: 10_000,
  reconcileSkewMs: 2 * 60_000,
  queuedGraceMs: 10 * 60_000,
};

/** What the webhook functions, the status endpoint and the queue worker share. */
export interface CrmDeps {
  fpx: FpxClient;
  store: DeliveryStore;
  queue: DeliveryQueue;
  alerts: AlertSender;
  /** Decoded CRM_WEBHOOK_SECRET keys (several during rotation). */
  keys: Buffer[];
  /** Final records being written after the answer (one per process). */
  pending: PendingWrites;
  policy: DeliveryPolicy;
  now: () => number;
  /** A contact created from Dataverse: its link to the FPX contact is recorded (lib/dataverse). */
  onContactCreated?: (
    operation: Extract<CrmOperation, { op: 'createContact' }>,
    result: unknown,
  ) => Promise<void>;
}

/** The part of the composition root's services the CRM functions use. */
export interface CrmServices {
  config: Pick<Config, 'crm'>;
  fpx: FpxClient;
  alerts: AlertSender;
  table(name: string): TableClient;
  storage: { queue(name: string): QueueClient };
  /** The process's one clock (leases, backoff, retention); the system's when not given. */
  clock?: Clock;
}

const built = new WeakMap<CrmServices, CrmDeps>();

/** One set per process (per services object), so the table and queues are created once. */
export function crmDeps(services: CrmServices): CrmDeps {
  let deps = built.get(services);
  if (!deps) {
    const { crm } = services.config;
    deps = {
      fpx: services.fpx,
      store: new DeliveryStore(services.table(DELIVERIES_TABLE)),
      queue: new DeliveryQueue(
        services.storage.queue(DELIVERY_QUEUE),
        services.storage.queue(DELIVERY_POISON_QUEUE),
      ),
      alerts: services.alerts,
      keys: webhookKeys(crm.webhookSecrets),
      pending: new PendingWrites(),
      policy: {
        ...DEFAULT_POLICY,
        maxAttempts: crm.deliveryMaxAttempts,
        backoffSeconds: crm.deliveryBackoffSeconds,
      },
      now: () => (services.clock ?? systemClock).now(),
    };
    // A contact created from Dataverse is linked to its FPX contact (DataverseLinks), whichever path delivers it.
    const now = deps.now;
    deps.onContactCreated = new ContactLinks(services.table(LINKS_TABLE)).onContactCreated(now);
    built.set(services, deps);
  }
  return deps;
}
