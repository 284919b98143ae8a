import type { TableClient } from '@azure/data-tables';
import { ensureTableOnce, getEntityOrUndefined, isConflict, isPreconditionFailed } from '../storage';

const CURRENT_ROW = 'incident';

/**
 * Conditions that last (a poison queue holding messages), one row per condition: `open` names the current
 * incident, starting one when none is open; `close` ends it, so the next occurrence is a new incident. The
 * incident id keys an AlertLedger row, so each incident is alerted once however often it is seen. Rows are
 * written on their ETag: of two runs opening the same incident at once, both get the same id.
 */
export class IncidentTracker {
  constructor(private readonly table: TableClient) {}

  /** The open incident of `key`, opened at `now` (its ISO time is the id) when none is. */
  async open(key: string, now: Date): Promise<{ id: string; opened: boolean }> {
    const row = await this.current(key);
    if (row?.incidentId) return { id: row.incidentId, opened: false };
    const id = now.toISOString();
    const entity = { partitionKey: key, rowKey: CURRENT_ROW, incidentId: id, openedAt: id, closedAt: '' };
    try {
      if (row) await this.table.updateEntity(entity, 'Replace', { etag: row.etag });
      else await this.table.createEntity(entity);
      return { id, opened: true };
    } catch (error) {
      if (!isConflict(error) && !isPreconditionFailed(error)) throw error;
    }
    const theirs = await this.current(key);
    if (!theirs?.incidentId) throw new Error(`Incident ${key}: opened and closed again at once; try later`);
    return { id: theirs.incidentId, opened: false };
  }

  /** Ends the open incident of `key`; returns its id, or undefined when none was open. */
  async close(key: string, now: Date): Promise<string | undefined> {
    const row = await this.current(key);
    if (!row?.incidentId) return undefined;
    try {
      await this.table.updateEntity(
        { partitionKey: key, rowKey: CURRENT_ROW, incidentId: '', closedAt: now.toISOString() },
        'Merge',
        { etag: row.etag },
      );
    } catch (error) {
      // Changed meanwhile by another run: the next run looks again.
      if (!isPreconditionFailed(error)) throw error;
    }
    return row.incidentId;
  }

  private async current(key: string) {
    await ensureTableOnce(this.table);
    return getEntityOrUndefined<{ incidentId?: string }>(this.table, key, CURRENT_ROW);
  }
}
