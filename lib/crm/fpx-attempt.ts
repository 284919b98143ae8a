import { type CallOptions, type FpxClient, FpxError, normalizeGuid } from '../fpx';
import { redactSecrets, safeErrorMessage } from '../redact';
import { type CrmOperation, type FieldErrors, isCreate } from './payloads';
import { findExisting } from './reconcile';

/** How one attempt to hand a request to FPX ended. */
export type AttemptOutcome =
  | {
      kind: 'delivered';
      result: unknown;
      note?: string;
      /** Found in FPX (an earlier call's create): this attempt sent nothing. */
      found?: boolean;
    }
  | { kind: 'rejected'; message: string; errors: FieldErrors }
  | {
      kind: 'unavailable';
      error: string;
      outcomeUnknown: boolean;
      retryAfterMs?: number;
      /** Nothing went to FPX (no rate-limit slot in time): not counted as an attempt. */
      notSent?: boolean;
    };

export interface AttemptOptions {
  /** The CRM user's JWT (HTTP path only; queued deliveries go without it). Never logged or stored. */
  endUserToken?: string;
  /** Set when an earlier attempt may have reached FPX: creates are looked for first. */
  unknownSince?: Date;
  reconcileSkewMs: number;
  signal?: AbortSignal;
}

/** One attempt: reconcile if an earlier outcome is unknown, then the FPX call, classified. */
export async function attemptDelivery(
  fpx: FpxClient,
  operation: CrmOperation,
  options: AttemptOptions,
): Promise<AttemptOutcome> {
  // Whatever FPX says is kept (lastError, rejection) and logged: without the user's token, or anything secret-like.
  const scrub = (text: string) =>
    redactSecrets(options.endUserToken ? text.split(options.endUserToken).join('[end-user token]') : text);
  if (options.unknownSince && isCreate(operation)) {
    try {
      const found = await findExisting(fpx, operation, options.unknownSince, {
        skewMs: options.reconcileSkewMs,
        signal: options.signal,
      });
      if (found) {
        return {
          kind: 'delivered',
          result: found.result,
          note: 'found in FPX after an earlier unknown outcome',
          found: true,
        };
      }
    } catch (error) {
      // Whatever stopped the look-up (FPX unreachable, an answer that does not fit, a 4xx), sending now could
      // create twice: try the whole attempt again later; after the last attempt the delivery fails loudly.
      return {
        kind: 'unavailable',
        error: scrub(`looking for an earlier attempt's result failed: ${safeErrorMessage(error)}`),
        outcomeUnknown: true,
        retryAfterMs: error instanceof FpxError ? error.retryAfterMs : undefined,
      };
    }
  }
  const call: CallOptions = {
    endUserToken: options.endUserToken,
    signal: options.signal,
    priority: 'interactive',
  };
  try {
    return { kind: 'delivered', result: await send(fpx, operation, call) };
  } catch (error) {
    const outcome = classify(error, scrub, options.endUserToken !== undefined);
    const gone = outcome.kind === 'rejected' && GONE.has((error as FpxError).status ?? 0);
    return gone && isRemoval(operation)
      ? alreadyRemoved(fpx, operation, outcome, options.signal, scrub)
      : outcome;
  }
}

/** What FPX answers a removal of a record that is not there (the sandbox 400s, a real FPX may 404). */
const GONE = new Set([400, 404, 410]);

type Removal = Extract<CrmOperation, { op: 'updateEntitlement' }>;

function isRemoval(operation: CrmOperation): operation is Removal {
  return (
    operation.op === 'updateEntitlement' &&
    operation.update.entitlementCount === 0 &&
    operation.update.serviceIntentId !== undefined
  );
}

/**
 * A removal FPX refused: when the service has no record with that serviceIntentId any more, the removal is
 * done (a repeat, or an earlier attempt whose answer was lost), so it counts as delivered; otherwise the
 * refusal stands, as it does when FPX refuses the look too (e.g. an unknown tenant). When the look fails for
 * a passing reason, it is all tried again later (sending the removal again is harmless).
 */
async function alreadyRemoved(
  fpx: FpxClient,
  operation: Removal,
  refusal: AttemptOutcome,
  signal: AbortSignal | undefined,
  scrub: (text: string) => string,
): Promise<AttemptOutcome> {
  const { tenantId, serviceId, update } = operation;
  const wanted = normalizeGuid(update.serviceIntentId ?? '');
  try {
    const records = await fpx.entitlements(tenantId, [serviceId], { signal, priority: 'interactive' });
    if (records.some((record) => normalizeGuid(record.serviceIntentId) === wanted)) return refusal;
    return {
      kind: 'delivered',
      result: records,
      note: `already removed: service ${serviceId} has no status record ${wanted} any more`,
    };
  } catch (error) {
    if (classify(error, scrub, false).kind === 'rejected') return refusal;
    return {
      kind: 'unavailable',
      error: scrub(
        `FPX refused the removal; looking whether it is already gone failed: ${safeErrorMessage(error)}`,
      ),
      outcomeUnknown: false,
      retryAfterMs: error instanceof FpxError ? error.retryAfterMs : undefined,
    };
  }
}

function send(fpx: FpxClient, operation: CrmOperation, call: CallOptions): Promise<unknown> {
  switch (operation.op) {
    case 'createNote':
      return fpx.createNote(operation.tenantId, operation.note, { ...call, rfaId: operation.rfaId });
    case 'createContact':
      return fpx.createContact(operation.tenantId, operation.contact, { ...call, rfaId: operation.rfaId });
    case 'updateContact':
      return fpx.updateContact(operation.contactId, operation.contact, call);
    case 'updateEntitlement':
      return fpx.updateEntitlement(operation.tenantId, operation.serviceId, operation.update, call);
  }
}

/**
 * 408 and 429 are transient, retried like 5xx. A 401 to a call without the end user's token is about our
 * certificate (retried; the transport looks for a new one); with a token, FPX refused that user: final, and
 * never resent without it. A 403 is final: FPX knows us and refuses this request (FPX-NOTES #14).
 */
function retried(status: number, withToken: boolean): boolean {
  return status === 408 || status === 429 || (status === 401 && !withToken);
}

function classify(error: unknown, scrub: (text: string) => string, withToken: boolean): AttemptOutcome {
  if (error instanceof FpxError) {
    const status = error.status ?? 0;
    if (error.kind === 'http' && status >= 400 && status < 500 && !retried(status, withToken)) {
      const message = error.fpxMessage ?? `FPX answered ${status}`;
      return {
        kind: 'rejected',
        message: scrub(status === 400 ? message : `${status}: ${message}`),
        errors: Object.fromEntries(
          Object.entries(error.fieldErrors).map(([field, reasons]) => [field, reasons.map(scrub)]),
        ),
      };
    }
    if (error.kind === 'invalid-response') {
      // FPX answered 2xx: the request was accepted; only its answer did not fit our schema.
      return { kind: 'delivered', result: null, note: scrub(safeErrorMessage(error)) };
    }
    return {
      kind: 'unavailable',
      error: scrub(safeErrorMessage(error)),
      outcomeUnknown: error.outcomeUnknown,
      retryAfterMs: error.retryAfterMs,
    };
  }
  const name = (error as Error)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') {
    // Aborted while waiting for a rate-limit slot: nothing was sent.
    return {
      kind: 'unavailable',
      error: 'no FPX call slot in time (rate limit)',
      outcomeUnknown: false,
      notSent: true,
    };
  }
  throw error;
}
