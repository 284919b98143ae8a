import { app } from '@azure/functions';
import { MAX_DEQUEUE_COUNT } from '../lib/config';
import { safeErrorMessage } from '../lib/redact';
import {
  DETAILS_RUNS_TABLE,
  recordTenantOutcome,
  SYNC_RUNS_TABLE,
  syncTenantDetailsExclusively,
  TABLES,
  TENANT_DETAILS_QUEUE,
  TENANT_LEASES_TABLE,
  type TenantDetailsResult,
  tenantDetailsMessage,
} from '../lib/sync';
import type { Services } from './services';

/** Queue: one tenant's entitlements, contacts and notes into FpxEntitlements, FpxContacts and FpxNotes. */
export function registerSyncTenantDetails(services: Services): void {
  app.storageQueue('syncTenantDetails', {
    queueName: TENANT_DETAILS_QUEUE,
    connection: 'AzureWebJobsStorage',
    handler: async (input, context) => {
      const message = tenantDetailsMessage.parse(input);
      // The tenant's outcome in its run's row; the last tenant of the fan-out completes the `details` row.
      const record = (outcome: { result: TenantDetailsResult } | { error: unknown }) =>
        recordTenantOutcome(
          services.table(TABLES.syncState),
          services.table(DETAILS_RUNS_TABLE),
          { runId: message.runId, tenantId: message.tenantId, ...outcome },
          new Date(services.clock.now()),
          services.table(SYNC_RUNS_TABLE),
        );
      const lastAttempt = Number(context.triggerMetadata?.dequeueCount ?? 1) >= MAX_DEQUEUE_COUNT;
      let outcome: Awaited<ReturnType<typeof syncTenantDetailsExclusively>>;
      try {
        outcome = await syncTenantDetailsExclusively(
          {
            ...services,
            maxRemovedPercent: services.config.sync.maxRemovedPercent,
            leases: services.table(TENANT_LEASES_TABLE),
            queue: services.queueService.getQueueClient(TENANT_DETAILS_QUEUE),
            holder: context.invocationId,
            log: (line) => context.log(line),
          },
          message,
        );
      } catch (error) {
        // Only the last attempt counts as failed: the host retries the others, then moves it to poison.
        if (lastAttempt) {
          await record({ error }).catch((recordError: unknown) =>
            context.error(`could not record the failure in FpxSyncState: ${safeErrorMessage(recordError)}`),
          );
        }
        throw error;
      }
      // Another sync of this tenant was running: the message came back on the queue and records the outcome.
      if (!('result' in outcome)) return outcome;
      // The tenant is in step; recording it is a step of its own, so its failure never marks the tenant failed.
      await record({ result: outcome.result });
      return outcome.result;
    },
  });
}
