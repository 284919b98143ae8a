import type { TableClient } from '@azure/data-tables';
import { ensureTableOnce, getEntityOrUndefined } from '../storage';
import { isConflict, isNotFound, isPreconditionFailed } from '../storage/errors';

/**
 * `DataverseLinks`, one row per Dataverse contact (PartitionKey `contact`, RowKey its id):
 * - the link: which FPX contact it became (`fpxContactId`, `tenantId`, `linkedAt`). Written when the create is
 *   delivered, before the delivery says so; read by every later event of that contact, which then updates
 *   (PATCH) instead of creating again.
 * - the create pointer: the generation of the contact's current create (`createGeneration`, its delivery
 *   `createDeliveryId`, `createClaimedAt`); absent = generation 0, the contact's first create. A generation's key
 *   is claimed once (the delivery's atomic insert), and the pointer moves to the next only by an insert or an
 *   ETag-conditional update, after the current one ended without an FPX contact: so no two creates of one
 *   contact can run (see handler.ts, `contact`).
 */
export const LINKS_TABLE = 'DataverseLinks';
const CONTACT = 'contact';

export interface ContactLink {
  fpxContactId: string;
  tenantId: string;
}

/** The contact's current create generation, with the row's ETag (undefined: no row yet). */
export interface CreatePointer {
  generation: number;
  etag?: string;
}

export interface ContactRow {
  link?: ContactLink;
  create: CreatePointer;
}

export class ContactLinks {
  constructor(readonly table: TableClient) {}

  async get(dataverseContactId: string): Promise<ContactLink | undefined> {
    return (await this.read(dataverseContactId)).link;
  }

  /** The link, if any, and the create pointer: one read. */
  async read(dataverseContactId: string): Promise<ContactRow> {
    await ensureTableOnce(this.table);
    const row = await getEntityOrUndefined(this.table, CONTACT, dataverseContactId);
    const generation = Number(row?.createGeneration ?? 0);
    const create = { generation: Number.isSafeInteger(generation) ? generation : 0, etag: row?.etag };
    if (!row || typeof row.fpxContactId !== 'string') return { create };
    return { link: { fpxContactId: row.fpxContactId, tenantId: String(row.tenantId ?? '') }, create };
  }

  /**
   * Moves the pointer from `from` to the next generation, whose create is `deliveryId`, if nobody changed the
   * row since `from` was read (an insert when there was no row). false: another event moved it, or the contact
   * was linked meanwhile.
   */
  async advanceCreate(
    dataverseContactId: string,
    from: CreatePointer,
    deliveryId: string,
    now: number,
  ): Promise<boolean> {
    await ensureTableOnce(this.table);
    const entity = {
      partitionKey: CONTACT,
      rowKey: dataverseContactId,
      createGeneration: from.generation + 1,
      createDeliveryId: deliveryId,
      createClaimedAt: new Date(now).toISOString(),
    };
    try {
      if (from.etag === undefined) await this.table.createEntity(entity);
      else await this.table.updateEntity(entity, 'Merge', { etag: from.etag });
      return true;
    } catch (error) {
      if (isConflict(error) || isPreconditionFailed(error) || isNotFound(error)) return false;
      throw error;
    }
  }

  /** Idempotent: a repeat writes the same link again (the create pointer stays, for the record). */
  async record(dataverseContactId: string, link: ContactLink, now: number): Promise<void> {
    await ensureTableOnce(this.table);
    await this.table.upsertEntity(
      { partitionKey: CONTACT, rowKey: dataverseContactId, ...link, linkedAt: new Date(now).toISOString() },
      'Merge',
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
