import { createHash } from 'node:crypto';

/**
 * Removes what may be a secret from error text before it reaches a log, a table or an email: URL
 * credentials, storage account keys, SAS signatures, ACS access keys and bearer tokens.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\w+:\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***@')
    .replace(/([?&]sig=)[^&\s"']+/gi, '$1***')
    .replace(/(AccountKey=)[^;\s"']+/gi, '$1***')
    .replace(/(SharedAccessSignature=)[^;\s"']+/gi, '$1***')
    .replace(/(accesskey=)[^;\s"']+/gi, '$1***')
    .replace(/(Signature=)[^&\s"']+/gi, '$1***')
    .replace(/(Bearer\s+)[\w.~+/-]+=*/gi, '$1***');
}

const MAX_ERROR_CHARS = 2_000;

/** A failure's message fit for a table or a log: `Name: message`, redacted and capped. */
export function safeErrorMessage(error: unknown): string {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const redacted = redactSecrets(message);
  return redacted.length > MAX_ERROR_CHARS
    ? `${redacted.slice(0, MAX_ERROR_CHARS)}…`
    : redacted || 'unknown error';
}

/** A UUID derived from a string, so the same thing (an alert, a webhook-id) always gets the same id. */
export function stableUuid(text: string): string {
  const hex = createHash('sha256').update(text).digest('hex');
  const variant = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
