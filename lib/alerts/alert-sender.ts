import { createHash } from 'node:crypto';

/** One alert for the operators, whatever carries it (email today; the webhooks issue reuses this). */
export interface AlertMessage {
  subject: string;
  text: string;
  html?: string;
  /**
   * A stable id for this alert (e.g. `<thumbprint>/threshold-7`): a resend of the same alert carries the same
   * id (ACS Email `Operation-Id`, SMTP `Message-ID`), so a transport or a mail client can tell it apart.
   */
  id?: string;
}

export interface AlertSender {
  /** `acs`, `smtp` or `log`: recorded with each alert sent. */
  readonly transport: string;
  /** Resolves once the transport accepted the message; rejects with an error that holds no secret. */
  send(message: AlertMessage): Promise<void>;
}

/** Removes what may be a secret from a transport's error text: URL credentials, access keys, tokens. */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\w+:\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***@')
    .replace(/(accesskey=)[^;\s]+/gi, '$1***')
    .replace(/(Bearer\s+)[\w.~+/-]+=*/gi, '$1***')
    .replace(/(Signature=)[^&\s]+/gi, '$1***');
}

/** A UUID derived from a string, so the same alert always gets the same id. */
export function stableUuid(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
