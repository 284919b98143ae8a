/**
 * What GET /api/ops/status answers and the page shows: plain JSON, the same facts in both (the page is
 * rendered from this object, on the server first and then in the browser on each refresh).
 */

import type { SyncRun } from '../sync/sync-state';

/** One run of FpxSyncRuns as the page charts it. */
export type SyncRunPoint = Omit<SyncRun, 'stream' | 'pages' | 'tenantsFailed'>;

/**
 * A stream as the page shows it: its last run's counts (`durationMs` is the last finished run's duration;
 * while running, the time since it started) and its state.
 */
export interface StreamStatus
  extends Pick<SyncRun, 'durationMs' | 'seen' | 'created' | 'changed' | 'removed' | 'apiCalls'> {
  /** FpxSyncState's RowKey: `referrals`, `tenants`, `details`, `referenceData`. */
  stream: string;
  title: string;
  /** `never` before its first run; `running` while a run has started and not recorded its end. */
  state: 'never' | 'running' | 'succeeded' | 'failed' | 'partial';
  /** Running longer than a function may: its instance probably stopped without recording an end. */
  stale: boolean;
  lastStartedAt: string;
  /** When the last run ended (success or not); '' when unknown. */
  lastEndedAt: string;
  lastCompletedAt: string;
  /** Outcome of the last finished run (while running: the one before). */
  lastStatus: string;
  lastError: string;
  /** A running listing: pages read (earlier parts included) of those FPX's count implies. */
  progress?: {
    pagesRead: number;
    /** Estimated from FPX's count and the page size seen; absent when FPX sent no count. */
    expectedPages?: number;
    items: number;
    expectedCount?: number;
    at: string;
  };
  /** A listing too long for one invocation goes on in the next: where it stands. */
  continuing?: { nextPage: number; parts: number; itemsBefore: number; listingStartedAt: string };
  /** Referrals and tenants with CRM_EVENTS_URL set: the CRM events in the outbox (lib/events' sweep counts them). */
  events?: { sent: number; pending: number; failed: number; at: string };
  /** Per-tenant details only. */
  tenants?: { enqueued: number; done: number; succeeded: number; failed: number };
  /** Newest first, at most 20, from FpxSyncRuns. */
  runs: SyncRunPoint[];
}

export type DeliveryStatusName =
  | 'queued'
  | 'processing'
  | 'delivered'
  | 'rejected'
  | 'failed'
  | 'superseded'
  | 'ignored';

export interface AttentionDelivery {
  deliveryId: string;
  /** `queued` here means queued (or processing) for longer than `longQueuedMinutes`. */
  status: DeliveryStatusName;
  op: string;
  tenantId: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  nextAttemptAt: string;
  lastError: string;
  /** Retry is offered for failed and long-queued deliveries (a rejected one would be rejected again). */
  canRetry: boolean;
}

export interface DeliveriesStatus {
  /** By creation time; every status, zeros included. */
  last24h: Record<DeliveryStatusName, number>;
  last7d: Record<DeliveryStatusName, number>;
  longQueuedMinutes: number;
  /** Failed, rejected and long-queued deliveries, newest first, at most `shownPerKind` of each kind. */
  attention: AttentionDelivery[];
  /** How many of each kind there are in all (more than shown when over the limit). */
  attentionTotals: { failed: number; rejected: number; queued: number };
  shownPerKind: number;
  error?: string;
}

export interface QueueStatus {
  name: string;
  /** Approximate, as Azure Storage reports it; -1 when it could not be read. */
  depth: number;
  poison: boolean;
  /** For a poison queue: where Requeue moves its messages. */
  requeueTo?: string;
  error?: string;
}

export interface CertificateStatus {
  ok: boolean;
  subject: string;
  thumbprint: string;
  notAfter: string;
  daysLeft: number;
  source:
    | { kind: 'keyVault'; vault: string; name: string }
    | { kind: 'file'; path: string }
    | { kind: 'unknown' };
  /** Expiry alerts recorded in FpxCertAlerts for this certificate. */
  alerts: { key: string; status: string; sentAt: string; transport: string }[];
  error?: string;
}

export interface FpxStatus {
  reachable: boolean;
  checkedAt: string;
  error?: string;
  /** Figures of this instance only: every instance has its own counters. */
  scope: 'this instance';
  /** The deployment's budget (FPX_RATE_LIMIT_PER_MINUTE), shared by all instances. */
  budgetPerMinute: number;
  callsLastMinute: number;
  throttledLastHour: number;
  /** How much of the window this instance has been counting (less than the window just after it started). */
  countedSeconds: { minute: number; hour: number };
  /** Calls waiting for a slot now, and how long FPX's last 429 still holds them. */
  waiting: number;
  pausedForMs: number;
  storageReachable: boolean;
}

export interface OpsStatus {
  generatedAt: string;
  streams: StreamStatus[];
  deliveries: DeliveriesStatus;
  queues: QueueStatus[];
  certificate: CertificateStatus;
  fpx: FpxStatus;
}
