import { AsyncLocalStorage } from 'node:async_hooks';
import type { TableClient } from '@azure/data-tables';

/** Table requests made during one sync run: every HTTP attempt, retries included. */
export interface TableRequestCounts {
  reads: number;
  writes: number;
}

type PipelinePolicy = Parameters<TableClient['pipeline']['addPolicy']>[0];

const POLICY_NAME = 'fpxSyncTableRequestCounter';
const currentRun = new AsyncLocalStorage<TableRequestCounts>();

/**
 * Adds (once per client) a pipeline policy that counts each HTTP request into the counts of the sync run
 * it belongs to. The run is found through AsyncLocalStorage, so concurrent runs sharing one client keep
 * separate counts, and outside a run the policy does nothing. It sits after the retry phase, so every
 * attempt is counted; batch transactions go through the same pipeline and count as one write each.
 */
export function countTableRequests(client: TableClient): void {
  const pipeline = client.pipeline;
  if (pipeline.getOrderedPolicies().some((policy) => policy.name === POLICY_NAME)) return;
  const policy: PipelinePolicy = {
    name: POLICY_NAME,
    sendRequest(request, next) {
      const counts = currentRun.getStore();
      if (counts) {
        if (request.method === 'GET' || request.method === 'HEAD') counts.reads++;
        else counts.writes++;
      }
      return next(request);
    },
  };
  pipeline.addPolicy(policy, { afterPhase: 'Retry' });
}

/** Runs `work` with a fresh request count; the counts object keeps filling while `work` runs. */
export function withTableRequestCounts<R>(work: (counts: TableRequestCounts) => Promise<R>): Promise<R> {
  const counts: TableRequestCounts = { reads: 0, writes: 0 };
  return currentRun.run(counts, () => work(counts));
}
