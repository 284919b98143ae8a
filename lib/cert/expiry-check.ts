import type { AlertSender } from '../alerts/alert-sender';
import type { AlertLedger } from '../alerts/ledger';
import { safeErrorMessage } from '../redact';
import type { CertificateSource } from './certificate';
import { daysLeft, dueExpiryAlert } from './expiry';
import { expiryEmail } from './expiry-email';

/** The table recording the expiry alerts sent: PartitionKey thumbprint, RowKey `threshold-<days>` or `expired-<date>`. */
export const CERT_ALERTS_TABLE = 'FpxCertAlerts';

export interface CertExpiryCheckDeps {
  certificates: CertificateSource;
  ledger: AlertLedger;
  sender: AlertSender;
  /** CERT_ALERT_DAYS. */
  thresholds: readonly number[];
  now?: () => Date;
}

export interface CertExpiryCheckResult {
  thumbprint: string;
  subject: string;
  notAfter: string;
  daysLeft: number;
  /** The alert due now, if any, and what became of it. */
  alert?: {
    key: string;
    /** `sent` now; `already` sent (or being sent) before; `failed` now (retried on the next run). */
    outcome: 'sent' | 'already' | 'failed';
    transport: string;
    attempt?: number;
    error?: string;
  };
}

/**
 * Looks at the certificate now current (asking the source for a new version first, so a certificate already
 * replaced is not reported) and sends the expiry alert that is due, unless the ledger says it went out.
 */
export async function checkCertificateExpiry(deps: CertExpiryCheckDeps): Promise<CertExpiryCheckResult> {
  const now = deps.now?.() ?? new Date();
  const certificate = await deps.certificates.refresh('daily expiry check');
  const result: CertExpiryCheckResult = {
    thumbprint: certificate.thumbprint,
    subject: certificate.subject,
    notAfter: certificate.notAfter.toISOString(),
    daysLeft: daysLeft(certificate.notAfter, now),
  };
  const due = dueExpiryAlert(certificate.notAfter, now, deps.thresholds);
  if (!due) return result;

  const message = expiryEmail(certificate, deps.certificates, due);
  const transport = deps.sender.transport;
  const claim = await deps.ledger.claim(
    certificate.thumbprint,
    due.key,
    {
      subject: message.subject,
      certificateSubject: certificate.subject,
      source: deps.certificates.description,
      notAfter: result.notAfter,
      daysLeft: result.daysLeft,
    },
    now,
  );
  if (!claim.claimed) return { ...result, alert: { key: due.key, outcome: 'already', transport } };
  try {
    await deps.sender.send(message);
  } catch (error) {
    await deps.ledger.markFailed(certificate.thumbprint, due.key, transport, error);
    return {
      ...result,
      alert: {
        key: due.key,
        outcome: 'failed',
        transport,
        attempt: claim.attempt,
        error: safeErrorMessage(error),
      },
    };
  }
  await deps.ledger.markSent(certificate.thumbprint, due.key, transport, now);
  return { ...result, alert: { key: due.key, outcome: 'sent', transport, attempt: claim.attempt } };
}
