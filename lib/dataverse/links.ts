import type { TableClient } from '@azure/data-tables';
import { ensureTableOnce, getEntityOrUndefined } from '../storage';

/**
 * `DataverseLinks`: which FPX contact a Dataverse contact became (PartitionKey `contact`, RowKey the Dataverse
 * contact id; `fpxContactId`, `tenantId`, `linkedAt`). Written when the create is delivered, before the delivery
 * says so; read by every later event of that contact, which then updates (PATCH) instead of creating again.
 */
export const LINKS_TABLE = 'DataverseLinks';
const CONTACT = 'contact';

export interface ContactLink {
  fpxContactId: string;
  tenantId: string;
}

export class ContactLinks {
  constructor(readonly table: TableClient) {}

  async get(dataverseContactId: string): Promise<ContactLink | undefined> {
    await ensureTableOnce(this.table);
    const row = await getEntityOrUndefined(this.table, CONTACT, dataverseContactId);
    if (!row || typeof row.fpxContactId !== 'string') return undefined;
    return { fpxContactId: row.fpxContactId, tenantId: String(row.tenantId ?? '') };
  }

  /** Idempotent: a repeat writes the same row again. */
  async record(dataverseContactId: string, link: ContactLink, now: number): Promise<void> {
    await ensureTableOnce(this.table);
    await this.table.upsertEntity(
      { partitionKey: CONTACT, rowKey: dataverseContactId, ...link, linkedAt: new Date(now).toISOString() },
      'Replace',
    );
  }

  /**
   * The hook the delivery pipeline calls once FPX created a contact from Dataverse (CrmDeps.onContactCreated).
   * Without FPX's contact id in its answer it throws: the attempt's lease then runs out, and the takeover finds
   * the contact in FPX (reconciliation) with its id.
   */
  onContactCreated(now: () => number) {
    return async (operation: { tenantId: string; dataverseContactId?: string }, result: unknown) => {
      if (!operation.dataverseContactId) return;
      const id = (result as { contactId?: unknown } | null)?.contactId;
      if (typeof id !== 'string' && typeof id !== 'number') {
        throw new Error(
          `FPX's answer to the contact create has no contactId: cannot link Dataverse contact ${operation.dataverseContactId}`,
        );
      }
      await this.record(
        operation.dataverseContactId,
        { fpxContactId: String(id), tenantId: operation.tenantId },
        now(),
      );
    };
  }
}
