/** The operations page: what ran, what is stuck, and the two repairs (retry a delivery, requeue a poison queue). */

import type { CertificateSource } from '../cert';
import { systemClock } from '../clock';
import { type CrmServices, crmDeps } from '../crm';
import { CallMeter } from './call-meter';
import type { OpsDeps } from './status';

export { type ActionResult, requeuePoison, retryDelivery } from './actions';
export { type CallCounts, CallMeter, type WindowCounts } from './call-meter';
export {
  currentStatus,
  linksFor,
  type OpsRequest,
  type OpsResponse,
  opsPage,
  opsRequeue,
  opsRetry,
  opsStatus,
} from './http';
export { pageHeaders, REFRESH_MS, renderPage } from './page';
export {
  collectStatus,
  LONG_QUEUED_MINUTES,
  type OpsDeps,
  POISON_QUEUES,
  QUEUES,
  queueStatuses,
  STREAMS,
} from './status';
export type * from './types';
export { type OpsLinks, renderOps } from './view';

/** The part of the composition root's services the operations functions use. */
export interface OpsServices extends CrmServices {
  certificates: CertificateSource;
}

const built = new WeakMap<OpsServices, OpsDeps>();

/**
 * One set per process (per services object), shared by the four functions; its call meter starts sampling
 * FPX's call counters as soon as it is built (at registration), so "the last minute" means what it says.
 */
export function opsDeps(services: OpsServices, probe: OpsDeps['probe']): OpsDeps {
  let deps = built.get(services);
  if (!deps) {
    const stats = services.fpx.transport.stats;
    deps = {
      table: (name) => services.table(name),
      queue: (name) => services.storage.queue(name),
      certificates: services.certificates,
      fpx: services.fpx,
      crm: crmDeps(services),
      meter: new CallMeter(() => ({ calls: stats.calls, throttled: stats.throttled })).start(),
      probe,
      // The composition root's one clock (CrmServices.clock), the system's when not given.
      now: () => (services.clock ?? systemClock).now(),
    };
    built.set(services, deps);
  }
  return deps;
}
