import { odata, type TableClient } from '@azure/data-tables';
import type { QueueClient } from '@azure/storage-queue';
import { CERT_ALERTS_TABLE, type CertificateSource, daysLeft, isExpired } from '../cert';
import { type CrmDeps, DELIVERY_POISON_QUEUE, DELIVERY_QUEUE } from '../crm';
import { EVENTS_POISON_QUEUE, EVENTS_QUEUE } from '../events';
import type { FpxClient } from '../fpx';
import { safeErrorMessage } from '../redact';
import { getEntityOrUndefined, isNotFound, listEntitiesOrNone, queueDepth } from '../storage';
import {
  DETAILS_RUNS_TABLE,
  DETAILS_STREAM,
  type DetailsRow,
  REFERENCE_DATA_STREAM,
  TABLES,
  TENANT_DETAILS_QUEUE,
} from '../sync';
import { readSyncRuns, SYNC_RUNS_TABLE, type SyncRun, type SyncStateRow } from '../sync/sync-state';
import type { CallMeter } from './call-meter';
import type {
  AttentionDelivery,
  CertificateStatus,
  DeliveriesStatus,
  DeliveryStatusName,
  FpxStatus,
  OpsStatus,
  QueueStatus,
  StreamStatus,
  SyncRunPoint,
} from './types';

/** The streams the page shows, in this order. */
export const STREAMS: readonly { stream: string; title: string }[] = [
  { stream: 'referrals', title: 'Referrals' },
  { stream: 'tenants', title: 'Tenants' },
  { stream: DETAILS_STREAM, title: 'Tenant details' },
  { stream: REFERENCE_DATA_STREAM, title: 'Reference data' },
];

/** The queues the page shows; a poison queue's Requeue moves its messages to the queue it names. */
export const QUEUES: readonly { name: string; requeueTo?: string }[] = [
  { name: TENANT_DETAILS_QUEUE },
  { name: `${TENANT_DETAILS_QUEUE}-poison`, requeueTo: TENANT_DETAILS_QUEUE },
  { name: DELIVERY_QUEUE },
  { name: DELIVERY_POISON_QUEUE, requeueTo: DELIVERY_QUEUE },
  // CRM events: a parked event is a record of a give-up (its outbox state says `failed`), not a message to replay.
  { name: EVENTS_QUEUE },
  { name: EVENTS_POISON_QUEUE },
];

/** The dead-letter queues an operator must look at (health details, the recovery timer's alerts). */
export const POISON_QUEUES: readonly string[] = QUEUES.map((q) => q.name).filter((name) =>
  name.endsWith('-poison'),
);

/** A delivery queued (or being attempted) longer than this since the webhook is listed with a Retry button. */
export const LONG_QUEUED_MINUTES = 30;
/** At most this many deliveries of each kind (failed, rejected, long-queued) are listed. */
export const SHOWN_PER_KIND = 50;
/** A run "running" longer than this has most likely lost its instance (the function timeout is 10 minutes). */
const STALE_RUN_MS = 30 * 60_000;
const RUNS_SHOWN = 20;
const MINUTE_MS = 60_000;
const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
const DELIVERY_STATUSES: readonly DeliveryStatusName[] = [
  'queued',
  'processing',
  'delivered',
  'rejected',
  'failed',
  'superseded',
  'ignored',
];

/** Everything the status reads, as the composition root's services provide it. */
export interface OpsDeps {
  table(name: string): TableClient;
  queue(name: string): QueueClient;
  certificates: CertificateSource;
  fpx: FpxClient;
  crm: CrmDeps;
  meter: CallMeter;
  /** The health checks' cached FPX probe (one probe per 30 s, shared with GET /api/health) and storage. */
  probe(): Promise<{ fpx: { ok: boolean; error?: string; checkedAt?: string }; storage: { ok: boolean } }>;
  now?: () => number;
}

/** Reads every fact of the page. Each part fails on its own: an unreadable part says why, the rest still show. */
export async function collectStatus(deps: OpsDeps): Promise<OpsStatus> {
  const now = deps.now?.() ?? Date.now();
  const [streams, deliveries, queues, certificate, fpx] = await Promise.all([
    streamStatuses(deps, now),
    deliveryStatus(deps.crm.store.table, now),
    queueStatuses(deps.queue),
    certificateStatus(deps, now),
    fpxStatus(deps),
  ]);
  return { generatedAt: new Date(now).toISOString(), streams, deliveries, queues, certificate, fpx };
}

async function streamStatuses(deps: OpsDeps, now: number): Promise<StreamStatus[]> {
  const state = deps.table(TABLES.syncState);
  const runs = deps.table(SYNC_RUNS_TABLE);
  return Promise.all(
    STREAMS.map(async ({ stream, title }) => {
      const [row, history] = await Promise.all([
        readRow(state, stream),
        readSyncRuns(runs, stream, RUNS_SHOWN).catch(() => [] as SyncRun[]),
      ]);
      const status =
        stream === DETAILS_STREAM
          ? await detailsStatus(deps, row as Partial<DetailsRow> | undefined, now)
          : listingStatus(row, now);
      return { stream, title, ...status, runs: history.map(toRunPoint) };
    }),
  );
}

function readRow(state: TableClient, stream: string): Promise<Record<string, unknown> | undefined> {
  return getEntityOrUndefined(state, 'sync', stream);
}

type StreamFacts = Omit<StreamStatus, 'stream' | 'title' | 'runs'>;

const text = (value: unknown) => (typeof value === 'string' ? value : '');
const num = (value: unknown) =>
  typeof value === 'number' && Number.isFinite(value) ? value : Number(value) || 0;

function baseFacts(row: Record<string, unknown>): StreamFacts {
  return {
    state: (text(row.lastStatus) || 'never') as StreamFacts['state'],
    stale: false,
    lastStartedAt: text(row.lastStartedAt),
    lastEndedAt: text(row.lastEndedAt),
    lastCompletedAt: text(row.lastCompletedAt),
    lastStatus: text(row.lastStatus),
    durationMs: num(row.durationMs),
    seen: num(row.seen),
    created: num(row.created),
    changed: num(row.changed),
    removed: num(row.removed),
    apiCalls: num(row.apiCalls),
    lastError: text(row.lastError),
  };
}

const NEVER: StreamFacts = {
  state: 'never',
  stale: false,
  lastStartedAt: '',
  lastEndedAt: '',
  lastCompletedAt: '',
  lastStatus: '',
  durationMs: 0,
  seen: 0,
  created: 0,
  changed: 0,
  removed: 0,
  apiCalls: 0,
  lastError: '',
};

/** `referrals`, `tenants`, `referenceData`: a run is going on when it started after the last end on record. */
function listingStatus(found: Record<string, unknown> | undefined, now: number): StreamFacts {
  if (!found) return NEVER;
  const row = found as SyncStateRow & Record<string, unknown>;
  const facts = baseFacts(row);
  const started = text(row.lastStartedAt);
  // Rows written before `lastEndedAt` existed: a success has `lastCompletedAt`; a failure cannot be told apart.
  const ended = text(row.lastEndedAt) || (row.lastStatus === 'failed' ? started : text(row.lastCompletedAt));
  if (started && started > ended) {
    facts.state = 'running';
    facts.durationMs = Math.max(0, now - Date.parse(started));
    facts.stale = facts.durationMs > STALE_RUN_MS;
    // Progress written during this run (an older run's figures are not this one's).
    const progressAt = text(row.progressAt);
    const current = progressAt >= started;
    const resumed = num(row.resumePage) > 1 && text(row.resumeListingStartedAt) !== '';
    const pages = current ? num(row.progressPages) : 0;
    const items = current ? num(row.progressItems) : 0;
    const expectedCount = current ? num(row.progressExpectedCount) : -1;
    const pageSize = pages > 0 ? items / pages : 0;
    facts.progress = {
      pagesRead: (resumed ? num(row.resumePage) - 1 : 0) + pages,
      items: (resumed ? num(row.resumeItems) : 0) + items,
      at: current ? progressAt : started,
      ...(expectedCount >= 0 ? { expectedCount } : {}),
      ...(expectedCount >= 0 && pageSize > 0
        ? { expectedPages: Math.max(1, Math.ceil(expectedCount / pageSize)) }
        : {}),
    };
  }
  if (num(row.resumePage) > 1 && text(row.resumeListingStartedAt)) {
    facts.continuing = {
      nextPage: num(row.resumePage),
      parts: num(row.resumeParts),
      itemsBefore: num(row.resumeItems),
      listingStartedAt: text(row.resumeListingStartedAt),
    };
  }
  if (text(row.eventsCountedAt)) {
    const [sent, pending, failed] = [num(row.eventsSent), num(row.eventsPending), num(row.eventsFailed)];
    facts.events = { sent, pending, failed, at: text(row.eventsCountedAt) };
  }
  return facts;
}

/** The fan-out: `running` until every tenant has an outcome; progress counts the outcomes recorded so far. */
async function detailsStatus(
  deps: OpsDeps,
  row: Partial<DetailsRow> | undefined,
  now: number,
): Promise<StreamFacts> {
  if (!row) return NEVER;
  const details = row;
  const facts = baseFacts(details as Record<string, unknown>);
  const enqueued = num(details.enqueued);
  let done = num(details.tenantsSucceeded) + num(details.tenantsFailed);
  if (details.lastStatus === 'running') {
    facts.durationMs = Math.max(0, now - Date.parse(text(details.lastStartedAt)));
    facts.stale = facts.durationMs > 6 * HOUR_MS;
    done = await countOutcomes(deps.table(DETAILS_RUNS_TABLE), text(details.runId));
  } else if (details.lastCompletedAt && details.lastStartedAt) {
    facts.durationMs = Math.max(0, Date.parse(details.lastCompletedAt) - Date.parse(details.lastStartedAt));
  }
  facts.tenants = {
    enqueued,
    done,
    succeeded: num(details.tenantsSucceeded),
    failed: num(details.tenantsFailed),
  };
  return facts;
}

/** Tenants of the fan-out with an outcome so far: keys only, one partition. */
async function countOutcomes(runs: TableClient, runId: string): Promise<number> {
  if (!runId) return 0;
  let count = 0;
  for await (const _ of listEntitiesOrNone(runs, {
    queryOptions: { filter: odata`PartitionKey eq ${runId}`, select: ['RowKey'] },
  })) {
    count++;
  }
  return count;
}

function toRunPoint(run: SyncRun): SyncRunPoint {
  return {
    startedAt: text(run.startedAt),
    endedAt: text(run.endedAt),
    status: text(run.status),
    error: text(run.error),
    durationMs: num(run.durationMs),
    seen: num(run.seen),
    created: num(run.created),
    changed: num(run.changed),
    removed: num(run.removed),
    apiCalls: num(run.apiCalls),
  };
}

function zeroCounts(): Record<DeliveryStatusName, number> {
  return Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Record<DeliveryStatusName, number>;
}

/**
 * CrmDeliveries: counts by status of the deliveries created in the last 24 hours and 7 days (one scan of
 * the delivery rows, three columns), and the failed, rejected and long-queued ones (a second, filtered scan).
 */
export async function deliveryStatus(table: TableClient, now: number): Promise<DeliveriesStatus> {
  const result: DeliveriesStatus = {
    last24h: zeroCounts(),
    last7d: zeroCounts(),
    longQueuedMinutes: LONG_QUEUED_MINUTES,
    attention: [],
    attentionTotals: { failed: 0, rejected: 0, queued: 0 },
    shownPerKind: SHOWN_PER_KIND,
  };
  const dayAgo = new Date(now - DAY_MS).toISOString();
  const weekAgo = new Date(now - 7 * DAY_MS).toISOString();
  const longAgo = new Date(now - LONG_QUEUED_MINUTES * MINUTE_MS).toISOString();
  try {
    const recent = table.listEntities<Record<string, unknown>>({
      queryOptions: {
        filter: odata`RowKey eq 'delivery' and createdAt ge ${weekAgo}`,
        select: ['status', 'createdAt'],
      },
    });
    for await (const row of recent) {
      const status = text(row.status) as DeliveryStatusName;
      if (!(status in result.last7d)) continue;
      result.last7d[status]++;
      if (text(row.createdAt) >= dayAgo) result.last24h[status]++;
    }
    const stuck = table.listEntities<Record<string, unknown>>({
      queryOptions: {
        filter: odata`RowKey eq 'delivery' and (status eq 'failed' or status eq 'rejected' or ((status eq 'queued' or status eq 'processing') and createdAt lt ${longAgo}))`,
        select: [
          'PartitionKey',
          'status',
          'op',
          'tenantId',
          'attempts',
          'createdAt',
          'updatedAt',
          'nextAttemptAt',
          'lastError',
        ],
      },
    });
    const found: AttentionDelivery[] = [];
    for await (const row of stuck) {
      const stored = text(row.status) as DeliveryStatusName;
      const status: DeliveryStatusName = stored === 'processing' ? 'queued' : stored;
      const kind = status as 'failed' | 'rejected' | 'queued';
      result.attentionTotals[kind]++;
      found.push({
        deliveryId: String(row.partitionKey),
        status,
        op: text(row.op),
        tenantId: text(row.tenantId),
        attempts: num(row.attempts),
        createdAt: text(row.createdAt),
        updatedAt: text(row.updatedAt),
        nextAttemptAt: text(row.nextAttemptAt),
        lastError: text(row.lastError).slice(0, 500),
        canRetry: status !== 'rejected',
      });
    }
    found.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
    const shown = { failed: 0, rejected: 0, queued: 0 };
    for (const delivery of found) {
      const kind = delivery.status as keyof typeof shown;
      if (shown[kind]++ < SHOWN_PER_KIND) result.attention.push(delivery);
    }
  } catch (error) {
    if (!isNotFound(error)) result.error = safeErrorMessage(error);
  }
  return result;
}

/**
 * Every queue the page shows, with its depth (-1 and the error when it cannot be read within 5 s). Also the
 * `queue.depth` gauge's source at each telemetry export.
 */
export async function queueStatuses(queue: OpsDeps['queue']): Promise<QueueStatus[]> {
  return Promise.all(
    QUEUES.map(async ({ name, requeueTo }) => {
      const status: QueueStatus = {
        name,
        depth: 0,
        poison: requeueTo !== undefined,
        ...(requeueTo ? { requeueTo } : {}),
      };
      try {
        // A queue that does not exist yet has never held a message.
        status.depth = await queueDepth(queue(name), { abortSignal: AbortSignal.timeout(5_000) });
      } catch (error) {
        status.depth = -1;
        status.error = safeErrorMessage(error);
      }
      return status;
    }),
  );
}

async function certificateStatus(deps: OpsDeps, now: number): Promise<CertificateStatus> {
  const location = deps.certificates.location;
  const source: CertificateStatus['source'] =
    location?.kind === 'keyVault'
      ? { kind: 'keyVault', vault: vaultName(location.vaultUrl), name: location.name }
      : location?.kind === 'file'
        ? { kind: 'file', path: location.path }
        : { kind: 'unknown' };
  try {
    const certificate = await deps.certificates.current();
    const at = new Date(now);
    return {
      ok: !isExpired(certificate.notAfter, at),
      subject: certificate.subject,
      thumbprint: certificate.thumbprint,
      notAfter: certificate.notAfter.toISOString(),
      daysLeft: daysLeft(certificate.notAfter, at),
      source,
      alerts: await certificateAlerts(deps.table(CERT_ALERTS_TABLE), certificate.thumbprint),
    };
  } catch (error) {
    return {
      ok: false,
      subject: '',
      thumbprint: '',
      notAfter: '',
      daysLeft: 0,
      source,
      alerts: [],
      error: safeErrorMessage(error),
    };
  }
}

/** `https://kv-name.vault.azure.net/` → `kv-name`. */
function vaultName(vaultUrl: string): string {
  try {
    return new URL(vaultUrl).hostname.split('.')[0] ?? vaultUrl;
  } catch {
    return vaultUrl;
  }
}

async function certificateAlerts(
  table: TableClient,
  thumbprint: string,
): Promise<CertificateStatus['alerts']> {
  const alerts: CertificateStatus['alerts'] = [];
  for await (const row of listEntitiesOrNone(table, {
    queryOptions: { filter: odata`PartitionKey eq ${thumbprint}` },
  })) {
    alerts.push({
      key: String(row.rowKey),
      status: text(row.status),
      sentAt: text(row.sentAt) || text(row.claimedAt),
      transport: text(row.transport),
    });
  }
  return alerts.sort((a, b) => (a.sentAt < b.sentAt ? 1 : -1));
}

async function fpxStatus(deps: OpsDeps): Promise<FpxStatus> {
  const limiter = deps.fpx.transport.limiter;
  const minute = deps.meter.window(MINUTE_MS);
  const hour = deps.meter.window(HOUR_MS);
  let reachable = false;
  let storageReachable = false;
  let checkedAt = '';
  let error: string | undefined;
  try {
    const checks = await deps.probe();
    reachable = checks.fpx.ok;
    storageReachable = checks.storage.ok;
    checkedAt = checks.fpx.checkedAt ?? '';
    error = checks.fpx.ok ? undefined : checks.fpx.error;
  } catch (probeError) {
    error = safeErrorMessage(probeError);
  }
  return {
    reachable,
    checkedAt,
    ...(error ? { error } : {}),
    scope: 'this instance',
    budgetPerMinute: limiter.perMinute,
    callsLastMinute: minute.calls,
    throttledLastHour: hour.throttled,
    countedSeconds: { minute: Math.round(minute.countedMs / 1000), hour: Math.round(hour.countedMs / 1000) },
    waiting: limiter.queued,
    pausedForMs: Math.round(limiter.pausedForMs),
    storageReachable,
  };
}
