/**
 * A local Key Vault (secrets only) over HTTPS, speaking the real protocol to the real SecretClient:
 * a request without a bearer token gets the 401 challenge Key Vault sends, the repeat carries the token;
 * `GET /secrets/{name}[/{version}]?api-version=…` answers the secret bundle Key Vault answers.
 * `setMode('slow')` holds requests unanswered until the test calls `release()`; `setMode('failing')` drops
 * every connection, as an unreachable vault does.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { ensureDevCertificates } from '../../dev/certs';

export interface FakeSecretInput {
  value: string;
  contentType?: string;
  enabled?: boolean;
  notBefore?: Date;
  expires?: Date;
}

interface StoredVersion extends FakeSecretInput {
  version: string;
  created: number;
}

export interface KeyVaultRequest {
  method: string;
  path: string;
  /** Whether it carried the expected bearer token. */
  authorized: boolean;
  status: number;
}

export interface KeyVaultFake {
  /** `https://127.0.0.1:<port>`: the vault URL. */
  url: string;
  /** What SecretClient needs to talk to this fake: a dummy credential and the fake's CA. */
  credential: TokenCredential;
  clientOptions: SecretClientOptions;
  /** Adds a version (the latest from now on) and returns its id. */
  setSecret(name: string, secret: FakeSecretInput): string;
  requests: KeyVaultRequest[];
  setMode(mode: KeyVaultMode): void;
  /** Resolves once `count` requests are held (slow mode). */
  held(count?: number): Promise<void>;
  /** Requests held unanswered now. */
  heldCount(): number;
  /** Answers the held requests (as the vault stands now) and leaves slow mode. */
  release(): void;
  close(): Promise<void>;
}

export type KeyVaultMode = 'normal' | 'slow' | 'failing';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

export async function startKeyVaultFake(): Promise<KeyVaultFake> {
  const certs = ensureDevCertificates();
  const token = `fake-kv-token-${randomBytes(8).toString('hex')}`;
  const secrets = new Map<string, StoredVersion[]>();
  const requests: KeyVaultRequest[] = [];
  let url = '';
  let mode: KeyVaultMode = 'normal';
  let held: Array<() => void> = [];
  let heldWaiters: Array<{ count: number; resolve: () => void }> = [];

  const server = https.createServer({ key: certs.server.keyPem, cert: certs.server.certPem }, (req, res) => {
    if (mode === 'failing') {
      req.socket.destroy();
      return;
    }
    // Drain the body (the challenge-less first request has none; later ones may).
    req.resume();
    req.on('end', () => {
      if (mode !== 'slow') return handle(req, res);
      held.push(() => {
        // The client may have given up (and closed the connection) meanwhile.
        if (!res.destroyed) handle(req, res);
      });
      for (const waiter of heldWaiters.filter((w) => held.length >= w.count)) waiter.resolve();
      heldWaiters = heldWaiters.filter((w) => held.length < w.count);
    });
  });

  function handle(req: IncomingMessage, res: ServerResponse) {
    const u = new URL(req.url ?? '/', url);
    const authorized = req.headers.authorization === `Bearer ${token}`;
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      requests.push({ method: req.method ?? 'GET', path: u.pathname, authorized, status });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    if (!authorized) {
      return reply(
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        {
          'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="https://vault.azure.net"`,
        },
      );
    }
    if (!u.searchParams.get('api-version')) {
      return reply(400, {
        error: { code: 'BadParameter', message: 'The api-version query parameter is missing.' },
      });
    }
    const match = /^\/secrets\/([0-9a-zA-Z-]+)(?:\/([0-9a-zA-Z]*))?\/?$/.exec(u.pathname);
    if (req.method !== 'GET' || !match) {
      return reply(404, { error: { code: 'NotFound', message: 'No such operation in this fake.' } });
    }
    const name = (match[1] as string).toLowerCase();
    const versionId = match[2];
    const versions = secrets.get(name) ?? [];
    if (versionId === 'versions') {
      return reply(200, {
        value: versions.map((v) => ({ ...bundle(name, v), value: undefined })),
        nextLink: null,
      });
    }
    const found = versionId ? versions.find((v) => v.version === versionId) : versions.at(-1);
    if (!found) {
      return reply(404, {
        error: {
          code: 'SecretNotFound',
          message: `A secret with (name/id) ${match[1]}${versionId ? `/${versionId}` : ''} was not found in this key vault.`,
        },
      });
    }
    if (found.enabled === false) {
      return reply(403, {
        error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.' },
      });
    }
    return reply(200, bundle(name, found));
  }

  const idOf = (name: string, v: StoredVersion) => `${url}/secrets/${name}/${v.version}`;
  const seconds = (d: Date | number) => Math.floor((typeof d === 'number' ? d : d.getTime()) / 1000);
  const bundle = (name: string, v: StoredVersion) => ({
    value: v.value,
    contentType: v.contentType,
    id: idOf(name, v),
    // What Key Vault adds for a certificate's secret.
    kid: `${url}/keys/${name}/${v.version}`,
    managed: true,
    attributes: {
      enabled: v.enabled ?? true,
      nbf: v.notBefore ? seconds(v.notBefore) : undefined,
      exp: v.expires ? seconds(v.expires) : undefined,
      created: seconds(v.created),
      updated: seconds(v.created),
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    },
  });

  // Idle connections stay open longer than any test, so a reused one is never closed under the client.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    credential: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
    clientOptions: {
      tlsOptions: { ca: certs.ca.certPem },
      disableChallengeResourceVerification: true,
      // The SDK's own retries stay on, as in production; short, for tests.
      retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 200 },
    },
    setSecret(name, secret) {
      const version = randomBytes(16).toString('hex');
      const list = secrets.get(name.toLowerCase()) ?? [];
      list.push({ ...secret, version, created: Date.now() });
      secrets.set(name.toLowerCase(), list);
      return version;
    },
    requests,
    setMode(next) {
      mode = next;
    },
    held: (count = 1) =>
      held.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => heldWaiters.push({ count, resolve })),
    heldCount: () => held.length,
    release() {
      mode = 'normal';
      const waiting = held;
      held = [];
      for (const answer of waiting) answer();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
