import { type OpsDeps, opsDeps } from '../lib/ops';
import { healthCheck } from './health';
import type { Services } from './services';

interface HealthBody {
  checks: {
    storage: { ok: boolean };
    fpx: { ok: boolean; error?: string; checkedAt?: string };
  };
}

/**
 * What the four operations functions share. FPX's reachability is the health checks' own probe (one call
 * per 30 s, shared with GET /api/health), not a second one.
 */
export function opsDepsOf(services: Services): OpsDeps {
  return opsDeps(services, async () => {
    const { checks } = (await healthCheck(services)).jsonBody as HealthBody;
    return { fpx: checks.fpx, storage: checks.storage };
  });
}
