/**
 * A local Dataverse Web API (read by id only): `GET /api/data/v9.2/<accounts|contacts|annotations>(<id>)?$select=…`
 * with a bearer token, answering as Dataverse does: the selected columns, lookups as `_<name>_value` with their
 * table in `…@Microsoft.Dynamics.CRM.lookuplogicalname` when asked for (Prefer: odata.include-annotations), 404
 * with Dataverse's error body for an unknown id, 401 without the token. It also answers App Service's managed
 * identity protocol (`GET /msi/token?resource=…&api-version=2019-08-01` with `X-IDENTITY-HEADER`), so the real
 * @azure/identity credential can get its token here (`identityEnv`). `setMode('failing')` answers 503.
 * Not Dataverse: `PATCH /_fake/<table>(<id>)` with a JSON row merges it in (how `npm run dataverse` keeps the
 * local rows in step with the events it sends; the fake listens on 127.0.0.1 only).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TokenCredential } from '@azure/identity';

export type Row = Record<string, unknown>;
export interface Lookup {
  LogicalName: string;
  Id: string;
}

export interface WebApiRequest {
  method: string;
  path: string;
  select: string[];
  authorized: boolean;
  status: number;
}

export interface DataverseWebApiFake {
  /** `http://127.0.0.1:<port>`: DATAVERSE_URL. */
  url: string;
  /** The token the app gets (from the managed identity in Azure): a credential that hands it out. */
  credential: TokenCredential;
  /** Settings that make @azure/identity's managed identity credential get its token from this fake. */
  identityEnv: Record<string, string>;
  /** Rows by table (`accounts`, `contacts`, `annotations`) and id; a lookup is a `Lookup` value. */
  setRow(table: 'accounts' | 'contacts' | 'annotations', id: string, row: Row): void;
  requests: WebApiRequest[];
  setMode(mode: 'normal' | 'failing'): void;
  close(): Promise<void>;
}

const PRIMARY: Record<string, string> = {
  accounts: 'accountid',
  contacts: 'contactid',
  annotations: 'annotationid',
};
const LOOKUP_TYPE = '@Microsoft.Dynamics.CRM.lookuplogicalname';

export async function startDataverseWebApiFake(
  options: { port?: number } = {},
): Promise<DataverseWebApiFake> {
  const token = `fake-dataverse-token-${randomBytes(8).toString('hex')}`;
  const identityHeader = randomBytes(8).toString('hex');
  const rows = new Map<string, Map<string, Row>>();
  const requests: WebApiRequest[] = [];
  let mode: 'normal' | 'failing' = 'normal';
  let url = '';

  const setRow = (table: string, id: string, row: Row, merge = false) => {
    const byId = rows.get(table) ?? new Map<string, Row>();
    byId.set(id.toLowerCase(), { ...(merge ? byId.get(id.toLowerCase()) : {}), ...row });
    rows.set(table, byId);
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const seed = /^\/_fake\/(accounts|contacts|annotations)\(([0-9a-fA-F-]{36})\)$/.exec(
      decodeURIComponent(u.pathname),
    );
    if (seed && req.method === 'PATCH') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        try {
          setRow(
            seed[1] as string,
            seed[2] as string,
            JSON.parse(Buffer.concat(chunks).toString('utf8')),
            true,
          );
          res.writeHead(204).end();
        } catch {
          res.writeHead(400).end();
        }
      });
      return;
    }
    req.resume();
    const authorized = req.headers.authorization === `Bearer ${token}`;
    const select = (u.searchParams.get('$select') ?? '').split(',').filter(Boolean);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      requests.push({
        method: req.method ?? 'GET',
        path: decodeURIComponent(u.pathname),
        select,
        authorized,
        status,
      });
      res.writeHead(status, {
        'content-type': 'application/json; odata.metadata=minimal',
        'odata-version': '4.0',
        ...headers,
      });
      res.end(JSON.stringify(body));
    };
    if (u.pathname === '/msi/token') {
      if (req.headers['x-identity-header'] !== identityHeader)
        return reply(401, { error: 'no X-IDENTITY-HEADER' });
      const expires = Math.floor(Date.now() / 1000) + 3600;
      return reply(200, {
        access_token: token,
        expires_on: String(expires),
        resource: u.searchParams.get('resource'),
        token_type: 'Bearer',
      });
    }
    if (mode === 'failing')
      return reply(503, { error: { code: '0x80040216', message: 'Service unavailable (fake)' } });
    if (!authorized) {
      return reply(
        401,
        { error: { code: '0x80072560', message: 'The user is not a member of the organization.' } },
        {
          'www-authenticate':
            'Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize',
        },
      );
    }
    const match = /^\/api\/data\/v9\.2\/(accounts|contacts|annotations)\(([0-9a-fA-F-]{36})\)$/.exec(
      decodeURIComponent(u.pathname),
    );
    if (req.method !== 'GET' || !match) {
      return reply(404, {
        error: {
          code: '0x8006088a',
          message: 'Resource not found for the segment (fake: only reads by id).',
        },
      });
    }
    const [, table = '', rawId = ''] = match;
    const id = rawId.toLowerCase();
    const row = rows.get(table)?.get(id);
    if (!row) {
      return reply(404, {
        error: { code: '0x80040217', message: `${table.slice(0, -1)} With Id = ${id} Does Not Exist` },
      });
    }
    const annotate = /odata\.include-annotations/.test(String(req.headers.prefer ?? ''));
    const body: Row = {
      '@odata.context': `${url}/api/data/v9.2/$metadata#${table}(${select.join(',')})/$entity`,
      '@odata.etag': 'W/"1"',
    };
    const columns = select.length > 0 ? select : Object.keys(row);
    for (const column of columns) {
      const lookupName = /^_(.+)_value$/.exec(column)?.[1];
      const value = lookupName ? row[lookupName] : row[column];
      if (lookupName && value && typeof value === 'object') {
        const lookup = value as Lookup;
        body[column] = lookup.Id;
        if (annotate) body[`${column}${LOOKUP_TYPE}`] = lookup.LogicalName;
      } else {
        body[column] = value ?? null;
      }
    }
    body[PRIMARY[table] as string] = id;
    return reply(200, body);
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    credential: { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) },
    identityEnv: { IDENTITY_ENDPOINT: `${url}/msi/token`, IDENTITY_HEADER: identityHeader },
    setRow: (table, id, row) => setRow(table, id, row),
    requests,
    setMode(next) {
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
