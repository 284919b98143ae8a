import type { TokenCredential } from '@azure/identity';
import { type Config, ConfigError } from '../config';
import { AcsEmailAlertSender, type AcsSenderOptions } from './acs-sender';
import type { AlertSender } from './alert-sender';
import { LogAlertSender } from './log-sender';
import { SmtpAlertSender } from './smtp-sender';

export { AcsEmailAlertSender, type AcsSenderOptions } from './acs-sender';
export type { AlertMessage, AlertSender } from './alert-sender';
export { type AlertClaim, AlertLedger, type AlertRecord } from './ledger';
export { LogAlertSender } from './log-sender';
export { SmtpAlertSender, type SmtpSenderOptions } from './smtp-sender';

export interface AlertSenderOverrides {
  credential?: TokenCredential;
  acsClientOptions?: AcsSenderOptions['clientOptions'];
  acsPollIntervalMs?: number;
  smtpCa?: string;
  log?: (message: string) => void;
}

/**
 * The email transport the settings ask for: ACS Email, else SMTP, else the log (an error line per alert).
 * A transport without ALERT_EMAIL_TO or ALERT_EMAIL_FROM stops start-up, naming the setting, unless that
 * setting is an unresolved Key Vault reference (then alerts go to the log, saying so).
 */
export function createAlertSender(
  alerts: Config['alerts'],
  overrides: AlertSenderOverrides = {},
): AlertSender {
  const transport = alerts.acsEndpoint
    ? 'ACS_EMAIL_ENDPOINT'
    : alerts.acsConnectionString
      ? 'ACS_EMAIL_CONNECTION_STRING'
      : alerts.smtpUrl
        ? 'SMTP_URL'
        : undefined;
  // An unresolved Key Vault reference counts as unset but must not stop start-up: alerts go to the log.
  const unresolved = (names: string[]) => names.filter((name) => alerts.unresolved?.includes(name));
  if (!transport) {
    const transports = unresolved(['ACS_EMAIL_ENDPOINT', 'ACS_EMAIL_CONNECTION_STRING', 'SMTP_URL']);
    return new LogAlertSender(
      transports.length > 0
        ? `${transports.join(', ')}: unresolved Key Vault reference`
        : 'set ACS_EMAIL_ENDPOINT, ACS_EMAIL_CONNECTION_STRING or SMTP_URL',
      overrides.log,
    );
  }
  const missing =
    alerts.emailTo.length === 0 ? 'ALERT_EMAIL_TO' : !alerts.emailFrom ? 'ALERT_EMAIL_FROM' : undefined;
  if (missing && unresolved([missing]).length > 0) {
    return new LogAlertSender(`${missing}: unresolved Key Vault reference`, overrides.log);
  }
  if (alerts.emailTo.length === 0) {
    throw new ConfigError('ALERT_EMAIL_TO', `the alert recipients, since ${transport} is set`, true);
  }
  if (!alerts.emailFrom) {
    throw new ConfigError('ALERT_EMAIL_FROM', `the alert sender address, since ${transport} is set`, true);
  }
  const recipients = { to: alerts.emailTo, from: alerts.emailFrom };
  if (alerts.acsEndpoint || alerts.acsConnectionString) {
    const target = alerts.acsEndpoint
      ? {
          endpoint: alerts.acsEndpoint,
          credential: overrides.credential,
          identityClientId: alerts.identityClientId,
        }
      : { connectionString: alerts.acsConnectionString as string };
    return new AcsEmailAlertSender({
      ...target,
      ...recipients,
      clientOptions: overrides.acsClientOptions,
      pollIntervalMs: overrides.acsPollIntervalMs,
    });
  }
  return new SmtpAlertSender({ url: alerts.smtpUrl as string, ...recipients, ca: overrides.smtpCa });
}
