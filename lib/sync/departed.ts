import type { TableClient } from '@azure/data-tables';
import { BatchWriter } from './batch-writer';
import { TABLES } from './fpx-streams';
import { presentRows } from './present-rows';

/** The tables whose partitions are tenants. */
const DETAIL_TABLES = [TABLES.entitlements, TABLES.contacts, TABLES.notes] as const;

/** Tenants with a present row in any detail table (only the keys are read). */
export async function tenantsWithDetails(table: (name: string) => TableClient): Promise<Set<string>> {
  const tenants = new Set<string>();
  for (const name of DETAIL_TABLES) {
    for await (const row of presentRows(table(name), undefined, ['PartitionKey'])) {
      if (row.partitionKey) tenants.add(row.partitionKey);
    }
  }
  return tenants;
}

/**
 * Tenants in neither listing any more (FPX-NOTES: no claim, no referral): their entitlement, contact and
 * note rows get `removedAt`, their data kept, as a listing's removal would.
 */
export async function markDepartedTenants(
  table: (name: string) => TableClient,
  tenantIds: readonly string[],
  now: string,
): Promise<{ tenants: number; rows: number }> {
  let rows = 0;
  for (const tenantId of tenantIds) {
    for (const name of DETAIL_TABLES) {
      const client = table(name);
      const writer = new BatchWriter(client, tenantId, 4);
      for await (const row of presentRows(client, tenantId, ['RowKey'])) {
        if (!row.rowKey) continue;
        rows++;
        await writer.add([
          'update',
          { partitionKey: tenantId, rowKey: row.rowKey, removedAt: now, lastChangedAt: now },
          'Merge',
        ]);
      }
      await writer.drain();
    }
  }
  return { tenants: tenantIds.length, rows };
}
