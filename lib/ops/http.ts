import type { PlainRequest, PlainResponse } from '../http';
import { safeErrorMessage } from '../redact';
import { type ActionResult, requeuePoison, retryDelivery } from './actions';
import { pageHeaders, renderActionResult, renderPage } from './page';
import { collectStatus, type OpsDeps } from './status';
import type { OpsStatus } from './types';
import type { OpsLinks } from './view';

/** The request as these handlers read it: the path, headers and query of a `PlainRequest` (lib/http). */
export type OpsRequest = Pick<PlainRequest, 'path' | 'headers' | 'query'>;

/** What the handlers answer. */
export type OpsResponse = PlainResponse;

/** Viewers share one reading of the status for this long (the page refreshes every 5 s per viewer). */
const STATUS_TTL_MS = 2_000;
const cached = new WeakMap<OpsDeps, { at: number; status: Promise<OpsStatus> }>();

/** The status, read at most once per 2 s per process however many pages are open; an action forgets it. */
export function currentStatus(deps: OpsDeps): Promise<OpsStatus> {
  const now = deps.now?.() ?? Date.now();
  const last = cached.get(deps);
  if (last && now - last.at < STATUS_TTL_MS) return last.status;
  const status = collectStatus(deps);
  cached.set(deps, { at: now, status });
  status.catch(() => cached.delete(deps));
  return status;
}

/** The route prefix's path (`/api`) from a request to `…/ops…`, and the function key it carried. */
export function linksFor(request: OpsRequest): OpsLinks {
  const at = request.path.toLowerCase().lastIndexOf('/ops');
  return { base: at >= 0 ? request.path.slice(0, at) : '/api', key: request.query?.code ?? '' };
}

/** GET /api/ops */
export async function opsPage(deps: OpsDeps, request: OpsRequest): Promise<OpsResponse> {
  const { html, nonce } = renderPage(await currentStatus(deps), linksFor(request));
  return { status: 200, headers: pageHeaders(nonce), body: html };
}

/** GET /api/ops/status */
export async function opsStatus(deps: OpsDeps): Promise<OpsResponse> {
  return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: await currentStatus(deps) };
}

/** POST /api/ops/deliveries/{id}/retry */
export function opsRetry(deps: OpsDeps, request: OpsRequest, id: string): Promise<OpsResponse> {
  return act(deps, request, () => retryDelivery(deps.crm, id));
}

/** POST /api/ops/queues/{queue}/requeue */
export function opsRequeue(deps: OpsDeps, request: OpsRequest, queue: string): Promise<OpsResponse> {
  return act(deps, request, () => requeuePoison({ queue: deps.queue, crm: deps.crm, now: deps.now }, queue));
}

/**
 * Runs an action and answers JSON (the page's script, automation) or, to a form posted without JavaScript,
 * a small page with the outcome and a link back. A browser's post from anywhere but this app's own page
 * (`Sec-Fetch-Site` other than `same-origin`) is refused; clients that send no such header (automation) are not.
 */
async function act(
  deps: OpsDeps,
  request: OpsRequest,
  action: () => Promise<ActionResult>,
): Promise<OpsResponse> {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, jsonBody: { ok: false, message: 'Refused: posted from another site' } };
  }
  let result: ActionResult;
  try {
    result = await action();
  } catch (error) {
    result = { status: 500, ok: false, message: safeErrorMessage(error) };
  }
  cached.delete(deps);
  const { status, ...body } = result;
  const accept = request.headers.accept ?? '';
  if (accept.includes('text/html') && !accept.includes('application/json')) {
    const links = linksFor(request);
    const back = `${links.base}/ops${links.key ? `?code=${encodeURIComponent(links.key)}` : ''}`;
    return {
      status,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'none'",
        'referrer-policy': 'no-referrer',
      },
      body: renderActionResult(result.message, result.ok, back),
    };
  }
  return { status, headers: { 'cache-control': 'no-store' }, jsonBody: body };
}
