import { type CallOptions, type FpxClient, FpxError } from '../fpx';
import { safeErrorMessage } from '../redact';
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
  const scrub = (text: string) =>
    options.endUserToken ? text.split(options.endUserToken).join('[end-user token]') : text;
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
  const call: CallOptions = { endUserToken: options.endUserToken, signal: options.signal };
  try {
    return { kind: 'delivered', result: await send(fpx, operation, call) };
  } catch (error) {
    return classify(error, scrub);
  }
}

function send(fpx: FpxClient, operation: CrmOperation, call: CallOptions): Promise<unknown> {
  switch (operation.op) {
    case 'createNote':
      return fpx.createNote(operation.tenantId, operation.note, call);
    case 'createContact':
      return fpx.createContact(operation.tenantId, operation.contact, call);
    case 'updateContact':
      return fpx.updateContact(operation.contactId, operation.contact, call);
    case 'updateEntitlement':
      return fpx.updateEntitlement(operation.tenantId, operation.serviceId, operation.update, call);
  }
}

/** 401/403/408 are ours or transient, not a verdict on the data: retried like 429 and 5xx. */
const RETRIED_CLIENT_ERRORS = new Set([401, 403, 408, 429]);

function classify(error: unknown, scrub: (text: string) => string): AttemptOutcome {
  if (error instanceof FpxError) {
    const status = error.status ?? 0;
    if (error.kind === 'http' && status >= 400 && status < 500 && !RETRIED_CLIENT_ERRORS.has(status)) {
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
