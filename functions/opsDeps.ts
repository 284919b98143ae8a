import { type OpsDeps, opsDeps } from '../lib/ops';
import { storageAndFpx } from './health';
import type { Services } from './services';

/**
 * What the four operations functions share. FPX's reachability is the health checks' own probe (one call
 * per 30 s, shared with GET /api/health), not a second one.
 */
export function opsDepsOf(services: Services): OpsDeps {
  return opsDeps(services, () => storageAndFpx(services));
}
