/**
 * A local Azure Communication Services Email endpoint over HTTPS, for the real EmailClient:
 * `POST /emails:send?api-version=…` (HMAC-SHA256 signed with the connection string's access key, or a bearer
 * token) answers 202 with `Operation-Location`; `GET /emails/operations/{id}` answers the operation's status.
 * A repeated `Operation-Id` is the same operation (no second message), as ACS does.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { EmailClientOptions, EmailMessage } from '@azure/communication-email';
import type { TokenCredential } from '@azure/identity';
import { ensureDevCertificates } from '../../dev/certs';

export interface AcsEmailFake {
  /** `https://127.0.0.1:<port>`. */
  endpoint: string;
  /** `endpoint=…;accesskey=…` for ACS_EMAIL_CONNECTION_STRING. */
  connectionString: string;
  /** A dummy credential whose token the fake accepts (the managed-identity path). */
  credential: TokenCredential;
  clientOptions: EmailClientOptions;
  /** Messages accepted, in order. */
  messages: Array<{ operationId: string; message: EmailMessage; auth: 'hmac' | 'bearer' }>;
  /** Requests refused (bad signature, wrong token). */
  refused: string[];
  /** Make the next sends' operations end `Failed` (or the POSTs answer this HTTP status). */
  failNext(count: number, how?: 'operation' | number): void;
  close(): Promise<void>;
}

export async function startAcsEmailFake(): Promise<AcsEmailFake> {
  const certs = ensureDevCertificates();
  const accessKey = randomBytes(32).toString('base64');
  const token = `fake-acs-token-${randomBytes(8).toString('hex')}`;
  const operations = new Map<string, { status: 'Running' | 'Succeeded' | 'Failed'; polls: number }>();
  const messages: AcsEmailFake['messages'] = [];
  const refused: string[] = [];
  let failures: { count: number; how: 'operation' | number } = { count: 0, how: 'operation' };
  let endpoint = '';

  const server = https.createServer({ key: certs.server.keyPem, cert: certs.server.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });

  const send = (
    res: ServerResponse,
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error: { code, message } });

  /** The access-key scheme of @azure/communication-common: HMAC-SHA256 over verb, path and query, date;host;content hash. */
  function authenticate(req: IncomingMessage, body: string): 'hmac' | 'bearer' | string {
    const authorization = req.headers.authorization ?? '';
    if (authorization === `Bearer ${token}`) return 'bearer';
    const hmac = /^HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=(.+)$/.exec(
      authorization,
    );
    if (!hmac) return 'no HMAC or bearer authorization';
    const contentHash = createHash('sha256').update(body).digest('base64');
    if (req.headers['x-ms-content-sha256'] !== contentHash) return 'content hash mismatch';
    const date = req.headers['x-ms-date'];
    if (typeof date !== 'string' || Math.abs(Date.parse(date) - Date.now()) > 15 * 60_000)
      return 'x-ms-date missing or stale';
    const url = new URL(req.url ?? '/', endpoint);
    const query = url.searchParams.toString();
    const toSign = `${req.method}\n${url.pathname}${query ? `?${query}` : ''}\n${date};${req.headers.host};${contentHash}`;
    const expected = createHmac('sha256', Buffer.from(accessKey, 'base64')).update(toSign).digest();
    const given = Buffer.from(hmac[1] as string, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected)
      ? 'hmac'
      : 'signature mismatch';
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: string) {
    const url = new URL(req.url ?? '/', endpoint);
    const auth = authenticate(req, body);
    if (auth !== 'hmac' && auth !== 'bearer') {
      refused.push(auth);
      return error(res, 401, 'Denied', 'Denied by the fake: invalid credentials.');
    }
    if (!url.searchParams.get('api-version'))
      return error(res, 400, 'MissingApiVersion', 'api-version is required');

    if (req.method === 'POST' && url.pathname === '/emails:send') {
      if (failures.count > 0 && typeof failures.how === 'number') {
        failures.count--;
        return error(res, failures.how, 'ServiceUnavailable', 'The fake is told to fail this send.');
      }
      const message = JSON.parse(body) as EmailMessage;
      if (!message.senderAddress || !message.recipients?.to?.length || !message.content?.subject) {
        return error(
          res,
          400,
          'InvalidRequest',
          'senderAddress, recipients.to and content.subject are required',
        );
      }
      const operationId = (req.headers['operation-id'] as string | undefined) ?? randomUUID();
      if (!operations.has(operationId)) {
        const fail = failures.count > 0 && failures.how === 'operation';
        if (fail) failures.count--;
        operations.set(operationId, { status: fail ? 'Failed' : 'Running', polls: 0 });
        if (!fail) messages.push({ operationId, message, auth });
      }
      const location = `${endpoint}/emails/operations/${operationId}?api-version=${url.searchParams.get('api-version')}`;
      return send(
        res,
        202,
        { id: operationId, status: 'Running' },
        { 'operation-location': location, 'retry-after': '0' },
      );
    }
    const poll = /^\/emails\/operations\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && poll) {
      const operation = operations.get(poll[1] as string);
      if (!operation) return error(res, 404, 'NotFound', 'No such operation.');
      // Running on the first poll, then done: the client really polls.
      if (++operation.polls > 1 && operation.status === 'Running') operation.status = 'Succeeded';
      return send(res, 200, {
        id: poll[1],
        status: operation.status,
        ...(operation.status === 'Failed'
          ? {
              error: {
                code: 'EmailDroppedAllRecipientsSuppressed',
                message: 'Message was dropped by the fake.',
              },
            }
          : {}),
      });
    }
    return error(res, 404, 'NotFound', `No ${req.method} ${url.pathname} in this fake.`);
  }

  // Idle connections stay open longer than any test, so a reused one is never closed under the client.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    connectionString: `endpoint=${endpoint}/;accesskey=${accessKey}`,
    credential: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
    clientOptions: { tlsOptions: { ca: certs.ca.certPem }, retryOptions: { maxRetries: 0 } },
    messages,
    refused,
    failNext(count, how = 'operation') {
      failures = { count, how };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
