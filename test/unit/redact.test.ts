/** What lib/redact removes from error texts before they reach a log. */
import { RestError } from '@azure/data-tables';
import { expect, test } from 'vitest';
import { safeErrorMessage } from '../../lib/redact';

const SECRETS = ['SECRETsig0123', 'SECRETkey4567'];
/** What a storage or proxy error may quote: a SAS URL and an account key. */
const LEAK = `https://acct.table.core.windows.net/FpxSyncState?sv=2024-08-04&sig=${SECRETS[0]} (AccountKey=${SECRETS[1]};)`;

test('safeErrorMessage removes SAS signatures and account keys', () => {
  const text = safeErrorMessage(new RestError(`request to ${LEAK} failed`));
  expect(text).toBe(
    'RestError: request to https://acct.table.core.windows.net/FpxSyncState?sv=2024-08-04&sig=*** (AccountKey=***;) failed',
  );
});
