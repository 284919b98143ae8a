import type { TableClient, TransactionAction } from '@azure/data-tables';

/** A transaction holds at most 100 operations on one partition. */
export const MAX_TRANSACTION_ENTITIES = 100;
/** A transaction's request body is limited to 4 MiB; keep room for multipart headers. */
export const MAX_TRANSACTION_BYTES = 3.5 * 1024 * 1024;
/** Bytes a sub-request adds besides its entity JSON (boundary, request line with the keys, headers). */
const SUB_REQUEST_OVERHEAD_BYTES = 3 * 1024;

/** Run once a transaction succeeded (returned by `beforeSubmit`). */
export type AfterSubmit = () => Promise<void>;

/**
 * Collects row writes of one partition into batch transactions and submits them as they fill, with at
 * most `maxInFlight` transactions outstanding, so a long listing is written while it is still being read
 * and memory stays bounded. The first failed transaction fails every later `add`, `drain` rethrows it.
 */
export class BatchWriter {
  /** Transactions that succeeded, and the entities they wrote. */
  transactions = 0;
  entities = 0;
  largestTransaction = 0;
  private pending: TransactionAction[] = [];
  private pendingBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly table: TableClient,
    private readonly partitionKey: string,
    private readonly maxInFlight: number,
    /**
     * Awaited before each transaction is submitted, inside its slot (the CRM events' outbox write); what it
     * returns is awaited once the transaction succeeded (the events' queue message: never before the rows land).
     */
    private readonly beforeSubmit?: (actions: TransactionAction[]) => Promise<AfterSubmit | undefined>,
  ) {}

  async add(action: TransactionAction): Promise<void> {
    this.throwIfFailed();
    if (action[1].partitionKey !== this.partitionKey) {
      throw new Error(
        `a write for partition "${action[1].partitionKey}" in a batch of "${this.partitionKey}"`,
      );
    }
    const bytes = Buffer.byteLength(JSON.stringify(action[1])) + SUB_REQUEST_OVERHEAD_BYTES;
    if (this.pending.length && this.pendingBytes + bytes > MAX_TRANSACTION_BYTES) await this.flush();
    this.pending.push(action);
    this.pendingBytes += bytes;
    if (this.pending.length >= MAX_TRANSACTION_ENTITIES) await this.flush();
  }

  /** Submits what is pending, after waiting for a free slot. */
  async flush(): Promise<void> {
    if (!this.pending.length) return;
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    this.throwIfFailed();
    const actions = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.largestTransaction = Math.max(this.largestTransaction, actions.length);
    const before = this.beforeSubmit;
    const submit = before
      ? before(actions).then(async (after) => {
          await this.table.submitTransaction(actions);
          await after?.();
        })
      : this.table.submitTransaction(actions);
    const submitted = submit.then(
      () => {
        this.transactions++;
        this.entities += actions.length;
      },
      (error: unknown) => {
        this.failure ??= { error };
      },
    );
    const tracked = submitted.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** Submits the rest and waits for every transaction; rethrows the first failure. */
  async drain(): Promise<void> {
    await this.flush();
    await this.settle();
    this.throwIfFailed();
  }

  /** Waits for the transactions in flight without submitting more or throwing (for the failure path). */
  async settle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled(this.inFlight);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
