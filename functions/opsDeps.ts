import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { type OpsDeps, type OpsRequest, type OpsResponse, opsDeps } from '../lib/ops';
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

/** The host's request as the operations handlers read it (header names lower case; of a repeated parameter, the first). */
export function opsRequest(request: HttpRequest): OpsRequest {
  return {
    path: new URL(request.url).pathname,
    headers: Object.fromEntries(request.headers),
    query: Object.fromEntries([...request.query].reverse()),
  };
}

/** Runs an operations handler on the host's request. */
export function opsHandler(
  handler: (request: OpsRequest, params: Readonly<Record<string, string>>) => Promise<OpsResponse>,
): (request: HttpRequest) => Promise<HttpResponseInit> {
  return (request) => handler(opsRequest(request), request.params);
}
