import { odata, type TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import {
  deleteEntityIfUnchanged,
  ensureTableOnce,
  getEntityOrUndefined,
  isConflict,
  isPreconditionFailed,
} from '../storage';
import { fromChunks, toChunks } from './packed-json';
import type { CrmOperation, WebhookEndpoint } from './payloads';

/**
 * The `CrmDeliveries` table: one partition per delivery (PartitionKey = deliveryId, derived from the
 * webhook-id), so claiming a webhook-id is one atomic insert of the `delivery` row, and the payload and
 * FPX's answer can spill into more rows of the same partition, written in the same batch transaction.
 *
 * - `delivery`: the record below, plus up to `INLINE_CHUNKS` chunks of each blob (`payload_0`, `result_0`, …)
 * - `payload-001`, `payload-002`, … / `result-001`, …: further chunks (`part_0` … `part_10`), when large
 *
 * and one partition per updated contact or status record (`order:<target>`, row `order`): the signing time of
 * the newest update delivered to it, so an older update delivered late is `superseded`, not sent.
 *
 * Timestamps are ISO strings (they sort as text; '' = none). Nothing here holds a secret or a token.
 * Rows are kept `RETENTION_DAYS` after their last change (`expiresAt`); `purgeExpired` removes finished ones.
 */

export const DELIVERIES_TABLE = 'CrmDeliveries';
export const RETENTION_DAYS = 7;
const DELIVERY_ROW = 'delivery';
const ORDER_ROW = 'order';
const DAY_MS = 24 * 3600_000;
// Entity limit 1 MiB. Azurite counts the JSON request (binary as base64, 4/3), the service the bytes; we fit both.
const INLINE_CHUNKS = 4;
const CHUNKS_PER_ROW = 11;
const MAX_TEXT_CHARS = 8_000;

/** `ignored`: acknowledged and recorded, never sent (a Dataverse event FPX cannot take; the reason in lastError). */
export type StoredStatus =
  | 'processing'
  | 'queued'
  | 'delivered'
  | 'rejected'
  | 'failed'
  | 'superseded'
  | 'ignored';
export const FINAL_STATUSES: readonly StoredStatus[] = [
  'delivered',
  'rejected',
  'failed',
  'superseded',
  'ignored',
];

export interface DeliveryFields {
  deliveryId: string;
  /** The CRM's idempotency key (not a secret). */
  webhookId: string;
  endpoint: WebhookEndpoint;
  op: CrmOperation['op'];
  tenantId: string;
  /** sha256 of endpoint and body: a reused webhook-id with another body is refused. */
  fingerprint: string;
  /** `webhook-timestamp` of the request that claimed it (Unix seconds); 0 on rows from before it was kept. */
  signedAt: number;
  /** The contact or status record an update writes (see `orderTarget`); '' for creates. */
  target: string;
  /** `processing` while an attempt holds the lease (reported as `queued`). */
  status: StoredStatus;
  /** FPX calls so far that may have reached it (a dead attempt's included; reconciliation lookups not). */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  /** The row may be purged after this (once finished). */
  expiresAt: string;
  /** While `processing`: nobody else attempts before this. After it, a crashed attempt may be taken over. */
  leaseUntil: string;
  /** While `processing`: when the current attempt started (a crash leaves its outcome unknown). */
  attemptStartedAt: string;
  /** Earliest attempt whose outcome is unknown: creates are looked for in FPX from here on before resending. */
  unknownSince: string;
  nextAttemptAt: string;
  completedAt: string;
  lastError: string;
  /** HTTP status of the first answer given to the CRM (200, 202 or 422); 0 until then. Replays give it again. */
  answerStatus: number;
  rejectionMessage: string;
  /** FPX's field errors, JSON. */
  rejectionErrors: string;
}

export interface Delivery extends DeliveryFields {
  etag: string;
  /** The stored row, for its blob chunks. */
  row: Record<string, unknown>;
}

/** Another attempt took the delivery over (its ETag changed) while this one ran. */
export class DeliveryLeaseLost extends Error {
  constructor(deliveryId: string) {
    super(`Delivery ${deliveryId} was changed by another attempt (lease lost)`);
    this.name = 'DeliveryLeaseLost';
  }
}

export class DeliveryStore {
  constructor(readonly table: TableClient) {}

  /** Inserts the delivery row with its payload, atomically: undefined when the id is already claimed. */
  async create(fields: DeliveryFields, payload: Buffer): Promise<Delivery | undefined> {
    await ensureTableOnce(this.table);
    const pk = fields.deliveryId;
    const blob = layoutBlob('payload', pk, payload);
    // Empty columns are left out (read back as ''): a smaller insert on the webhook's critical path.
    const columns = Object.fromEntries(Object.entries(clip(fields)).filter(([, value]) => value !== ''));
    const row = { partitionKey: pk, rowKey: DELIVERY_ROW, ...columns, ...blob.inline };
    try {
      const etag = await this.write([
        ['create', row],
        ...blob.rows.map((r): TransactionAction => ['create', r]),
      ]);
      return { ...fields, etag, row };
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  async get(deliveryId: string): Promise<Delivery | undefined> {
    await ensureTableOnce(this.table);
    const entity = await getEntityOrUndefined(this.table, deliveryId, DELIVERY_ROW);
    return entity ? toDelivery(entity) : undefined;
  }

  /** Merges `changes` if nobody changed the row since `current` was read; stores `result` when given. */
  async update(current: Delivery, changes: Partial<DeliveryFields>, result?: Buffer): Promise<Delivery> {
    const pk = current.deliveryId;
    const blob = result ? layoutBlob('result', pk, result) : { inline: {}, rows: [] };
    const merged = { ...clip(changes), ...blob.inline };
    const entity = { partitionKey: pk, rowKey: DELIVERY_ROW, ...merged };
    try {
      const etag = await this.write([
        ['update', entity, 'Merge', { etag: current.etag }],
        ...blob.rows.map((r): TransactionAction => ['upsert', r, 'Replace']),
      ]);
      return { ...current, ...changes, etag, row: { ...current.row, ...merged } };
    } catch (error) {
      if (isPreconditionFailed(error)) throw new DeliveryLeaseLost(pk);
      throw error;
    }
  }

  async payload(delivery: Delivery): Promise<Buffer> {
    const bytes = await this.readBlob('payload', delivery);
    if (!bytes) throw new Error(`Delivery ${delivery.deliveryId} has no stored payload`);
    return bytes;
  }

  /** FPX's answer once delivered; undefined before. */
  result(delivery: Delivery): Promise<Buffer | undefined> {
    return this.readBlob('result', delivery);
  }

  /**
   * Deliveries nobody is working on: `processing` with the lease run out (the instance died, or its final
   * record failed), and `queued` more than `queuedGraceMs` past their next attempt (the retry's message was
   * lost, e.g. moved to the poison queue by the host's own retries while storage was down). One filtered scan
   * of the delivery rows.
   */
  async *stalled(
    now: Date,
    queuedGraceMs: number,
  ): AsyncIterable<{ deliveryId: string; status: StoredStatus }> {
    await ensureTableOnce(this.table);
    const overdue = new Date(now.getTime() - queuedGraceMs).toISOString();
    const rows = this.table.listEntities<Record<string, unknown>>({
      queryOptions: {
        filter: odata`RowKey eq ${DELIVERY_ROW} and ((status eq 'processing' and leaseUntil lt ${now.toISOString()}) or (status eq 'queued' and nextAttemptAt lt ${overdue}))`,
        select: ['PartitionKey', 'status'],
      },
    });
    for await (const row of rows) {
      yield { deliveryId: String(row.partitionKey), status: String(row.status) as StoredStatus };
    }
  }

  /** The signing time (Unix seconds) of the newest update delivered to `target`; 0 when none is on record. */
  async newestDelivered(target: string): Promise<number> {
    const row = await this.orderRow(target);
    return Number(row?.signedAt ?? 0);
  }

  /**
   * Records an update of `target` signed at `signedAt` as delivered. The record only moves forward: written
   * on the ETag read, and read again when another delivery of the same target wrote first.
   */
  async recordDelivered(target: string, signedAt: number, deliveryId: string, now: number): Promise<void> {
    for (;;) {
      const row = await this.orderRow(target);
      if (Number(row?.signedAt ?? 0) >= signedAt) return;
      const entity = {
        partitionKey: orderPartition(target),
        rowKey: ORDER_ROW,
        signedAt,
        deliveryId,
        updatedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + RETENTION_DAYS * DAY_MS).toISOString(),
      };
      try {
        if (row) await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
        else await this.table.createEntity(entity);
        return;
      } catch (error) {
        if (!isConflict(error) && !isPreconditionFailed(error)) throw error;
      }
    }
  }

  private async orderRow(target: string) {
    await ensureTableOnce(this.table);
    return getEntityOrUndefined(this.table, orderPartition(target), ORDER_ROW);
  }

  /**
   * Deletes finished deliveries whose `expiresAt` has passed; returns how many. Order records go too once
   * expired: by then no update of theirs can still be waiting.
   */
  async purgeExpired(now: Date): Promise<number> {
    await ensureTableOnce(this.table);
    const expired = this.table.listEntities<Record<string, unknown>>({
      queryOptions: {
        filter: odata`expiresAt lt ${now.toISOString()} and ((RowKey eq ${DELIVERY_ROW} and (status eq 'delivered' or status eq 'rejected' or status eq 'failed' or status eq 'superseded' or status eq 'ignored')) or RowKey eq ${ORDER_ROW})`,
        select: ['PartitionKey', 'RowKey'],
      },
    });
    let purged = 0;
    for await (const entity of expired) {
      const pk = String(entity.partitionKey);
      if (entity.rowKey === ORDER_ROW) {
        // On its ETag: an order record moved forward meanwhile stays.
        await deleteEntityIfUnchanged(this.table, pk, ORDER_ROW, entity.etag);
        continue;
      }
      const rows = this.table.listEntities({
        queryOptions: { filter: odata`PartitionKey eq ${pk}`, select: ['RowKey'] },
      });
      const deletes: TransactionAction[] = [];
      for await (const row of rows)
        deletes.push(['delete', { partitionKey: pk, rowKey: String(row.rowKey) }]);
      if (deletes.length > 0) await this.table.submitTransaction(deletes);
      purged++;
    }
    return purged;
  }

  private async readBlob(name: 'payload' | 'result', delivery: Delivery): Promise<Buffer | undefined> {
    const count = Number(delivery.row[`${name}Chunks`] ?? 0);
    if (count === 0) return undefined;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < Math.min(count, INLINE_CHUNKS); i++)
      chunks.push(binary(delivery.row[`${name}_${i}`]));
    if (count > INLINE_CHUNKS) {
      const pk = delivery.deliveryId;
      const rows = this.table.listEntities<Record<string, unknown>>({
        queryOptions: {
          filter: odata`PartitionKey eq ${pk} and RowKey gt ${`${name}-`} and RowKey lt ${`${name}.`}`,
        },
      });
      const overflow: Record<string, unknown>[] = [];
      for await (const row of rows) overflow.push(row);
      overflow.sort((a, b) => String(a.rowKey).localeCompare(String(b.rowKey)));
      for (const row of overflow) {
        for (let i = 0; i < CHUNKS_PER_ROW && row[`part_${i}`] !== undefined; i++)
          chunks.push(binary(row[`part_${i}`]));
      }
    }
    if (chunks.length !== count) throw new Error(`Delivery ${delivery.deliveryId}: ${name} is incomplete`);
    return fromChunks(chunks);
  }

  /** One entity: a plain write; several: one batch transaction (all or nothing). Returns the row's ETag. */
  private async write(actions: TransactionAction[]): Promise<string> {
    const [first] = actions;
    if (!first) throw new Error('nothing to write');
    if (actions.length === 1) {
      const [kind, entity] = first;
      if (kind === 'create') return (await this.table.createEntity(entity)).etag ?? '';
      const options = first[3] as { etag?: string } | undefined;
      return (await this.table.updateEntity(entity, 'Merge', { etag: options?.etag })).etag ?? '';
    }
    const response = await this.table.submitTransaction(actions);
    return response.getResponseForEntity(DELIVERY_ROW)?.etag ?? '';
  }
}

/** The first chunks go into the delivery row, the rest into rows of `CHUNKS_PER_ROW`. */
function layoutBlob(name: 'payload' | 'result', pk: string, bytes: Buffer) {
  const chunks = toChunks(bytes);
  const inline: Record<string, unknown> = {
    [`${name}Chunks`]: chunks.length,
    [`${name}Bytes`]: bytes.length,
  };
  chunks.slice(0, INLINE_CHUNKS).forEach((chunk, i) => {
    inline[`${name}_${i}`] = chunk;
  });
  const rows: TableEntity<Record<string, unknown>>[] = [];
  const rest = chunks.slice(INLINE_CHUNKS);
  for (let start = 0; start < rest.length; start += CHUNKS_PER_ROW) {
    const row: TableEntity<Record<string, unknown>> = {
      partitionKey: pk,
      rowKey: `${name}-${String(rows.length + 1).padStart(3, '0')}`,
    };
    rest.slice(start, start + CHUNKS_PER_ROW).forEach((chunk, i) => {
      row[`part_${i}`] = chunk;
    });
    rows.push(row);
  }
  return { inline, rows };
}

const TEXT_FIELDS = ['lastError', 'rejectionMessage', 'rejectionErrors'] as const;

/** Keeps free-text columns within one string property. */
function clip<T extends Partial<DeliveryFields>>(fields: T): T {
  const copy = { ...fields };
  for (const name of TEXT_FIELDS) {
    const value = copy[name];
    if (typeof value === 'string' && value.length > MAX_TEXT_CHARS) {
      (copy as Record<string, unknown>)[name] = `${value.slice(0, MAX_TEXT_CHARS)}…`;
    }
  }
  return copy;
}

function toDelivery(entity: Record<string, unknown> & { etag?: string }): Delivery {
  const text = (name: string) => (typeof entity[name] === 'string' ? (entity[name] as string) : '');
  const number = (name: string) => Number(entity[name] ?? 0);
  return {
    deliveryId: text('deliveryId'),
    webhookId: text('webhookId'),
    endpoint: text('endpoint') as WebhookEndpoint,
    op: text('op') as CrmOperation['op'],
    tenantId: text('tenantId'),
    fingerprint: text('fingerprint'),
    signedAt: number('signedAt'),
    target: text('target'),
    status: text('status') as StoredStatus,
    attempts: number('attempts'),
    createdAt: text('createdAt'),
    updatedAt: text('updatedAt'),
    expiresAt: text('expiresAt'),
    leaseUntil: text('leaseUntil'),
    attemptStartedAt: text('attemptStartedAt'),
    unknownSince: text('unknownSince'),
    nextAttemptAt: text('nextAttemptAt'),
    completedAt: text('completedAt'),
    lastError: text('lastError'),
    answerStatus: number('answerStatus'),
    rejectionMessage: text('rejectionMessage'),
    rejectionErrors: text('rejectionErrors'),
    etag: entity.etag ?? '',
    row: entity,
  };
}

const orderPartition = (target: string) => `order:${target}`;

function binary(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  throw new Error('a blob chunk is missing');
}
