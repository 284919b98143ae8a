/** Why a call to FPX failed. `http`: FPX answered with an error status. */
export type FpxErrorKind = 'http' | 'network' | 'timeout' | 'tls' | 'invalid-response' | 'loop';

export interface FpxErrorDetails {
  kind: FpxErrorKind;
  /** e.g. `GET /partnerReferrals` (the path without query, never headers or certificates). */
  endpoint: string;
  status?: number;
  /** FPX's own message, from `Message` or `message`. */
  fpxMessage?: string;
  dependencyType?: string;
  dependencyOwner?: string;
  dependencyErrorCode?: string;
  /** FPX's 400 field errors, `{Field: [reason]}`. */
  fieldErrors?: Record<string, string[]>;
  /** How long FPX asked us to wait (429 / 503 Retry-After). */
  retryAfterMs?: number;
  /** A create or update may have reached FPX although we got no answer: do not blindly send it again. */
  outcomeUnknown?: boolean;
  cause?: unknown;
}

export class FpxError extends Error {
  readonly kind: FpxErrorKind;
  readonly endpoint: string;
  readonly status?: number;
  readonly fpxMessage?: string;
  readonly dependencyType?: string;
  readonly dependencyOwner?: string;
  readonly dependencyErrorCode?: string;
  readonly fieldErrors: Record<string, string[]>;
  readonly retryAfterMs?: number;
  readonly outcomeUnknown: boolean;

  constructor(details: FpxErrorDetails, summary?: string) {
    super(summary ?? describe(details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FpxError';
    this.kind = details.kind;
    this.endpoint = details.endpoint;
    this.status = details.status;
    this.fpxMessage = details.fpxMessage;
    this.dependencyType = details.dependencyType;
    this.dependencyOwner = details.dependencyOwner;
    this.dependencyErrorCode = details.dependencyErrorCode;
    this.fieldErrors = details.fieldErrors ?? {};
    this.retryAfterMs = details.retryAfterMs;
    this.outcomeUnknown = details.outcomeUnknown ?? false;
  }

  /** Worth trying again later: throttled, FPX-side failure, or no answer. */
  get transient(): boolean {
    if (this.kind === 'network' || this.kind === 'timeout') return true;
    return this.kind === 'http' && this.status !== undefined && (this.status === 429 || this.status >= 500);
  }
}

function describe(d: FpxErrorDetails): string {
  const status = d.status ? ` ${d.status}` : '';
  const what = d.fpxMessage ?? (d.kind === 'http' ? 'no message' : d.kind);
  const fields = Object.entries(d.fieldErrors ?? {})
    .map(([field, reasons]) => `${field}: ${reasons.join('; ')}`)
    .join(', ');
  return `FPX ${d.endpoint} failed:${status} ${what}${fields ? ` (${fields})` : ''}`;
}

/**
 * Reads FPX's error body in either casing: `{ErrorStatus, DependencyType, DependencyOwner,
 * DependencyErrorCode, Message}` or `{errors: {Field: [msg]}, errorStatus, message}`.
 * For 400s the field errors may also arrive as JSON inside DependencyErrorCode.
 */
export function readErrorBody(
  body: unknown,
): Pick<
  FpxErrorDetails,
  'fpxMessage' | 'dependencyType' | 'dependencyOwner' | 'dependencyErrorCode' | 'fieldErrors'
> {
  if (typeof body === 'string') return body.trim() ? { fpxMessage: body.trim().slice(0, 500) } : {};
  if (!body || typeof body !== 'object' || Array.isArray(body)) return {};
  const lower = new Map(Object.entries(body).map(([k, v]) => [k.toLowerCase(), v]));
  const text = (key: string) => {
    const v = lower.get(key);
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
  const dependencyErrorCode = text('dependencyerrorcode');
  let fieldErrors = readFieldErrors(lower.get('errors'));
  if (!fieldErrors && dependencyErrorCode?.trim().startsWith('{')) {
    try {
      const nested = JSON.parse(dependencyErrorCode) as Record<string, unknown>;
      const key = Object.keys(nested).find((k) => k.toLowerCase() === 'errors');
      fieldErrors = readFieldErrors(key ? nested[key] : undefined);
    } catch {
      // Not JSON after all: keep it as the plain debugging string it is.
    }
  }
  return {
    fpxMessage: text('message') ?? text('title'),
    dependencyType: text('dependencytype'),
    dependencyOwner: text('dependencyowner'),
    dependencyErrorCode,
    fieldErrors,
  };
}

function readFieldErrors(value: unknown): Record<string, string[]> | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const out: Record<string, string[]> = {};
  for (const [field, reasons] of Object.entries(value)) {
    out[field] = (Array.isArray(reasons) ? reasons : [reasons]).map((r) => String(r));
  }
  return out;
}
