import { app } from '@azure/functions';
import { AlertLedger } from '../lib/alerts';
import { CERT_ALERTS_TABLE, type CertExpiryCheckResult, checkCertificateExpiry } from '../lib/cert';
import type { Log } from '../lib/log';
import { safeErrorMessage } from '../lib/redact';
import type { Services } from './services';

/** Timer `%CERT_CHECK_SCHEDULE%` (daily 08:00 UTC): the certificate's days left, and the expiry alert due. */
export async function runCertExpiryCheck(
  services: Services,
  log: Log,
  now?: () => Date,
): Promise<CertExpiryCheckResult> {
  let result: CertExpiryCheckResult;
  try {
    result = await checkCertificateExpiry({
      certificates: services.certificates,
      ledger: new AlertLedger(services.table(CERT_ALERTS_TABLE)),
      sender: services.alerts,
      thresholds: services.config.alerts.days,
      now: now ?? (() => new Date(services.clock.now())),
    });
  } catch (error) {
    // The host logs what a function throws: only the redacted message leaves (storage and SDK errors can
    // quote URLs with SAS signatures).
    throw new Error(`The certificate expiry check failed: ${safeErrorMessage(error)}`);
  }
  log.log(
    `FPX certificate ${result.thumbprint}: ${result.daysLeft} days left (expires ${result.notAfter})` +
      (result.alert
        ? `; alert ${result.alert.key}: ${result.alert.outcome} via ${result.alert.transport}`
        : ''),
  );
  if (result.alert?.outcome === 'failed') {
    // Recorded as failed: the next run sends it again. Failing the invocation makes it visible.
    throw new Error(
      `The certificate expiry alert could not be sent (retried on the next run): ${result.alert.error}`,
    );
  }
  return result;
}

export function registerCertExpiryCheck(services: Services): void {
  app.timer('certExpiryCheck', {
    schedule: '%CERT_CHECK_SCHEDULE%',
    handler: async (_timer, context) => {
      await runCertExpiryCheck(services, context);
    },
  });
}
