import type { TableClient } from '@azure/data-tables';
import { ensureTableOnce, getEntityOrUndefined, isConflict, isPreconditionFailed } from '../storage';
import { type BudgetRecord, EMPTY_RECORD } from './lanes';

export const RATE_BUDGET_TABLE = 'FpxRateBudget';
const PARTITION = 'budget';
const ROW = 'fpx';

/** Where the shared record lives; every write is conditional on the version read. */
export interface BudgetStore {
  read(): Promise<{ record: BudgetRecord; etag?: string }>;
  /** The new version, or undefined when another instance wrote first (read again and retry). */
  write(record: BudgetRecord, etag: string | undefined): Promise<string | undefined>;
}

/** The record as one Table Storage row, updated with ETag conditions (no new Azure service). */
export class TableBudgetStore implements BudgetStore {
  constructor(private readonly table: TableClient) {}

  async read(): Promise<{ record: BudgetRecord; etag?: string }> {
    await ensureTableOnce(this.table);
    const row = await getEntityOrUndefined(this.table, PARTITION, ROW);
    return row ? { record: fromRow(row), etag: row.etag } : { record: EMPTY_RECORD };
  }

  async write(record: BudgetRecord, etag: string | undefined): Promise<string | undefined> {
    await ensureTableOnce(this.table);
    const entity = { partitionKey: PARTITION, rowKey: ROW, ...record };
    try {
      const result = etag
        ? await this.table.updateEntity(entity, 'Replace', { etag })
        : await this.table.createEntity(entity);
      return result.etag;
    } catch (error) {
      // 412: changed since read; 409: created since read. Either way someone else wrote first.
      if (isPreconditionFailed(error) || isConflict(error)) return undefined;
      throw error;
    }
  }
}

function fromRow(row: Record<string, unknown>): BudgetRecord {
  const number = (key: keyof BudgetRecord) => (typeof row[key] === 'number' ? (row[key] as number) : 0);
  return {
    bulkNextAt: number('bulkNextAt'),
    interactiveNextAt: number('interactiveNextAt'),
    pausedUntil: number('pausedUntil'),
  };
}
